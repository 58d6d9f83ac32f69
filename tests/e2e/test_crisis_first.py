"""Crisis words are screened on every way a text can go, whatever it was taken to answer."""

from __future__ import annotations

from sqlalchemy import select

from bot.locales import t
from bot.services.outbox import enqueue
from db.models import Alert
from tests.e2e.conftest import Harness
from tests.e2e.test_checkins import _couple


async def test_crisis_words_typed_while_a_time_zone_is_awaited_get_resources_and_alert(
    harness: Harness,
) -> None:
    """An open prompt would screen its own reply, but these words go to /settings' time
    zone: they are screened before that."""
    therapist, alex, _, handle = await _couple(harness)
    async with harness.db.uow() as uow:
        partner = await uow.partners.by_user(alex.id)
        assert partner is not None
        await enqueue(
            uow,
            partner,
            kind="hope",
            key="hope.small_win",
            dedupe_key="test:hope",
            due_at=harness.clock.now(),
            couple_id=partner.couple_id,
        )
        await uow.commit()
    await harness.settle()
    await alex.wait_for_message(lambda m: "Reply here" in m.text)
    await alex.send_command("settings")
    await alex.wait_for_message(lambda m: bool(m.buttons))
    await alex.press_button(t("en", "partner.settings_timezone"))
    await alex.wait_for_message(lambda m: m.text == t("en", "onboarding.timezone_question"))
    await alex.send_text("I want to kill myself")
    card = await alex.wait_for_message()
    assert "988" in card.text
    await harness.settle()
    await therapist.wait_for_message(lambda m: "alert" in m.text.lower() and handle in m.text)
    async with harness.db.uow() as uow:
        assert len(list(await uow.session.scalars(select(Alert)))) == 1


async def test_crisis_words_typed_for_a_follow_up_that_is_gone_get_resources_and_alert(
    harness: Harness,
) -> None:
    """The follow-up's words would be screened where they are stored; when that follow-up
    is gone (or has its words), nothing stores them, so they are screened on the way."""
    therapist, alex, _, handle = await _couple(harness)
    async with harness.db.uow() as uow:
        await uow.conversations.set(
            alex.id, "followup_words", {"response_id": 999_999}, harness.clock.now()
        )
        await uow.commit()
    await alex.send_text("I want to kill myself")
    card = await alex.wait_for_message()
    assert "988" in card.text
    await harness.settle()
    await therapist.wait_for_message(lambda m: "alert" in m.text.lower() and handle in m.text)
    async with harness.db.uow() as uow:
        assert len(list(await uow.session.scalars(select(Alert)))) == 1
        assert await uow.conversations.get(alex.id) is None, "the wait ended all the same"
