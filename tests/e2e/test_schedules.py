"""Scheduled prompts end to end: a fortnight across daylight-saving changes, replies,
skill follow-ups, couple-space sharing, the safety hold and /schedule."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from bot.locales import t
from bot.services.outbox import enqueue
from bot.services.practices import invite_therapist
from db.models import Couple, Delivery, DeliveryKind, Partner, Response
from fakebotapi import FakeUser
from schedules.check import default_schedules
from tests.e2e.conftest import Harness

WINDOWS = {"morning": (8, 12), "evening": (17, 21)}


async def _couple(harness: Harness, **join_a: object) -> tuple[FakeUser, FakeUser, FakeUser, str]:
    therapist = await harness.therapist()
    handle, token_a, token_b = await harness.new_couple(therapist)
    alex, blanca = harness.user("Alex"), harness.user("Blanca", "es")
    await harness.join(alex, token_a, typed_timezone="America/New_York", window="Evening", **join_a)  # type: ignore[arg-type]
    await harness.join(
        blanca, token_b, language="Español", typed_timezone="Europe/Madrid", window="Morning"
    )
    await harness.settle()
    return therapist, alex, blanca, handle


async def _run_until(harness: Harness, end: datetime) -> None:
    """Move the clock forward, planning and sending as `dyad run` would, event by event."""
    await harness.run_until(end)


async def _partners(harness: Harness) -> dict[str, Partner]:
    async with harness.db.uow() as uow:
        return {p.slot: p for p in await uow.session.scalars(select(Partner))}


async def test_a_fortnight_across_dst_keeps_windows_quiet_hours_caps_and_equal_cadence(
    harness: Harness,
) -> None:
    _, alex, blanca, _ = await _couple(harness)
    start = harness.clock.now()
    await _run_until(harness, start + timedelta(days=14))
    partners = await _partners(harness)
    async with harness.db.uow() as uow:
        rows = list(await uow.session.scalars(select(Delivery).where(Delivery.status == "sent")))
    quiet = default_schedules().delivery
    per_kind: dict[str, Counter[str]] = {}
    for slot, window in (("A", "evening"), ("B", "morning")):
        partner = partners[slot]
        zone = ZoneInfo(partner.timezone or "UTC")
        mine = [r for r in rows if r.partner_id == partner.id and r.kind != "notice"]
        assert len(mine) >= 12, f"partner {slot} got only {len(mine)} prompts"
        per_day: Counter[str] = Counter()
        for row in mine:
            assert row.sent_at is not None
            local = row.sent_at.astimezone(zone)
            low, high = WINDOWS[window]
            assert low <= local.hour < high, (slot, row.key, local)
            minute = local.hour * 60 + local.minute
            assert not quiet.quiet_hours.contains(minute) if quiet.quiet_hours else True
            per_day[local.date().isoformat()] += 1
        assert max(per_day.values()) <= quiet.max_per_day
        per_kind[slot] = Counter(r.kind for r in mine)
    assert per_kind["A"] == per_kind["B"]
    assert len(alex.messages) == len(blanca.messages)
    await harness.bot.planner.run()
    async with harness.db.uow() as uow:
        before = await uow.session.scalar(select(func.count()).select_from(Delivery))
    await harness.bot.planner.run()
    async with harness.db.uow() as uow:
        assert await uow.session.scalar(select(func.count()).select_from(Delivery)) == before


async def _send_prompt(harness: Harness, partner: Partner, key: str, kind: DeliveryKind) -> None:
    async with harness.db.uow() as uow:
        fresh = await uow.partners.get(partner.id)
        assert fresh is not None
        await enqueue(
            uow,
            fresh,
            kind=kind,
            key=key,
            dedupe_key=f"test:{key}",
            due_at=harness.clock.now(),
            couple_id=fresh.couple_id,
        )
        await uow.commit()
    await harness.settle()


async def test_a_prompt_reply_is_private_encrypted_and_can_be_raised(harness: Harness) -> None:
    _, alex, blanca, _ = await _couple(harness)
    partners = await _partners(harness)
    before_b = len(blanca.messages)
    await _send_prompt(harness, partners["A"], "hope.small_win", "hope")
    prompt = await alex.wait_for_message(lambda m: "only you and your therapist" in m.text)
    await alex.reply_to(prompt, "We laughed together at dinner, canary-4410")
    await alex.wait_for_message(lambda m: bool(m.buttons))
    await alex.press_button(t("en", "prompts.raise_yes"))
    assert (await alex.wait_for_message()).text == t("en", "prompts.noted")
    async with harness.db.uow() as uow:
        response = await uow.session.scalar(select(Response))
    assert response is not None and response.ok_to_raise and response.kind == "hope"
    assert response.text_ciphertext is not None and b"canary-4410" not in response.text_ciphertext
    await harness.settle()
    assert len(blanca.messages) == before_b


async def test_a_skill_follow_up_takes_a_button_and_optional_words(harness: Harness) -> None:
    _, alex, _, _ = await _couple(harness)
    partners = await _partners(harness)
    await _send_prompt(harness, partners["A"], "skill_followup.soft_startup", "skill_followup")
    followup = await alex.wait_for_message(lambda m: bool(m.buttons))
    assert followup.button_texts == ["Yes", "Partly", "Not yet"]
    await alex.press_button("Partly")
    assert (await alex.wait_for_message()).text == t("en", "schedules.optional_text")
    await alex.send_text("It went better than last time")
    await alex.wait_for_message(lambda m: bool(m.buttons))
    async with harness.db.uow() as uow:
        response = await uow.session.scalar(select(Response))
    assert response is not None and response.choice == "partly" and response.text_ciphertext


async def _answer_space(user: FakeUser, text: str, share_label: str) -> None:
    prompt = await user.wait_for_message(
        lambda m: "choose whether" in m.text or "decides" in m.text
    )
    await user.reply_to(prompt, text)
    await user.wait_for_message(lambda m: bool(m.buttons))
    await user.press_button(share_label)
    await user.wait_for_message()


async def test_couple_space_answers_are_revealed_only_when_both_share(harness: Harness) -> None:
    _, alex, blanca, _ = await _couple(harness)
    partners = await _partners(harness)
    for slot in ("A", "B"):
        await _send_prompt(harness, partners[slot], "couple_space.appreciation", "couple_space")
    await _answer_space(alex, "Your patience on Tuesday", t("en", "prompts.share_yes"))
    await harness.settle()
    assert not any("patience" in m.text for m in blanca.messages)
    await _answer_space(blanca, "Tu paciencia el martes", t("es", "prompts.share_yes"))
    await harness.settle()
    # 05:00 in New York: Alex's reveal waits for his evening window; Blanca's is in hers.
    await _run_until(harness, harness.clock.now() + timedelta(hours=13))
    revealed_a = await alex.wait_for_message(lambda m: "Tu paciencia" in m.text)
    revealed_b = await blanca.wait_for_message(lambda m: "Your patience" in m.text)
    assert "Your partner wrote" in revealed_a.text and "Tu pareja escribió" in revealed_b.text


async def test_if_one_keeps_it_private_neither_sees_the_other(harness: Harness) -> None:
    _, alex, blanca, _ = await _couple(harness)
    partners = await _partners(harness)
    for slot in ("A", "B"):
        await _send_prompt(harness, partners[slot], "couple_space.appreciation", "couple_space")
    await _answer_space(alex, "canary-alex-share", t("en", "prompts.share_yes"))
    await _answer_space(blanca, "canary-blanca-private", t("es", "prompts.share_no"))
    await _run_until(harness, harness.clock.now() + timedelta(hours=13))
    outcome_a = await alex.wait_for_message(lambda m: "stays with its writer" in m.text)
    outcome_b = await blanca.wait_for_message(lambda m: "se queda con quien" in m.text)
    assert outcome_a.text.startswith("Both answers") and outcome_b.text.startswith("Ya están")
    assert not any("canary-blanca" in m.text for m in alex.messages)
    assert not any("canary-alex" in m.text for m in blanca.messages)


async def test_a_safety_hold_swaps_conflict_exercises_for_both_and_keeps_the_cadence(
    harness: Harness,
) -> None:
    _, alex, blanca, _ = await _couple(harness)
    async with harness.db.uow() as uow:
        couple = await uow.session.scalar(select(Couple))
        assert couple is not None
        couple.safety_hold = True
        await uow.commit()
    await _run_until(harness, harness.clock.now() + timedelta(days=7))
    async with harness.db.uow() as uow:
        rows = list(await uow.session.scalars(select(Delivery).where(Delivery.kind == "skill")))
    library = default_schedules().library()
    assert rows, "a week holds a skill of the week"
    assert not any(library.get(r.key).is_conflict_communication for r in rows)
    assert len({r.key for r in rows}) == 1  # both partners got the same stand-in
    assert len(alex.messages) == len(blanca.messages)


async def test_schedule_command_pauses_and_switches_templates(harness: Harness) -> None:
    therapist, _, _, handle = await _couple(harness)
    await therapist.send_command("schedule", handle)
    assert "standard" in (await therapist.wait_for_message()).text
    await therapist.send_command("schedule", f"{handle} nonsense")
    assert "no template" in (await therapist.wait_for_message()).text
    await therapist.send_command("schedule", f"{handle} pause")
    await therapist.wait_for_message()
    await harness.bot.planner.run()
    async with harness.db.uow() as uow:
        assert await uow.session.scalar(select(func.count()).where(Delivery.kind != "notice")) == 0
    await therapist.send_command("schedule", f"{handle} resume")
    await therapist.wait_for_message()
    await therapist.send_command("schedule", f"{handle} light")
    assert "light" in (await therapist.wait_for_message()).text
    await harness.bot.planner.run()
    async with harness.db.uow() as uow:
        couple = await uow.session.scalar(select(Couple))
        planned = await uow.session.scalar(select(func.count()).where(Delivery.kind != "notice"))
    assert couple is not None and couple.schedule_template == "light" and planned


async def test_a_discreet_prompt_says_nothing_until_opened(harness: Harness) -> None:
    _, alex, _, _ = await _couple(harness, discreet=True)
    partners = await _partners(harness)
    await _send_prompt(harness, partners["A"], "hope.small_win", "hope")
    note = await alex.wait_for_message(lambda m: bool(m.buttons))
    assert note.text == t("en", "prompts.discreet_ready")
    await alex.press_button(t("en", "prompts.open"))
    await harness.fake.wait_for(lambda: note.edits or None, 5.0)
    assert "only you and your therapist" in note.text


async def test_a_shared_answer_with_crisis_words_is_never_revealed(harness: Harness) -> None:
    therapist, alex, blanca, _ = await _couple(harness)
    partners = await _partners(harness)
    for slot in ("A", "B"):
        await _send_prompt(harness, partners[slot], "couple_space.appreciation", "couple_space")
    await _answer_space(alex, "Some nights I want to end my life", t("en", "prompts.share_yes"))
    await _answer_space(blanca, "Tu paciencia el martes", t("es", "prompts.share_yes"))
    await _run_until(harness, harness.clock.now() + timedelta(hours=13))
    await alex.wait_for_message(lambda m: "stays with its writer" in m.text, after=0)
    await blanca.wait_for_message(lambda m: "se queda con quien" in m.text, after=0)
    assert not any("end my life" in m.text for m in blanca.messages)
    assert any("Safety alert" in m.text for m in therapist.messages)


BROKEN_PRACTICE_TOML = """\
# Passed `dyad schedules check` before: no default_template, and no template "standard".
[schedules.calm]
[[schedules.calm.rules]]
kind = "hope"
days = "daily"
"""


async def test_a_badly_configured_practice_never_stops_another_and_its_admin_is_told(
    harness: Harness,
) -> None:
    # The healthy practice and its couple.
    _, alex, blanca, _ = await _couple(harness)
    # A second practice, whose stored file the planner cannot use, with its own couple.
    bad_slug = await harness.practice("South Practice")
    async with harness.db.uow() as uow:
        practice = await uow.practices.by_slug(bad_slug)
        assert practice is not None
        practice.config_toml = BROKEN_PRACTICE_TOML
        issued = await invite_therapist(
            uow, bad_slug, "Dr Admin", is_admin=True, now=harness.clock.now(), ttl=timedelta(days=7)
        )
        await uow.commit()
    admin = harness.user("Admin")
    await admin.send_command("start", issued.token)
    await admin.wait_for_message(lambda m: "Dyad" in m.text)
    therapist_b = await harness.therapist("Bo")
    _, token_c, token_d = await harness.new_couple(therapist_b, "C & D")
    carla, dario = harness.user("Carla"), harness.user("Dario")
    await harness.join(carla, token_c, typed_timezone="Europe/Madrid")
    await harness.join(dario, token_d, typed_timezone="Europe/Madrid")
    await harness.deliver_waiting()  # every space-ready notice, in each partner's window
    # The broken file does not stop its couple's notices: they come at the default times.
    for user in (carla, dario):
        assert user.last_message is not None
        assert user.last_message.text == t("en", "couple.space_ready")
        sent = datetime.fromtimestamp(user.last_message.date, ZoneInfo("Europe/Madrid"))
        assert sent.hour == 17, "the start of the default evening window"
    heard = {u.id: len(u.messages) for u in (alex, blanca, carla, dario)}

    await _run_until(harness, harness.clock.now() + timedelta(days=3))

    assert len(alex.messages) > heard[alex.id] and len(blanca.messages) > heard[blanca.id]
    assert len(alex.messages) - heard[alex.id] == len(blanca.messages) - heard[blanca.id]
    assert (len(carla.messages), len(dario.messages)) == (heard[carla.id], heard[dario.id])
    told = [m for m in admin.messages if "cannot be planned" in m.text]
    assert len(told) == 1, "told once, however many passes"
    assert "South Practice" in told[0].text and "default_template" in told[0].text
    assert harness.bot.planner.health.state == "degraded"
