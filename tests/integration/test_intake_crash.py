"""SIGKILL with acknowledged updates in flight: after a restart each is handled exactly once.

A real ``dyad run`` process polls the fake Bot API (in this test's process) for ten
therapists' ``/newcouple`` commands. Once Telegram has had every update confirmed, and
while each therapist's first reply still waits for its answer, the process is killed with
SIGKILL. A fresh process then takes over what the dead one stored and did not handle:
every couple exists once, every command was answered once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.services.crypto import new_key
from db.engine import Database
from db.models import Couple, InboxUpdate, Practice, Therapist
from fakebotapi import FakeBotAPI
from tests.conftest import PG_SKIP_REASON, postgres_url
from tests.e2e.conftest import links_in
from tests.integration.test_two_workers import fresh_database

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "7012345679:AAHcrashCRASHcrashCRASHcrashCRASH12"
# Ten chats, four commands each: replies to one chat are paced a second apart (as
# Telegram wants), so forty from a single chat would spend most of the test waiting.
THERAPISTS = tuple(range(500, 510))
COMMANDS = 40


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated database another process can open by its URL alone."""
    if request.param == "sqlite":
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'dyad.db'}")
        await db.migrate()
        try:
            yield db
        finally:
            await db.dispose()
        return
    if postgres_url() is None:
        pytest.skip(PG_SKIP_REASON)
    async with fresh_database() as url:
        db = Database(url)
        await db.migrate()
        try:
            yield db
        finally:
            await db.dispose()


async def start_bot(
    db: Database, fake: FakeBotAPI, key: str, tmp: Path
) -> asyncio.subprocess.Process:
    """``dyad run`` in polling mode, with a one-second intake lease."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("DYAD_")}
    env.update(
        PYTHONPATH=str(ROOT),
        DYAD_DATABASE_URL=db.url,
        DYAD_BOT_TOKEN=TOKEN,
        DYAD_TELEGRAM_API_URL=fake.base_url,
        DYAD_ENCRYPTION_KEYS=key,
        DYAD_INTAKE_LEASE_SECONDS="1",
        DYAD_LOG_LEVEL="WARNING",
    )
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from bot.cli import main; main()",
        "run",
        env=env,
        cwd=tmp,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=(tmp / "bot.log").open("ab"),
    )


async def test_updates_acknowledged_before_a_sigkill_are_each_handled_once_after_restart(
    database: Database, tmp_path: Path
) -> None:
    db = database
    now = datetime.now(UTC)
    async with db.uow() as uow:
        practice = Practice(slug="north", name="North Practice", created_at=now)
        uow.session.add(practice)
        await uow.flush()
        uow.session.add_all(
            Therapist(
                practice_id=practice.id,
                display_name=f"Dr {chat}",
                telegram_user_id=chat,
                chat_id=chat,
                created_at=now,
                joined_at=now,
            )
            for chat in THERAPISTS
        )
        await uow.commit()
    key = new_key()
    async with FakeBotAPI(token=TOKEN) as fake:
        therapists = [fake.add_user(chat, f"T{chat}", has_started=True) for chat in THERAPISTS]

        def answered() -> int:
            return sum(bool(links_in(m)) for user in therapists for m in user.messages)

        for number in range(COMMANDS):
            therapist = therapists[number % len(therapists)]
            await therapist.send_command("newcouple", f"Pair {number}")
        # Each chat's first reply goes out, but its answer takes long: the process is busy
        # with one update of every chat, the others wait behind it.
        for chat in THERAPISTS:
            fake.inject(
                "sendMessage", chat_id=chat, kind="timeout", timeout_applies=True, delay=30.0
            )
        first = await start_bot(db, fake, key, tmp_path)
        try:
            await fake.wait_for(lambda: not fake.pending_updates, 30.0)  # all acknowledged
            await fake.wait_for(lambda: len(fake.faults.fired) >= len(THERAPISTS), 30.0)
            first.send_signal(signal.SIGKILL)
            await first.wait()
        finally:
            if first.returncode is None:
                first.kill()
                await first.wait()
        answered_before = answered()
        assert answered_before < COMMANDS, "the kill must leave updates in flight"

        second = await start_bot(db, fake, key, tmp_path)
        try:
            await fake.wait_for(
                lambda: answered() >= COMMANDS,
                60.0,
                on_timeout=lambda: (tmp_path / "bot.log").read_text()[-3000:],
            )

            # Once the last is answered, every row is marked: nothing more will come.
            async def all_marked() -> bool:
                async with db.uow() as uow:
                    rows = list(await uow.session.scalars(select(InboxUpdate)))
                return len(rows) == COMMANDS and all(r.handled_at for r in rows)

            loop = asyncio.get_running_loop()
            deadline = loop.time() + 30
            while not await all_marked():
                assert loop.time() < deadline
                await asyncio.sleep(0.05)
        finally:
            second.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(second.wait(), 15)
            except TimeoutError:
                second.kill()
                await second.wait()

    async with db.uow() as uow:
        labels = Counter(await uow.session.scalars(select(Couple.label)))
        rows = list(await uow.session.scalars(select(InboxUpdate)))
    assert labels == Counter({f"Pair {n}": 1 for n in range(COMMANDS)})
    assert answered() == COMMANDS
    assert all(r.payload is None for r in rows), "a handled update keeps no text"
