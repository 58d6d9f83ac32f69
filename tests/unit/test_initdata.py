"""initData validation against vectors computed here, independently of bot/web/initdata.py.

The fixed vector below was computed with the openssl command line, following Telegram's
documented scheme step by step:

    SECRET=$(printf %s "$TOKEN" | openssl dgst -sha256 -mac HMAC -macopt key:WebAppData)
    printf 'auth_date=...\\nquery_id=...\\nuser=...' \\
        | openssl dgst -sha256 -mac HMAC -macopt hexkey:$SECRET
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.web.initdata import InvalidInitData, secret_key, validate_init_data

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
OPENSSL_SECRET = "8d4ae4710fc246c92cf463b9c334282966cbd9582e02e0f70b4fc62c3e5e0f15"
USER = '{"id":279058397,"first_name":"Blanca","language_code":"es"}'
FIELDS = {"auth_date": "1793869200", "query_id": "AAHdF6IQAAAAAN0XohDhrOrc", "user": USER}
OPENSSL_HASH = "7e25f3d2c9263ea84c0a8c01fe2d662f6fcc35611d5d2ed940f21135433b2975"
SIGNED_AT = datetime(2026, 11, 5, 9, 0, tzinfo=UTC)  # auth_date 1793869200
HOUR = timedelta(hours=1)


def _query(fields: dict[str, str]) -> str:
    # Telegram percent-encodes values; the JSON's quotes, braces and commas included.
    return "&".join(f"{key}={quote(value, safe='')}" for key, value in fields.items())


def _sign_here(fields: dict[str, str], token: str) -> str:
    """The scheme written out again in the test, from the documentation."""
    secret = hmac.new(b"WebAppData", token.encode(), hashlib.sha256).digest()
    check = "\n".join(f"{k}={v}" for k, v in sorted(fields.items()))
    return hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()


def test_the_secret_key_is_hmac_of_the_token_keyed_with_webappdata() -> None:
    assert secret_key(TOKEN).hex() == OPENSSL_SECRET


def test_the_openssl_vector_is_accepted_with_its_user() -> None:
    raw = _query({**FIELDS, "hash": OPENSSL_HASH})
    data = validate_init_data(raw, TOKEN, now=SIGNED_AT + timedelta(minutes=5), max_age=HOUR)
    assert data.user.id == 279058397
    assert data.user.first_name == "Blanca" and data.user.language_code == "es"
    assert data.auth_date == SIGNED_AT


def test_field_order_in_the_query_does_not_matter() -> None:
    raw = _query({"hash": OPENSSL_HASH, "user": USER, **FIELDS})
    assert validate_init_data(raw, TOKEN, now=SIGNED_AT, max_age=HOUR).user.id == 279058397


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"user": USER.replace("279058397", "279058398")}, "forged"),  # someone else's id
        ({"auth_date": "1793872800"}, "forged"),  # a fresher date, same hash
        ({"query_id": "AAHdF6IQAAAAAN0XohDhrOrd"}, "forged"),
        ({"hash": "0" * 64}, "forged"),
        ({"hash": OPENSSL_HASH.upper()}, "forged"),
        ({"hash": ""}, "forged"),
        ({"extra": "1"}, "forged"),  # a field added after signing
    ],
)
def test_any_change_after_signing_is_refused(change: dict[str, str], reason: str) -> None:
    raw = _query({**FIELDS, "hash": OPENSSL_HASH, **change})
    with pytest.raises(InvalidInitData) as caught:
        validate_init_data(raw, TOKEN, now=SIGNED_AT, max_age=HOUR)
    assert caught.value.reason == reason


def test_another_bots_token_does_not_validate() -> None:
    raw = _query({**FIELDS, "hash": OPENSSL_HASH})
    with pytest.raises(InvalidInitData) as caught:
        validate_init_data(raw, "987654321:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw", now=SIGNED_AT,
                           max_age=HOUR)  # fmt: skip
    assert caught.value.reason == "forged"


def test_a_missing_hash_or_nothing_at_all_is_refused() -> None:
    for raw, reason in (("", "missing"), (_query(FIELDS), "forged"), ("%%%", "malformed")):
        with pytest.raises(InvalidInitData) as caught:
            validate_init_data(raw, TOKEN, now=SIGNED_AT, max_age=HOUR)
        assert caught.value.reason == reason


def test_a_repeated_field_is_refused_even_when_one_copy_is_signed() -> None:
    raw = _query({**FIELDS, "hash": OPENSSL_HASH}) + "&user=" + quote('{"id":1}', safe="")
    with pytest.raises(InvalidInitData) as caught:
        validate_init_data(raw, TOKEN, now=SIGNED_AT, max_age=HOUR)
    assert caught.value.reason == "malformed"


def test_freshness_is_auth_date_within_the_allowed_age() -> None:
    raw = _query({**FIELDS, "hash": OPENSSL_HASH})
    assert validate_init_data(raw, TOKEN, now=SIGNED_AT + HOUR, max_age=HOUR)
    for now in (SIGNED_AT + HOUR + timedelta(seconds=1), SIGNED_AT - timedelta(minutes=6)):
        with pytest.raises(InvalidInitData) as caught:
            validate_init_data(raw, TOKEN, now=now, max_age=HOUR)
        assert caught.value.reason == "stale"


def test_signed_data_without_a_user_is_malformed_not_trusted() -> None:
    fields = {"auth_date": "1793869200", "query_id": "x"}
    raw = _query({**fields, "hash": _sign_here(fields, TOKEN)})
    with pytest.raises(InvalidInitData) as caught:
        validate_init_data(raw, TOKEN, now=SIGNED_AT, max_age=HOUR)
    assert caught.value.reason == "malformed"


names = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=20
)


@settings(max_examples=40, deadline=None)
@given(
    user_id=st.integers(min_value=1, max_value=2**52),
    first_name=names,
    extra=st.dictionaries(
        st.sampled_from(["chat_instance", "chat_type", "start_param", "signature"]),
        st.text("abcXYZ019&=%+ ", max_size=12),
        max_size=3,
    ),
)
def test_whatever_telegram_signs_validates_and_any_flipped_character_does_not(
    user_id: int, first_name: str, extra: dict[str, str]
) -> None:
    user = json.dumps({"id": user_id, "first_name": first_name}, ensure_ascii=False)
    fields = {"auth_date": "1793869200", "user": user, **extra}
    digest = _sign_here(fields, TOKEN)
    raw = urlencode({**fields, "hash": digest})
    data = validate_init_data(raw, TOKEN, now=SIGNED_AT, max_age=HOUR)
    assert data.user.id == user_id and data.user.first_name == first_name
    flipped = digest[:-1] + ("0" if digest[-1] != "0" else "1")
    with pytest.raises(InvalidInitData):
        validate_init_data(urlencode({**fields, "hash": flipped}), TOKEN, now=SIGNED_AT,
                           max_age=HOUR)  # fmt: skip
