"""One couple's updates run one after the other, across chats and workers (both databases).

Each transaction that handles an update first holds the sender's couple (a row lock on
PostgreSQL, a lock in the process on SQLite), so two partners' updates, a partner's and
the therapist's, or a partner's and their Mini App page, never act on what the other is
changing. Each test waits until the second transaction is seen waiting (on PostgreSQL, in
``pg_locks``) and only then lets the first commit, so none depends on timing.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from sqlalchemy import text

from db.engine import Database
from db.inbox import HANDLING, Handling
from db.uow import UnitOfWork
from tests.integration.schedule_world import practice_with_couple

NOW = datetime(2026, 10, 19, 9, 0, tzinfo=UTC)
ALEX, BLANCA = 100, 101  # the first couple's partners (their Telegram user ids)
CARMEN = 200  # a partner of another couple
THERAPIST = 190


async def _until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    for _ in range(1000):
        if await condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


async def _backend(uow: UnitOfWork, db: Database) -> int | None:
    if not db.is_postgres:
        return None
    return int(await uow.session.scalar(text("SELECT pg_backend_pid()")))


async def _waits(db: Database, couple_id: int, backend: int | None) -> bool:
    """Whether a transaction waits for this couple (the one on ``backend``, PostgreSQL)."""
    if backend is None:
        return db.holds.waiting(couple_id) == 1
    async with db.engine.connect() as conn:
        waiting = await conn.scalar(
            text("SELECT count(*) FROM pg_locks WHERE pid = :pid AND NOT granted"),
            {"pid": backend},
        )
    return bool(waiting)


async def test_the_second_partners_transaction_waits_for_the_first(db: Database) -> None:
    _, couple_id, _ = await practice_with_couple(db, NOW)
    await practice_with_couple(db, NOW, name="South", chat_base=200)
    order: list[str] = []
    backend: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()

    async def second() -> None:
        async with db.uow() as uow:
            backend.set_result(await _backend(uow, db))
            assert await uow.hold_couple_of(BLANCA) == couple_id
            order.append("blanca holds")
            await uow.commit()

    async with db.uow() as first:
        assert await first.hold_couple_of(ALEX) == couple_id
        order.append("alex holds")
        waiting = asyncio.create_task(second(), context=contextvars.Context())  # another update
        pid = await backend
        await _until(lambda: _waits(db, couple_id, pid), "Blanca's transaction waits")

        # Another couple's partner is not held up, nor is a nested unit of work of this
        # task (the same update's handling): the outer hold covers it.
        async with db.uow() as other:
            assert await other.hold_couple_of(CARMEN) is not None
            await other.commit()
        async with db.uow() as nested:
            held = await asyncio.wait_for(nested.hold_couple_of(ALEX), 10)
            assert held == couple_id
            couple = await asyncio.wait_for(nested.hold_couple(couple_id), 10)
            assert couple is not None
        assert order == ["alex holds"] and not waiting.done()
        order.append("alex commits")
        await first.commit()
    await asyncio.wait_for(waiting, 10)
    assert order == ["alex holds", "alex commits", "blanca holds"]
    assert db.holds.waiting(couple_id) == 0


async def test_an_update_being_handled_holds_its_senders_couple(db: Database) -> None:
    _, couple_id, _ = await practice_with_couple(db, NOW)
    order: list[str] = []
    backend: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()

    async def therapist_closes() -> None:
        async with db.uow() as uow:
            backend.set_result(await _backend(uow, db))
            couple = await uow.hold_couple(couple_id)
            assert couple is not None and couple.status == "closed", "read afresh once held"
            order.append("therapist reads")

    handling = Handling(1, "token", NOW, sender=ALEX)
    context = HANDLING.set(handling)
    try:
        async with db.uow() as uow:  # the handling's transaction: the couple is held first
            couple = await uow.couples.get(couple_id)
            assert couple is not None
            waiting = asyncio.create_task(therapist_closes(), context=contextvars.Context())
            pid = await backend
            await _until(lambda: _waits(db, couple_id, pid), "the therapist's transaction waits")
            couple.status = "closed"
            await uow.session.flush()
            order.append("partner's update commits")
            await uow.session.commit()  # not uow.commit(): no inbox row to mark here
    finally:
        HANDLING.reset(context)
    await asyncio.wait_for(waiting, 10)
    assert order == ["partner's update commits", "therapist reads"]
