"""The schema and repositories behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from bot.core.clock import ManualClock
from bot.intake import Inbox
from bot.services.crypto import Cipher, new_key
from db.engine import Database
from db.inbox import LostUpdate, mark_in
from db.models import InboxUpdate, Invite, Practice


async def _practice(db: Database, now: datetime) -> int:
    async with db.uow() as uow:
        practice = await uow.practices.add(
            Practice(slug="north", name="North Practice", created_at=now)
        )
        await uow.commit()
        return practice.id


async def test_migrating_twice_changes_nothing(db: Database) -> None:
    await db.migrate()
    await db.migrate()
    assert await db.ping()


async def test_times_come_back_aware_and_in_utc(db: Database, clock: ManualClock) -> None:
    noon = datetime(2026, 3, 29, 12, 0, tzinfo=UTC)
    practice_id = await _practice(db, noon)
    async with db.uow() as uow:
        practice = await uow.practices.get(practice_id)
        assert practice is not None
        assert practice.created_at == noon
        assert practice.created_at.tzinfo is not None


async def test_couple_numbers_are_never_given_twice(db: Database, clock: ManualClock) -> None:
    practice_id = await _practice(db, clock.now())

    async def take() -> int:
        async with db.uow() as uow:
            number = await uow.practices.take_couple_number(practice_id)
            await uow.commit()
            return number

    numbers = await asyncio.gather(*(take() for _ in range(10)))
    assert sorted(numbers) == list(range(1, 11))


async def test_an_invite_can_be_claimed_once(db: Database, clock: ManualClock) -> None:
    practice_id = await _practice(db, clock.now())
    async with db.uow() as uow:
        invite = await uow.invites.add(
            Invite(
                token_hash="h" * 64,
                kind="therapist",
                practice_id=practice_id,
                created_at=clock.now(),
                expires_at=clock.now() + timedelta(days=7),
            )
        )
        await uow.commit()
        invite_id = invite.id

    async def claim() -> bool:
        async with db.uow() as uow:
            ok = await uow.invites.claim(invite_id, clock.now())
            await uow.commit()
            return ok

    results = await asyncio.gather(*(claim() for _ in range(5)))
    assert results.count(True) == 1


async def test_an_expired_invite_cannot_be_claimed(db: Database, clock: ManualClock) -> None:
    practice_id = await _practice(db, clock.now())
    async with db.uow() as uow:
        invite = await uow.invites.add(
            Invite(
                token_hash="e" * 64,
                kind="therapist",
                practice_id=practice_id,
                created_at=clock.now() - timedelta(days=8),
                expires_at=clock.now() - timedelta(days=1),
            )
        )
        await uow.commit()
        assert not await uow.invites.claim(invite.id, clock.now())


async def test_an_update_is_stored_once_and_claimed_by_one_worker(db: Database) -> None:
    inbox = Inbox(db, Cipher([new_key()]))
    assert await inbox.store(42, '{"update_id": 42}')
    assert not await inbox.store(42, '{"update_id": 42}')
    assert await inbox.store(43, '{"update_id": 43}')
    first, second = await inbox.claim(42, None), await inbox.claim(42, None)
    assert first is not None and second is None
    await inbox.finish(first)
    assert await inbox.claim(42, None) is None, "handled: nobody takes it again"
    async with db.uow() as uow:
        assert await uow.updates.count() == 2
        row = await uow.session.get(InboxUpdate, 42)
        assert row is not None and row.payload is None and row.handled_at is not None


async def test_an_update_stored_claimed_is_this_workers_until_its_lease_runs_out(
    db: Database,
) -> None:
    inbox = Inbox(db, Cipher([new_key()]), lease=timedelta(milliseconds=300))
    mine = await inbox.store_claimed(42, '{"update_id": 42}', None)
    assert mine is not None
    assert await inbox.store_claimed(42, '{"update_id": 42}', None) is None, "kept before"
    assert not await inbox.store(42, '{"update_id": 42}')
    assert await inbox.claim(42, None) is None, "another worker waits while the lease holds"
    assert await inbox.renew(mine), "still mine: the claim is extended"
    async with db.uow() as uow:
        row = await uow.session.get(InboxUpdate, 42)
        assert row is not None and row.attempts == 1 and row.lease_token == mine.token

    await asyncio.sleep(0.4)  # the lease runs out (database time): a sweeper's worker takes it
    theirs = await inbox.claim(42, None)
    assert theirs is not None and theirs.token != mine.token
    assert not await inbox.renew(mine), "the first worker learns it lost the update"
    async with db.uow() as uow:
        with pytest.raises(LostUpdate):
            await mark_in(uow.session, mine)
    await inbox.finish(theirs)
    async with db.uow() as uow:
        row = await uow.session.get(InboxUpdate, 42)
        assert row is not None and row.handled_at is not None and row.payload is None


async def test_leaving_a_unit_of_work_without_commit_rolls_back(
    db: Database, clock: ManualClock
) -> None:
    async with db.uow() as uow:
        await uow.practices.add(Practice(slug="gone", name="Gone", created_at=clock.now()))
    async with db.uow() as uow:
        assert await uow.practices.by_slug("gone") is None


async def test_the_migrated_schema_is_the_models_schema(db: Database) -> None:
    """Every table, column, index and constraint of the models exists as migrated, and no more."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from db.models import Base

    def differences(connection: object) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})  # type: ignore[arg-type]
        return list(compare_metadata(context, Base.metadata))

    await db.migrate()
    async with db.engine.connect() as conn:
        found = await conn.run_sync(differences)
    assert found == []


async def test_query_statistics_are_there_once_the_outbox_has_rows(db: Database) -> None:
    """After migrating, and at a start that finds none, the planner's statistics are collected."""
    from sqlalchemy import text

    from db.models import Delivery

    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    # PostgreSQL: migrating analysed every table; SQLite: an empty outbox has nothing to count.
    assert not await db.collect_statistics(only_if_missing=True)
    async with db.uow() as uow:
        uow.session.add(
            Delivery(
                recipient="therapist:1",
                kind="notice",
                key="schedule.paused",
                dedupe_key="statistics",
                due_at=now,
                created_at=now,
            )
        )
        await uow.commit()
    if not db.is_postgres:
        await db.migrate()  # a start: nothing to migrate, but the statistics are missing
        async with db.engine.connect() as conn:
            found = await conn.scalar(
                text("SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'deliveries'")
            )
        assert found, "the outbox's indexes have statistics"
    assert not await db.collect_statistics(only_if_missing=True), "collected once is enough"
