"""The bot's one send budget: a window shared in Redis, updates in order per chat, dead
connections replaced without a ping on every checkout.

Redis is the one this machine runs (``DYAD_TEST_REDIS_URL``, else 127.0.0.1:6379); each
test keeps its keys under a prefix of its own, so parallel runs do not meet.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy import select, text
from telegram import Update

from bot.channels.budget import RedisWindow
from bot.intake import Inbox, InboxProcessor, Intake
from bot.services.crypto import Cipher, new_key
from db.engine import Database
from db.models import InboxUpdate
from tests.conftest import PG_SKIP_REASON, postgres_url

REDIS_URL = os.environ.get("DYAD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
async def windows() -> AsyncIterator[Callable[..., RedisWindow]]:
    """Windows of one bot's budget, as several workers open them (one test's own keys)."""
    prefix = f"dyad-test-{uuid.uuid4().hex[:12]}:budget"
    opened: list[RedisWindow] = []

    def open_window(**options: Any) -> RedisWindow:
        window = RedisWindow(REDIS_URL, prefix=prefix, **options)
        opened.append(window)
        return window

    yield open_window
    cleaner = Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in cleaner.scan_iter(f"{prefix}:*")]
        if keys:
            await cleaner.delete(*keys)
    finally:
        await cleaner.aclose()
        for window in opened:
            await window.aclose()


async def test_two_workers_never_hold_more_than_the_limit_in_one_second(
    windows: Callable[..., RedisWindow],
) -> None:
    first, second = windows(limit=4), windows(limit=4)
    grants = []
    for window in (first, second, first, second):
        grant, _ = await window.try_acquire(urgent=False)
        assert grant is not None
        grants.append((window, grant))
    for window in (first, second):
        grant, wait = await window.try_acquire(urgent=True)
        assert grant is None and 0 < wait <= 5.0
    # Answered slots still count for a second after their answer: nothing frees at once.
    for window, grant in grants:
        await window.release(grant)
    assert (await second.try_acquire(urgent=True))[0] is None


async def test_a_dead_workers_slots_come_back_to_the_others_after_their_hold(
    windows: Callable[..., RedisWindow],
) -> None:
    dead, alive = windows(limit=2, hold=0.2), windows(limit=2, hold=0.2)
    for _ in range(2):
        grant, _ = await dead.try_acquire(urgent=False)
        assert grant is not None  # taken, never given back: the worker died mid-send
    refused, _ = await alive.try_acquire(urgent=False)
    assert refused is None
    async with asyncio.timeout(10):  # a hang guard: the hold is 0.2 s plus the second
        while (await alive.try_acquire(urgent=False))[0] is None:  # noqa: ASYNC110
            await asyncio.sleep(0.05)


async def test_replies_go_first_and_bulk_sends_leave_them_room(
    windows: Callable[..., RedisWindow],
) -> None:
    bulk_worker, replying_worker = windows(limit=4), windows(limit=4)
    await replying_worker.urgent_waiting()
    assert (await bulk_worker.try_acquire(urgent=False))[0] is None, "a reply is waiting"
    reply, _ = await replying_worker.try_acquire(urgent=True)
    assert reply is not None
    await replying_worker.release(reply)
    await asyncio.sleep(0.06)  # the waiting mark is gone (it lasts 50 ms)
    taken = 0
    while (await bulk_worker.try_acquire(urgent=False))[0] is not None:
        taken += 1
    assert taken == 2, "one slot in use by the reply, one kept for the next"
    assert (await replying_worker.try_acquire(urgent=True))[0] is not None


async def test_a_429_pauses_every_worker_and_a_chat_waits_its_interval_everywhere(
    windows: Callable[..., RedisWindow],
) -> None:
    first, second = windows(), windows()
    grant, _ = await first.try_acquire(urgent=False, chat=7)
    assert grant is not None
    assert (await second.try_acquire(urgent=True, chat=7))[0] is None, "chat 7 is in flight"
    await first.release(grant, chat=7, spacing=1.0)
    refused, wait = await second.try_acquire(urgent=True, chat=7)
    assert refused is None and 0 < wait <= 1.0
    assert (await second.try_acquire(urgent=True, chat=8))[0] is not None
    await first.pause(30.0)
    refused, wait = await second.try_acquire(urgent=True, chat=9)
    assert refused is None and wait > 20.0


# Updates: in order within a chat, concurrent across chats ------------------------------------


def _message(update_id: int, chat: int) -> dict[str, Any]:
    user = {"id": chat, "is_bot": False, "first_name": "P"}
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": 0,
            "chat": {"id": chat, "type": "private"},
            "from": user,
            "text": f"note {update_id}",
        },
    }


async def test_updates_of_one_chat_run_in_order_and_other_chats_meanwhile(
    sqlite_db: Database,
) -> None:
    inbox = Inbox(sqlite_db, Cipher([new_key()]))
    processor = InboxProcessor(max_concurrent=4)
    intake = Intake(application=None, inbox=inbox, messenger=None)  # type: ignore[arg-type]
    processor.intake = intake
    events: list[str] = []
    release_first, other_chat_done = asyncio.Event(), asyncio.Event()

    async def handle(update_id: int, chat: int) -> None:
        events.append(f"start {update_id}")
        if update_id == 1:
            await release_first.wait()  # the first update of chat 10 takes its time
        events.append(f"end {update_id}")
        if chat == 20:
            other_chat_done.set()

    updates = [(1, 10), (2, 10), (3, 20), (4, 10)]
    tasks = []
    for update_id, chat in updates:
        data = _message(update_id, chat)
        await inbox.store(update_id, str(data))
        update = Update.de_json(data, None)
        handling = processor.process_update(update, handle(update_id, chat))
        tasks.append(asyncio.create_task(handling))
    async with asyncio.timeout(10):  # a hang guard
        await other_chat_done.wait()
    assert "start 2" not in events, "chat 10's second update waits for its first"
    release_first.set()
    await asyncio.gather(*tasks)
    assert [e for e in events if e.endswith(("1", "2", "4"))] == [
        "start 1",
        "end 1",
        "start 2",
        "end 2",
        "start 4",
        "end 4",
    ]
    async with sqlite_db.uow() as uow:
        handled = await uow.session.scalars(select(InboxUpdate.handled_at))
        assert all(at is not None for at in handled.all())


# Dead connections --------------------------------------------------------------------------


@pytest.mark.postgres
async def test_a_pooled_connection_that_died_is_replaced_by_the_first_statement() -> None:
    url = postgres_url()
    if url is None:
        pytest.skip(PG_SKIP_REASON)
    name = f"dyad-retry-{uuid.uuid4().hex[:8]}"
    db, killer = Database(url, application_name=name), Database(url)
    try:
        async with db.uow() as uow:
            assert await uow.session.scalar(text("SELECT 1")) == 1
        async with killer.engine.begin() as conn:
            cut = await conn.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = :name"
                ),
                {"name": name},
            )
        assert cut == 1, "the pooled connection must be cut for this to mean anything"
        async with db.uow() as uow:  # no ping at checkout: the statement itself recovers
            assert await uow.session.scalar(text("SELECT 2")) == 2
    finally:
        await db.dispose()
        await killer.dispose()
