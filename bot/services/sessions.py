"""Therapy sessions: one-off and weekly, in the therapist's time zone, each with its digest."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.core.numbers import is_ascii_digits
from bot.services.practice_config import parse_practice_config
from bot.services.texts import UserError, msg
from db.models import Couple, Therapist, TherapySession
from db.uow import UnitOfWork

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEKLY_AHEAD = timedelta(days=15)


async def _lead(uow: UnitOfWork, couple: Couple) -> timedelta:
    practice = await uow.practices.get(couple.practice_id)
    assert practice is not None
    return timedelta(hours=parse_practice_config(practice.config_toml).digest.lead_hours)


def _parse_time(text: str) -> time:
    hours, sep, minutes = text.partition(":")
    if not sep or not is_ascii_digits(hours) or not is_ascii_digits(minutes):
        raise ValueError(text)
    return time(int(hours), int(minutes))


async def add_session(
    uow: UnitOfWork, couple: Couple, starts_at: datetime, *, recurring: bool = False
) -> TherapySession | None:
    """A session (idempotent per start time); its digest is due ``lead_hours`` before."""
    existing = await uow.session.scalar(
        select(TherapySession).where(
            TherapySession.couple_id == couple.id, TherapySession.starts_at == starts_at
        )
    )
    if existing is not None:
        return None
    row = TherapySession(
        couple_id=couple.id,
        starts_at=starts_at,
        digest_due_at=starts_at - await _lead(uow, couple),
        recurring=recurring,
    )
    uow.session.add(row)
    await uow.flush()
    return row


async def command(
    uow: UnitOfWork, therapist: Therapist, couple: Couple, args: list[str], now: datetime
) -> str:
    """``/session HANDLE …``: schedule one, set a weekly rhythm, or cancel the next."""
    lang, zone = therapist.language, ZoneInfo(therapist.timezone)
    lead_hours = int((await _lead(uow, couple)).total_seconds() // 3600)
    if args == ["cancel"]:
        return await _cancel(uow, therapist, couple, now)
    if len(args) == 3 and args[0] == "weekly":
        weekday = args[1].lower()[:3]
        if weekday not in WEEKDAYS:
            raise UserError("sessions.bad_weekday")
        try:
            at = _parse_time(args[2])
        except ValueError:
            raise UserError(
                "sessions.bad_time", text=args[2][:20], zone=therapist.timezone
            ) from None
        couple.weekly_session = f"{weekday} {at:%H:%M}"
        await ensure_weekly(uow, couple, therapist, now)
        await uow.commit()
        return msg(
            lang,
            "sessions.weekly",
            handle=couple.handle,
            weekday=weekday,
            time=f"{at:%H:%M}",
            zone=therapist.timezone,
            lead=lead_hours,
        )
    if len(args) != 2:
        raise UserError("sessions.usage")
    text = " ".join(args)
    try:
        day = date.fromisoformat(args[0])
        local = datetime.combine(day, _parse_time(args[1]), tzinfo=zone)
    except ValueError:
        raise UserError("sessions.bad_time", text=text[:30], zone=therapist.timezone) from None
    if local <= now:
        raise UserError("sessions.in_past")
    await add_session(uow, couple, local)
    await uow.commit()
    return msg(
        lang,
        "sessions.scheduled",
        handle=couple.handle,
        when=f"{local:%Y-%m-%d %H:%M}",
        zone=therapist.timezone,
        lead=lead_hours,
    )


async def ensure_weekly(
    uow: UnitOfWork, couple: Couple, therapist: Therapist, now: datetime
) -> int:
    """Create the weekly sessions of the next two weeks (idempotent)."""
    if not couple.weekly_session or couple.status != "active":
        return 0
    weekday_name, hhmm = couple.weekly_session.split()
    zone = ZoneInfo(therapist.timezone)
    at = _parse_time(hhmm)
    day = now.astimezone(zone).date()
    created = 0
    while True:
        local = datetime.combine(day, at, tzinfo=zone)
        if local > now + WEEKLY_AHEAD:
            break
        if WEEKDAYS[day.weekday()] == weekday_name and local > now:
            created += await add_session(uow, couple, local, recurring=True) is not None
        day += timedelta(days=1)
    return created


async def _cancel(uow: UnitOfWork, therapist: Therapist, couple: Couple, now: datetime) -> str:
    upcoming = await uow.sessions.next_for(couple.id, now)
    if upcoming is None:
        raise UserError("sessions.nothing_to_cancel", handle=couple.handle)
    upcoming.cancelled_at = now
    stopped = couple.weekly_session is not None
    if stopped:
        couple.weekly_session = None
        for later in await uow.session.scalars(
            select(TherapySession).where(
                TherapySession.couple_id == couple.id,
                TherapySession.starts_at > now,
                TherapySession.recurring.is_(True),
                TherapySession.cancelled_at.is_(None),
            )
        ):
            later.cancelled_at = now
    await uow.commit()
    when = upcoming.starts_at.astimezone(ZoneInfo(therapist.timezone))
    return msg(
        therapist.language,
        "sessions.cancelled",
        handle=couple.handle,
        when=f"{when:%Y-%m-%d %H:%M}",
        weekly=msg(therapist.language, "sessions.weekly_stopped") if stopped else "",
    )


async def upcoming(uow: UnitOfWork, therapist: Therapist, now: datetime) -> str:
    """``/sessions``: the therapist's upcoming sessions across their couples."""
    lang, zone = therapist.language, ZoneInfo(therapist.timezone)
    rows = (
        await uow.session.execute(
            select(TherapySession, Couple)
            .join(Couple, Couple.id == TherapySession.couple_id)
            .where(
                Couple.therapist_id == therapist.id,
                Couple.status == "active",
                TherapySession.starts_at > now,
                TherapySession.cancelled_at.is_(None),
            )
            .order_by(TherapySession.starts_at)
            .limit(30)
        )
    ).all()
    if not rows:
        return msg(lang, "sessions.list_empty")
    lines = [msg(lang, "sessions.list_header")]
    for session, couple in rows:
        lines.append(
            msg(
                lang,
                "sessions.list_line",
                when=f"{session.starts_at.astimezone(zone):%a %Y-%m-%d %H:%M}",
                handle=couple.handle,
                label=couple.label,
                weekly=msg(lang, "sessions.list_weekly") if session.recurring else "",
            )
        )
    return "\n".join(lines)


async def ensure_all_weekly(uow: UnitOfWork, now: datetime) -> int:
    """Create the coming weekly sessions for every couple that has a weekly rhythm."""
    created = 0
    rows = await uow.session.scalars(
        select(Couple).where(Couple.status == "active", Couple.weekly_session.is_not(None))
    )
    for couple in list(rows):
        therapist = await uow.therapists.get(couple.therapist_id)
        if therapist is not None:
            created += await ensure_weekly(uow, couple, therapist, now)
    await uow.commit()
    return created
