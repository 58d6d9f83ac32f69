"""Leases in the database's time: skewed worker clocks, slow sends and 429s send nothing twice.

These dispatchers keep their leases in the real database's time (``db.clock.DatabaseTime``),
as in production; only what is *due* follows each worker's own (manual, skewed) clock.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from telegram.ext import ExtBot

from bot.channels.base import Address, Messenger, Outgoing, Sent
from bot.channels.telegram import DyadRateLimiter, TelegramMessenger
from bot.core.clock import ManualClock
from bot.services.delivery_render import DyadRenderer
from db.clock import DatabaseTime
from db.engine import Database
from fakebotapi import FakeBotAPI
from schedules.dispatcher import Dispatcher, Pacer
from tests.integration.test_dispatcher import (
    lax_fake,
    notes_received,
    open_clinic,
    queue_notes,
    rows,
    telegram,
)

__all__ = ["lax_fake"]


class SlowMessenger:
    """A Messenger whose network takes ``delay`` seconds before each request leaves."""

    def __init__(self, inner: Messenger, delay: float) -> None:
        self.inner = inner
        self.delay = delay
        self.started = 0

    async def send(self, address: Address, message: Outgoing) -> Sent:
        self.started += 1
        await asyncio.sleep(self.delay)
        return await self.inner.send(address, message)

    async def edit(self, address: Address, message_id: int, message: Outgoing) -> None:
        await self.inner.edit(address, message_id, message)

    async def delete(self, address: Address, message_id: int) -> None:
        await self.inner.delete(address, message_id)


def worker(db: Database, clock: ManualClock, messenger: Messenger, **options: object) -> Dispatcher:
    """A dispatcher with its leases in the database's time, unpaced."""
    return Dispatcher(
        db=db,
        clock=clock,
        channels={"telegram": messenger},
        renderer=DyadRenderer(),
        rate_per_second=1000.0,
        per_chat_interval=0.0,
        lease_clock=DatabaseTime(db),
        **options,  # type: ignore[arg-type]
    )


async def test_two_workers_whose_clocks_differ_by_two_minutes_send_each_note_once(
    db: Database, lax_fake: FakeBotAPI, clock: ManualClock
) -> None:
    clinic = await open_clinic(db, lax_fake, clock.now(), couples=5)
    ids = await queue_notes(db, clinic.partners, 2, clock.now() - timedelta(minutes=5))
    ahead = ManualClock(clock.now() + timedelta(seconds=121))
    async with telegram(lax_fake) as messenger:
        # The first worker is slow, so its rows are in flight while the other one claims.
        behind = worker(db, clock, SlowMessenger(messenger, 0.05), concurrency=1, batch_size=10)
        rushing = worker(db, ahead, messenger, concurrency=1, batch_size=5)
        await asyncio.gather(behind.run_until_idle(), rushing.run_until_idle())

    received = notes_received(lax_fake)
    assert len(received) == len(ids) and set(received.values()) == {1}
    assert {(d.status, d.attempts) for d in (await rows(db)).values()} == {("sent", 1)}


async def test_a_send_slower_than_the_lease_is_cut_off_inside_it_and_sent_once_later(
    db: Database, lax_fake: FakeBotAPI, clock: ManualClock
) -> None:
    clinic = await open_clinic(db, lax_fake, clock.now(), couples=1)
    [row_id] = await queue_notes(db, clinic.partners[:1], 1, clock.now())
    lease = timedelta(seconds=1)
    async with telegram(lax_fake) as messenger:
        # A worker whose heartbeat stalls (the database is slow for it) and whose network
        # takes two seconds: without a timeout inside the lease, its send would land
        # after another worker had taken the row over and sent it.
        stalled = SlowMessenger(messenger, 2.0)
        slow = worker(db, clock, stalled, lease=lease, heartbeat=False)
        other = worker(db, clock, messenger, lease=lease)
        slow_pass = asyncio.create_task(slow.run_once())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while not stalled.started:
            assert loop.time() < deadline
            await asyncio.sleep(0.01)
        while not notes_received(lax_fake):
            assert loop.time() < deadline, "the row was never sent"
            await other.run_until_idle()
            clock.advance(timedelta(seconds=5))  # its retry comes due
            await asyncio.sleep(0.1)
        await slow_pass
        await asyncio.sleep(2.1)  # long enough for a send the timeout did not stop to land

    assert stalled.started == 1
    assert set(notes_received(lax_fake).values()) == {1}
    row = (await rows(db))[row_id]
    assert row.status == "sent"
    assert (row.last_error or "").startswith("no answer within 0.")


async def test_a_429_comes_back_to_the_dispatcher_at_once_and_the_row_waits_for_retry_after(
    db: Database, lax_fake: FakeBotAPI, clock: ManualClock
) -> None:
    clinic = await open_clinic(db, lax_fake, clock.now(), couples=1)
    [row_id] = await queue_notes(db, clinic.partners[:1], 1, clock.now())
    partner = clinic.partners[0]
    lax_fake.inject("sendMessage", chat_id=partner.chat_id, kind="429", retry_after=45, times=3)
    limiter = DyadRateLimiter(max_retries=3)  # what the Application's replies go through
    async with ExtBot(lax_fake.token, base_url=lax_fake.base_url, rate_limiter=limiter) as bot:
        direct = TelegramMessenger(bot, direct=True)
        # The pause a 429 asks for passes with the manual clock, not in real seconds.
        pacer = Pacer(1000.0, 0.0, monotonic=lambda: clock.now().timestamp())
        first = worker(db, clock, direct, pacer=pacer)
        second = worker(db, clock, direct, pacer=pacer)
        stats = await first.run_until_idle()
        assert stats.rate_limited == 1 and stats.sent == 0
        assert (await second.run_until_idle()).claimed == 0, "the row waits, unclaimed"
        row = (await rows(db))[row_id]
        assert (row.status, row.attempts, row.last_error) == ("pending", 0, "rate limited")
        assert row.due_at == clock.now() + timedelta(seconds=45)
        for _ in range(2):
            clock.advance(timedelta(seconds=45))
            await first.run_until_idle()
        clock.advance(timedelta(seconds=45))
        await asyncio.gather(first.run_until_idle(), second.run_until_idle())
    assert len(lax_fake.calls_of("sendMessage")) == 4, "each try was one request: no retries"
    assert set(notes_received(lax_fake).values()) == {1}
    assert (await rows(db))[row_id].status == "sent"


async def test_the_rows_of_a_dead_worker_return_within_seconds(
    db: Database, lax_fake: FakeBotAPI, clock: ManualClock
) -> None:
    clinic = await open_clinic(db, lax_fake, clock.now(), couples=2)
    ids = await queue_notes(db, clinic.partners, 2, clock.now())
    async with telegram(lax_fake) as messenger:
        dead = worker(db, clock, messenger, lease=timedelta(seconds=1))
        assert sorted(await dead.claim_due(100)) == ids  # then it dies, sending nothing
        survivor = worker(db, clock, messenger, lease=timedelta(seconds=1))
        assert (await survivor.run_until_idle()).claimed == 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while len(notes_received(lax_fake)) < len(ids):
            assert loop.time() < deadline
            await asyncio.sleep(0.2)
            await survivor.run_until_idle()
    assert set(notes_received(lax_fake).values()) == {1}
