"""The outbox dispatcher loses no message and sends none twice, on both databases.

Every test drives the real dispatcher and the real Telegram adapter over real HTTP to the
fake Bot API, with rows queued through ``bot.services.outbox.enqueue``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import re
import sys
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import cast

import pytest
from sqlalchemy import select, text
from telegram import Bot
from telegram.request import HTTPXRequest

from bot.channels.base import Address, Messenger, Outgoing, Sent
from bot.channels.telegram import TelegramMessenger
from bot.core.clock import ManualClock
from bot.services.delivery_render import DyadRenderer, KindRenderer
from bot.services.outbox import enqueue
from db.engine import Database
from db.models import Couple, Delivery, DeliveryKind, Partner, Practice, Therapist
from db.uow import UnitOfWork
from fakebotapi import FakeBotAPI, RateLimits
from schedules.dispatcher import Dispatcher, Pacer
from tests.conftest import open_database, release_schema

ROOT = Path(__file__).resolve().parents[2]
THERAPIST_CHAT = 500
GOAL = re.compile(r"set by your therapist: (note \d+)$")
LEASE = timedelta(seconds=15)  # the dispatcher's default lease


# Fixtures and helpers --------------------------------------------------------------------


@pytest.fixture
async def fake(clock: ManualClock) -> AsyncIterator[FakeBotAPI]:
    """The fake Bot API, strict about Telegram's flood limits."""
    async with FakeBotAPI(clock=clock, limits=RateLimits(), timeout_delay=1.0) as api:
        yield api


@pytest.fixture
async def lax_fake(clock: ManualClock) -> AsyncIterator[FakeBotAPI]:
    """The fake Bot API without flood limits, for bulk sends."""
    async with FakeBotAPI(clock=clock) as api:
        yield api


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def shared_db(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[Database, str | None]]:
    """A real database other processes can open too (with its PostgreSQL schema, if any)."""
    database, schema = await open_database(request.param, tmp_path)
    try:
        yield database, schema
    finally:
        await database.dispose()
        if schema is not None:
            await release_schema(schema)


@contextlib.asynccontextmanager
async def telegram(fake: FakeBotAPI, read_timeout: float = 5.0) -> AsyncIterator[Messenger]:
    """The real Telegram adapter over a real PTB Bot pointed at the fake."""
    request = HTTPXRequest(read_timeout=read_timeout)
    async with Bot(fake.token, base_url=fake.base_url, request=request) as bot:
        yield TelegramMessenger(bot)


class ManualLeases:
    """Leases on the test's manual clock, which every dispatcher of the test shares.

    Production leases are in the database's time (``db.clock.DatabaseTime``); tests that
    let a lease run out move the manual clock instead of waiting.
    """

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock

    async def now(self) -> datetime:
        return self.clock.now()

    def estimate(self) -> datetime:
        return self.clock.now()


def dispatcher(
    db: Database,
    clock: ManualClock,
    messenger: Messenger,
    *,
    rate_per_second: float = 1000.0,
    per_chat_interval: float = 0.0,
    renderer: DyadRenderer | None = None,
    **options: object,
) -> Dispatcher:
    """A dispatcher with Dyad's own renderer; unpaced unless a test is about pacing."""
    options.setdefault("lease_clock", ManualLeases(clock))
    return Dispatcher(
        db=db,
        clock=clock,
        channels={"telegram": messenger},
        renderer=renderer or DyadRenderer(),
        rate_per_second=rate_per_second,
        per_chat_interval=per_chat_interval,
        **options,  # type: ignore[arg-type]
    )


@dataclass
class Clinic:
    """A practice with one therapist and some joined couples, all with Telegram chats."""

    therapist: Therapist
    partners: list[Partner]


async def open_clinic(db: Database, fake: FakeBotAPI, now: datetime, couples: int) -> Clinic:
    """Enrol ``couples`` couples whose partners have both joined (chats 1001, 1002, ...)."""
    async with db.uow() as uow:
        practice = Practice(slug="north", name="North Practice", created_at=now)
        uow.session.add(practice)
        await uow.flush()
        therapist = Therapist(
            practice_id=practice.id,
            display_name="Dr Rivera",
            telegram_user_id=THERAPIST_CHAT,
            chat_id=THERAPIST_CHAT,
            created_at=now,
            joined_at=now,
        )
        uow.session.add(therapist)
        await uow.flush()
        rows = [
            Couple(
                practice_id=practice.id,
                therapist_id=therapist.id,
                handle=f"c{number}",
                label=f"Couple {number}",
                created_at=now,
            )
            for number in range(1, couples + 1)
        ]
        uow.session.add_all(rows)
        await uow.flush()
        partners = [
            Partner(
                couple_id=couple.id,
                slot=slot,
                display_name=f"{slot}{couple.handle}",
                telegram_user_id=chat,
                chat_id=chat,
                language="en",
                timezone="Europe/Madrid",
                window="evening",
                onboarding_step="done",
                consented_at=now,
                joined_at=now,
            )
            for index, couple in enumerate(rows)
            for slot, chat in (("A", 1001 + 2 * index), ("B", 1002 + 2 * index))
        ]
        uow.session.add_all(partners)
        await uow.commit()
    fake.add_user(THERAPIST_CHAT, "Ana", has_started=True)
    for partner in partners:
        assert partner.chat_id is not None
        fake.add_user(partner.chat_id, partner.display_name or "Partner", has_started=True)
    return Clinic(therapist, partners)


_notes = iter(range(1, 1_000_000))


async def queue_notes(
    db: Database,
    people: Sequence[Partner],
    each: int,
    due_at: datetime,
    *,
    not_after: datetime | None = None,
    goal: str | None = None,
    kind: DeliveryKind = "notice",
) -> list[int]:
    """Queue ``each`` numbered notices ("note 17") for every partner; returns their ids."""
    async with db.uow() as uow:
        before = set((await uow.session.scalars(select(Delivery.id))).all())
        for person in people:
            for _ in range(each):
                note = f"note {next(_notes)}"
                queued = await enqueue(
                    uow,
                    person,
                    kind=kind,
                    key="couple.goal_set",
                    dedupe_key=note,
                    due_at=due_at,
                    not_after=not_after,
                    couple_id=person.couple_id,
                    params={"goal": goal or note},
                )
                assert queued
        await uow.commit()
        after = set((await uow.session.scalars(select(Delivery.id))).all())
    return sorted(after - before)


async def rows(db: Database) -> dict[int, Delivery]:
    """Every outbox row by id."""
    async with db.uow() as uow:
        return {d.id: d for d in (await uow.session.scalars(select(Delivery))).all()}


async def drain(
    dispatchers: Sequence[Dispatcher], db: Database, clock: ManualClock, rounds: int = 12
) -> None:
    """Run the dispatchers until no row is pending or claimed, moving the clock for retries."""
    for _ in range(rounds):
        await asyncio.gather(*(d.run_until_idle() for d in dispatchers))
        unfinished = [d for d in (await rows(db)).values() if d.status in ("pending", "claimed")]
        if not unfinished:
            return
        clock.advance(timedelta(minutes=10))
    raise AssertionError(f"the outbox did not drain: {unfinished}")


def notes_received(fake: FakeBotAPI) -> Counter[str]:
    """How many times each numbered note reached anyone."""
    found = (GOAL.search(m.text) for m in fake.bot_messages)
    return Counter(match.group(1) for match in found if match)


# Exactly once, with several workers --------------------------------------------------------


async def start_worker(
    db: Database,
    schema: str | None,
    fake: FakeBotAPI,
    now: datetime,
    lease: timedelta = LEASE,
) -> asyncio.subprocess.Process:
    """A dispatcher in its own process (tests/integration/dispatch_worker.py), not yet sending."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.integration.dispatch_worker",
        db.url,
        schema or "-",
        fake.base_url,
        fake.token,
        now.isoformat(),
        str(lease.total_seconds()),
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def run_workers(workers: list[asyncio.subprocess.Process]) -> list[dict[str, int]]:
    """Start the workers together and wait for each one's stats."""
    for worker in workers:
        assert worker.stdout is not None and worker.stdin is not None
        ready = await worker.stdout.readline()
        if ready != b"ready\n":
            _, errors = await worker.communicate()
            raise AssertionError(f"worker did not start: {errors.decode()[-3000:]}")
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write(b"go\n")
        await worker.stdin.drain()
    outputs = await asyncio.gather(*(worker.communicate() for worker in workers))
    for worker, (_, errors) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, errors.decode()[-3000:]
    return [json.loads(out.decode().strip().splitlines()[-1]) for out, _ in outputs]


# 600 rows on each database: the two processes race for some 30 batches of 20 (on
# PostgreSQL each claim skips the rows the other one has locked).
ROWS_PER_PARTNER = {"postgresql": 3, "sqlite": 3}


async def test_two_worker_processes_send_every_delivery_exactly_once(
    shared_db: tuple[Database, str | None], lax_fake: FakeBotAPI, clock: ManualClock
) -> None:
    db, schema = shared_db
    workers = [await start_worker(db, schema, lax_fake, clock.now()) for _ in range(2)]
    try:
        # The workers start up while the outbox fills.
        clinic = await open_clinic(db, lax_fake, clock.now(), couples=100)
        ids = await queue_notes(db, clinic.partners, ROWS_PER_PARTNER[db.dialect], clock.now())
        assert len(ids) == 200 * ROWS_PER_PARTNER[db.dialect]
        first, second = await asyncio.wait_for(run_workers(workers), timeout=120)
    finally:
        for worker in workers:
            if worker.returncode is None:
                worker.kill()
                await worker.wait()

    assert first["sent"] > 0 and second["sent"] > 0, "both workers took part"
    assert first["sent"] + second["sent"] == len(ids)
    received = notes_received(lax_fake)
    assert len(received) == len(ids)
    assert set(received.values()) == {1}
    outbox = await rows(db)
    assert {(d.status, d.attempts) for d in outbox.values()} == {("sent", 1)}
    # Each row records the very message its partner received.
    chats = {p.id: p.chat_id or 0 for p in clinic.partners}
    sent = {
        (m.chat_id, match.group(1)): m.message_id
        for m in lax_fake.bot_messages
        if (match := GOAL.search(m.text))
    }
    for delivery in outbox.values():
        assert delivery.partner_id is not None
        key = (chats[delivery.partner_id], delivery.dedupe_key)
        assert sent[key] == delivery.message_id
    assert lax_fake.internal_errors == []


async def test_rows_a_dead_worker_claimed_are_sent_once_its_lease_runs_out(
    db: Database, lax_fake: FakeBotAPI, clock: ManualClock
) -> None:
    clinic = await open_clinic(db, lax_fake, clock.now(), couples=5)
    ids = await queue_notes(db, clinic.partners, 3, clock.now())
    async with telegram(lax_fake) as messenger:
        dead = dispatcher(db, clock, messenger)
        assert await dead.claim_due(100) == ids
        del dead  # claimed, then killed before sending anything

        survivor = dispatcher(db, clock, messenger)
        early = await survivor.run_until_idle()
        assert early.claimed == 0
        assert lax_fake.bot_messages == []
        assert {d.status for d in (await rows(db)).values()} == {"claimed"}

        clock.advance(LEASE + timedelta(seconds=1))
        late = await survivor.run_until_idle()

    assert late.sent == len(ids) == 30
    received = notes_received(lax_fake)
    assert len(received) == 30 and set(received.values()) == {1}
    assert {(d.status, d.attempts) for d in (await rows(db)).values()} == {("sent", 2)}


class StalledMessenger:
    """A Messenger whose first send hangs until the test lets it go (a worker that stalls)."""

    def __init__(self, inner: Messenger) -> None:
        self.inner = inner
        self.stalled = asyncio.Event()
        self.resume = asyncio.Event()

    async def send(self, address: Address, message: Outgoing) -> Sent:
        self.stalled.set()
        await self.resume.wait()
        return await self.inner.send(address, message)

    async def edit(self, address: Address, message_id: int, message: Outgoing) -> None:
        await self.inner.edit(address, message_id, message)

    async def delete(self, address: Address, message_id: int) -> None:
        await self.inner.delete(address, message_id)


async def test_a_worker_that_outlived_its_lease_sends_nothing_more_than_its_send_in_flight(
    db: Database, lax_fake: FakeBotAPI, clock: ManualClock
) -> None:
    clinic = await open_clinic(db, lax_fake, clock.now(), couples=2)
    first_id, *others = await queue_notes(db, clinic.partners[:3], 1, clock.now())
    async with telegram(lax_fake) as messenger:
        slow, fast = StalledMessenger(messenger), StalledMessenger(messenger)
        stalled = dispatcher(db, clock, slow, concurrency=1)
        taker = dispatcher(db, clock, fast, concurrency=1)
        stalled_pass = asyncio.create_task(stalled.run_once())
        await slow.stalled.wait()  # holds three rows, is sending the first
        clock.advance(LEASE + timedelta(seconds=1))
        taking_pass = asyncio.create_task(taker.run_once())
        await fast.stalled.wait()  # took the three rows over, is sending the first

        slow.resume.set()
        stalled_stats = await stalled_pass
        fast.resume.set()
        taking_stats = await taking_pass

    assert stalled_stats.claimed == 3 and stalled_stats.sent == 1
    assert taking_stats.claimed == 3
    outbox = await rows(db)
    received = notes_received(lax_fake)
    # Only the row both workers had in flight went out twice (Telegram has no idempotency).
    assert received[outbox[first_id].dedupe_key] == 2
    assert [received[outbox[i].dedupe_key] for i in others] == [1, 1]
    assert {d.status for d in outbox.values()} == {"sent"}


# Faults from Telegram ------------------------------------------------------------------------


async def test_faults_lose_nothing_and_keep_one_message_per_second_per_chat(
    db: Database, fake: FakeBotAPI, clock: ManualClock
) -> None:
    clinic = await open_clinic(db, fake, clock.now(), couples=2)
    a1, b1, a2, b2 = clinic.partners
    await queue_notes(db, [a1, b1, a2], 3, clock.now())
    await queue_notes(db, [b2], 2, clock.now())
    fake.inject("sendMessage", chat_id=a1.chat_id, kind="429", retry_after=1)
    fake.inject("sendMessage", chat_id=b1.chat_id, kind="5xx")
    fake.inject("sendMessage", chat_id=a2.chat_id, kind="timeout")
    assert b2.chat_id is not None
    fake.users[b2.chat_id].blocked = True

    async with telegram(fake, read_timeout=0.5) as messenger:
        worker = dispatcher(db, clock, messenger, rate_per_second=30.0, per_chat_interval=1.0)
        await drain([worker], db, clock)

    assert {f.kind for f in fake.faults.fired} == {"429", "5xx", "timeout"}
    outbox = list((await rows(db)).values())
    for partner, extra_tries in ((a1, 0), (b1, 1), (a2, 1)):
        mine = [d for d in outbox if d.partner_id == partner.id]
        assert [d.status for d in mine] == ["sent"] * 3
        # A 429 is Telegram's pacing, not a failed try; a 5xx and a timeout are.
        assert sum(d.attempts for d in mine) == 3 + extra_tries
        assert partner.chat_id is not None
        got = fake.sent_to(partner.chat_id)
        assert sorted(m.message_id for m in got) == sorted(d.message_id or 0 for d in mine)
    assert set(notes_received(fake).values()) == {1} and len(notes_received(fake)) == 9
    blocked = [d for d in outbox if d.partner_id == b2.id]
    assert len(blocked) == 2
    assert all(d.status in ("failed", "skipped") and d.last_error for d in blocked)
    assert fake.sent_to(b2.chat_id) == []
    async with db.uow() as uow:
        gone = await uow.partners.get(b2.id)
        assert gone is not None and not gone.reachable and gone.unreachable_since is not None
    [notice] = fake.sent_to(THERAPIST_CHAT)
    assert "c2: partner B can no longer be reached" in notice.text

    assert fake.rate_limit_violations.requests == 0
    for chat in {call.params["chat_id"] for call in fake.calls_of("sendMessage")}:
        times = [c.time for c in fake.calls_of("sendMessage") if c.params["chat_id"] == chat]
        gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
        assert all(gap >= 1.0 for gap in gaps), (chat, gaps)
    assert fake.internal_errors == []


async def test_a_delivery_past_its_window_is_skipped_not_sent(
    db: Database, fake: FakeBotAPI, clock: ManualClock
) -> None:
    clinic = await open_clinic(db, fake, clock.now(), couples=1)
    hour = timedelta(hours=1)
    [late] = await queue_notes(
        db, clinic.partners[:1], 1, clock.now() - 2 * hour, not_after=clock.now() - hour
    )
    async with telegram(fake) as messenger:
        stats = await dispatcher(db, clock, messenger).run_until_idle()
    assert stats.skipped == 1
    row = (await rows(db))[late]
    assert (row.status, row.last_error) == ("skipped", "too late for its window")
    assert fake.calls_of("sendMessage") == []


async def test_a_retry_that_would_land_after_the_window_ends_the_row_now(
    db: Database, fake: FakeBotAPI, clock: ManualClock
) -> None:
    clinic = await open_clinic(db, fake, clock.now(), couples=1)
    [row_id] = await queue_notes(
        db, clinic.partners[:1], 1, clock.now(), not_after=clock.now() + timedelta(seconds=1)
    )
    fake.inject("sendMessage", kind="5xx")
    async with telegram(fake) as messenger:
        await dispatcher(db, clock, messenger).run_until_idle()
    row = (await rows(db))[row_id]
    assert row.status == "skipped"
    assert row.last_error == "too late for its window (last try: NetworkError)"
    assert len(fake.calls_of("sendMessage")) == 1


async def test_a_message_telegram_refuses_fails_with_its_reason_and_is_not_retried(
    db: Database, fake: FakeBotAPI, clock: ManualClock
) -> None:
    clinic = await open_clinic(db, fake, clock.now(), couples=1)
    [row_id] = await queue_notes(db, clinic.partners[:1], 1, clock.now(), goal="x" * 5000)
    async with telegram(fake) as messenger:
        worker = dispatcher(db, clock, messenger)
        await drain([worker], db, clock)
    row = (await rows(db))[row_id]
    assert (row.status, row.attempts) == ("failed", 1)
    assert row.last_error == "Message is too long"
    assert len(fake.calls_of("sendMessage")) == 1


async def test_a_row_that_keeps_failing_is_retried_until_its_horizon_then_fails(
    db: Database, lax_fake: FakeBotAPI, clock: ManualClock
) -> None:
    clinic = await open_clinic(db, lax_fake, clock.now(), couples=1)
    stuck, fine = clinic.partners
    [stuck_id] = await queue_notes(db, [stuck], 1, clock.now())
    [fine_id] = await queue_notes(db, [fine], 1, clock.now())
    lax_fake.inject("sendMessage", chat_id=stuck.chat_id, kind="5xx", times=1000)
    async with telegram(lax_fake) as messenger:
        worker = dispatcher(db, clock, messenger, horizons={"notice": timedelta(minutes=45)})
        await drain([worker], db, clock)
    outbox = await rows(db)
    assert outbox[fine_id].status == "sent"
    tries = [
        c for c in lax_fake.calls_of("sendMessage") if c.params["chat_id"] == str(stuck.chat_id)
    ]
    # Tried again every round of the drain (ten minutes apart), the last at the horizon.
    assert len(tries) >= 5
    assert (outbox[stuck_id].status, outbox[stuck_id].attempts) == ("failed", len(tries))
    assert outbox[stuck_id].last_error == f"gave up after {len(tries)} attempts: NetworkError"
    assert worker.outages() == {}, "one failing chat is not a channel outage"


async def test_a_row_that_cannot_be_rendered_ends_failed_and_does_not_stall_the_rest(
    db: Database, lax_fake: FakeBotAPI, clock: ManualClock
) -> None:
    clinic = await open_clinic(db, lax_fake, clock.now(), couples=1)
    # A kind outside DeliveryKind on purpose: a row no renderer knows.
    [broken] = await queue_notes(
        db, clinic.partners[:1], 1, clock.now(), kind=cast(DeliveryKind, "mystery")
    )
    fine = await queue_notes(db, clinic.partners, 2, clock.now())
    async with telegram(lax_fake) as messenger:
        worker = dispatcher(db, clock, messenger)
        await drain([worker], db, clock)
    outbox = await rows(db)
    assert [outbox[i].status for i in fine] == ["sent"] * 4
    assert outbox[broken].status == "failed"
    assert (outbox[broken].last_error or "").startswith(
        "gave up after 3 attempts: render failed: LookupError"
    )


# What happens after a send ------------------------------------------------------------------


class PromptThatBreaksOnSent(KindRenderer):
    """A delivery kind whose follow-up (recording what the message starts) fails at first."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.started: list[int] = []

    async def render(
        self, uow: UnitOfWork, delivery: Delivery, person: Partner | Therapist
    ) -> Outgoing | None:
        return Outgoing(f"Prompt: {delivery.params['goal']}")

    async def on_sent(self, uow: UnitOfWork, delivery: Delivery, sent: Sent) -> None:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("follow-up broke")
        assert sent.message_id == delivery.message_id
        self.started.append(delivery.id)


async def test_a_follow_up_that_fails_after_a_send_is_retried_not_dropped_nor_resent(
    db: Database, lax_fake: FakeBotAPI, clock: ManualClock
) -> None:
    clinic = await open_clinic(db, lax_fake, clock.now(), couples=1)
    partner = clinic.partners[0]
    [row_id] = await queue_notes(
        db, [partner], 1, clock.now(), kind=cast(DeliveryKind, "broken_prompt")
    )
    renderer = DyadRenderer()
    breaking = renderer.kinds["broken_prompt"] = PromptThatBreaksOnSent(failures=3)
    async with telegram(lax_fake) as messenger:
        worker = dispatcher(db, clock, messenger, renderer=renderer)
        await worker.run_until_idle()
        row = (await rows(db))[row_id]
        assert row.status == "sent" and row.followup_due_at is not None
        assert breaking.started == []
        for _ in range(4):
            clock.advance(timedelta(minutes=10))
            await worker.run_until_idle()
    row = (await rows(db))[row_id]
    assert (row.status, row.followup_due_at, row.last_error) == ("sent", None, None)
    assert breaking.started == [row_id], "what the message starts happened once"
    assert partner.chat_id is not None
    [message] = lax_fake.sent_to(partner.chat_id)
    assert message.message_id == row.message_id


class DatabaseBlipAfterSend:
    """A Messenger after whose first send the outbox table is away for a moment."""

    def __init__(self, inner: Messenger, db: Database) -> None:
        self.inner = inner
        self.db = db
        self.back: asyncio.Task[None] | None = None

    async def send(self, address: Address, message: Outgoing) -> Sent:
        sent = await self.inner.send(address, message)
        if self.back is None:
            await rename_outbox(self.db, "deliveries", "deliveries_away")
            self.back = asyncio.create_task(self._bring_back_soon())
        return sent

    async def _bring_back_soon(self) -> None:
        await asyncio.sleep(0.2)
        await rename_outbox(self.db, "deliveries_away", "deliveries")

    async def edit(self, address: Address, message_id: int, message: Outgoing) -> None:
        await self.inner.edit(address, message_id, message)

    async def delete(self, address: Address, message_id: int) -> None:
        await self.inner.delete(address, message_id)


async def rename_outbox(db: Database, old: str, new: str) -> None:
    """Take the outbox table away (or bring it back): a database outage for the dispatcher."""
    async with db.engine.begin() as conn:
        await conn.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))


async def test_a_database_blip_between_send_and_mark_does_not_send_twice(
    db: Database, lax_fake: FakeBotAPI, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    clinic = await open_clinic(db, lax_fake, clock.now(), couples=1)
    partner = clinic.partners[0]
    [row_id] = await queue_notes(db, [partner], 1, clock.now())
    async with telegram(lax_fake) as messenger:
        blip = DatabaseBlipAfterSend(messenger, db)
        stats = await dispatcher(db, clock, blip).run_until_idle()
    assert blip.back is not None and blip.back.done() and stats.sent == 1
    assert any("recording it failed" in r.message for r in caplog.records)
    row = (await rows(db))[row_id]
    assert row.status == "sent"
    assert partner.chat_id is not None
    [message] = lax_fake.sent_to(partner.chat_id)
    assert message.message_id == row.message_id


# The database going away -------------------------------------------------------------------


async def test_the_dispatcher_survives_a_database_outage_and_catches_up(
    db: Database, lax_fake: FakeBotAPI, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    clinic = await open_clinic(db, lax_fake, clock.now(), couples=2)
    ids = await queue_notes(db, clinic.partners, 2, clock.now())
    await rename_outbox(db, "deliveries", "deliveries_away")
    stop, wake = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    async with telegram(lax_fake) as messenger:
        worker = dispatcher(db, clock, messenger)
        with caplog.at_level(logging.ERROR, logger="schedules.dispatcher"):
            running = asyncio.create_task(worker.run_forever(stop, wake, idle=0.01))
            deadline = loop.time() + 10
            while sum("dispatch pass failed" in r.message for r in caplog.records) < 3:
                assert loop.time() < deadline and not running.done()
                await asyncio.sleep(0.01)
        await rename_outbox(db, "deliveries_away", "deliveries")
        while len(notes_received(lax_fake)) < len(ids):
            assert loop.time() < deadline and not running.done()
            await asyncio.sleep(0.01)
        stop.set()
        await running
    assert {d.status for d in (await rows(db)).values()} == {"sent"}
    assert set(notes_received(lax_fake).values()) == {1}


# The pacer ------------------------------------------------------------------------------------


class FakeTime:
    """A monotonic clock that moves only when someone sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.on_sleep: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.on_sleep.append(seconds)
        self.now += seconds


async def test_the_pacer_spaces_all_sends_and_each_chats_sends() -> None:
    time = FakeTime()
    pacer = Pacer(10.0, 1.0, monotonic=time.monotonic, sleep=time.sleep, window_limit=0)
    started = []
    for chat in (1, 2, 3, 1, 1, 2):
        await pacer.wait_turn(chat)
        started.append((chat, round(time.now, 6)))
    assert started == [(1, 0.0), (2, 0.1), (3, 0.2), (1, 1.0), (1, 2.0), (2, 2.1)]


async def test_the_pacer_holds_every_send_during_a_429_pause() -> None:
    time = FakeTime()
    pacer = Pacer(10.0, 0.0, monotonic=time.monotonic, sleep=time.sleep, window_limit=0)
    await pacer.wait_turn(1)
    pacer.pause(5.0)
    await pacer.wait_turn(2)
    assert time.now == pytest.approx(5.0)

    # A 429 that arrives while a send waits for its slot holds that send too.
    real_sleep = time.sleep

    async def sleep_into_a_429(seconds: float) -> None:
        await real_sleep(seconds)
        if len(time.on_sleep) == 2:
            pacer.pause(3.0)

    pacer._sleep = sleep_into_a_429
    await pacer.wait_turn(3)
    assert time.now == pytest.approx(5.1 + 3.0)


async def test_the_pacer_counts_a_chats_interval_from_the_answer() -> None:
    time = FakeTime()
    pacer = Pacer(100.0, 1.0, monotonic=time.monotonic, sleep=time.sleep, window_limit=0)
    async with pacer.turn(7):
        time.now += 0.4  # Telegram takes 0.4 s to answer
    async with pacer.turn(7):
        assert time.now == pytest.approx(1.4)
    async with pacer.turn(8):  # another chat waits only for the overall rate
        assert time.now == pytest.approx(1.41)


async def test_the_pacer_lets_one_send_at_a_time_into_a_chat() -> None:
    time = FakeTime()
    pacer = Pacer(100.0, 0.0, monotonic=time.monotonic, sleep=time.sleep)
    events: list[str] = []

    async def send(name: str, chat: int) -> None:
        async with pacer.turn(chat):
            events.append(f"{name} sends")
            for _ in range(3):
                await asyncio.sleep(0)  # the answer takes a while; others try to cut in
            events.append(f"{name} answered")

    await asyncio.gather(send("first", 7), send("second", 7), send("other", 8))
    assert events.index("second sends") > events.index("first answered")
    assert events.index("other sends") < events.index("first answered")


# What an ended row keeps --------------------------------------------------------------------


async def test_ended_rows_keep_no_message_text(
    db: Database, lax_fake: FakeBotAPI, clock: ManualClock
) -> None:
    clinic = await open_clinic(db, lax_fake, clock.now(), couples=1)
    a, b = clinic.partners
    canary = "private-words-4471"
    hour = timedelta(hours=1)
    sent = await queue_notes(db, [a], 1, clock.now(), goal=f"{canary} sent")
    refused = await queue_notes(db, [a], 1, clock.now(), goal=f"{canary} " + "x" * 5000)
    late = await queue_notes(db, [b], 1, clock.now() - 2 * hour, not_after=clock.now() - hour)
    later = await queue_notes(
        db, [b], 1, clock.now(), kind=cast(DeliveryKind, "broken_prompt"), goal=canary
    )
    renderer = DyadRenderer()
    renderer.kinds["broken_prompt"] = PromptThatBreaksOnSent(failures=1)
    async with telegram(lax_fake) as messenger:
        worker = dispatcher(db, clock, messenger, renderer=renderer)
        await worker.run_until_idle()
        outbox = await rows(db)
        # Its follow-up still needs what the row holds: kept until that has run.
        assert outbox[later[0]].params["goal"] == canary
        clock.advance(timedelta(minutes=1))
        await worker.run_until_idle()
    outbox = await rows(db)
    assert [outbox[i].status for i in (*sent, *refused, *late, *later)] == [
        "sent",
        "failed",
        "skipped",
        "sent",
    ]
    for row in outbox.values():
        assert row.params == {}, row
    async with db.engine.connect() as conn:
        stored = (await conn.execute(text("SELECT params FROM deliveries"))).all()
    assert canary not in repr(stored)


async def test_the_pacer_keeps_telegrams_window_counted_from_answers_and_lets_replies_first() -> (
    None
):
    time = FakeTime()
    pacer = Pacer(1000.0, 0.0, monotonic=time.monotonic, sleep=time.sleep, window_limit=3)
    started: list[tuple[str, float]] = []

    async def bulk(chat: int, answer_after: float = 0.0) -> None:
        async with pacer.turn(chat):
            started.append((f"bulk {chat}", round(time.now, 3)))
            time.now += answer_after

    # Nobody is replying: bulk sends may fill the window (3 a second), counted from answers.
    await bulk(1, answer_after=0.2)
    for chat in (2, 3, 4):
        await bulk(chat)
    assert started == [("bulk 1", 0.0), ("bulk 2", 0.2), ("bulk 3", 0.2), ("bulk 4", 1.2)]
    # A reply waits only for the first slot to free, and bulk sends then leave room for as
    # many replies as came in the last second.
    started.clear()
    async with pacer.urgent_turn():
        started.append(("reply", round(time.now, 3)))
    await bulk(5)
    await bulk(6)
    assert started == [("reply", 1.2), ("bulk 5", 2.2), ("bulk 6", 2.2)]


async def test_a_waiting_reply_goes_before_every_bulk_send_queued_before_it() -> None:
    time = FakeTime()

    async def sleep(seconds: float) -> None:  # time passes, and the other sends run meanwhile
        await time.sleep(seconds)
        await asyncio.sleep(0)

    pacer = Pacer(1000.0, 0.0, monotonic=time.monotonic, sleep=sleep, window_limit=2)
    order: list[str] = []

    async def bulk(chat: int) -> None:
        async with pacer.turn(chat):
            order.append(f"bulk {chat}")

    async def reply() -> None:
        async with pacer.urgent_turn(99):
            order.append("reply")

    await bulk(1)
    await bulk(2)  # the window is full until 1.0
    await asyncio.gather(bulk(3), bulk(4), reply())
    assert order[:3] == ["bulk 1", "bulk 2", "reply"]
