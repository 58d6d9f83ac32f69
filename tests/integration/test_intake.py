"""Update intake: stored before acknowledged, handled once, and nothing handled unrecorded.

The real Application against the fake Bot API over loopback HTTP, on both databases:
a database too busy to record an update (a writer holding its lock longer than Dyad
waits), an update whose id no database can keep, and the webhook's body cap.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select, text

from bot.app import IntakeMode
from bot.core.clock import ManualClock
from bot.demo import offline_bot, offline_deps
from bot.intake import MAX_UPDATE_BYTES, SECRET_HEADER
from bot.locales import t
from db.engine import Database
from db.models import Couple, InboxUpdate
from fakebotapi import FakeBotAPI
from tests.e2e.conftest import Harness, links_in
from tests.e2e.test_webhook import SECRET, free_port

BUSY = t("en", "common.intake_busy")
ERROR = t("en", "common.error")


@contextlib.asynccontextmanager
async def impatient_bot(
    fake: FakeBotAPI, db: Database, clock: ManualClock, mode: IntakeMode
) -> AsyncIterator[Harness]:
    """Dyad whose database waits at most half a second for another writer's lock."""
    port = free_port()
    impatient = Database(db.url, search_path=db.search_path, lock_timeout=0.5)
    deps = offline_deps(
        fake,
        impatient,
        clock,
        webhook_url=f"http://127.0.0.1:{port}/hook",
        webhook_secret=SECRET,
        webhook_listen="127.0.0.1",
        webhook_port=port,
    )
    bot = offline_bot(fake, deps)
    await bot.start(mode)
    try:
        yield Harness(bot, fake, impatient, clock)
    finally:
        await bot.stop()
        await impatient.dispose()


@contextlib.asynccontextmanager
async def inbox_locked(db: Database) -> AsyncIterator[None]:
    """Another writer holds the inbox's lock (SQLite: the whole file's) until the block ends."""
    if db.is_postgres:
        async with db.engine.connect() as conn:
            await conn.execute(text("LOCK TABLE inbox_updates IN EXCLUSIVE MODE"))
            try:
                yield
            finally:
                await conn.rollback()
        return
    path = db.engine.url.database
    assert path is not None
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


async def couples(db: Database) -> int:
    async with db.uow() as uow:
        return int(await uow.session.scalar(select(func.count()).select_from(Couple)) or 0)


@pytest.fixture
async def fake(clock: ManualClock) -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI(clock=clock) as api:
        yield api


async def test_an_update_the_database_cannot_record_is_not_handled_until_it_can_be(
    fake: FakeBotAPI, db: Database, clock: ManualClock
) -> None:
    async with impatient_bot(fake, db, clock, "poll") as harness:
        therapist = await harness.therapist()
        async with inbox_locked(db):
            await therapist.send_command("newcouple", "Rivera & Lee")
            await therapist.wait_for_message(lambda m: m.text == BUSY, timeout=10)
            # Asked for again twice more while the lock holds: still one kind reply only.
            asked = len(fake.calls_of("getUpdates"))
            await fake.wait_for(lambda: len(fake.calls_of("getUpdates")) >= asked + 2, 15)
            assert fake.pending_updates, "not confirmed to Telegram while not stored"
            assert await couples(harness.db) == 0
        reply = await therapist.wait_for_message(lambda m: bool(links_in(m)), timeout=15)
        await harness.settle()
        texts = [m.text for m in therapist.messages]
        assert texts.count(BUSY) == 1 and ERROR not in texts
        assert texts[-1] == reply.text and sum(bool(links_in(m)) for m in therapist.messages) == 1
        assert await couples(harness.db) == 1
        assert not fake.pending_updates
        async with harness.db.uow() as uow:
            rows = list(await uow.session.scalars(select(InboxUpdate)))
        assert rows and all(r.handled_at is not None and r.payload is None for r in rows)


async def test_an_update_whose_id_no_database_can_keep_gets_one_apology_and_nothing_else(
    fake: FakeBotAPI, db: Database, clock: ManualClock
) -> None:
    async with impatient_bot(fake, db, clock, "webhook") as harness:
        user = harness.user("Sam")
        await user.send_command("help")
        await user.wait_for_message(lambda m: m.text == t("en", "common.help_stranger"))
        odd = dict(fake.updates[-1], update_id=2**63)
        for _ in range(2):  # Telegram would send it again
            assert await fake.post_update_to_webhook(odd) == 200
        await user.wait_for_message(lambda m: m.text == ERROR)
        await user.send_command("help")  # everything posted before it is done
        await fake.wait_for(
            lambda: [m.text for m in user.messages].count(t("en", "common.help_stranger")) == 2
        )
        assert [m.text for m in user.messages].count(ERROR) == 1


async def _post(port: int, body: bytes, headers: dict[str, str]) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"http://127.0.0.1:{port}/hook", data=body, headers=headers) as answer,
    ):
        return answer.status


def _chunks(size: int) -> Iterator[bytes]:
    sent = 0
    while sent < size:
        sent += 64 * 1024
        yield b" " * (64 * 1024)


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
async def test_a_webhook_body_is_capped_before_the_secret_is_checked_or_it_is_read(
    fake: FakeBotAPI, db: Database, clock: ManualClock
) -> None:
    async with impatient_bot(fake, db, clock, "webhook") as harness:
        port = harness.bot.intake.webhook_port
        huge = b"{" + b" " * (MAX_UPDATE_BYTES + 10) + b"}"
        assert await _post(port, huge, {}) == 413
        assert await _post(port, huge, {SECRET_HEADER: SECRET}) == 413
        assert await _post(port, b'{"update_id": 5}', {SECRET_HEADER: "wrong"}) == 403

        async def streamed() -> Any:
            for chunk in _chunks(MAX_UPDATE_BYTES + 1):
                yield chunk

        # No Content-Length (chunked): the read itself stops at the cap.
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"http://127.0.0.1:{port}/hook",
                data=streamed(),
                headers={SECRET_HEADER: SECRET},
            ) as answer,
        ):
            assert answer.status == 413
        assert await _post(port, b"not json", {SECRET_HEADER: SECRET}) == 400
        async with harness.db.uow() as uow:
            assert await uow.updates.count() == 0
