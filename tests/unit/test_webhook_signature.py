"""Webhook signatures: a receiver can tell a genuine, fresh event from a forged or replayed one.

Also: a practice's ``[[webhooks]]`` section is checked (https, a long secret, known events).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest

from bot.channels.webhook import sign, verify_signature
from bot.services.practice_config import endpoint_key, parse_practice_config

SECRET = "s3cret-" + "k" * 40
NOW = datetime(2026, 10, 19, 9, 0, tzinfo=UTC)
STAMP = str(int(NOW.timestamp()))
BODY = '{"id":"evt_1","type":"alert.raised","created_at":"2026-10-19T09:00:00Z","data":{}}'


def test_a_signed_body_verifies_with_the_same_secret() -> None:
    header = sign(SECRET, STAMP, BODY)
    assert header.startswith("v1=")
    expected = hmac.new(SECRET.encode(), f"{STAMP}.{BODY}".encode(), hashlib.sha256).hexdigest()
    assert header == f"v1={expected}"
    assert verify_signature(SECRET, STAMP, BODY, header, NOW)
    assert verify_signature(SECRET, STAMP, BODY.encode(), header, NOW.timestamp())


@pytest.mark.parametrize(
    ("secret", "stamp", "body"),
    [
        ("another-" + "k" * 40, STAMP, BODY),  # the wrong secret
        (SECRET, STAMP, BODY.replace("alert.raised", "couple.closed")),  # a tampered body
        (SECRET, str(int(STAMP) + 1), BODY),  # a tampered timestamp
    ],
)
def test_any_change_breaks_the_signature(secret: str, stamp: str, body: str) -> None:
    header = sign(SECRET, STAMP, BODY)
    assert not verify_signature(secret, stamp, body, header, NOW)


@pytest.mark.parametrize("age", [301, -301, 3600])
def test_a_timestamp_outside_the_window_fails_even_when_signed(age: int) -> None:
    stamp = str(int(NOW.timestamp()) - age)
    header = sign(SECRET, stamp, BODY)
    assert not verify_signature(SECRET, stamp, BODY, header, NOW)
    assert verify_signature(SECRET, stamp, BODY, header, NOW, tolerance=abs(age))


def test_the_window_holds_up_to_five_minutes_either_way() -> None:
    for age in (0, 299, 300, -300):
        stamp = str(int((NOW - timedelta(seconds=age)).timestamp()))
        assert verify_signature(SECRET, stamp, BODY, sign(SECRET, stamp, BODY), NOW)


@pytest.mark.parametrize("header", ["", "v1=", "v0=abc", "garbage", "v1=" + "0" * 64])
def test_malformed_or_wrong_headers_fail(header: str) -> None:
    assert not verify_signature(SECRET, STAMP, BODY, header, NOW)


@pytest.mark.parametrize("stamp", ["", "-5", "12.5", "soon"])
def test_a_malformed_timestamp_fails(stamp: str) -> None:
    assert not verify_signature(SECRET, stamp, BODY, sign(SECRET, stamp, BODY), NOW)


def test_during_a_secret_rotation_either_listed_signature_passes() -> None:
    old, new = sign("old-" + "k" * 40, STAMP, BODY), sign(SECRET, STAMP, BODY)
    assert verify_signature(SECRET, STAMP, BODY, f"{old}, {new}", NOW)
    assert not verify_signature("third-" + "k" * 40, STAMP, BODY, f"{old},{new}", NOW)


def _webhooks(*tables: str) -> str:
    return "".join(f"[[webhooks]]\n{table}\n" for table in tables)


def test_a_practice_lists_its_endpoints_and_their_events() -> None:
    config = parse_practice_config(
        _webhooks(
            f'url = "https://ehr.example/dyad"\nsecret = "{SECRET}"\nevents = ["alert.raised"]',
            f'url = "http://127.0.0.1:8080/h"\nsecret = "{SECRET}"\n'
            'events = ["digest.ready", "couple.closed"]',
        )
    )
    assert [hook.url for hook in config.webhooks_for("alert.raised")] == [
        "https://ehr.example/dyad"
    ]
    assert [hook.url for hook in config.webhooks_for("digest.ready")] == ["http://127.0.0.1:8080/h"]
    assert config.webhooks_for("partner.unreachable") == ()
    key = endpoint_key("https://ehr.example/dyad")
    found = config.webhook(key)
    assert found is not None and found.url == "https://ehr.example/dyad"
    assert config.webhook("000000000000") is None
    assert SECRET not in repr(config.webhooks)


@pytest.mark.parametrize(
    ("table", "complaint"),
    [
        (f'url = "http://ehr.example/h"\nsecret = "{SECRET}"\nevents = ["alert.raised"]', "https"),
        (f'url = "ftp://ehr.example/h"\nsecret = "{SECRET}"\nevents = ["alert.raised"]', "https"),
        ('url = "https://ehr.example/h"\nsecret = "short"\nevents = ["alert.raised"]', "32"),
        (f'url = "https://ehr.example/h"\nsecret = "{SECRET}"\nevents = []', "events"),
        (f'url = "https://ehr.example/h"\nsecret = "{SECRET}"\nevents = ["alert.read"]', "unknown"),
        (
            f'url = "https://ehr.example/h"\nsecret = "{SECRET}"\nevents = ["alert.raised"]\nx = 1',
            "x",
        ),
        (f'secret = "{SECRET}"\nevents = ["alert.raised"]', "url"),
        (
            f'url = "https://u:p@ehr.example/h"\nsecret = "{SECRET}"\nevents = ["alert.raised"]',
            "credentials",
        ),
    ],
)
def test_a_bad_endpoint_is_refused_with_a_clear_reason(table: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=r"\[\[webhooks\]\] #1") as refused:
        parse_practice_config(_webhooks(table))
    assert complaint in str(refused.value)


def test_the_same_url_twice_is_refused() -> None:
    table = f'url = "https://ehr.example/h"\nsecret = "{SECRET}"\nevents = ["alert.raised"]'
    with pytest.raises(ValueError, match="listed twice"):
        parse_practice_config(_webhooks(table, table))
