"""End-to-end harness: the real Application over real HTTP against the fake Bot API."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from bot.app import DyadBot
from bot.core.clock import ManualClock
from bot.demo import offline_bot, offline_deps
from bot.services.practices import create_practice, invite_therapist
from db.engine import Database
from db.models import Delivery
from fakebotapi import FakeBotAPI, FakeMessage, FakeUser

LINK = re.compile(r"https://t\.me/(\w+)\?start=([A-Za-z0-9_-]+)")


def links_in(message: FakeMessage) -> list[str]:
    """The start tokens of every invite link in a message."""
    return [token for _, token in LINK.findall(message.text)]


def button_data(message: FakeMessage | None, index: int) -> str:
    """The callback data of the `index`-th inline button (a callback button, not a link)."""
    assert message is not None
    data = message.buttons[index][1]
    assert data is not None
    return data


@dataclass
class Harness:
    """A running Dyad, its fake Telegram, its database and its clock."""

    bot: DyadBot
    fake: FakeBotAPI
    db: Database
    clock: ManualClock
    practice_slug: str = ""
    _next_user: int = field(default=1000)

    def user(self, first_name: str, language_code: str = "en") -> FakeUser:
        """A new Telegram user."""
        self._next_user += 1
        return self.fake.add_user(self._next_user, first_name, language_code=language_code)

    async def practice(self, name: str = "North Practice", timezone: str = "Europe/Madrid") -> str:
        """Create a practice as the admin's command line does; returns its slug."""
        async with self.db.uow() as uow:
            practice = await create_practice(
                uow, name, timezone=timezone, language="en", now=self.clock.now()
            )
            await uow.commit()
        self.practice_slug = practice.slug
        return practice.slug

    async def therapist_link(self, name: str = "Dr Rivera") -> str:
        """A one-time therapist invite token, as `dyad therapist invite` makes."""
        if not self.practice_slug:
            await self.practice()
        async with self.db.uow() as uow:
            issued = await invite_therapist(
                uow,
                self.practice_slug,
                name,
                is_admin=False,
                now=self.clock.now(),
                ttl=timedelta(days=7),
            )
            await uow.commit()
        return issued.token

    async def therapist(self, first_name: str = "Ana", language: str = "en") -> FakeUser:
        """A therapist who has joined through their invite link."""
        user = self.user(first_name, language)
        await user.send_command("start", await self.therapist_link(first_name))
        await user.wait_for_message(lambda m: "Dyad" in m.text)
        return user

    async def new_couple(self, therapist: FakeUser, label: str = "A & J") -> tuple[str, str, str]:
        """``/newcouple``: returns (handle, token for A, token for B)."""
        await therapist.send_command("newcouple", label)
        reply = await therapist.wait_for_message(lambda m: bool(links_in(m)))
        handle = re.search(r"\b(c\d+)\b", reply.text)
        assert handle is not None
        token_a, token_b = links_in(reply)
        return handle.group(1), token_a, token_b

    async def join(
        self,
        partner: FakeUser,
        token: str,
        *,
        language: str = "English",
        timezone_index: int = 0,
        typed_timezone: str | None = None,
        window: str = "Evening",
        discreet: bool = False,
    ) -> None:
        """A partner opens their link and goes through every onboarding step."""
        await partner.send_command("start", token)
        await partner.wait_for_message(lambda m: bool(m.buttons))
        first = partner.last_message
        assert first is not None
        await partner.press(first, button_data(first, 0))
        await partner.wait_for_message(lambda m: bool(m.buttons))
        await partner.press_button(language)
        zones = await partner.wait_for_message(lambda m: bool(m.buttons))
        if typed_timezone is not None:
            await partner.send_text(typed_timezone)
        else:
            await partner.press(zones, button_data(zones, timezone_index))
        await partner.wait_for_message(lambda m: bool(m.buttons))
        await partner.press_button(window if language == "English" else _WINDOWS_ES[window])
        await partner.wait_for_message(lambda m: bool(m.buttons))
        last = partner.last_message
        assert last is not None
        await partner.press(last, button_data(last, 0 if discreet else 1))
        await partner.wait_for_message(lambda m: "/help" in m.text)

    async def settle(self, within: float = 10.0) -> None:
        """Wait until every update sent so far is handled and everything due in the outbox
        has been sent (or given up): updates of different chats are handled concurrently."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while self.fake.pending_updates or await self._unhandled_updates():
            if loop.time() > deadline:
                raise AssertionError("updates were still being handled")
            await asyncio.sleep(0.02)
        while await self.bot.dispatcher.outstanding():
            await self.bot.dispatcher.run_until_idle()
            if loop.time() > deadline:
                raise AssertionError(f"the outbox did not drain: {await self._waiting()}")
            await asyncio.sleep(0.02)

    async def run_until(self, end: datetime, *, plan: bool = True) -> None:
        """Move the clock forward to ``end``, planning (unless told not to) and sending as
        `dyad run` would, event by event."""
        while self.clock.now() < end:
            if plan:
                await self.bot.planner.run()
            async with self.db.uow() as uow:
                next_due = await uow.session.scalar(
                    select(func.min(Delivery.due_at)).where(
                        Delivery.status == "pending", Delivery.due_at > self.clock.now()
                    )
                )
            target = self.clock.now() + timedelta(hours=6)
            if next_due is not None:
                target = min(target, next_due)
            self.clock.set(min(max(target, self.clock.now() + timedelta(minutes=1)), end))
            await self.settle()

    async def deliver_waiting(self) -> None:
        """Move the clock on until everything queued has been sent (a notice waits for each
        partner's window, outside quiet hours), planning nothing new."""
        async with self.db.uow() as uow:
            last = await uow.session.scalar(
                select(func.max(Delivery.due_at)).where(Delivery.status == "pending")
            )
        if last is not None:
            await self.run_until(last, plan=False)
        await self.settle()

    async def _unhandled_updates(self) -> int:
        from sqlalchemy import func, select

        from db.models import InboxUpdate

        async with self.db.uow() as uow:
            query = select(func.count()).where(InboxUpdate.handled_at.is_(None))
            return int(await uow.session.scalar(query) or 0)

    async def _waiting(self) -> list[str]:
        """The rows still due or claimed, to say why the outbox did not drain."""
        async with self.db.uow() as uow:
            rows = await uow.session.scalars(
                select(Delivery).where(Delivery.status.in_(("pending", "claimed")))
            )
            return [
                f"#{r.id} {r.channel}/{r.kind}/{r.key} {r.status} due {r.due_at:%H:%M:%S} "
                f"attempts {r.attempts} error {r.last_error!r}"
                for r in rows
                if r.status == "claimed" or r.due_at <= self.clock.now()
            ]


_WINDOWS_ES = {"Morning": "Mañana", "Afternoon": "Mediodía", "Evening": "Tarde"}


@pytest.fixture
async def fake(clock: ManualClock) -> AsyncIterator[FakeBotAPI]:
    """The fake Bot API on a random loopback port."""
    async with FakeBotAPI(clock=clock) as api:
        yield api


@pytest.fixture
async def harness(fake: FakeBotAPI, db: Database, clock: ManualClock) -> AsyncIterator[Harness]:
    """Dyad running against the fake, on each database."""
    bot = offline_bot(fake, offline_deps(fake, db, clock))
    await bot.start()
    try:
        yield Harness(bot, fake, db, clock)
    finally:
        await bot.stop()
