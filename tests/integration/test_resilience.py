"""Resilience: a dispatcher killed at random points, a database connection cut mid-run,
and a Telegram that fails often. Nothing is lost; duplicates stay within what was in flight.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from bot.core.clock import ManualClock
from db.engine import Database
from db.models import Delivery
from fakebotapi import FakeBotAPI
from tests.conftest import PG_SKIP_REASON, postgres_url
from tests.integration.test_dispatcher import (
    dispatcher,
    drain,
    lax_fake,
    notes_received,
    open_clinic,
    queue_notes,
    rows,
    shared_db,
    start_worker,
    telegram,
)

__all__ = ["lax_fake", "shared_db"]  # fixtures shared with the dispatcher tests

ROWS_PER_PARTNER = 2  # 400 rows: some 20 batches, three kills and the last worker's share
SHORT_LEASE = timedelta(seconds=2)  # what a killed worker held comes back this soon
KILL_AFTER = (10, 60)  # each worker is killed once it has sent this many more messages


async def _claimed(db: Database) -> int:
    async with db.uow() as uow:
        return int(
            await uow.session.scalar(select(func.count()).where(Delivery.status == "claimed")) or 0
        )


async def test_a_dispatcher_killed_at_random_points_loses_nothing(
    shared_db: tuple[Database, str | None], lax_fake: FakeBotAPI, clock: ManualClock
) -> None:
    db, schema = shared_db
    clinic = await open_clinic(db, lax_fake, clock.now(), couples=100)
    ids = await queue_notes(db, clinic.partners, ROWS_PER_PARTNER, clock.now())
    rng = random.Random(2026)
    now = clock.now()
    in_flight = 0
    kills = 0
    for _ in range(3):
        worker = await start_worker(db, schema, lax_fake, now, lease=SHORT_LEASE)
        assert worker.stdout is not None and worker.stdin is not None
        assert await worker.stdout.readline() == b"ready\n"
        # The kill comes at a random point of the worker's progress, not of the clock, so it
        # lands mid-run however fast the machine is (a claim, a send or a mark under way).
        target = len(lax_fake.bot_messages) + rng.randint(*KILL_AFTER)
        worker.stdin.write(b"go\n")
        await worker.stdin.drain()
        await lax_fake.wait_for(lambda: len(lax_fake.bot_messages) >= target, 60.0)  # noqa: B023
        if worker.returncode is None:
            worker.kill()  # SIGKILL: no clean-up, no last commit
            kills += 1
        await worker.wait()
        # What the dead worker held: claimed, maybe sent, never marked.
        in_flight += await _claimed(db)
    assert kills >= 1, "the test must kill a worker mid-run to mean anything"
    last = await start_worker(db, schema, lax_fake, now, lease=SHORT_LEASE)
    assert last.stdin is not None and last.stdout is not None
    assert await last.stdout.readline() == b"ready\n"
    last.stdin.write(b"go\n")
    await last.stdin.drain()
    _, errors = await asyncio.wait_for(last.communicate(), timeout=120)
    assert last.returncode == 0, errors.decode()[-2000:]

    outbox = await rows(db)
    assert {d.status for d in outbox.values()} == {"sent"}
    received = notes_received(lax_fake)
    assert len(received) == len(ids), "every delivery reached its partner"
    duplicates = sum(count - 1 for count in received.values())
    assert duplicates <= in_flight, (duplicates, in_flight)


@pytest.fixture
async def named_postgres(tmp_path: object) -> AsyncIterator[tuple[Database, str]]:
    """A PostgreSQL schema whose connections carry a name of their own, to cut them."""
    url = postgres_url()
    if url is None:
        pytest.skip(PG_SKIP_REASON)
    from tests.conftest import drop_schema

    schema = f"t_{uuid.uuid4().hex[:16]}"
    name = f"dyad-resilience-{uuid.uuid4().hex[:8]}"
    admin = Database(url)
    async with admin.engine.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    db = Database(url, search_path=schema, application_name=name)
    await db.migrate()
    try:
        yield db, name
    finally:
        await db.dispose()
        await admin.dispose()
        await drop_schema(schema)


async def test_a_worker_whose_database_connections_are_cut_reconnects_and_finishes(
    named_postgres: tuple[Database, str], lax_fake: FakeBotAPI, clock: ManualClock
) -> None:
    db, name = named_postgres
    clinic = await open_clinic(db, lax_fake, clock.now(), couples=25)
    ids = await queue_notes(db, clinic.partners, 6, clock.now())
    killer = Database(postgres_url() or "")
    stop, wake = asyncio.Event(), asyncio.Event()
    terminated = 0
    try:
        async with telegram(lax_fake) as messenger:
            worker = dispatcher(db, clock, messenger, batch_size=20)
            running = asyncio.create_task(worker.run_forever(stop, wake, idle=0.05))
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 60
            while len(notes_received(lax_fake)) < len(ids) // 3:
                assert loop.time() < deadline and not running.done()
                await asyncio.sleep(0.01)
            async with killer.engine.begin() as conn:
                terminated = int(
                    await conn.scalar(
                        text(
                            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                            "WHERE application_name = :name"
                        ),
                        {"name": name},
                    )
                    or 0
                )
            while len(notes_received(lax_fake)) < len(ids):
                assert loop.time() < deadline and not running.done(), "the worker did not recover"
                if await _unfinished(db) == 0:
                    break
                clock.advance(timedelta(seconds=30))
                wake.set()
                await asyncio.sleep(0.05)
            stop.set()
            wake.set()
            await running
    finally:
        await killer.dispose()
    assert terminated >= 1, "the test must cut a live connection to mean anything"
    outbox = await rows(db)
    assert {d.status for d in outbox.values()} == {"sent"}
    received = notes_received(lax_fake)
    assert len(received) == len(ids)
    assert sum(c - 1 for c in received.values()) <= 20, "at most one batch in flight again"


async def _unfinished(db: Database) -> int:
    async with db.uow() as uow:
        return int(
            await uow.session.scalar(
                select(func.count()).where(Delivery.status.in_(("pending", "claimed")))
            )
            or 0
        )


async def test_a_telegram_that_often_fails_still_gets_every_message_through(
    db: Database, clock: ManualClock
) -> None:
    async with FakeBotAPI(clock=clock, timeout_delay=0.8) as fake:
        clinic = await open_clinic(db, fake, clock.now(), couples=25)
        ids = await queue_notes(db, clinic.partners, 3, clock.now())
        fake.set_fault_rates(
            server_error=0.10, timeout=0.05, seed=11, methods=frozenset({"sendMessage"})
        )
        for partner in clinic.partners[::10]:
            fake.inject("sendMessage", chat_id=partner.chat_id, kind="429", retry_after=1, times=3)
        async with telegram(fake, read_timeout=0.4) as messenger:
            worker = dispatcher(db, clock, messenger)
            await drain([worker], db, clock, rounds=30)
        kinds = {f.kind for f in fake.faults.fired}
        assert {"5xx", "timeout", "429"} <= kinds
        outbox = await rows(db)
        assert {d.status for d in outbox.values()} == {"sent"}
        received = notes_received(fake)
        assert len(received) == len(ids) and set(received.values()) == {1}
