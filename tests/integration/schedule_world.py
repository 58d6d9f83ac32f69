"""A small in-process world for schedule tests: a practice, a couple, the real planner and
the real dispatcher and renderers, with a Messenger that records what it sends."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select

from bot.channels.base import Address, Outgoing, Sent
from bot.core.clock import ManualClock
from bot.services.checkins import CheckinInvitation
from bot.services.crypto import Cipher, new_key
from bot.services.delivery_render import DyadRenderer
from bot.services.prompts import PromptRenderer, RevealRenderer
from bot.services.reminders import REMINDER_KIND, CheckinReminder, remind_and_expire
from db.engine import Database
from db.models import Couple, Delivery, Partner, Practice, Therapist
from schedules.dispatcher import Dispatcher
from schedules.planner import Planner

_ids = itertools.count(10_000)


@dataclass
class RecordingMessenger:
    """Telegram's stand-in: keeps every message by chat."""

    sent: dict[Address, list[str]] = field(default_factory=dict)

    async def send(self, address: Address, message: Outgoing) -> Sent:
        self.sent.setdefault(address, []).append(message.text)
        return Sent(message_id=next(_ids))

    async def edit(self, address: Address, message_id: int, message: Outgoing) -> None:
        return None

    async def delete(self, address: Address, message_id: int) -> None:
        return None


@dataclass
class World:
    db: Database
    clock: ManualClock
    messenger: RecordingMessenger
    planner: Planner
    dispatcher: Dispatcher
    cipher: Cipher

    async def tick(self, until: datetime, *, step: timedelta = timedelta(hours=12)) -> None:
        """Move the clock to ``until``, planning and sending event by event, as ``dyad run``."""
        while self.clock.now() < until:
            await self.planner.run()
            async with self.db.uow() as uow:
                await remind_and_expire(uow, self.clock.now())
            await self.dispatcher.run_until_idle()
            async with self.db.uow() as uow:
                next_due = await uow.session.scalar(
                    select(func.min(Delivery.due_at)).where(
                        Delivery.status == "pending", Delivery.due_at > self.clock.now()
                    )
                )
            target = self.clock.now() + step
            if next_due is not None:
                target = min(target, next_due)
            self.clock.set(min(max(target, self.clock.now() + timedelta(minutes=1)), until))
        await self.dispatcher.run_until_idle()


def world(db: Database, clock: ManualClock) -> World:
    """The planner and the dispatcher with Dyad's own renderers, sending in-process."""
    cipher = Cipher([new_key()])
    renderer = DyadRenderer()
    renderer.kinds["checkin"] = CheckinInvitation()
    for kind in ("hope", "skill", "skill_followup", "couple_space"):
        renderer.kinds[kind] = PromptRenderer()
    renderer.kinds["reveal"] = RevealRenderer(cipher)
    renderer.kinds[REMINDER_KIND] = CheckinReminder()
    messenger = RecordingMessenger()
    dispatcher = Dispatcher(
        db=db,
        clock=clock,
        channels={"telegram": messenger},
        renderer=renderer,
        rate_per_second=10_000.0,
        per_chat_interval=0.0,
    )
    return World(db, clock, messenger, Planner(db, clock), dispatcher, cipher)


async def practice_with_couple(
    db: Database,
    now: datetime,
    *,
    name: str = "North",
    config_toml: str | None = None,
    partners: Sequence[tuple[str, str, str]] = (
        ("America/New_York", "evening", "en"),
        ("Europe/Madrid", "morning", "es"),
    ),
    chat_base: int = 100,
) -> tuple[int, int, list[int]]:
    """A practice with an admin therapist (in their chat) and one couple whose space is
    open; returns (practice id, couple id, partner ids A then B)."""
    async with db.uow() as uow:
        practice = await uow.practices.add(
            Practice(
                slug=name.lower(),
                name=name,
                timezone="Europe/Madrid",
                language="en",
                config_toml=config_toml,
                created_at=now,
            )
        )
        therapist = await uow.therapists.add(
            Therapist(
                practice_id=practice.id,
                display_name=f"Dr {name}",
                is_admin=True,
                telegram_user_id=chat_base + 90,
                chat_id=chat_base + 90,
                timezone="Europe/Madrid",
                created_at=now,
                joined_at=now,
            )
        )
        couple = await uow.couples.add(
            Couple(
                practice_id=practice.id,
                therapist_id=therapist.id,
                handle="c1",
                label="A & B",
                created_at=now,
                space_ready_at=now,
            )
        )
        ids = []
        for index, (zone, window, language) in enumerate(partners):
            partner = await uow.partners.add(
                Partner(
                    couple_id=couple.id,
                    slot="AB"[index],
                    display_name=f"Partner {'AB'[index]}",
                    telegram_user_id=chat_base + index,
                    chat_id=chat_base + index,
                    language=language,
                    timezone=zone,
                    window=window,
                    onboarding_step="done",
                    consented_at=now,
                    joined_at=now,
                )
            )
            ids.append(partner.id)
        await uow.commit()
        return practice.id, couple.id, ids
