"""Two ``dyad run`` processes in webhook mode behind a load balancer share one PostgreSQL.

Real subprocesses, real HTTP on loopback: the fake Bot API posts updates to a tiny
round-robin balancer in front of both workers, and Telegram's retries are played by
posting some updates again, straight to each worker. Both workers also dispatch one
outbox. No update is handled twice, and no delivery is sent twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from bot.locales import t
from bot.services.crypto import new_key
from db.engine import Database
from db.models import Delivery, InboxUpdate
from fakebotapi import FakeBotAPI, FakeUser
from tests.conftest import PG_SKIP_REASON, postgres_url
from tests.e2e.test_webhook import free_port
from tests.integration.test_dispatcher import notes_received, open_clinic, queue_notes

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "7012345678:AAHtwoWORKERStwoWORKERStwoWORKERS12"
SECRET = "two-workers_secret-0123"
PATH = "/hook"
DEADLINE = 90.0  # seconds for the whole test, start-up and shut-down included (a hang guard)
REDIS_URL = os.environ.get("DYAD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

pytestmark = pytest.mark.skipif(postgres_url() is None, reason=PG_SKIP_REASON)


@contextlib.asynccontextmanager
async def fresh_database() -> AsyncIterator[str]:
    """A new, empty PostgreSQL database for this test alone (dropped afterwards)."""
    base = postgres_url()
    assert base is not None
    name = f"dyad_workers_{uuid.uuid4().hex[:12]}"
    # CREATE DATABASE cannot run inside a transaction block.
    admin = create_async_engine(base, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


@dataclass
class Balancer:
    """Round-robin over the workers' webhook ports, forwarding Telegram's headers as they are."""

    targets: list[str]
    port: int = 0
    forwarded: Counter[str] = field(default_factory=Counter)
    _turn: int = 0
    _runner: web.AppRunner | None = None
    _session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        """The public webhook URL every worker registers."""
        return f"http://127.0.0.1:{self.port}{PATH}"

    async def start(self) -> None:
        """Listen on a free loopback port."""
        self._session = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_post(PATH, self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        self.port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        """Close the listener and the connections to the workers."""
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _forward(self, request: web.Request) -> web.Response:
        assert self._session is not None
        target = self.targets[self._turn % len(self.targets)]
        self._turn += 1
        self.forwarded[target] += 1
        keep = ("Content-Type", "X-Telegram-Bot-Api-Secret-Token")
        headers = {name: request.headers[name] for name in keep if name in request.headers}
        try:
            async with self._session.post(
                target, data=await request.read(), headers=headers
            ) as answer:
                return web.Response(status=answer.status, body=await answer.read())
        except aiohttp.ClientError:
            return web.Response(status=502)


@dataclass
class Worker:
    """One ``dyad run`` process."""

    process: asyncio.subprocess.Process
    hook_url: str
    health_port: int
    log_path: Path
    log_file: IO[bytes]

    def log_lines(self) -> list[dict[str, Any]]:
        """Its JSON log lines (read once it has stopped)."""
        lines = self.log_path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]


async def start_worker(
    index: int,
    database_url: str,
    fake: FakeBotAPI,
    public_url: str,
    key: str,
    tmp: Path,
    prefix: str,
) -> Worker:
    """``python -c "from bot.cli import main; main()" run`` in webhook mode on its own ports."""
    hook_port, health_port = free_port(), free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith("DYAD_")}
    env.update(
        PYTHONPATH=str(ROOT),
        DYAD_DATABASE_URL=database_url,
        DYAD_BOT_TOKEN=TOKEN,
        DYAD_TELEGRAM_API_URL=fake.base_url,
        DYAD_WEBHOOK_URL=public_url,
        DYAD_WEBHOOK_SECRET=SECRET,
        DYAD_WEBHOOK_LISTEN="127.0.0.1",
        DYAD_WEBHOOK_PORT=str(hook_port),
        DYAD_HEALTH_PORT=str(health_port),
        DYAD_ENCRYPTION_KEYS=key,
        # One budget in Redis for both (no static split), under this test's own keys.
        DYAD_REDIS_URL=REDIS_URL,
        DYAD_REDIS_PREFIX=prefix,
        DYAD_LOG_FORMAT="json",
        DYAD_LOG_LEVEL="INFO",
    )
    log_path = tmp / f"worker{index}.log"
    log_file = log_path.open("wb")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from bot.cli import main; main()",
        "run",
        env=env,
        cwd=tmp,  # no stray .env file is read
        stdin=asyncio.subprocess.DEVNULL,
        stdout=log_file,
        stderr=log_file,
    )
    return Worker(process, f"http://127.0.0.1:{hook_port}{PATH}", health_port, log_path, log_file)


async def until(condition: Callable[[], Awaitable[bool]], what: str, workers: list[Worker]) -> None:
    """Wait for ``condition``; fail early, with the logs, if a worker died."""
    while not await condition():
        for worker in workers:
            if worker.process.returncode is not None:
                log = worker.log_path.read_text(encoding="utf-8")[-3000:]
                raise AssertionError(f"a worker exited while waiting for {what}:\n{log}")
        await asyncio.sleep(0.05)


async def healthy(worker: Worker) -> bool:
    """Whether the worker answers 200 on /healthz."""
    try:
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{worker.health_port}/healthz"
            async with session.get(url) as response:
                return response.status == 200
    except aiohttp.ClientError:
        return False


async def stop_workers(workers: list[Worker]) -> None:
    """SIGTERM, as an orchestrator would; kill whatever does not stop in time."""
    for worker in workers:
        if worker.process.returncode is None:
            worker.process.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            await asyncio.wait_for(worker.process.wait(), 10.0)
        except TimeoutError:
            worker.process.kill()
            await worker.process.wait()
        worker.log_file.close()


def replies(user: FakeUser) -> int:
    """How many answers to /help the user got."""
    return sum(m.text == t("en", "common.help_stranger") for m in user.messages)


@pytest.mark.postgres
async def test_two_workers_handle_each_update_once_and_send_each_delivery_once(
    tmp_path: Path,
) -> None:
    async with asyncio.timeout(DEADLINE), fresh_database() as url:
        db = Database(url)
        await db.migrate()
        async with FakeBotAPI(token=TOKEN) as fake:
            clinic = await open_clinic(db, fake, datetime.now(UTC), couples=2)
            notes = await queue_notes(db, clinic.partners, 3, datetime.now(UTC))
            balancer = Balancer(targets=[])
            await balancer.start()
            key = new_key()
            prefix = f"dyad-test-{uuid.uuid4().hex[:12]}"
            workers = [
                await start_worker(i, url, fake, balancer.url, key, tmp_path, prefix)
                for i in (1, 2)
            ]
            balancer.targets = [worker.hook_url for worker in workers]
            try:
                await _play(db, fake, balancer, workers, notes)
            finally:
                await stop_workers(workers)
                await balancer.stop()
        await db.dispose()
    for worker in workers:
        assert worker.process.returncode == 0, worker.log_path.read_text()[-3000:]
        lines = worker.log_lines()
        [running] = [line for line in lines if line["message"] == "dyad is running"]
        # Each may take the whole budget: the window in Redis is what they share.
        assert (running["mode"], running["send_rate"]) == ("webhook", 30.0)


async def _play(
    db: Database, fake: FakeBotAPI, balancer: Balancer, workers: list[Worker], notes: list[int]
) -> None:
    async def both_up() -> bool:
        return all([await healthy(worker) for worker in workers])

    await until(both_up, "the workers to start", workers)
    assert fake.webhook_url == balancer.url

    # A stream of updates through the balancer; every third one Telegram sends again.
    users = [fake.add_user(3000 + i, f"User {i}") for i in range(6)]
    for _ in range(3):
        for user in users:
            await user.send_command("help")
    first_sent = list(fake.updates)
    await fake.wait_for(lambda: not fake.pending_updates, 20.0)
    for update in first_sent[::3]:
        for worker in workers:
            assert await fake.post_update_to_webhook(update, url=worker.hook_url) == 200

    # A fresh update straight to each worker (updates of different chats run concurrently,
    # so what was queued before it is waited for below, by its replies).
    marker = fake.add_user(3999, "Marker")
    await marker.send_command("help")
    await fake.wait_for(lambda: replies(marker) == 1, 20.0)
    for number, worker in enumerate(workers, start=1):
        again = dict(fake.updates[-1], update_id=9_000_000 + number)
        assert await fake.post_update_to_webhook(again, url=worker.hook_url) == 200
    await fake.wait_for(lambda: replies(marker) == 3, 20.0)

    async def outbox_done() -> bool:
        async with db.uow() as uow:
            query = select(func.count()).where(Delivery.status.in_(("pending", "claimed")))
            return not await uow.session.scalar(query)

    await until(outbox_done, "the outbox to drain", workers)

    async def all_answered() -> bool:
        return all(replies(user) >= 3 for user in users)

    await until(all_answered, "every /help to be answered", workers)
    await asyncio.sleep(0.5)  # a reply sent twice would have landed by now

    assert all(balancer.forwarded[worker.hook_url] > 0 for worker in workers)
    assert [replies(user) for user in users] == [3] * len(users)
    async with db.uow() as uow:
        seen = await uow.session.scalar(select(func.count()).select_from(InboxUpdate))
        statuses = Counter(
            await uow.session.scalars(select(Delivery.status).where(Delivery.id.in_(notes)))
        )
    assert seen == len(first_sent) + 1 + 2  # each update once, the marker and its two copies
    assert statuses == {"sent": len(notes)}
    received = notes_received(fake)
    assert len(received) == len(notes) and set(received.values()) == {1}
