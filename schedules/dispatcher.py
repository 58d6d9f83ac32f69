"""The dispatcher: claims due deliveries with a lease, sends them, marks them sent.

Nothing is lost: a row leaves ``pending`` only for ``sent``, ``failed`` (with its reason)
or ``skipped`` (too late for its window, or its recipient left). A worker that dies
after claiming leaves rows whose lease runs out; any worker then claims them again, so
a crash between sending and marking can duplicate at most the rows in flight.

Retries end by time, not by count: a row is tried again (with backoff capped at five
minutes) until its ``not_after`` (prompts), or until its kind's horizon after it was first
due (``retry_horizon``, three days unless a kind sets its own: alerts, digests and notices
are never given up within a day). When a whole channel fails (server errors and timeouts
for several addresses in a row) the channel is taken to be down: its rows wait for it
without using up tries, one probe at a time tests whether it is back, and ``outages()``
(shown on ``/healthz``) says since when. A notice that ``escalations`` names (the safety
alert) and that has not reached its recipient within minutes is also queued on another
channel (an email to the therapist), where that channel and an address exist.

Leases are in the database's time (:class:`db.clock.DatabaseTime`), never a worker's
own wall clock, so workers whose clocks disagree still agree on when a lease ends. They
are short (15 s) and a heartbeat renews them while a pass holds its rows, so the rows of
a worker that died are claimed again within seconds. Each claim gets a fresh
``lease_token``: every later change to a claimed row is an ``UPDATE ... WHERE lease_token
= <ours>``, so a worker that stalled past its lease (and whose rows another worker has
taken) can neither send them nor overwrite what the other worker recorded. Every send has
a timeout that ends inside the lease as last renewed, so no send is still under way when
another worker may take its row. Channels report 429s straight to the dispatcher (no
retries hidden in the Telegram library): the row goes back until ``retry_after``.

Limits are kept here, per process and per channel: each channel (Telegram private chats,
email, webhooks...) has its own :class:`Pacer`, with an overall rate and a minimum interval
between two messages to one address. Telegram's are the dispatcher's own
(``rate_per_second``, the process's share of the global budget, and ``per_chat_interval``);
other channels bring theirs in the channel registry. A 429 pauses every send on its
channel for its ``retry_after`` (or only sends to one address, when only it asked).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import SQLAlchemyError

from bot.channels.base import (
    Address,
    Blocked,
    ChannelLimits,
    Messenger,
    Outgoing,
    PermanentFailure,
    RateLimited,
    SendError,
    Sent,
    TransientFailure,
)
from bot.channels.budget import Grant, LocalWindow, Window
from bot.channels.registry import EMAIL, TELEGRAM, ChannelRegistry
from bot.core.clock import Clock
from bot.services.outbox import copy_to_channel
from db.clock import DatabaseTime
from db.engine import Database
from db.models import Delivery
from db.uow import UnitOfWork

log = logging.getLogger(__name__)

_REASON_LENGTH = 200  # Delivery.last_error's column size
_MAX_BACKOFF = 300.0
RETRY_HORIZON = timedelta(days=3)
"""How long a row without a ``not_after`` is retried after it was first due."""
_OUTAGE_FAILURES = 5  # failures in a row, to this many different addresses at least:
_OUTAGE_ADDRESSES = 3
_PROBE_FIRST, _PROBE_MAX = 1.0, 30.0  # seconds between probes of a channel that is down
_ESCALATE_EVERY = timedelta(seconds=20)
_MAX_RENDER_ATTEMPTS = 3
_FOLLOWUP_FIRST_RETRY = 5.0
_MARKABLE = ("claimed", "pending")  # a sent message is recorded even after its lease lapsed
_ENDED = ("sent", "failed", "skipped")
KEPT_PARAMS = frozenset(
    {
        "rule",
        "response_id",
        "response_ids",
        "outcome",  # a reveal's "shared" or "private": a discreet partner opens it later
        "link_id",
        "attempt",
        "practice_id",
        "endpoint",
        "id",
    }
)
"""What an ended row keeps of its parameters: ids and names, never text or ciphertext."""


def scrubbed(params: Mapping[str, Any]) -> dict[str, Any]:
    """A row's parameters once it has ended: no message text, no ciphertext, no names."""
    return {name: value for name, value in params.items() if name in KEPT_PARAMS}


_MAX_OUTAGE_WAIT = 30.0
_MARK_SENT_RETRY_DELAYS = (0.1, 0.3, 1.0, 3.0, 10.0)  # well inside any sensible lease


@dataclass(frozen=True)
class Rendered:
    """A delivery made ready: where it goes and what it says."""

    address: Address
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


class LeaseClock(Protocol):
    """The clock leases are written in: the database's (``DatabaseTime``), shared by all."""

    async def now(self) -> datetime: ...

    def estimate(self) -> datetime: ...


@dataclass
class _Claim:
    """One pass's claim: its token, its lease as last renewed, and the rows still ours."""

    token: str
    lease_until: datetime
    held: set[int]


@dataclass(frozen=True)
class Escalation:
    """A notice that must not wait: after ``after`` undelivered, also send it on ``channel``."""

    after: timedelta
    channel: str = EMAIL


ESCALATIONS: Mapping[str, Escalation] = {"alerts.notice": Escalation(timedelta(minutes=3))}
"""Notices (by catalog key) that also go by another channel when Telegram cannot deliver."""


@dataclass
class ChannelState:
    """Whether one channel works: recent failures, and since when it has been down."""

    recent: list[Address] = field(default_factory=list)
    down_since: datetime | None = None
    probe_at: datetime | None = None
    probe_interval: float = _PROBE_FIRST
    probing: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def succeeded(self) -> bool:
        """Record a send that went through; True when that ends an outage."""
        ended = self.down
        self.recent.clear()
        self.down_since = self.probe_at = None
        self.probe_interval = _PROBE_FIRST
        return ended

    def failed(self, address: Address, now: datetime) -> bool:
        """Record a transient failure; True when it starts an outage."""
        if self.down:
            self.probe_interval = min(self.probe_interval * 2, _PROBE_MAX)
            self.probe_at = now + timedelta(seconds=self.probe_interval)
            return False
        self.recent = [*self.recent[-(_OUTAGE_FAILURES - 1) :], address]
        if len(self.recent) < _OUTAGE_FAILURES or len(set(self.recent)) < _OUTAGE_ADDRESSES:
            return False
        self.down_since = now
        self.probe_at = now + timedelta(seconds=self.probe_interval)
        return True


class Pacer:
    """Keeps sends under an overall rate and a minimum interval per address (monotonic time).

    Addresses are chat ids, email addresses or URLs; one pacer serves one channel (or
    several that share an upstream budget, each with its own per-address ``interval``).

    With a ``window`` (:mod:`bot.channels.budget`; by default one in this process with
    ``window_limit`` slots, ``int(rate)`` unless given), sends keep Telegram's sliding
    window: a send takes a slot when it starts and gives it back one second after its
    answer, so no one-second window of arrivals holds more than the limit. ``urgent``
    turns (replies to a person) go first and may use every slot; bulk sends leave room for
    as many replies as came in the last second. ``window_limit=0`` turns the window off
    and spaces starts ``1/rate`` apart instead (the old rule).

    When the bot's rate limiter counts every request in the window itself
    (``counted_by_limiter``, the Telegram pacer of a running bot), :meth:`turn` keeps only
    the chat's turn and the 429 pauses: the slot is taken around the HTTP request, where
    its answer is seen at once.
    """

    def __init__(
        self,
        rate_per_second: float,
        per_chat_interval: float,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        window_limit: int | None = None,
        reserve: int = 10,
        window: Window | None = None,
    ) -> None:
        self.interval = 1.0 / rate_per_second
        self.per_chat_interval = per_chat_interval
        self._monotonic = monotonic
        self._sleep = sleep
        self._next_slot = 0.0
        self._chat_next: dict[Address, float] = {}
        self._paused_until = 0.0
        self._lock = asyncio.Lock()
        self._gates: dict[Address, asyncio.Lock] = {}
        self._gate_users: dict[Address, int] = {}
        limit = int(rate_per_second) if window_limit is None else max(window_limit, 0)
        if window is None and limit:
            window = LocalWindow(limit, max_reserve=min(reserve, limit - 1), monotonic=monotonic)
        self.window: Window | None = window
        self.counted_by_limiter = False
        self._bulk_lock = asyncio.Lock()
        self._urgent_waiting = 0

    @property
    def window_limit(self) -> int:
        """The window's size (0: no window)."""
        return self.window.limit if self.window is not None else 0

    async def _take(self, urgent: bool, chat: Address | None) -> Grant | None:
        """Wait for a slot in the window (urgent sends first); None without a window."""
        window = self.window
        if window is None:
            return None
        if urgent:
            self._urgent_waiting += 1
            try:
                while True:
                    grant, wait = await window.try_acquire(urgent=True, chat=chat)
                    if grant is not None:
                        return grant
                    await window.urgent_waiting()
                    await self._sleep(min(max(wait, 0.001), 0.25))
            finally:
                self._urgent_waiting -= 1
        # Bulk sends queue here one at a time (in order), behind any urgent one.
        async with self._bulk_lock:
            while True:
                paused = self._paused_until - self._monotonic()
                if paused > 0:
                    await self._sleep(paused)  # a 429 that came in meanwhile holds bulk sends
                    continue
                if self._urgent_waiting:
                    await self._sleep(0.002)
                    continue
                grant, wait = await window.try_acquire(urgent=False, chat=chat)
                if grant is not None:
                    return grant
                await self._sleep(min(max(wait, 0.001), 0.25))

    async def _give_back(self, grant: Grant | None, chat: Address | None, spacing: float) -> None:
        if grant is not None and self.window is not None:
            try:
                await self.window.release(grant, chat=chat, spacing=spacing)
            except Exception:
                # A shared window that is away: the slot frees itself after its hold.
                log.warning("could not give a slot back to the send budget", exc_info=True)

    @contextlib.asynccontextmanager
    async def slot(
        self, *, urgent: bool, chat: Address | None = None, spacing: float = 0.0
    ) -> AsyncIterator[None]:
        """One request in the window: a slot from its start until one second after its answer."""
        grant = await self._take(urgent, chat)
        try:
            yield
        finally:
            await self._give_back(grant, chat, spacing)

    @contextlib.asynccontextmanager
    async def urgent_turn(
        self, chat: Address | None = None, interval: float | None = None
    ) -> AsyncIterator[None]:
        """A reply to a person: the chat's turn and a slot before any bulk send, no queue."""
        spacing = self.per_chat_interval if interval is None else interval
        while self._paused_until > self._monotonic():
            await self._sleep(self._paused_until - self._monotonic())
        if chat is None:
            async with self.slot(urgent=True):
                yield
            return
        async with self._chat_gate(chat):
            wait = self._chat_next.get(chat, 0.0) - self._monotonic()
            if wait > 0:
                await self._sleep(wait)
            try:
                async with self.slot(urgent=True, chat=chat, spacing=spacing):
                    yield
            finally:
                self._chat_next[chat] = max(
                    self._chat_next.get(chat, 0.0), self._monotonic() + spacing
                )

    def pause(self, seconds: float, chat: Address | None = None) -> None:
        """Send nothing for ``seconds`` (after a 429); to ``chat`` only, when given."""
        until = self._monotonic() + seconds
        if chat is None:
            self._paused_until = max(self._paused_until, until)
        else:
            self._chat_next[chat] = max(self._chat_next.get(chat, 0.0), until)

    async def shared_pause(self, seconds: float, chat: Address | None = None) -> None:
        """A 429: pause here and in the shared window, for every worker."""
        self.pause(seconds, chat)
        if self.window is not None:
            try:
                await self.window.pause(seconds, chat)
            except Exception:
                log.warning("could not share a 429 pause", exc_info=True)

    async def wait_turn(self, chat: Address, interval: float | None = None) -> None:
        """Wait until both the overall budget and this chat allow one more message.

        Without a window, starts are spaced ``1/rate`` apart; with one, the window is the
        overall limit and only the chat's interval and the 429 pauses are waited for here.
        """
        spacing = self.per_chat_interval if interval is None else interval
        spaced = self.window is None
        while True:
            async with self._lock:
                now = self._monotonic()
                overall = max(now, self._next_slot if spaced else now, self._paused_until)
                own = self._chat_next.get(chat, 0.0)
                reserved = own <= overall
                if reserved:
                    at = overall
                    if spaced:
                        self._next_slot = at + self.interval
                    self._chat_next[chat] = at + spacing
                    if len(self._chat_next) > 10_000:
                        self._chat_next = {c: t for c, t in self._chat_next.items() if t > now}
                else:
                    # This chat must wait longer than the channel (its interval, or a pause of
                    # its own): wait without taking an overall slot that would hold others up.
                    at = own
            delay = at - self._monotonic()
            if delay > 0:
                await self._sleep(delay)
            # A 429 that arrived while we slept holds this send back too.
            if reserved and self._paused_until <= self._monotonic():
                return

    @contextlib.asynccontextmanager
    async def _chat_gate(self, chat: Address) -> AsyncIterator[None]:
        """One send at a time into a chat, in the order they asked."""
        gate = self._gates.get(chat)
        if gate is None:
            gate = self._gates[chat] = asyncio.Lock()
        self._gate_users[chat] = self._gate_users.get(chat, 0) + 1
        try:
            async with gate:
                yield
        finally:
            users = self._gate_users[chat] - 1
            if users:
                self._gate_users[chat] = users
            else:
                del self._gate_users[chat]
                del self._gates[chat]

    @contextlib.asynccontextmanager
    async def turn(self, chat: Address, interval: float | None = None) -> AsyncIterator[None]:
        """Wait for a turn, and hold ``chat`` until the send made in it has been answered.

        ``interval`` overrides the pacer's per-chat interval (a channel sharing this pacer).
        """
        spacing = self.per_chat_interval if interval is None else interval
        async with self._chat_gate(chat):
            await self.wait_turn(chat, spacing)
            grant = None if self.counted_by_limiter else await self._take(False, chat)
            try:
                yield
            finally:
                await self._give_back(grant, chat, spacing)
                # Telegram counts a message when it arrives: spacing the next one from
                # this answer (not from this start) keeps network jitter from bunching
                # two messages to one chat inside a second.
                self._chat_next[chat] = max(
                    self._chat_next.get(chat, 0.0), self._monotonic() + spacing
                )


@dataclass(frozen=True)
class _Prepared:
    rendered: Rendered
    messenger: Messenger
    pacer: Pacer
    interval: float | None


@dataclass
class Dispatcher:
    """Sends the outbox through the channels' Messengers, keeping every row accounted for.

    ``channels`` maps a delivery's ``channel`` to its Messenger (a
    :class:`~bot.channels.registry.ChannelRegistry` also brings each channel's limits);
    ``limits`` overrides those. ``pacer``, ``rate_per_second`` and ``per_chat_interval``
    are the default channel's (Telegram private chats).
    """

    db: Database
    clock: Clock
    channels: Mapping[str, Messenger]
    renderer: Renderer
    rate_per_second: float = 30.0
    per_chat_interval: float = 1.0
    lease: timedelta = timedelta(seconds=15)
    send_timeout: float = 10.0
    """The longest one send may take (less when the lease has less left)."""
    lease_clock: LeaseClock | None = None
    """The database's time (the default) or, in tests, any clock all workers share."""
    heartbeat: bool = True
    batch_size: int = 100
    concurrency: int = 8
    retry_horizon: timedelta = RETRY_HORIZON
    horizons: Mapping[str, timedelta] = field(default_factory=dict)
    """Per delivery kind, instead of ``retry_horizon``."""
    escalations: Mapping[str, Escalation] = field(default_factory=lambda: dict(ESCALATIONS))
    worker_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    pacer: Pacer | None = None
    alive_at: float = 0.0
    limits: Mapping[str, ChannelLimits] | None = None
    _pacers: dict[str, Pacer] = field(default_factory=dict, init=False, repr=False)
    _states: dict[str, ChannelState] = field(default_factory=dict, init=False, repr=False)
    _escalated_at: datetime | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.pacer is None:
            self.pacer = Pacer(self.rate_per_second, self.per_chat_interval)
        if self.lease_clock is None:
            self.lease_clock = DatabaseTime(self.db)

    @property
    def _margin(self) -> timedelta:
        """How long before its lease ends a send must have finished."""
        return min(timedelta(seconds=2), self.lease / 5)

    def channel_limits(self, channel: str) -> ChannelLimits | None:
        """A channel's own limits; None for the default channel (and any without limits)."""
        if self.limits is not None and channel in self.limits:
            return self.limits[channel]
        if isinstance(self.channels, ChannelRegistry):
            return self.channels.limits.get(channel)
        return None

    def pacer_for(self, channel: str) -> tuple[Pacer, float | None]:
        """The pacer a channel's sends wait on, and its per-address interval (None: the pacer's)."""
        assert self.pacer is not None
        limits = self.channel_limits(channel) if channel != TELEGRAM else None
        if limits is None:
            return self.pacer, None
        if limits.pace_with is not None:
            shared = self.channel_limits(limits.pace_with) if limits.pace_with != TELEGRAM else None
            name, own = limits.pace_with, shared
        else:
            name, own = channel, limits
        if own is None:
            return self.pacer, limits.per_address_interval
        pacer = self._pacers.get(name)
        if pacer is None:
            pacer = self._pacers[name] = Pacer(own.rate_per_second, own.per_address_interval)
        return pacer, limits.per_address_interval

    async def claim_due(self, limit: int) -> list[int]:
        """Claim up to ``limit`` due rows (and rows whose lease ran out) for this worker."""
        _, rows = await self._claim(limit)
        return [delivery.id for delivery in rows]

    async def _claim(self, limit: int) -> tuple[_Claim, list[Delivery]]:
        """Claim due rows; each comes back claimed under one fresh token for this pass."""
        assert self.lease_clock is not None
        now = self.clock.now()
        leases_now = await self.lease_clock.now()
        due = or_(
            (Delivery.status == "pending") & (Delivery.due_at <= now),
            (Delivery.status == "claimed") & (Delivery.lease_until < leases_now),
        )
        waiting = [
            name
            for name, state in self._states.items()
            if state.probe_at is not None and state.probe_at > now
        ]
        if waiting:  # channels that are down: nothing to send on them before the next probe
            due = due & Delivery.channel.not_in(waiting)
        candidates = select(Delivery.id).where(due).order_by(Delivery.due_at, Delivery.id)
        candidates = candidates.limit(limit)
        if self.db.is_postgres:
            candidates = candidates.with_for_update(skip_locked=True)
        # A CTE, not `id IN (subquery)`: PostgreSQL may run an IN subquery again for every
        # row it scans (a nested-loop semi join), re-sorting and re-locking each time.
        claimable = candidates.cte("claimable")
        # One statement: on SQLite it holds the write lock from the choice to the change, so
        # two processes cannot take the same row; on PostgreSQL the row locks do that and
        # the repeated `due` condition is re-checked on the newest row version.
        claim = _Claim(uuid.uuid4().hex, leases_now + self.lease, set())
        statement = (
            update(Delivery)
            .where(Delivery.id == claimable.c.id, due)
            .values(
                status="claimed",
                lease_until=claim.lease_until,
                lease_token=claim.token,
                attempts=Delivery.attempts + 1,
            )
            .returning(Delivery)
            .execution_options(synchronize_session=False)
        )
        async with self.db.uow() as uow:
            claimed = list((await uow.session.scalars(statement)).all())
            await uow.commit()
        claim.held = {delivery.id for delivery in claimed}
        return claim, sorted(claimed, key=lambda delivery: delivery.id)

    async def _renew(self, claim: _Claim) -> None:
        """Extend the lease of every row this pass still holds (the heartbeat)."""
        assert self.lease_clock is not None
        if not claim.held:
            return
        until = await self.lease_clock.now() + self.lease
        statement = (
            update(Delivery)
            .where(Delivery.lease_token == claim.token, Delivery.status == "claimed")
            .values(lease_until=until)
            .returning(Delivery.id)
            .execution_options(synchronize_session=False)
        )
        async with self.db.uow() as uow:
            renewed = set((await uow.session.scalars(statement)).all())
            await uow.commit()
        # What was not renewed is settled (by us) or was taken over: either way not to send.
        claim.held = renewed
        claim.lease_until = until

    async def _heartbeat(self, claim: _Claim) -> None:
        """Renew the pass's leases every third of a lease, until the pass ends."""
        while True:
            await asyncio.sleep(self.lease.total_seconds() / 3)
            try:
                await self._renew(claim)
            except Exception:
                # The database is away: sends get shorter timeouts, then none, until it is back.
                log.warning("lease renewal failed; trying again", exc_info=True)

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
        await self._escalate_late()
        await self._retry_followups()
        claim, claimed = await self._claim(self.batch_size)
        stats.claimed = len(claimed)
        if not claimed:
            return stats
        # One lane per recipient and channel, in the order the rows fell due: a person gets
        # their messages in that order (a row is rendered before it waits for its chat's
        # turn, so two of one chat's rows sent side by side could swap). Lanes run side by side.
        lanes: dict[tuple[str, str], list[Delivery]] = {}
        for delivery in sorted(claimed, key=lambda d: (d.due_at, d.id)):
            lanes.setdefault((delivery.recipient, delivery.channel), []).append(delivery)
        queue: asyncio.Queue[list[Delivery]] = asyncio.Queue()
        for lane in lanes.values():
            queue.put_nowait(lane)

        async def worker() -> None:
            while True:
                try:
                    lane = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                for delivery in lane:
                    try:
                        await self._deliver(delivery, claim, stats)
                    except Exception:
                        # Whatever went wrong (the database went away), the row keeps its
                        # lease and is claimed again once it runs out: nothing is lost.
                        log.exception("delivery %s left to its lease", delivery.id)

        heartbeat = asyncio.create_task(self._heartbeat(claim)) if self.heartbeat else None
        try:
            await asyncio.gather(*(worker() for _ in range(min(self.concurrency, len(lanes)))))
        finally:
            if heartbeat is not None:
                heartbeat.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await heartbeat
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
        failures = 0
        while not stop.is_set():
            # Cleared before the pass, so a wake-up that comes during it is not lost.
            wake.clear()
            try:
                stats = await self.run_once()
            except Exception:
                # The database (or something else) is down: wait longer each time, and
                # keep trying; rows stay in the outbox meanwhile.
                failures += 1
                log.exception("dispatch pass failed (%d in a row); trying again", failures)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        stop.wait(), timeout=min(idle * 2 ** (failures - 1), _MAX_OUTAGE_WAIT)
                    )
                continue
            failures = 0
            if stats.claimed:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=idle)

    async def _escalate_late(self) -> None:
        """Queue on their other channel the urgent notices that have waited too long."""
        now = self.clock.now()
        if not self.escalations or (
            self._escalated_at is not None and now - self._escalated_at < _ESCALATE_EVERY
        ):
            return
        self._escalated_at = now
        usable = {k: e for k, e in self.escalations.items() if e.channel in self.channels}
        if not usable:
            return
        oldest = now - min(e.after for e in usable.values())
        late = select(Delivery).where(
            Delivery.status.in_(("pending", "claimed")),
            Delivery.kind == "notice",
            Delivery.key.in_(list(usable)),
            Delivery.channel == TELEGRAM,
            Delivery.created_at <= oldest,
        )
        try:
            async with self.db.uow() as uow:
                for row in (await uow.session.scalars(late)).all():
                    escalation = usable[row.key]
                    if row.created_at <= now - escalation.after and await copy_to_channel(
                        uow, row, escalation.channel, now
                    ):
                        log.warning(
                            "urgent notice late on Telegram; also sent by %s",
                            escalation.channel,
                            extra={"delivery_id": row.id},
                        )
                await uow.commit()
        except Exception:
            # Telegram still has the row; the next pass tries again.
            log.exception("could not queue late urgent notices on another channel")

    def metrics_send_latency(self, seconds: float) -> None:
        """Hook for metrics (the health server replaces it)."""

    def outages(self) -> dict[str, datetime]:
        """The channels this process finds down, and since when."""
        return {
            name: state.down_since
            for name, state in self._states.items()
            if state.down_since is not None
        }

    def _state(self, channel: str) -> ChannelState:
        state = self._states.get(channel)
        if state is None:
            state = self._states[channel] = ChannelState()
        return state

    def _give_up_at(self, delivery: Delivery) -> datetime:
        """When retrying this row ends: its window, or its kind's horizon."""
        if delivery.not_after is not None:
            return delivery.not_after
        horizon = self.horizons.get(delivery.kind, self.retry_horizon)
        return delivery.created_at + horizon

    async def _deliver(self, delivery: Delivery, claim: _Claim, stats: DispatchStats) -> None:
        token = claim.token
        try:
            prepared = await self._prepare(delivery, token, stats)
        except Exception as error:
            log.exception("delivery %s could not be prepared", delivery.id)
            stats.retried += 1
            reason = f"render failed: {error!r}"
            # A database that is away is worth waiting for; a row we cannot render is not.
            counted = not isinstance(error, SQLAlchemyError | OSError)
            await self._retry(delivery, token, None, reason, stats, render_failure=counted)
            return
        if prepared is None:
            return
        rendered = prepared.rendered
        state = self._state(delivery.channel)
        probing = False
        if state.down:
            allowed, probing = await self._may_probe(state)
            if not allowed:
                await self._wait_for_channel(delivery, token, state, stats)
                return
        try:
            # The outcome is recorded before the chat's turn ends, so the next message to
            # this chat sees it (a 403 marks the partner unreachable once, not once per message).
            async with prepared.pacer.turn(rendered.address, prepared.interval):
                await self._send_in_turn(delivery, claim, prepared, stats, state)
        finally:
            if probing:
                state.probing.release()

    async def _may_probe(self, state: ChannelState) -> tuple[bool, bool]:
        """Whether a send may go to a channel that is down, and whether it is the probe."""
        if state.probe_at is not None and self.clock.now() < state.probe_at:
            return False, False
        if state.probing.locked():
            # Another send is probing: its outcome decides for this one too.
            async with state.probing:
                pass
            return not state.down, False
        await state.probing.acquire()  # released by _deliver once the probe is answered
        return True, True

    async def _wait_for_channel(
        self, delivery: Delivery, token: str, state: ChannelState, stats: DispatchStats
    ) -> None:
        """Put a row back until its channel's next probe, keeping its tries untouched."""
        assert state.probe_at is not None and state.down_since is not None
        after = max((state.probe_at - self.clock.now()).total_seconds(), 0.0)
        reason = f"channel {delivery.channel} down since {state.down_since:%Y-%m-%d %H:%M} UTC"
        stats.retried += 1
        await self._retry(delivery, token, after, reason, stats)

    async def _send_in_turn(
        self,
        delivery: Delivery,
        claim: _Claim,
        prepared: _Prepared,
        stats: DispatchStats,
        state: ChannelState,
    ) -> None:
        """Send one prepared row in its turn, and record what came of it."""
        token = claim.token
        rendered = prepared.rendered
        if delivery.not_after is not None and self.clock.now() > delivery.not_after:
            # The wait for a turn (a 429 pause) outlasted the delivery's window.
            ending = self._final("skipped", "too late for its window")
            if await self._settle(delivery.id, token, ending):
                stats.skipped += 1
            return
        timeout = await self._time_to_send(delivery.id, claim)
        if timeout is None:
            return
        started = time.monotonic()
        try:
            sent = await asyncio.wait_for(
                prepared.messenger.send(rendered.address, rendered.message), timeout
            )
        except SendError as error:
            if not isinstance(error, TransientFailure | RateLimited):
                state.succeeded()  # the channel answered: it is up, even if it refused
            await self._after_refusal(
                delivery, token, error, stats, prepared.pacer, rendered.address, state
            )
            return
        except TimeoutError:
            # Cut off inside our lease: no other worker can have taken the row meanwhile.
            late = TransientFailure(f"no answer within {timeout:.1f} s")
            await self._after_refusal(
                delivery, token, late, stats, prepared.pacer, rendered.address, state
            )
            return
        except Exception as error:
            # An error we do not know: the message may or may not have gone out.
            log.exception("delivery %s: unexpected send error", delivery.id)
            self._channel_failed(delivery.channel, state, rendered.address)
            stats.retried += 1
            await self._retry(delivery, token, None, repr(error), stats)
            return
        if state.succeeded():
            log.warning("channel back up", extra={"channel": delivery.channel})
        self.metrics_send_latency(time.monotonic() - started)
        await self._mark_sent(delivery.id, sent, stats)

    async def _time_to_send(self, delivery_id: int, claim: _Claim) -> float | None:
        """How long this send may take, inside our lease; None when the row is no longer ours."""
        assert self.lease_clock is not None
        for renewed in (False, True):
            if delivery_id not in claim.held:
                break
            left = claim.lease_until - self._margin - await self.lease_clock.now()
            if left >= timedelta(seconds=min(self.send_timeout, 1.0)) or renewed:
                if left <= timedelta():
                    break
                return min(self.send_timeout, left.total_seconds())
            try:
                await self._renew(claim)  # little left (a long wait for a turn): renew first
            except Exception:
                log.warning("lease renewal before a send failed", exc_info=True)
                break
        log.warning("delivery %s: lease lost before sending; not sent here", delivery_id)
        return None

    def _channel_failed(self, channel: str, state: ChannelState, address: Address) -> None:
        if state.failed(address, self.clock.now()):
            log.warning("channel down: every recent send failed", extra={"channel": channel})

    async def _after_refusal(
        self,
        delivery: Delivery,
        token: str,
        error: SendError,
        stats: DispatchStats,
        pacer: Pacer,
        address: Address,
        state: ChannelState,
    ) -> None:
        """Record what the channel's refusal means for the row (and its recipient)."""
        if isinstance(error, RateLimited):
            pacer.pause(error.retry_after, address if error.address_only else None)
            stats.rate_limited += 1
            await self._retry(delivery, token, error.retry_after, "rate limited", stats)
        elif isinstance(error, Blocked):
            if await self._settle(
                delivery.id,
                token,
                self._final("failed", "recipient blocked the bot"),
                hook=lambda uow, row: self.renderer.on_blocked(uow, row, self.clock.now()),
                fallback="recipient blocked the bot; marking them unreachable failed",
            ):
                stats.failed += 1
        elif isinstance(error, PermanentFailure):
            if await self._settle(delivery.id, token, self._final("failed", error.reason)):
                stats.failed += 1
            log.warning("delivery refused", extra={"delivery_id": delivery.id})
        else:
            reason = error.reason if isinstance(error, TransientFailure) else repr(error)
            self._channel_failed(delivery.channel, state, address)
            stats.retried += 1
            if state.down:
                # The channel is down, not this row: wait for its next probe, tries untouched.
                after = max((state.probe_at or self.clock.now()) - self.clock.now(), timedelta())
                await self._retry(delivery, token, after.total_seconds(), reason, stats)
            else:
                await self._retry(delivery, token, None, reason, stats)

    async def _prepare(
        self, delivery: Delivery, token: str, stats: DispatchStats
    ) -> _Prepared | None:
        """Render a claimed row; None when it ends here instead (too late, gone, no channel)."""
        ending: tuple[str, str] | None = None
        rendered: Rendered | None = None
        messenger = self.channels.get(delivery.channel)
        now = self.clock.now()
        if delivery.not_after is not None and now > delivery.not_after:
            ending = ("skipped", "too late for its window")
        elif now > self._give_up_at(delivery):
            last = delivery.last_error or "out of time"
            ending = ("failed", f"gave up after {delivery.attempts - 1} attempts: {last}")
        elif messenger is None:
            ending = ("failed", f"no messenger for channel {delivery.channel!r}")
        else:
            async with self.db.uow() as uow:
                rendered = await self.renderer.render(uow, delivery)
            if rendered is None:
                ending = ("skipped", "recipient gone or paused")
        if ending is not None or rendered is None or messenger is None:
            status, reason = ending or ("skipped", "recipient gone or paused")
            # Nothing was tried in this claim: it does not count.
            values = {**self._final(status, reason), "attempts": max(0, delivery.attempts - 1)}
            if await self._settle(delivery.id, token, values):
                setattr(stats, status, getattr(stats, status) + 1)
            return None
        return _Prepared(rendered, messenger, *self.pacer_for(delivery.channel))

    async def _mark_sent(self, delivery_id: int, sent: Sent, stats: DispatchStats) -> None:
        """Record a sent row and what it starts; a failed follow-up is kept to be retried.

        The two are kept apart: a database that fails the mark is waited out (the message is
        out, and sending it again when the lease ends would repeat it), while a follow-up
        that fails (``on_sent`` raising) leaves the row sent with ``followup_due_at`` set, so
        :meth:`_retry_followups` runs it again later, never dropping it.
        """
        stats.sent += 1
        values: dict[str, Any] = {
            "status": "sent",
            "sent_at": self.clock.now(),
            "message_id": sent.message_id or None,  # 0: the channel has no message ids
            "lease_until": None,
            "lease_token": None,
        }
        broke: list[BaseException] = []

        async def on_sent(uow: UnitOfWork, delivery: Delivery) -> None:
            try:
                await self.renderer.on_sent(uow, delivery, sent)
            except Exception as error:
                broke.append(error)
                raise

        # The message is out: record it even if our lease lapsed meanwhile (a row another
        # worker retried must not be sent a second time later), and ride out a short database
        # hiccup rather than leave the row to be sent again when its lease runs out.
        marked = False
        for delay in (*_MARK_SENT_RETRY_DELAYS, None):
            broken_before = bool(broke)
            try:
                if broke:
                    log.warning("delivery %s: follow-up failed; kept to retry", delivery_id)
                    later = self.clock.now() + timedelta(seconds=_FOLLOWUP_FIRST_RETRY)
                    kept = {
                        **values,
                        "followup_due_at": later,
                        "last_error": "sent; what it starts failed, trying again",
                    }
                    marked = await self._settle(delivery_id, None, kept, allowed=_MARKABLE)
                else:
                    marked = await self._settle(
                        delivery_id, None, values, hook=on_sent, allowed=_MARKABLE
                    )
                break
            except Exception:
                if broke and not broken_before:
                    continue  # the follow-up failed just now: record the send alone, at once
                if delay is None:
                    raise
                log.warning("delivery %s sent; recording it failed, trying again", delivery_id)
                await asyncio.sleep(delay)
        if not marked:
            log.warning("delivery %s was sent here and elsewhere", delivery_id)

    async def _retry_followups(self) -> int:
        """Run again the follow-ups (``on_sent``) that failed after a send; how many succeeded."""
        now = self.clock.now()
        due = (
            select(Delivery.id, Delivery.followup_due_at, Delivery.sent_at)
            .where(Delivery.status == "sent", Delivery.followup_due_at <= now)
            .order_by(Delivery.followup_due_at)
            .limit(self.batch_size)
        )
        async with self.db.uow() as uow:
            waiting = list((await uow.session.execute(due)).all())
        done = 0
        for delivery_id, due_at, sent_at in waiting:
            # Taken by the conditional update (another worker may be retrying it too), and
            # the follow-up runs in the same transaction: both happen, or neither.
            take = (
                update(Delivery)
                .where(Delivery.id == delivery_id, Delivery.followup_due_at == due_at)
                .values(followup_due_at=None, last_error=None)
                .returning(Delivery)
                .execution_options(synchronize_session=False)
            )
            try:
                async with self.db.uow() as uow:
                    row = (await uow.session.scalars(take)).one_or_none()
                    if row is None:
                        continue
                    await self.renderer.on_sent(uow, row, Sent(row.message_id or 0))
                    await self._scrub(uow, row)
                    await uow.commit()
                done += 1
            except Exception:
                log.exception("delivery %s: follow-up failed again", delivery_id)
                # Waits about as long again as it has been failing (10 s to 5 minutes).
                waited = (now - (sent_at or now)).total_seconds()
                later = now + timedelta(seconds=min(max(waited, 10.0), _MAX_BACKOFF))
                again = (
                    update(Delivery)
                    .where(Delivery.id == delivery_id, Delivery.followup_due_at == due_at)
                    .values(followup_due_at=later)
                    .execution_options(synchronize_session=False)
                )
                with contextlib.suppress(Exception):
                    async with self.db.uow() as uow:
                        await uow.session.execute(again)
                        await uow.commit()
        return done

    async def _retry(
        self,
        delivery: Delivery,
        token: str,
        after: float | None,
        reason: str,
        stats: DispatchStats,
        *,
        render_failure: bool = False,
    ) -> None:
        """Put a row back for later, or end it when its window or horizon is over.

        ``after`` None backs off (doubling, capped); a given ``after`` (a 429's
        ``retry_after``, a channel's next probe) is the channel's doing, not a failed try,
        so the claim's count is given back. A row we cannot render ends after a few tries.
        """
        if render_failure and delivery.attempts >= _MAX_RENDER_ATTEMPTS:
            reason = f"gave up after {delivery.attempts} attempts: {reason}"
            if await self._settle(delivery.id, token, self._final("failed", reason)):
                stats.failed += 1
            return
        counted = after is None
        if after is None:
            after = min(2.0**delivery.attempts, _MAX_BACKOFF)
        due = self.clock.now() + timedelta(seconds=after)
        if delivery.not_after is not None and due > delivery.not_after:
            reason = f"too late for its window (last try: {reason})"
            if await self._settle(delivery.id, token, self._final("skipped", reason)):
                stats.skipped += 1
            return
        give_up = self._give_up_at(delivery)
        if due > give_up:
            if give_up - self.clock.now() > timedelta(seconds=1):
                due = give_up  # one last try at the end of the horizon
            else:
                tries = delivery.attempts if counted else delivery.attempts - 1
                reason = f"gave up after {tries} attempts: {reason}"
                if await self._settle(delivery.id, token, self._final("failed", reason)):
                    stats.failed += 1
                return
        values: dict[str, Any] = {
            "status": "pending",
            "lease_until": None,
            "lease_token": None,
            "last_error": reason[:_REASON_LENGTH],
            "due_at": due,
            "attempts": delivery.attempts if counted else max(0, delivery.attempts - 1),
        }
        await self._settle(delivery.id, token, values)

    @staticmethod
    async def _scrub(uow: UnitOfWork, delivery: Delivery) -> None:
        """Drop what the row no longer needs once it has ended (what it said, above all)."""
        kept = scrubbed(delivery.params)
        if kept != delivery.params:
            await uow.session.execute(
                update(Delivery)
                .where(Delivery.id == delivery.id)
                .values(params=kept)
                .execution_options(synchronize_session=False)
            )

    @staticmethod
    def _final(status: str, reason: str) -> dict[str, Any]:
        return {
            "status": status,
            "last_error": reason[:_REASON_LENGTH],
            "lease_until": None,
            "lease_token": None,
        }

    async def _settle(
        self,
        delivery_id: int,
        token: str | None,
        values: dict[str, Any],
        *,
        hook: Callable[[UnitOfWork, Delivery], Awaitable[None]] | None = None,
        fallback: str | None = None,
        allowed: tuple[str, ...] = ("claimed",),
    ) -> bool:
        """Change a row we hold (``token``) and run ``hook`` in the same transaction.

        False when the row is no longer ours. With a ``fallback`` reason, a failing hook does
        not keep the change from being recorded (what the channel did cannot be undone).
        """
        conditions = [Delivery.id == delivery_id, Delivery.status.in_(allowed)]
        if token is not None:
            conditions.append(Delivery.lease_token == token)
        statement = (
            update(Delivery)
            .where(*conditions)
            .values(**values)
            .returning(Delivery)
            .execution_options(synchronize_session=False)
        )
        try:
            async with self.db.uow() as uow:
                delivery = (await uow.session.scalars(statement)).one_or_none()
                if delivery is None:
                    return False
                if hook is not None:
                    await hook(uow, delivery)
                if values.get("status") in _ENDED and values.get("followup_due_at") is None:
                    await self._scrub(uow, delivery)
                await uow.commit()
            return True
        except Exception:
            if hook is None or fallback is None:
                raise
            log.exception("delivery %s: follow-up failed; recording the outcome alone", delivery_id)
        values = {**values, "last_error": fallback}
        return await self._settle(delivery_id, token, values, allowed=allowed)
