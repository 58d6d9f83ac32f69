"""Therapy sessions: one-off and weekly, in the therapist's time zone, each with its digest."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.core.numbers import is_ascii_digits
from bot.locales.formats import weekday_name
from bot.services.practice_config import parse_practice_config
from bot.services.texts import UserError, msg, msgn
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
    if await uow.sessions.at(couple.id, starts_at) is not None:
        return None
    return await uow.sessions.add(
        TherapySession(
            couple_id=couple.id,
            starts_at=starts_at,
            # In UTC: "24 hours before" stays 24 hours across a daylight-saving change
            # (aware arithmetic in the session's own zone would move the wall clock instead).
            digest_due_at=starts_at.astimezone(UTC) - await _lead(uow, couple),
            recurring=recurring,
        )
    )


def _local_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UserError("sessions.bad_date", text=text[:20]) from None


def _local_datetime(therapist: Therapist, day_text: str, time_text: str) -> datetime:
    try:
        day = date.fromisoformat(day_text)
        return datetime.combine(day, _parse_time(time_text), tzinfo=ZoneInfo(therapist.timezone))
    except ValueError:
        text = f"{day_text} {time_text}"
        raise UserError("sessions.bad_time", text=text[:30], zone=therapist.timezone) from None


async def command(
    uow: UnitOfWork, therapist: Therapist, couple: Couple, args: list[str], now: datetime
) -> str:
    """``/session HANDLE …``: schedule one, set a weekly rhythm, skip or move one
    occurrence, cancel the next, or end the weekly series."""
    lang = therapist.language
    lead_hours = int((await _lead(uow, couple)).total_seconds() // 3600)
    if args == ["cancel"]:
        return await _cancel(uow, therapist, couple, now)
    if args == ["end"]:
        return await _end_series(uow, therapist, couple, now)
    if len(args) == 2 and args[0] == "skip":
        return await _skip(uow, therapist, couple, _local_date(args[1]), now)
    if len(args) in (3, 4) and args[0] == "move":
        return await _move(uow, therapist, couple, args[1:], now)
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
        return msgn(
            lang,
            "sessions.weekly",
            lead_hours,
            handle=couple.handle,
            weekday=weekday_name(WEEKDAYS.index(weekday), lang),
            time=f"{at:%H:%M}",
            zone=therapist.timezone,
            lead=lead_hours,
        )
    if len(args) != 2:
        raise UserError("sessions.usage")
    local = _local_datetime(therapist, args[0], args[1])
    if local <= now:
        raise UserError("sessions.in_past")
    await add_session(uow, couple, local)
    await uow.commit()
    return msgn(
        lang,
        "sessions.scheduled",
        lead_hours,
        handle=couple.handle,
        when=f"{local:%Y-%m-%d %H:%M}",
        zone=therapist.timezone,
        lead=lead_hours,
    )


async def _on_date(
    uow: UnitOfWork, therapist: Therapist, couple: Couple, day: date, now: datetime
) -> TherapySession | None:
    """The couple's coming session on a local date (a weekly one is created if not yet)."""
    zone = ZoneInfo(therapist.timezone)
    begin = datetime.combine(day, time(0), tzinfo=zone)
    found = await uow.sessions.first_between(couple.id, max(begin, now), begin + timedelta(days=1))
    if found is not None or not couple.weekly_session:
        return found
    weekday, hhmm = couple.weekly_session.split()
    local = datetime.combine(day, _parse_time(hhmm), tzinfo=zone)
    if WEEKDAYS[day.weekday()] != weekday or local <= now:
        return None
    # Further ahead than the sessions made so far: make this one now, so it can change.
    return await add_session(uow, couple, local, recurring=True)


def _when(session_start: datetime, therapist: Therapist) -> str:
    return f"{session_start.astimezone(ZoneInfo(therapist.timezone)):%Y-%m-%d %H:%M}"


async def _skip(
    uow: UnitOfWork, therapist: Therapist, couple: Couple, day: date, now: datetime
) -> str:
    """Cancel the one session on ``day``; a weekly series goes on after it."""
    found = await _on_date(uow, therapist, couple, day, now)
    if found is None:
        raise UserError("sessions.none_on_date", handle=couple.handle, day=day.isoformat())
    found.cancelled_at = now
    await uow.commit()
    return msg(
        therapist.language,
        "sessions.skipped",
        handle=couple.handle,
        when=_when(found.starts_at, therapist),
        weekly=msg(therapist.language, "sessions.weekly_goes_on") if found.recurring else "",
    )


async def _move(
    uow: UnitOfWork, therapist: Therapist, couple: Couple, args: list[str], now: datetime
) -> str:
    """``move [FROM-DATE] YYYY-MM-DD HH:MM``: one session (the next, or FROM-DATE's) moves;
    its digest follows the new time, and a weekly series keeps its usual slot after it."""
    if len(args) == 3:
        found = await _on_date(uow, therapist, couple, _local_date(args[0]), now)
        if found is None:
            raise UserError("sessions.none_on_date", handle=couple.handle, day=args[0][:10])
    else:
        found = await uow.sessions.next_for(couple.id, now)
        if found is None:
            raise UserError("sessions.nothing_to_cancel", handle=couple.handle)
    target = _local_datetime(therapist, args[-2], args[-1])
    if target <= now:
        raise UserError("sessions.in_past")
    # The old slot stays, cancelled: a weekly series does not create it again.
    found.cancelled_at = now
    await uow.flush()
    moved = await uow.sessions.at(couple.id, target)
    if moved is None:
        moved = await add_session(uow, couple, target)
        assert moved is not None
    else:
        moved.cancelled_at = None
        moved.digest_due_at = target.astimezone(UTC) - await _lead(uow, couple)
        moved.digest_sent_at = None
    moved.moved_from = found.moved_from or found.starts_at
    await uow.commit()
    return msg(
        therapist.language,
        "sessions.moved",
        handle=couple.handle,
        old=_when(found.starts_at, therapist),
        new=_when(target, therapist),
        zone=therapist.timezone,
    )


async def _end_series(uow: UnitOfWork, therapist: Therapist, couple: Couple, now: datetime) -> str:
    if couple.weekly_session is None:
        raise UserError("sessions.no_series", handle=couple.handle)
    couple.weekly_session = None
    for later in await uow.sessions.weekly_after(couple.id, now):
        later.cancelled_at = now
    await uow.commit()
    return msg(therapist.language, "sessions.series_ended", handle=couple.handle)


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
    """Cancel the next session only; a weekly series goes on (``end`` stops it)."""
    upcoming = await uow.sessions.next_for(couple.id, now)
    if upcoming is None:
        raise UserError("sessions.nothing_to_cancel", handle=couple.handle)
    upcoming.cancelled_at = now
    await uow.commit()
    lang = therapist.language
    return msg(
        lang,
        "sessions.cancelled",
        handle=couple.handle,
        when=_when(upcoming.starts_at, therapist),
        weekly=msg(lang, "sessions.weekly_goes_on") if couple.weekly_session else "",
    )


PER_COUPLE = 3
"""How many coming occurrences ``/sessions`` shows for each couple."""


async def upcoming(uow: UnitOfWork, therapist: Therapist, now: datetime) -> str:
    """``/sessions``: the next few occurrences of each of the therapist's couples, in time
    order, with moved ones and skipped weekly ones marked."""
    lang, zone = therapist.language, ZoneInfo(therapist.timezone)
    couples = await uow.couples.of_therapist(therapist.id)
    for couple in couples:
        await ensure_weekly(uow, couple, therapist, now)
    await uow.flush()
    shown: list[tuple[TherapySession, Couple]] = []
    for couple in couples:
        rows = await uow.sessions.after(couple.id, now)
        coming = [
            r
            for r in rows
            if r.cancelled_at is None
            or (r.recurring and couple.weekly_session is not None and r.moved_from is None)
        ]
        # Skipped weekly slots that were moved elsewhere are shown at their new time only.
        moved_away = {r.moved_from for r in rows if r.moved_from is not None}
        coming = [r for r in coming if r.cancelled_at is None or r.starts_at not in moved_away]
        live = 0
        for row in coming:
            if live >= PER_COUPLE:
                break
            shown.append((row, couple))
            live += row.cancelled_at is None
    if not shown:
        return msg(lang, "sessions.list_empty")
    lines = [msg(lang, "sessions.list_header")]
    for session, couple in sorted(shown, key=lambda pair: pair[0].starts_at):
        if session.cancelled_at is not None:
            mark = msg(lang, "sessions.list_skipped")
        elif session.moved_from is not None:
            mark = msg(
                lang,
                "sessions.list_moved",
                old=f"{session.moved_from.astimezone(zone):%a %Y-%m-%d %H:%M}",
            )
        elif session.recurring:
            mark = msg(lang, "sessions.list_weekly")
        else:
            mark = ""
        lines.append(
            msg(
                lang,
                "sessions.list_line",
                when=f"{session.starts_at.astimezone(zone):%a %Y-%m-%d %H:%M}",
                handle=couple.handle,
                label=couple.label,
                weekly=mark,
            )
        )
    return "\n".join(lines)


async def ensure_all_weekly(uow: UnitOfWork, now: datetime) -> int:
    """Create the coming weekly sessions for every couple that has a weekly rhythm."""
    created = 0
    for couple in await uow.couples.with_weekly_session():
        therapist = await uow.therapists.get(couple.therapist_id)
        if therapist is not None:
            created += await ensure_weekly(uow, couple, therapist, now)
    await uow.commit()
    return created
