"""The Mini App harness: Dyad with its web layer on loopback, the fake Telegram, a database.

The web server starts first (on any free port) so that the invitations Dyad sends carry
its real address; the bot, its dispatcher and the pages then share one set of
dependencies, as in one production process.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest

from bot.app import DyadBot
from bot.core.clock import ManualClock
from bot.demo import offline_bot, offline_deps, offline_settings
from bot.web.server import WebServer
from db.engine import Database
from fakebotapi import FakeBotAPI
from tests.e2e.conftest import Harness


@dataclass
class WebHarness(Harness):
    """The e2e harness plus the Mini App server."""

    web: WebServer | None = None

    @property
    def web_url(self) -> str:
        assert self.web is not None
        return self.web.base_url


async def start_web_harness(
    fake: FakeBotAPI, db: Database, clock: ManualClock
) -> tuple[WebHarness, DyadBot, WebServer]:
    """Start the pages, then Dyad pointed at them."""
    deps = offline_deps(fake, db, clock, webapp_url="http://127.0.0.1/app")
    web = WebServer(deps, fake.token, host="127.0.0.1", port=0)
    await web.start()
    deps.settings = offline_settings(fake, db, webapp_url=web.base_url)
    bot = offline_bot(fake, deps)
    await bot.start()
    return WebHarness(bot, fake, db, clock, web=web), bot, web


@pytest.fixture
async def fake(clock: ManualClock) -> AsyncIterator[FakeBotAPI]:
    """The fake Bot API on a random loopback port."""
    async with FakeBotAPI(clock=clock) as api:
        yield api


@pytest.fixture
async def web_harness(
    fake: FakeBotAPI, db: Database, clock: ManualClock
) -> AsyncIterator[WebHarness]:
    """Dyad with its Mini App, on each database."""
    harness, bot, web = await start_web_harness(fake, db, clock)
    try:
        yield harness
    finally:
        await bot.stop()
        await web.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain HTTP client, as a page's script posts its forms."""
    async with aiohttp.ClientSession() as session:
        yield session
