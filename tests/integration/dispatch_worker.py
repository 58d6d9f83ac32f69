"""A dispatcher in a process of its own, for tests that need two workers on one outbox.

Run as ``python -m tests.integration.dispatch_worker URL SCHEMA API_URL TOKEN NOW
[LEASE]`` (SCHEMA ``-`` for none; LEASE in seconds, 15 otherwise). It prints ``ready``
once set up, starts sending when it reads a line on stdin (so two workers start
together), sends until nothing is due or claimed (waiting out the leases a killed worker
left, in the database's time), and prints its ``DispatchStats`` as JSON.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from datetime import datetime, timedelta

from telegram import Bot

from bot.channels.telegram import TelegramMessenger
from bot.core.clock import ManualClock
from bot.services.delivery_render import DyadRenderer
from db.engine import Database
from schedules.dispatcher import Dispatcher, DispatchStats


async def main(
    url: str, schema: str, api_url: str, token: str, now: str, lease: str | None = None
) -> None:
    """Send everything due at ``now`` through the fake Bot API at ``api_url``."""
    db = Database(url, search_path=None if schema == "-" else schema)
    try:
        async with Bot(token, base_url=api_url) as bot:
            dispatcher = Dispatcher(
                db=db,
                clock=ManualClock(datetime.fromisoformat(now)),
                channels={"telegram": TelegramMessenger(bot)},
                renderer=DyadRenderer(),
                rate_per_second=100_000.0,
                per_chat_interval=0.0,
                batch_size=20,
                lease=timedelta(seconds=float(lease)) if lease else timedelta(seconds=15),
            )
            print("ready", flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
            stats = DispatchStats()
            while True:
                done = await dispatcher.run_until_idle()
                for name in vars(stats):
                    setattr(stats, name, getattr(stats, name) + getattr(done, name))
                if not await dispatcher.outstanding():
                    break
                await asyncio.sleep(0.1)
        print(json.dumps(dataclasses.asdict(stats)), flush=True)
    finally:
        await db.dispose()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:7]))
