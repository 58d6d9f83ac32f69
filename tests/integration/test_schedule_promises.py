"""Schedules keep their promises, on both databases: one test per way they used to break.

Each test drives the real planner, dispatcher and services in-process (sends go to a
recording Messenger) and asserts what a partner or therapist would notice.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.core.clock import ManualClock
from bot.core.digest import compose_digest
from bot.health import HealthServer
from bot.locales import t
from bot.metrics import METRICS
from bot.services import couples, digests, partners, prompts
from bot.services.crypto import Cipher, new_key
from db.engine import Database
from db.models import CheckIn, Couple, Delivery, Partner, Response, Therapist
from schedules.check import default_schedules
from tests.integration.schedule_world import practice_with_couple, world

MONDAY = datetime(2026, 10, 19, 9, 0, tzinfo=UTC)
SUNDAY_MORNING_MADRID = datetime(2026, 10, 25, 10, 0, tzinfo=UTC)  # 11:00 Madrid, 06:00 NY


async def _rows(db: Database, **where: object) -> list[Delivery]:
    async with db.uow() as uow:
        return list(await uow.session.scalars(select(Delivery).filter_by(**where)))


async def _partner(db: Database, partner_id: int) -> Partner:
    async with db.uow() as uow:
        partner = await uow.partners.get(partner_id)
        assert partner is not None
        return partner


async def test_a_template_switch_mid_day_keeps_both_halves_of_a_couple_space_prompt(
    db: Database,
) -> None:
    """Finding 2: after a switch, one partner answered a question the other never got."""
    saturday = datetime(2026, 10, 24, 12, 0, tzinfo=UTC)
    clock = ManualClock(saturday)
    w = world(db, clock)
    # A in Madrid (morning) gets Sunday's couple-space prompt hours before B in New York.
    _, couple_id, (a, b) = await practice_with_couple(
        db,
        saturday,
        partners=(("Europe/Madrid", "morning", "es"), ("America/New_York", "evening", "en")),
    )
    await w.tick(SUNDAY_MORNING_MADRID)
    (sent_a,) = await _rows(db, partner_id=a, kind="couple_space", status="sent")
    (pending_b,) = await _rows(db, partner_id=b, kind="couple_space", status="pending")
    assert pending_b.key == sent_a.key
    async with db.uow() as uow:
        couple = await uow.couples.get(couple_id)
        therapist = await uow.session.scalar(select(Therapist))
        assert couple is not None and therapist is not None
        await couples.schedule(uow, therapist, couple, "light", clock.now())
    await w.tick(clock.now() + timedelta(hours=14))
    got_b = await _rows(db, partner_id=b, kind="couple_space", status="sent")
    assert [r.key for r in got_b] == [sent_a.key], "B gets the same question as A, once"


async def test_a_reveal_is_promised_only_when_the_other_half_exists(db: Database) -> None:
    """Finding 2: A was told "I'll let you know" about a question B would never receive."""
    saturday = datetime(2026, 10, 24, 12, 0, tzinfo=UTC)
    clock = ManualClock(saturday)
    w = world(db, clock)
    _, _, (a, b) = await practice_with_couple(
        db,
        saturday,
        partners=(("Europe/Madrid", "morning", "en"), ("America/New_York", "evening", "en")),
    )
    await w.tick(SUNDAY_MORNING_MADRID)
    (sent_a,) = await _rows(db, partner_id=a, kind="couple_space", status="sent")
    async with db.uow() as uow:
        partner_b = await uow.partners.get(b)
        assert partner_b is not None
        await partners.pause(uow, partner_b, "3", clock.now())  # B's half is withdrawn
    assert await _rows(db, partner_id=b, kind="couple_space", status="pending") == []
    async with db.uow() as uow:
        partner_a = await uow.partners.get(a)
        delivery = await uow.session.get(Delivery, sent_a.id)
        assert partner_a is not None and delivery is not None
        replied = await prompts.reply_text(
            uow, partner_a, w.cipher, delivery, "Your patience", clock.now(), message_id=None
        )
        assert replied.messages
        response = await uow.session.scalar(select(Response))
        assert response is not None
        said = await prompts.set_share(uow, partner_a, response.id, "yes", clock.now())
    assert said.text == t("en", "prompts.share_noted_alone")
    assert "let you know" not in said.text


async def test_the_second_sharer_is_not_told_to_wait_right_before_the_reveal(
    db: Database,
) -> None:
    """Finding 9: "I'll let you know when both answers are in", then the reveal at once."""
    clock = ManualClock(datetime(2026, 10, 25, 16, 0, tzinfo=UTC))  # 17:00 Madrid, 12:00 NY
    w = world(db, clock)
    _, _, (a, b) = await practice_with_couple(
        db,
        clock.now(),
        partners=(("Europe/Madrid", "evening", "en"), ("America/New_York", "afternoon", "en")),
    )
    await w.tick(clock.now() + timedelta(hours=5))
    said: dict[int, str] = {}
    for partner_id in (a, b):
        async with db.uow() as uow:
            partner = await uow.partners.get(partner_id)
            assert partner is not None
            (delivery,) = await uow.session.scalars(
                select(Delivery).filter_by(partner_id=partner_id, kind="couple_space")
            )
            await prompts.reply_text(
                uow, partner, w.cipher, delivery, "Kind words", clock.now(), message_id=None
            )
            response = await uow.session.scalar(select(Response).filter_by(partner_id=partner_id))
            assert response is not None
            reply = await prompts.set_share(uow, partner, response.id, "yes", clock.now())
            said[partner_id] = reply.text
    assert said[a] == t("en", "prompts.share_noted")
    assert said[b] == t("en", "prompts.share_noted_both")


async def test_a_settings_change_moves_queued_prompts_to_the_new_zone_and_window(
    db: Database,
) -> None:
    """Finding 3: after moving to London mornings, prompts stayed at New York evenings."""
    clock = ManualClock(MONDAY)
    w = world(db, clock)
    _, _, (a, b) = await practice_with_couple(db, MONDAY)
    await w.planner.run()
    before = await _rows(db, partner_id=a, status="pending")
    assert before, "something is queued for the coming two days"
    async with db.uow() as uow:
        partner = await uow.partners.get(a)
        assert partner is not None
        await partners.typed_timezone(uow, partner, "Europe/London", clock.now())
    async with db.uow() as uow:
        partner = await uow.partners.get(a)
        assert partner is not None
        await partners.change_setting(uow, partner, "window", "morning", clock.now())
    after = await _rows(db, partner_id=a, status="pending")
    quiet = default_schedules().delivery.quiet_hours
    assert quiet is not None and after
    for row in after:
        local = row.due_at.astimezone(ZoneInfo("Europe/London"))
        assert 8 <= local.hour < 12, (row.key, local)
        assert not quiet.contains(local.hour * 60 + local.minute)
    kinds_a = sorted(r.kind for r in after)
    kinds_b = sorted(r.kind for r in await _rows(db, partner_id=b, status="pending"))
    assert kinds_a == kinds_b, "both keep the same prompts"


async def test_a_reveal_waits_out_quiet_hours_for_the_partners_window(db: Database) -> None:
    """Finding 4: "Los dos habéis decidido compartir…" arrived at 22:46 in Madrid."""
    late = datetime(2026, 10, 25, 21, 46, tzinfo=UTC)  # 22:46 Madrid
    clock = ManualClock(late)
    w = world(db, clock)
    _, _, (a, b) = await practice_with_couple(
        db,
        late,
        partners=(("Europe/Madrid", "evening", "es"), ("Europe/Madrid", "evening", "es")),
    )
    async with db.uow() as uow:
        for partner_id in (a, b):
            partner = await uow.partners.get(partner_id)
            assert partner is not None
            uow.session.add(
                Response(
                    partner_id=partner_id,
                    couple_id=partner.couple_id,
                    prompt_key="couple_space.appreciation",
                    kind="couple_space",
                    text_ciphertext=w.cipher.encrypt("gracias"),
                    created_at=late,
                )
            )
        await uow.commit()
    async with db.uow() as uow:
        for partner_id in (a, b):
            partner = await uow.partners.get(partner_id)
            response = await uow.session.scalar(select(Response).filter_by(partner_id=partner_id))
            assert partner is not None and response is not None
            await prompts.set_share(uow, partner, response.id, "yes", late)
    reveals = await _rows(db, kind="reveal")
    assert len(reveals) == 2
    for row in reveals:
        local = row.due_at.astimezone(ZoneInfo("Europe/Madrid"))
        assert (local.date().isoformat(), local.hour) == ("2026-10-26", 17), local
    await w.dispatcher.run_until_idle()
    assert not any(w.messenger.sent.values()), "nothing is sent in quiet hours"


async def test_no_follow_up_for_a_skill_that_was_never_sent(db: Database) -> None:
    """Finding 5: "Did you try it?" about a skill the partner never received."""
    thursday = datetime(2026, 10, 22, 6, 0, tzinfo=UTC)  # Wednesday's skill went to nobody
    clock = ManualClock(thursday)
    w = world(db, clock)
    await practice_with_couple(db, thursday)
    await w.tick(thursday + timedelta(days=3))
    assert await _rows(db, kind="skill_followup") == []
    # The next week's skill is followed up, for both.
    await w.tick(thursday + timedelta(days=9))
    followups = await _rows(db, kind="skill_followup", status="sent")
    skills = await _rows(db, kind="skill", status="sent")
    assert len(followups) == len(skills) == 2
    # (A sent row keeps only ids in its parameters: match through the prompt library.)
    library = default_schedules().library()
    assert {(f.partner_id, f.key) for f in followups} == {
        (s.partner_id, library.get(s.key).followup) for s in skills
    }


async def test_the_digest_counts_skills_sent_and_the_check_in_answer(db: Database) -> None:
    """Finding 6: "No skill prompts this period" although both got one and one answered."""
    clock = ManualClock(MONDAY)
    w = world(db, clock)
    _, couple_id, (a, _) = await practice_with_couple(db, MONDAY)
    await w.tick(datetime(2026, 10, 22, 6, 0, tzinfo=UTC))  # after Wednesday's skill
    assert len(await _rows(db, kind="skill", status="sent")) == 2
    async with db.uow() as uow:
        uow.session.add(
            CheckIn(
                partner_id=a,
                couple_id=couple_id,
                instrument="dyad_checkin",
                status="complete",
                answers={"wellbeing": 6, "skill": "partly"},
                started_at=clock.now(),
                completed_at=clock.now(),
            )
        )
        await uow.commit()
    async with db.uow() as uow:
        couple = await uow.couples.get(couple_id)
        therapist = await uow.session.scalar(select(Therapist))
        assert couple is not None and therapist is not None
        data = await digests.build_input(
            uow,
            couple,
            therapist,
            Cipher([new_key()]),
            period_end=clock.now() + timedelta(minutes=1),
            previous_session_at=None,
        )
    digest = compose_digest(data)
    practice = {s.slot: s.skills for s in digest.partners}
    assert practice["A"].prompts == practice["B"].prompts == 1
    assert [c.times for c in practice["A"].partly] == [1] and practice["A"].no_reply == 0
    assert practice["B"].no_reply == 1


async def test_an_unfinished_check_in_gets_one_reminder_then_counts_as_missed(
    db: Database,
) -> None:
    """Finding 8: an unfinished check-in silently became partial; the therapist saw nothing."""
    sunday = datetime(2026, 10, 18, 20, 0, tzinfo=UTC)
    clock = ManualClock(sunday)
    w = world(db, clock)
    practice_id, couple_id, (a, b) = await practice_with_couple(db, sunday)
    await w.tick(datetime(2026, 10, 19, 7, 0, tzinfo=UTC))  # Monday morning in Madrid
    checkins = {r.partner_id: r for r in await _rows(db, kind="checkin", status="sent")}
    assert set(checkins) == {b}
    # B (Madrid) completes it at once; A (New York) gets it in the evening, never starts it.
    async with db.uow() as uow:
        uow.session.add(
            CheckIn(
                partner_id=b,
                couple_id=couple_id,
                instrument="dyad_checkin",
                status="complete",
                answers={"wellbeing": 7},
                started_at=clock.now(),
                completed_at=clock.now(),
                delivery_id=checkins[b].id,
            )
        )
        await uow.commit()
    await w.tick(datetime(2026, 10, 21, 9, 0, tzinfo=UTC))
    assert {r.partner_id for r in await _rows(db, kind="checkin", status="sent")} == {a, b}
    reminders = await _rows(db, kind="checkin_reminder")
    assert [r.partner_id for r in reminders] == [a], "one reminder, only to the one who missed"
    (reminder,) = reminders
    assert reminder.status == "sent" and reminder.sent_at is not None
    local = reminder.sent_at.astimezone(ZoneInfo("America/New_York"))
    assert 17 <= local.hour < 21, "in A's own window"
    chat_a, chat_b = await _partner(db, a), await _partner(db, b)
    assert t("en", "checkin.reminder") in w.messenger.sent[chat_a.chat_id or 0]
    assert not any("check-in" in text for text in w.messenger.sent.get(chat_b.chat_id or 0, ())[1:])
    async with db.uow() as uow:
        couple = await uow.couples.get(couple_id)
        practice = await uow.practices.get(practice_id)
        therapist = await uow.session.scalar(select(Therapist))
        assert couple is not None and practice is not None and therapist is not None
        listing = await couples.couples_of(uow, therapist, clock.now())
    assert listing[0].missed == {"A": 1, "B": 0}


async def test_one_broken_couple_never_stops_the_others(db: Database) -> None:
    """Finding 1, per couple: a couple the planner cannot plan is counted and told once."""
    clock = ManualClock(MONDAY)
    w = world(db, clock)
    _, broken, (a, _) = await practice_with_couple(db, MONDAY, name="North")
    _, healthy, _ = await practice_with_couple(db, MONDAY, name="South", chat_base=300)
    async with db.uow() as uow:
        partner = await uow.partners.get(a)
        assert partner is not None
        partner.timezone = "Mars/Olympus_Mons"  # no such zone: planning this couple fails
        await uow.commit()
    failures = _couple_failures()
    first = await w.planner.run()
    second = await w.planner.run()
    assert first.failed_couples == second.failed_couples == 1
    assert _couple_failures() == failures + 2
    assert w.planner.health.state == "degraded"
    health = HealthServer(db=db, clock=clock, dispatcher=None, idle_seconds=1.0, planner=w.planner)
    assert await health.check() == (
        True,  # still serving the others: shown, not a reason to take the worker out
        {"database": "ok", "dispatcher": "off", "planner": "degraded", "channels": "off"},
    )
    assert await _rows(db, couple_id=healthy), "the other practice's couple is planned"
    told = [r for r in await _rows(db, kind="notice") if r.key == "schedule.couple_failed"]
    assert len(told) == 1 and told[0].therapist_id is not None
    async with db.uow() as uow:
        couple = await uow.couples.get(broken)
        assert isinstance(couple, Couple)


def _couple_failures() -> float:
    """The process's count of couples a planning pass could not plan."""
    value = METRICS.get_sample_value("dyad_planner_couple_failures_total")
    assert value is not None
    return value
