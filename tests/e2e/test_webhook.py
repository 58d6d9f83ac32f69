"""Webhook mode: Telegram posts updates with the shared secret; a retried update is handled once."""

from __future__ import annotations

import contextlib
import copy
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.app import IntakeMode
from bot.core.clock import ManualClock
from bot.demo import offline_bot, offline_deps
from bot.locales import t
from db.engine import Database
from db.models import InboxUpdate
from fakebotapi import FakeBotAPI, FakeUser
from tests.e2e.conftest import Harness

SECRET = "hook-secret_0123456789"


def free_port() -> int:
    """A TCP port nothing listens on right now (loopback)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def running_bot(
    fake: FakeBotAPI,
    db: Database,
    clock: ManualClock,
    mode: IntakeMode = "webhook",
    **settings: Any,
) -> AsyncIterator[Harness]:
    """Dyad against the fake, its webhook (when ``mode`` takes one) on a loopback port."""
    port = free_port()
    deps = offline_deps(
        fake,
        db,
        clock,
        webhook_url=f"http://127.0.0.1:{port}/hook",
        webhook_secret=SECRET,
        webhook_listen="127.0.0.1",
        webhook_port=port,
        **settings,
    )
    bot = offline_bot(fake, deps)
    await bot.start(mode)
    try:
        yield Harness(bot, fake, db, clock)
    finally:
        await bot.stop()


@pytest.fixture
async def hooked(fake: FakeBotAPI, db: Database, clock: ManualClock) -> AsyncIterator[Harness]:
    """Dyad in webhook mode, on each database."""
    async with running_bot(fake, db, clock) as harness:
        yield harness


def _renumbered(update: dict[str, Any], update_id: int) -> dict[str, Any]:
    fresh = copy.deepcopy(update)
    fresh["update_id"] = update_id
    return fresh


async def _seen(harness: Harness, update_id: int) -> int:
    async with harness.db.uow() as uow:
        query = select(func.count()).where(InboxUpdate.update_id == update_id)
        return int(await uow.session.scalar(query) or 0)


async def _help_round_trip(user: FakeUser) -> None:
    """Send /help and wait for its answer: every update posted before it has been handled."""
    await user.send_command("help")
    await user.wait_for_message(lambda m: m.text == t("en", "common.help_stranger"))


async def test_updates_arrive_by_webhook_with_the_secret_and_are_answered(
    hooked: Harness, fake: FakeBotAPI
) -> None:
    assert fake.webhook_url == hooked.bot.deps.settings.webhook_url
    ana = hooked.user("Ana")
    await ana.send_command("start")
    reply = await ana.wait_for_message()
    assert "personal invite link from your therapist" in reply.text
    assert fake.calls_of("getUpdates") == []
    assert [d.status for d in fake.webhook_deliveries] == [200]


async def test_a_wrong_or_missing_secret_is_refused_and_nothing_is_handled(
    hooked: Harness, fake: FakeBotAPI
) -> None:
    ana = hooked.user("Ana")
    await _help_round_trip(ana)
    heard = len(ana.messages)
    forged = _renumbered(fake.updates[-1], 777_001)
    assert await fake.post_update_to_webhook(forged, secret="not-the-secret") == 403
    assert await fake.post_update_to_webhook(forged, secret=None) == 403
    await _help_round_trip(ana)
    assert len(ana.messages) == heard + 1  # the /help after, not the forged one
    assert await _seen(hooked, 777_001) == 0
    # The same update with the right secret is taken: the refusal was the secret's doing.
    assert await fake.post_update_to_webhook(forged) == 200
    await ana.wait_for_message(lambda m: m.text == t("en", "common.help_stranger"))
    assert await _seen(hooked, 777_001) == 1


async def test_an_update_telegram_retries_is_handled_once(
    hooked: Harness, fake: FakeBotAPI
) -> None:
    ana = hooked.user("Ana")
    await ana.send_command("start")
    await ana.wait_for_message()
    first = fake.updates[-1]
    heard = len(ana.messages)
    for _ in range(2):
        assert await fake.post_update_to_webhook(first) == 200
    await _help_round_trip(ana)
    assert [m.text for m in ana.messages[heard:]] == [t("en", "common.help_stranger")]
    assert await _seen(hooked, first["update_id"]) == 1
