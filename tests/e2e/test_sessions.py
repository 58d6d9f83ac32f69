"""Sessions: one occurrence of a weekly series can be skipped or moved, the series ended
explicitly; /sessions shows the next few; the digest follows a moved session."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from db.models import TherapySession
from fakebotapi import FakeUser
from tests.e2e.conftest import Harness

MADRID = ZoneInfo("Europe/Madrid")  # the therapist's time zone (the practice's)


async def _couple(harness: Harness) -> tuple[FakeUser, str]:
    therapist = await harness.therapist()
    handle, token_a, token_b = await harness.new_couple(therapist)
    await harness.join(harness.user("Alex"), token_a, typed_timezone="America/New_York")
    await harness.join(harness.user("Blanca"), token_b, typed_timezone="Europe/Madrid")
    await harness.settle()
    return therapist, handle


async def _live_starts(harness: Harness) -> list[datetime]:
    async with harness.db.uow() as uow:
        rows = await uow.session.scalars(
            select(TherapySession.starts_at)
            .where(TherapySession.cancelled_at.is_(None))
            .order_by(TherapySession.starts_at)
        )
        return list(rows)


async def _say(therapist: FakeUser, text: str) -> str:
    await therapist.send_command("session", text)
    return (await therapist.wait_for_message()).text


async def test_cancel_skips_one_week_and_the_series_goes_on(harness: Harness) -> None:
    therapist, handle = await _couple(harness)
    # Monday 2026-10-19: weekly Thursday sessions, 22 and 29 October.
    assert "Weekly sessions" in await _say(therapist, f"{handle} weekly thu 17:30")
    assert "go on" in await _say(therapist, f"{handle} cancel")
    starts = await _live_starts(harness)
    assert [s.date().isoformat() for s in starts] == ["2026-10-29"]
    # Planning again later keeps the cancelled week cancelled and adds the next ones.
    harness.clock.advance(timedelta(days=5))
    await harness.bot.maintain()
    dates = [s.date().isoformat() for s in await _live_starts(harness)]
    assert "2026-10-22" not in dates and dates[:2] == ["2026-10-29", "2026-11-05"]


async def test_skip_a_date_then_end_the_series(harness: Harness) -> None:
    therapist, handle = await _couple(harness)
    await _say(therapist, f"{handle} weekly thu 17:30")
    assert "skipped" in await _say(therapist, f"{handle} skip 2026-10-29")
    # A week beyond those made so far can be skipped too; a day without one cannot.
    assert "skipped" in await _say(therapist, f"{handle} skip 2026-11-12")
    assert "no session on 2026-10-30" in await _say(therapist, f"{handle} skip 2026-10-30")
    assert "couldn't read" in await _say(therapist, f"{handle} skip someday")
    await harness.bot.maintain()
    harness.clock.advance(timedelta(days=14))
    await harness.bot.maintain()
    dates = [s.date().isoformat() for s in await _live_starts(harness)]
    assert "2026-10-29" not in dates and "2026-11-12" not in dates
    assert dates == ["2026-10-22", "2026-11-05"]  # the next ones come within 15 days
    await therapist.send_command("sessions")
    listing = (await therapist.wait_for_message()).text
    assert "(skipped)" in listing and "(weekly)" in listing
    assert "end here" in await _say(therapist, f"{handle} end")
    assert [s for s in await _live_starts(harness) if s > harness.clock.now()] == []
    assert "no weekly sessions" in await _say(therapist, f"{handle} end")


async def test_a_moved_session_gets_its_digest_before_the_new_time(harness: Harness) -> None:
    therapist, handle = await _couple(harness)
    await _say(therapist, f"{handle} weekly thu 17:30")
    said = await _say(therapist, f"{handle} move 2026-10-22 2026-10-23 09:00")
    assert "moves to 2026-10-23 09:00" in said
    async with harness.db.uow() as uow:
        rows = list(await uow.session.scalars(select(TherapySession)))
    moved = next(r for r in rows if r.moved_from is not None)
    assert moved.starts_at == datetime(2026, 10, 23, 9, 0, tzinfo=MADRID)
    assert moved.digest_due_at == moved.starts_at - timedelta(hours=24)
    await therapist.send_command("sessions")
    listing = (await therapist.wait_for_message()).text
    assert "Fri 2026-10-23 09:00" in listing and "moved from Thu 2026-10-22 17:30" in listing
    # No digest before the original slot's lead time is past; one before the moved time.
    harness.clock.set(datetime(2026, 10, 21, 18, 0, tzinfo=MADRID))  # 24 h before 17:30
    await harness.bot.maintain()
    await harness.settle()
    assert not any("Balance" in m.text for m in therapist.messages)
    harness.clock.set(datetime(2026, 10, 22, 9, 30, tzinfo=MADRID))
    await harness.bot.maintain()
    await harness.settle()
    await therapist.wait_for_message(lambda m: handle in m.text and "Alex" in m.text)
    async with harness.db.uow() as uow:
        refreshed = await uow.session.get(TherapySession, moved.id)
    assert refreshed is not None and refreshed.digest_sent_at is not None
    now = harness.clock.now
    # Moving the next session needs no first date; the series keeps its usual slot after.
    said = await _say(therapist, f"{handle} move 2026-10-28 12:00")
    assert "moves to 2026-10-28 12:00" in said
    coming = [s.astimezone(MADRID) for s in await _live_starts(harness) if s > now()]
    assert coming[0] == datetime(2026, 10, 28, 12, 0, tzinfo=MADRID)
    assert datetime(2026, 11, 5, 17, 30, tzinfo=MADRID) in coming
