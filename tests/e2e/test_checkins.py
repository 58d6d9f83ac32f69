"""Private check-ins end to end: answers by item id, the encrypted note, safety, discretion."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, text

from bot.demo import offline_bot
from bot.locales import t
from bot.services import checkins
from db.models import Alert, AuditEntry, Base, CheckIn, Couple
from fakebotapi import FakeBotAPI, FakeUser
from tests.e2e.conftest import Harness

SCALE_ANSWERS = {"wellbeing": "7", "hope": "6", "safe_to_be_honest": "8", "understood": "5"}


async def _couple(
    harness: Harness, *, discreet_a: bool = False
) -> tuple[FakeUser, FakeUser, FakeUser, str]:
    therapist = await harness.therapist()
    handle, token_a, token_b = await harness.new_couple(therapist)
    alex, blanca = harness.user("Alex"), harness.user("Blanca", "es")
    await harness.join(alex, token_a, typed_timezone="America/New_York", discreet=discreet_a)
    await harness.join(blanca, token_b, language="Español", typed_timezone="Europe/Madrid")
    await harness.settle()
    return therapist, alex, blanca, handle


async def _press_value(user: FakeUser, value: str) -> None:
    question = await user.wait_for_message(lambda m: bool(m.buttons))
    exact = [d for label, d in question.buttons if label == value]
    data = (exact or [d for label, d in question.buttons if label.startswith(value)])[0]
    assert data is not None
    await user.press(question, data)


async def _checkin(
    user: FakeUser,
    *,
    note: str | None,
    ok_to_raise: str = "No",
    skill: str = "Yes",
    safety: str | None = "No",
) -> None:
    """Answer a whole check-in (English labels) from /checkin to the thanks."""
    await user.send_command("checkin")
    for value in SCALE_ANSWERS.values():
        await _press_value(user, value)
    await _press_value(user, skill)
    if note is None:
        await _press_value(user, "Skip")
    else:
        await user.wait_for_message(lambda m: "private" in m.text)
        await user.send_text(note)
        await _press_value(user, ok_to_raise)
    if safety is not None:
        await _press_value(user, safety)


async def _count(harness: Harness, model: type[Base], **where: object) -> int:
    async with harness.db.uow() as uow:
        rows = await uow.session.scalars(select(model).filter_by(**where))
        return len(list(rows))


async def test_a_check_in_stores_item_ids_and_scores_and_the_note_only_encrypted(
    harness: Harness,
) -> None:
    _, alex, blanca, _ = await _couple(harness)
    before_b = len(blanca.messages)
    await _checkin(alex, note="We argued about the dishes again, canary-7731.")
    thanks = await alex.wait_for_message(lambda m: "saved" in m.text)
    assert thanks.text == t("en", "checkin.thanks")
    async with harness.db.uow() as uow:
        row = await uow.session.scalar(select(CheckIn))
    assert row is not None and row.status == "complete"
    assert row.answers == {
        "wellbeing": 7,
        "hope": 6,
        "safe_to_be_honest": 8,
        "understood": 5,
        "skill": "yes",
        "note": checkins.WRITTEN,
        "ok_to_raise": "no",
        "afraid_or_unsafe": "no",
    }
    assert row.ok_to_raise is False and not row.risk
    assert row.note_ciphertext is not None and b"canary-7731" not in row.note_ciphertext
    assert harness.bot.deps.cipher.decrypt(row.note_ciphertext).endswith("canary-7731.")
    await harness.settle()
    assert len(blanca.messages) == before_b
    assert not any("canary-7731" in m.text for m in blanca.messages)


async def test_no_note_text_is_in_any_table_in_clear(harness: Harness) -> None:
    _, alex, _, _ = await _couple(harness)
    await _checkin(alex, note="canary-plaintext-5519 the weekend felt lonely")
    await alex.wait_for_message(lambda m: "saved" in m.text)
    async with harness.db.uow() as uow:
        conn = await uow.session.connection()
        tables = [
            "practices", "therapists", "couples", "partners", "invites", "sessions",
            "conversation_states", "deliveries", "checkins", "responses", "alerts", "audit_log",
        ]  # fmt: skip
        for table in tables:
            rows = (await conn.execute(text(f"SELECT * FROM {table}"))).all()
            dump = repr(rows)
            assert "canary-plaintext-5519" not in dump, table
            assert "weekend felt lonely" not in dump, table


@pytest.mark.parametrize(
    ("note", "kind"),
    [
        ("Some days I just want to kill myself.", "suicide"),
        ("últimamente no quiero vivir", "suicide"),
        ("ultimamente NO QUIERO VIVIR", "suicide"),
        ("Me quiero hacer daño", "self_harm"),
        ("tengo miedo de mi pareja cuando bebe", "violence"),
    ],
)
async def test_crisis_language_shows_resources_alerts_the_therapist_and_no_one_else(
    harness: Harness, note: str, kind: str
) -> None:
    therapist, alex, blanca, handle = await _couple(harness)
    before_b = len(blanca.messages)
    await _checkin(alex, note=note)
    resources = await alex.wait_for_message(lambda m: "988" in m.text, after=0)
    assert "1-800-799-7233" in resources.text and "911" in resources.text
    await alex.wait_for_message(lambda m: "saved" in m.text)
    await harness.settle()
    alerts = [m for m in therapist.messages if "Safety alert" in m.text]
    assert len(alerts) == 1
    assert handle in alerts[0].text and "partner A" in alerts[0].text
    assert note not in alerts[0].text
    assert len(blanca.messages) == before_b
    async with harness.db.uow() as uow:
        alert = await uow.session.scalar(select(Alert))
        couple = await uow.session.scalar(select(Couple))
    assert alert is not None and alert.kind == kind and alert.slot == "A"
    assert couple is not None and couple.safety_hold


async def test_a_yes_to_the_safety_question_is_handled_the_same_way(harness: Harness) -> None:
    therapist, alex, blanca, _ = await _couple(harness)
    before_b = len(blanca.messages)
    await blanca.send_command("checkin")
    for value in SCALE_ANSWERS.values():
        await _press_value(blanca, value)
    await _press_value(blanca, "Sí")
    await _press_value(blanca, "Saltar")
    await _press_value(blanca, "Sí")
    resources = await blanca.wait_for_message(lambda m: "016" in m.text)
    assert "024" in resources.text and "112" in resources.text
    await harness.settle()
    assert len([m for m in therapist.messages if "Safety alert" in m.text]) == 1
    assert len([m for m in alex.messages if "016" in m.text or "988" in m.text]) == 0
    assert len(blanca.messages) == before_b + 9  # 7 questions, resources, thanks
    async with harness.db.uow() as uow:
        alert = await uow.session.scalar(select(Alert))
    assert alert is not None and alert.kind == "safety_question" and alert.slot == "B"


async def test_the_therapist_reads_the_words_with_alerts_and_clears_the_hold(
    harness: Harness,
) -> None:
    therapist, alex, _, handle = await _couple(harness)
    await _checkin(alex, note="I want to end my life")
    await alex.wait_for_message(lambda m: "saved" in m.text)
    await harness.settle()
    await therapist.send_command("alerts", handle)
    view = await therapist.wait_for_message(lambda m: "Safety alerts" in m.text)
    assert "I want to end my life" in view.text and "new" in view.text
    await therapist.send_command("clearhold", handle)
    assert "lifted" in (await therapist.wait_for_message()).text
    async with harness.db.uow() as uow:
        couple = await uow.session.scalar(select(Couple))
        alert = await uow.session.scalar(select(Alert))
        actions = list(await uow.session.scalars(select(AuditEntry.action)))
    assert couple is not None and not couple.safety_hold
    assert alert is not None and alert.seen_at is not None and alert.cleared_at is not None
    assert "alerts.read" in actions and "hold.clear" in actions


async def test_another_therapist_cannot_read_the_alerts(harness: Harness) -> None:
    _, alex, _, handle = await _couple(harness)
    await _checkin(alex, note="I want to end my life")
    await alex.wait_for_message(lambda m: "saved" in m.text)
    other = await harness.therapist("Bea")
    await other.send_command("alerts", handle)
    reply = await other.wait_for_message()
    assert "end my life" not in reply.text
    assert reply.text == t("en", "couple.unknown_handle", handle=handle)


async def test_a_restart_mid_check_in_resumes_at_the_same_item(
    harness: Harness, fake: FakeBotAPI
) -> None:
    _, alex, _, _ = await _couple(harness)
    await alex.send_command("checkin")
    await _press_value(alex, "7")
    await _press_value(alex, "6")
    await alex.wait_for_message(lambda m: bool(m.buttons))
    await harness.bot.stop()
    harness.bot = offline_bot(fake, harness.bot.deps)
    await harness.bot.start()
    await alex.send_command("checkin")
    resumed = await alex.wait_for_message(lambda m: bool(m.buttons))
    assert "safe do you feel to be honest" in resumed.text
    assert "3/8" in resumed.text


async def test_every_item_can_be_skipped(harness: Harness) -> None:
    _, alex, _, _ = await _couple(harness)
    await alex.send_command("checkin")
    for _ in range(7):
        await _press_value(alex, "Skip")
    await alex.wait_for_message(lambda m: "saved" in m.text)
    async with harness.db.uow() as uow:
        row = await uow.session.scalar(select(CheckIn))
    assert row is not None and row.answers == {} and row.status == "complete"
    assert len(row.skipped["items"]) == 7


async def test_a_button_from_the_other_partners_check_in_changes_nothing(
    harness: Harness,
) -> None:
    _, alex, blanca, _ = await _couple(harness)
    await alex.send_command("checkin")
    question = await alex.wait_for_message(lambda m: bool(m.buttons))
    await blanca.send_command("checkin")
    own = await blanca.wait_for_message(lambda m: bool(m.buttons))
    foreign = question.buttons[3][1]
    assert foreign is not None
    await blanca.press_forged(own, foreign)
    await harness.fake.wait_for(lambda: blanca.callback_queries[-1].answered or None, 5.0)
    assert blanca.callback_queries[-1].answer_text == t("es", "common.stale_button")
    async with harness.db.uow() as uow:
        answers = [row.answers for row in await uow.session.scalars(select(CheckIn))]
    assert answers == [{}, {}]


async def test_discreet_mode_removes_questions_and_answers_once_stored(harness: Harness) -> None:
    _, alex, _, _ = await _couple(harness, discreet_a=True)
    await _checkin(alex, note="a private thought")
    await alex.wait_for_message(lambda m: m.text == t("en", "checkin.thanks_discreet"))
    questions = [m for m in alex.messages if "/8" in m.text]
    assert questions and all(m.deleted for m in questions)
    assert all(m.deleted for m in alex.sent_messages if m.text == "a private thought")


async def test_an_unfinished_check_in_is_kept_as_partial_after_12_hours(
    harness: Harness,
) -> None:
    _, alex, _, _ = await _couple(harness)
    await alex.send_command("checkin")
    await _press_value(alex, "4")
    await alex.wait_for_message(lambda m: bool(m.buttons))
    harness.clock.advance(timedelta(hours=11))
    async with harness.db.uow() as uow:
        assert await checkins.expire_stale(uow, harness.clock.now()) == 0
    harness.clock.advance(timedelta(hours=2))
    async with harness.db.uow() as uow:
        assert await checkins.expire_stale(uow, harness.clock.now()) == 1
    async with harness.db.uow() as uow:
        row = await uow.session.scalar(select(CheckIn))
    assert row is not None and row.status == "partial" and row.answers == {"wellbeing": 4}
