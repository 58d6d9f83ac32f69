"""Rendering the digest: same words in every format, private words nowhere, no culprit.

Golden files live in ``tests/unit/golden/digest/``, one set per locale of ``bot.locales.LOCALES``
(``balanced.es-419.txt``); run with ``UPDATE_GOLDEN=1`` to
rewrite them after an intended change, then read the diff before committing.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from bot.channels.telegram_split import TELEGRAM_LIMIT, telegram_messages
from bot.core.digest import (
    CheckinData,
    CoupleAnswerData,
    CoupleSpaceData,
    Digest,
    DigestInput,
    DigestSettings,
    ReplyData,
    compose_digest,
    render_html_page,
    render_json,
    render_telegram_parts,
    render_text,
)
from bot.locales import LOCALES, pick_language
from bot.locales.formats import format_number
from tests.unit.markup import TELEGRAM_TAGS, assert_balanced, utf16_length, visible_text
from tests.unit.test_digest_compose import (
    CANARY,
    END,
    FIXTURES,
    NOTES,
    START,
    balanced_couple,
    digest_inputs,
    safety_flag_couple,
    silent_partner_couple,
    split_alliance_couple,
    swapped,
    with_private_canaries,
)

GOLDEN = Path(__file__).parent / "golden" / "digest"
MESSAGE_BREAK = "\n\n----- next Telegram message -----\n\n"
BLAME_EN = (
    "fault",
    "blame",
    "failed to",
    "refused",
    "ignored",
    "neglect",
    "didn't bother",
    "did not check in",
    "didn't check in",
    "lazy",
    "should have",
    "non-compliant",
    "noncompliant",
    "resistant",
    "avoided",
    "unwilling",
)
BLAME_ES = ("culpa", "se negó", "ignoró", "no quiso", "falló", "descuid", "incumpl")
BLAME_PT = ("culpa", "se recusou", "ignorou", "não quis", "falhou", "descuid", "negligen")
FAST = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def telegram_html(digest: Digest, language: str, limit: int = TELEGRAM_LIMIT) -> list[str]:
    """The digest as the therapist's Telegram chat receives it, message by message."""
    return telegram_messages(render_telegram_parts(digest, language), limit)


def all_renderings(digest: Digest, language: str) -> dict[str, str]:
    return {
        "text": render_text(digest, language),
        "telegram": "\n".join(telegram_html(digest, language)),
        "page": render_html_page(digest, language),
        "json": render_json(digest),
    }


# --- golden files ----------------------------------------------------------------------


def _fixture_language(locale: str) -> str:
    """The language of a locale's fixture notes: its own where the fixtures have it."""
    language = pick_language(locale)
    return language if language in NOTES else "en"


def _golden_outputs(name: str, language: str) -> dict[str, str]:
    digest = compose_digest(FIXTURES[name](_fixture_language(language)))
    outputs = {
        f"{name}.{language}.txt": render_text(digest, language),
        f"{name}.{language}.telegram.html": MESSAGE_BREAK.join(telegram_html(digest, language))
        + "\n",
    }
    if name == "balanced":
        outputs[f"{name}.{language}.page.html"] = render_html_page(digest, language)
        outputs[f"{name}.{language}.json"] = render_json(digest)
    return outputs


# One set of golden files per locale (a new catalog needs only UPDATE_GOLDEN=1).
@pytest.mark.parametrize("language", LOCALES)
@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_rendering_matches_the_golden_file(name: str, language: str) -> None:
    for filename, rendered in _golden_outputs(name, language).items():
        path = GOLDEN / filename
        if os.environ.get("UPDATE_GOLDEN") == "1":
            GOLDEN.mkdir(parents=True, exist_ok=True)
            path.write_text(rendered, encoding="utf-8")
        assert path.exists(), f"{path} is missing: run with UPDATE_GOLDEN=1 to create it"
        assert rendered == path.read_text(encoding="utf-8"), f"{filename} changed"


# --- what the therapist reads ---------------------------------------------------------


def test_headers_name_each_partner_with_their_slot_first_partner_first() -> None:
    text = render_text(compose_digest(balanced_couple()), "en")
    assert text.index("Sam (B)\n") < text.index("Alex (A)\n")
    assert "Alex comes first" not in text and "Sam comes first this time, Alex next time" in text


def test_sections_come_in_the_same_order_for_both_partners() -> None:
    text = render_text(compose_digest(balanced_couple()), "en")
    first = text[text.index("Sam (B)") : text.index("Alex (A)")]
    second = text[text.index("Alex (A)") : text.index("Together\n")]
    sections = ["Engagement", "Ratings (0–10)", "Skill practice", "In their own words"]
    for part in (first, second):
        positions = [part.index(f"\n{section}\n") for section in sections]
        assert positions == sorted(positions)


def test_spanish_uses_its_own_words_dates_and_decimal_comma() -> None:
    text = render_text(compose_digest(split_alliance_couple("es")), "es")
    assert "Señal de alianza dividida" in text
    assert "lun, 5 oct 2026" in text
    assert "4,1 puntos" in text
    assert format_number(-0.04, "es") == "0" and format_number(7.25, "es") == "7,3"
    assert format_number(-1.25, "en") == "-1.3" and format_number(6.0, "en") == "6"


def test_an_open_safety_flag_shows_kind_time_and_whether_it_was_seen() -> None:
    text = render_text(compose_digest(safety_flag_couple()), "en")
    assert (
        "Safety question answered yes: Alex (A), Mon, 12 Oct 2026, 01:00; open, not yet seen"
        in text
    )
    assert "Crisis words in a message: Sam (B)" in text and "; closed" in text
    assert "conflict-communication exercises stay paused" in text


def test_a_partner_who_sent_nothing_reads_as_missing_data_not_a_failing() -> None:
    text = render_text(compose_digest(silent_partner_couple()), "en")
    sam = text[text.index("Sam (B)") : text.index("Together\n")]
    assert "Check-ins: none this period" in sam
    assert "No check-ins this period" in sam
    assert "Nothing marked OK to raise this period" in sam
    assert "Check-ins were uneven this period" in text
    assert "Sam did not" not in text and "Sam didn't" not in text


def test_user_text_is_escaped_in_every_html_rendering() -> None:
    data = balanced_couple()
    alex, sam = data.partners
    odd = CheckinData(
        at=END - timedelta(hours=1), note="<script>x</script> & <b>bold</b>", ok_to_raise=True
    )
    digest = compose_digest(
        replace(
            data,
            couple_label="<i>Us</i>",
            partners=(replace(alex, checkins=(*alex.checkins, odd)), sam),
        )
    )
    for markup in (*telegram_html(digest, "en"), render_html_page(digest, "en")):
        assert "<script>" not in markup and "<b>bold</b>" not in markup
        assert "<i>Us</i>" not in markup
        assert_balanced(markup)
    assert "&lt;script&gt;x&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in render_html_page(
        digest, "en"
    )


def test_the_page_is_standalone_and_printable() -> None:
    page = render_html_page(compose_digest(balanced_couple("es")), "es")
    assert page.startswith("<!doctype html>") and '<html lang="es-ES">' in page
    assert "<style>" in page and "@media print" in page
    assert "http" not in page.replace('name="viewport"', "")
    checker = assert_balanced(page)
    assert {"html", "head", "body", "section", "blockquote", "h2"} <= checker.tags


def test_json_carries_the_balance_figure() -> None:
    loaded = json.loads(render_json(compose_digest(balanced_couple())))
    shares = loaded["balance"]["shares"]
    assert [s["slot"] for s in shares] == ["B", "A"]
    assert sum(s["share"] for s in shares) == pytest.approx(1, abs=0.001)
    assert loaded["balance"]["ratio"] > 0.85


@FAST
@given(data=digest_inputs())
def test_swapped_partners_render_the_same_but_for_slot_letters(data: DigestInput) -> None:
    def letters_swapped(text: str) -> str:
        return text.replace("(A)", "\0").replace("(B)", "(A)").replace("\0", "(B)")

    original = compose_digest(data)
    mirror = compose_digest(swapped(data))
    for language in ("en", "es"):
        assert render_text(mirror, language) == letters_swapped(render_text(original, language))
        assert telegram_html(mirror, language) == [
            letters_swapped(m) for m in telegram_html(original, language)
        ]


# --- privacy ---------------------------------------------------------------------------


@FAST
@given(data=digest_inputs())
def test_words_not_marked_ok_to_raise_appear_in_no_rendering(data: DigestInput) -> None:
    marker = "Okaybird"
    with_secrets = with_private_canaries(data)
    alex, sam = with_secrets.partners
    # Newer than any generated moment (the latest is END - 1 min): quotes go newest first.
    raised = ReplyData(END - timedelta(seconds=30), marker, True)
    with_secrets = replace(
        with_secrets, partners=(replace(alex, replies=(*alex.replies, raised)), sam)
    )
    assert any(CANARY in (c.note or "") for c in with_secrets.partners[0].checkins)
    digest = compose_digest(with_secrets)
    for language in ("en", "es"):
        for name, rendered in all_renderings(digest, language).items():
            assert CANARY.lower() not in rendered.lower(), name
            if data.settings.quote_budget_chars >= len(marker):
                assert marker in rendered, name  # words marked OK to raise do get through


def test_a_private_note_is_counted_by_number_only() -> None:
    data = balanced_couple()
    text = render_text(compose_digest(data), "en")
    assert "Notes kept private: 2" in text
    assert "not ready to bring up" not in text and "private worry" not in text


# --- neutral wording ---------------------------------------------------------------------


@FAST
@given(data=digest_inputs())
def test_no_digest_uses_blame_words(data: DigestInput) -> None:
    digest = compose_digest(data)
    english = render_text(digest, "en").lower()
    spanish = render_text(digest, "es").lower()
    assert "suggested agenda" in english and "agenda sugerida" in spanish
    assert [word for word in BLAME_EN if word in english] == []
    assert [word for word in BLAME_ES if word in spanish] == []


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_fixture_digests_use_no_blame_words(name: str) -> None:
    for language, words in (("en", BLAME_EN), ("es", BLAME_ES), ("pt", BLAME_PT)):
        text = render_text(compose_digest(FIXTURES[name](language)), language).lower()
        assert [word for word in words if word in text] == []


# --- Telegram's 4,096 characters -------------------------------------------------------


def _very_long_couple() -> DigestInput:
    data = balanced_couple()
    alex, sam = data.partners
    long_words = " ".join(["we walked & talked <calmly> 🙂 about the weekend"] * 300)
    unbroken = "&" * 3000 + "x" * 3000  # one "word" longer than a message
    notes = tuple(
        CheckinData(at=START + timedelta(days=1, hours=i), note=text, ok_to_raise=True)
        for i, text in enumerate((long_words, unbroken, long_words[:5000]))
    )
    answers = tuple(
        CoupleAnswerData(f"Prompt {i} <title>", long_words[:1500], long_words[:1400])
        for i in range(12)
    )
    return replace(
        data,
        partners=(replace(alex, checkins=(*alex.checkins, *notes)), sam),
        couple_space=CoupleSpaceData(12, 12, 12, answers),
        settings=DigestSettings(quote_budget_chars=40_000, couple_answer_chars=2_000),
    )


def test_a_very_long_digest_splits_into_valid_telegram_messages() -> None:
    digest = compose_digest(_very_long_couple())
    messages = telegram_html(digest, "en")
    assert len(messages) > 5
    for message in messages:
        assert utf16_length(message) <= TELEGRAM_LIMIT
        checker = assert_balanced(message)
        assert checker.tags <= TELEGRAM_TAGS
        assert message.strip()
    # A part too long for one message is split between its subsections first.
    assert any(m.startswith("<b>In their own words</b>\n") for m in messages)
    assert any(m.startswith("<b>Couple space</b>\n") for m in messages)
    unsplit = telegram_html(digest, "en", 10**7)
    assert len(unsplit) == 1
    assert visible_text("".join(messages)) == visible_text(unsplit[0])


def test_short_parts_are_never_split_across_messages() -> None:
    digest = compose_digest(_very_long_couple())
    messages = telegram_html(digest, "en")
    for heading in ("<b><u>Safety</u></b>", "<b><u>Suggested agenda</u></b>"):
        holding = [m for m in messages if heading in m]
        assert len(holding) == 1
        start = holding[0].index(heading)
        assert "</b>\n• " in holding[0][start:] or "\n• " in holding[0][start:]
    assert "<b><u>Suggested agenda</u></b>" in messages[-1]
    assert "Balance of this digest" in messages[0]


def test_missed_check_ins_are_shown_for_both_partners_in_the_same_form() -> None:
    data = balanced_couple()
    first, second = data.partners
    data = replace(data, partners=(replace(first, checkins_missed=2), second))
    for language, line in (
        ("en", "Check-ins not completed before they expired: {}"),
        ("es", "Registros sin completar antes de caducar: {}"),
        ("pt", "Check-ins não concluídos antes de expirar: {}"),
    ):
        text = render_text(compose_digest(data), language)
        assert text.count(line.format(2)) == 1 and text.count(line.format(0)) == 1
