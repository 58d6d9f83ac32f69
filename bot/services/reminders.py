"""Completion reminders: one gentle reminder for a check-in left unfinished or not started,
then expiry; and the count of missed check-ins the therapist sees, both partners alike.

A practice sets both times in ``[checkin]`` (``remind_after_hours``, ``expire_after_hours``).
A scheduled check-in that was sent and is not complete ``remind_after_hours`` later gets
one reminder, placed in the partner's own window outside quiet hours (and within the daily
maximum), and never after the check-in expires. The reminder speaks of the partner's own
check-in only: nothing in it says anything about the other partner. At expiry an open
check-in is stored as partial; a scheduled one never started counts as missed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import select, update

from bot.channels.base import Button, Outgoing
from bot.core import callbacks
from bot.services.checkins import deliverable
from bot.services.delivery_render import KindRenderer
from bot.services.outbox import enqueue
from bot.services.practice_config import PracticeConfig, parse_practice_config
from bot.services.texts import msg
from db.models import CheckIn, Couple, Delivery, Partner, Practice, Slot, Therapist
from db.uow import UnitOfWork
from schedules.planner import place_in_window

REMINDER_KIND: Final = "checkin_reminder"
LONGEST_EXPIRY = timedelta(hours=168)  # the most a practice may set


@dataclass
class ReminderStats:
    """What one round did."""

    reminded: int = 0
    expired: int = 0


def _hours(value: float) -> timedelta:
    return timedelta(hours=value)


async def _configs(uow: UnitOfWork) -> dict[int, PracticeConfig]:
    """Each practice's configuration; a practice whose file cannot be read is left out."""
    out: dict[int, PracticeConfig] = {}
    for practice in await uow.practices.all():
        try:
            out[practice.id] = parse_practice_config(practice.config_toml)
        except ValueError:
            continue  # the planner reports it to the practice's admins
    return out


async def remind_and_expire(uow: UnitOfWork, now: datetime) -> ReminderStats:
    """Queue the reminders that are due and expire what ran out; commits."""
    stats = ReminderStats()
    configs = await _configs(uow)
    rows = (
        await uow.session.execute(
            select(Delivery, Couple.practice_id)
            .join(Couple, Couple.id == Delivery.couple_id)
            .where(
                Delivery.kind == "checkin",
                Delivery.status == "sent",
                Delivery.sent_at >= now - LONGEST_EXPIRY,
                Couple.status == "active",
            )
        )
    ).all()
    for delivery, practice_id in rows:
        config = configs.get(practice_id)
        if config is None or delivery.sent_at is None or delivery.partner_id is None:
            continue
        settings = config.schedules.checkin
        remind_at = delivery.sent_at + _hours(settings.remind_after_hours)
        expires_at = delivery.sent_at + _hours(settings.expire_after_hours)
        if not remind_at <= now < expires_at:
            continue
        if await uow.checkins.completed_between(delivery.partner_id, delivery.sent_at):
            continue
        partner = await uow.partners.get(delivery.partner_id)
        if partner is None or not partner.active:
            continue
        due, local_date, _ = await place_in_window(uow, partner, now)
        if due >= expires_at:
            continue  # no window before it expires: no reminder rather than a late one
        stats.reminded += await enqueue(
            uow,
            partner,
            kind=REMINDER_KIND,
            key="checkin.reminder",
            dedupe_key=f"remind:checkin:{delivery.id}",
            due_at=due,
            not_after=expires_at,
            local_date=local_date,
            couple_id=delivery.couple_id,
            params={"checkin_delivery": delivery.id},
        )
    stats.expired = await _expire(uow, configs, now)
    await uow.commit()
    return stats


async def _expire(uow: UnitOfWork, configs: dict[int, PracticeConfig], now: datetime) -> int:
    """Open check-ins older than their practice's expiry are stored as partial."""
    expired = 0
    default = parse_practice_config(None).schedules.checkin.expire_after_hours
    rows = (
        await uow.session.execute(
            select(CheckIn.id, CheckIn.started_at, Couple.practice_id)
            .join(Couple, Couple.id == CheckIn.couple_id)
            .where(CheckIn.status == "open")
        )
    ).all()
    stale: list[int] = []
    for checkin_id, started_at, practice_id in rows:
        config = configs.get(practice_id)
        hours = config.schedules.checkin.expire_after_hours if config else default
        if started_at <= now - _hours(hours):
            stale.append(checkin_id)
    if stale:
        result = await uow.session.execute(
            update(CheckIn)
            .where(CheckIn.id.in_(stale), CheckIn.status == "open")
            .values(status="partial", completed_at=now)
            .execution_options(synchronize_session=False)
        )
        expired = int(result.rowcount)  # type: ignore[attr-defined]
    return expired


def checkin_expiry(config: PracticeConfig) -> timedelta:
    """How long a sent check-in stays open: ``[checkin] expire_after_hours``."""
    return _hours(config.schedules.checkin.expire_after_hours)


def count_missed(
    sent: Iterable[tuple[int, datetime]],
    completed: Mapping[int, Sequence[datetime]],
    expiry: timedelta,
) -> dict[int, int]:
    """Per partner id, the sent check-ins (partner id, sent at) that no completed check-in
    of theirs (``completed``: start times by partner id) answered within ``expiry``."""
    counts: dict[int, int] = defaultdict(int)
    for partner_id, sent_at in sent:
        starts = completed.get(partner_id, ())
        if not any(sent_at <= started < sent_at + expiry for started in starts):
            counts[partner_id] += 1
    return dict(counts)


async def missed_checkins(
    uow: UnitOfWork, couple: Couple, practice: Practice, since: datetime, now: datetime
) -> dict[Slot, int]:
    """Per slot, scheduled check-ins sent since ``since`` and not completed before expiry."""
    expiry = checkin_expiry(parse_practice_config(practice.config_toml))
    partners = {p.id: p.slot for p in await uow.partners.of_couple(couple.id)}
    sent = await uow.session.execute(
        select(Delivery.partner_id, Delivery.sent_at).where(
            Delivery.couple_id == couple.id,
            Delivery.partner_id.in_(list(partners)),
            Delivery.kind == "checkin",
            Delivery.status == "sent",
            Delivery.sent_at >= since,
            Delivery.sent_at <= now - expiry,
        )
    )
    completed: dict[int, list[datetime]] = defaultdict(list)
    for partner_id, started_at in await uow.session.execute(
        select(CheckIn.partner_id, CheckIn.started_at).where(
            CheckIn.partner_id.in_(list(partners)),
            CheckIn.status == "complete",
            CheckIn.started_at >= since,
            CheckIn.started_at < now,
        )
    ):
        completed[partner_id].append(started_at)
    pairs = [(p, at) for p, at in sent if p is not None and at is not None]
    missed = count_missed(pairs, completed, expiry)
    return {slot: missed.get(partner_id, 0) for partner_id, slot in partners.items()}


class CheckinReminder(KindRenderer):
    """The reminder: about the partner's own check-in, with its Start button; neutral in
    discreet mode. Skipped once the check-in is done."""

    async def render(
        self, uow: UnitOfWork, delivery: Delivery, person: Partner | Therapist
    ) -> Outgoing | None:
        if not isinstance(person, Partner) or not await deliverable(uow, person, delivery):
            return None
        original = await uow.deliveries.get(int(delivery.params["checkin_delivery"]))
        if original is None or original.sent_at is None:
            return None
        if await uow.checkins.completed_between(person.id, original.sent_at):
            return None
        lang = person.language
        if person.discreet:
            text, label = msg(lang, "checkin.discreet_ready"), msg(lang, "checkin.open")
        else:
            text, label = msg(lang, "checkin.reminder"), msg(lang, "checkin.start")
        button = Button(label, callbacks.encode("cis", original.id))
        return Outgoing(text, ((button,),))
