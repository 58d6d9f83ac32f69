"""The dispatcher: claims due deliveries with a lease, sends them, marks them sent.

Nothing is lost: a row leaves ``pending`` only for ``sent``, ``failed`` (with its reason)
or ``skipped`` (too late for its window, or its recipient left). A worker that dies
after claiming leaves rows whose lease runs out; any worker then claims them again, so
a crash between sending and marking can duplicate at most the rows in flight.

Telegram's limits are kept here, per process: an overall rate (the process's share of
the global budget) and at least ``per_chat_interval`` seconds between two messages to
one chat. A 429 pauses every send for its ``retry_after``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update

from bot.channels.base import (
    Blocked,
    Messenger,
    Outgoing,
    PermanentFailure,
    RateLimited,
    Sent,
    TransientFailure,
)
from bot.core.clock import Clock
from db.engine import Database
from db.models import Delivery
from db.uow import UnitOfWork

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rendered:
    """A delivery made ready: where it goes and what it says."""

    address: int
    message: Outgoing


class Renderer:
    """Turns a claimed delivery into a message, and records what follows a send."""

    async def render(self, uow: UnitOfWork, delivery: Delivery) -> Rendered | None:
        """The message for a delivery, or None to skip it (its recipient is gone)."""
        raise NotImplementedError

    async def on_sent(self, uow: UnitOfWork, delivery: Delivery, sent: Sent) -> None:
        """Record what a sent delivery starts (an open prompt, a check-in)."""

    async def on_blocked(self, uow: UnitOfWork, delivery: Delivery, now: datetime) -> None:
        """The recipient blocked the bot: mark them unreachable, tell whom it concerns."""


@dataclass
class DispatchStats:
    """What one pass of the dispatcher did."""

    claimed: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    retried: int = 0
    rate_limited: int = 0


class Pacer:
    """Keeps sends under an overall rate and a minimum interval per chat (monotonic time)."""

    def __init__(
        self,
        rate_per_second: float,
        per_chat_interval: float,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.interval = 1.0 / rate_per_second
        self.per_chat_interval = per_chat_interval
        self._monotonic = monotonic
        self._sleep = sleep
        self._next_slot = 0.0
        self._chat_next: dict[int, float] = {}
        self._paused_until = 0.0
        self._lock = asyncio.Lock()

    def pause(self, seconds: float) -> None:
        """Send nothing for ``seconds`` (after a 429)."""
        self._paused_until = max(self._paused_until, self._monotonic() + seconds)

    async def wait_turn(self, chat: int) -> None:
        """Wait until both the overall budget and this chat allow one more message."""
        async with self._lock:
            now = self._monotonic()
            at = max(now, self._next_slot, self._paused_until, self._chat_next.get(chat, 0.0))
            self._next_slot = at + self.interval
            self._chat_next[chat] = at + self.per_chat_interval
            if len(self._chat_next) > 10_000:
                self._chat_next = {c: t for c, t in self._chat_next.items() if t > now}
        delay = at - self._monotonic()
        if delay > 0:
            await self._sleep(delay)


@dataclass
class Dispatcher:
    """Sends the outbox through the channels' Messengers, keeping every row accounted for."""

    db: Database
    clock: Clock
    channels: Mapping[str, Messenger]
    renderer: Renderer
    rate_per_second: float = 30.0
    per_chat_interval: float = 1.0
    lease: timedelta = timedelta(seconds=120)
    batch_size: int = 100
    concurrency: int = 8
    max_attempts: int = 8
    worker_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    pacer: Pacer | None = None
    alive_at: float = 0.0

    def __post_init__(self) -> None:
        if self.pacer is None:
            self.pacer = Pacer(self.rate_per_second, self.per_chat_interval)

    async def claim_due(self, limit: int) -> list[int]:
        """Claim up to ``limit`` due rows (and rows whose lease ran out) for this worker."""
        now = self.clock.now()
        due = or_(
            (Delivery.status == "pending") & (Delivery.due_at <= now),
            (Delivery.status == "claimed") & (Delivery.lease_until < now),
        )
        candidates = select(Delivery.id).where(due).order_by(Delivery.due_at, Delivery.id)
        candidates = candidates.limit(limit)
        if self.db.is_postgres:
            candidates = candidates.with_for_update(skip_locked=True)
        statement = (
            update(Delivery)
            .where(Delivery.id.in_(candidates.scalar_subquery()), due)
            .values(
                status="claimed",
                lease_until=now + self.lease,
                attempts=Delivery.attempts + 1,
            )
            .returning(Delivery.id)
            .execution_options(synchronize_session=False)
        )
        async with self.db.uow() as uow:
            ids = list((await uow.session.scalars(statement)).all())
            await uow.commit()
        return sorted(ids)

    async def outstanding(self) -> int:
        """How many rows are due now or in flight (pending and due, or claimed)."""
        now = self.clock.now()
        query = select(func.count()).where(
            or_(
                (Delivery.status == "pending") & (Delivery.due_at <= now),
                Delivery.status == "claimed",
            )
        )
        async with self.db.uow() as uow:
            return int(await uow.session.scalar(query) or 0)

    async def run_once(self) -> DispatchStats:
        """Claim one batch of due rows and send them; returns what happened."""
        self.alive_at = time.monotonic()
        stats = DispatchStats()
        ids = await self.claim_due(self.batch_size)
        stats.claimed = len(ids)
        if not ids:
            return stats
        queue: asyncio.Queue[int] = asyncio.Queue()
        for delivery_id in ids:
            queue.put_nowait(delivery_id)

        async def worker() -> None:
            while True:
                try:
                    delivery_id = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                await self._deliver(delivery_id, stats)

        await asyncio.gather(*(worker() for _ in range(min(self.concurrency, len(ids)))))
        return stats

    async def run_until_idle(self, max_rounds: int = 1000) -> DispatchStats:
        """Send everything due now (tests, the demo, ``dyad worker --once``)."""
        total = DispatchStats()
        for _ in range(max_rounds):
            stats = await self.run_once()
            for name in vars(total):
                setattr(total, name, getattr(total, name) + getattr(stats, name))
            if stats.claimed == 0:
                break
        return total

    async def run_forever(
        self, stop: asyncio.Event, wake: asyncio.Event, idle: float = 2.0
    ) -> None:
        """Dispatch until ``stop`` is set; ``wake`` cuts the idle wait short."""
        while not stop.is_set():
            try:
                stats = await self.run_once()
            except Exception:
                log.exception("dispatch pass failed; trying again")
                stats = DispatchStats()
                await asyncio.sleep(idle)
            if stats.claimed:
                continue
            wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=idle)

    async def _deliver(self, delivery_id: int, stats: DispatchStats) -> None:
        assert self.pacer is not None
        async with self.db.uow() as uow:
            delivery = await uow.session.get(Delivery, delivery_id)
            if delivery is None or delivery.status != "claimed":
                return
            now = self.clock.now()
            if delivery.not_after is not None and now > delivery.not_after:
                await self._finish(uow, delivery, "skipped", "too late for its window")
                stats.skipped += 1
                return
            rendered = await self.renderer.render(uow, delivery)
            if rendered is None:
                await self._finish(uow, delivery, "skipped", "recipient gone or paused")
                stats.skipped += 1
                return
            messenger = self.channels[delivery.channel]
        await self.pacer.wait_turn(rendered.address)
        started = time.monotonic()
        try:
            sent = await messenger.send(rendered.address, rendered.message)
        except RateLimited as error:
            self.pacer.pause(error.retry_after)
            stats.rate_limited += 1
            await self._retry(delivery_id, error.retry_after, "rate limited", count=False)
            return
        except Blocked:
            async with self.db.uow() as uow:
                delivery = await uow.session.get(Delivery, delivery_id)
                assert delivery is not None
                await self.renderer.on_blocked(uow, delivery, self.clock.now())
                await self._finish(uow, delivery, "failed", "recipient blocked the bot")
            stats.failed += 1
            return
        except PermanentFailure as error:
            async with self.db.uow() as uow:
                delivery = await uow.session.get(Delivery, delivery_id)
                assert delivery is not None
                await self._finish(uow, delivery, "failed", error.reason[:200])
            stats.failed += 1
            log.warning("delivery refused", extra={"delivery_id": delivery_id})
            return
        except TransientFailure as error:
            stats.retried += 1
            await self._retry(delivery_id, None, error.reason, count=True)
            return
        self.metrics_send_latency(time.monotonic() - started)
        async with self.db.uow() as uow:
            delivery = await uow.session.get(Delivery, delivery_id)
            assert delivery is not None
            delivery.status = "sent"
            delivery.sent_at = self.clock.now()
            delivery.message_id = sent.message_id
            delivery.lease_until = None
            await self.renderer.on_sent(uow, delivery, sent)
            await uow.commit()
        stats.sent += 1

    def metrics_send_latency(self, seconds: float) -> None:
        """Hook for metrics (the health server replaces it)."""

    async def _retry(
        self, delivery_id: int, after: float | None, reason: str, *, count: bool
    ) -> None:
        async with self.db.uow() as uow:
            delivery = await uow.session.get(Delivery, delivery_id)
            assert delivery is not None
            if count and delivery.attempts >= self.max_attempts:
                await self._finish(uow, delivery, "failed", f"gave up: {reason}"[:200])
                return
            if after is None:
                after = min(2.0**delivery.attempts, 300.0)
            if not count:
                delivery.attempts = max(0, delivery.attempts - 1)
            delivery.status = "pending"
            delivery.lease_until = None
            delivery.last_error = reason[:200]
            delivery.due_at = self.clock.now() + timedelta(seconds=after)
            await uow.commit()

    @staticmethod
    async def _finish(uow: UnitOfWork, delivery: Delivery, status: str, reason: str) -> None:
        delivery.status = status
        delivery.last_error = reason
        delivery.lease_until = None
        await uow.commit()
