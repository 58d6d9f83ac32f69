"""``dyad demo``: Dyad end to end on a throwaway SQLite file against the local fake Telegram.

Everything here is the real product: the PTB Application, the handlers, the services, the
outbox and its dispatcher, over real HTTP to the fake Bot API on 127.0.0.1. The people are
played through the fake's user simulator, and time comes from a manual clock.
"""

from __future__ import annotations

import asyncio
import random
import re
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

from bot.app import DispatchOptions, DyadBot
from bot.config import load_settings
from bot.core.clock import ManualClock
from bot.fakebotapi import FakeBotAPI, FakeMessage, FakeUser
from bot.locales import t
from bot.services.crypto import Cipher, new_key
from bot.services.deps import Deps
from bot.services.onboarding import LANGUAGE_NAMES
from bot.services.practices import create_practice, invite_therapist
from db.engine import Database

_LINK = re.compile(r"\?start=([A-Za-z0-9_-]+)")
START = datetime(2026, 10, 19, 7, 0, tzinfo=UTC)  # a Monday, a week before Europe's DST change


class Demo:
    """The demo's cast and stage."""

    def __init__(self, bot: DyadBot, fake: FakeBotAPI, clock: ManualClock, seed: int) -> None:
        self.bot, self.fake, self.clock = bot, fake, clock
        self.rng = random.Random(seed)

    async def settle(self) -> None:
        """Let the dispatcher send everything that is due."""
        while await self.bot.dispatcher.outstanding():
            await self.bot.dispatcher.run_until_idle()
            await asyncio.sleep(0.01)

    async def join(
        self, partner: FakeUser, token: str, language: str, zone: str, window: str
    ) -> None:
        """A partner opens their link and answers every onboarding question."""
        await partner.send_command("start", token)
        await partner.wait_for_message(lambda m: bool(m.buttons))
        await partner.press_button(t(partner.language_code or "en", "onboarding.accept"))
        await partner.wait_for_message(lambda m: bool(m.buttons))
        await partner.press_button(LANGUAGE_NAMES[language])
        await partner.wait_for_message(lambda m: bool(m.buttons))
        await partner.send_text(zone)
        await partner.wait_for_message(lambda m: bool(m.buttons))
        await partner.press_button(t(language, f"onboarding.window_{window}"))
        await partner.wait_for_message(lambda m: bool(m.buttons))
        await partner.press_button(t(language, "onboarding.discreet_no"))
        await partner.wait_for_message(lambda m: "/help" in m.text)


def _transcript(title: str, user: FakeUser, out: TextIO) -> None:
    out.write(f"\n=== {title} ===\n")
    bot_messages = {id(m) for m in user.messages}
    timeline: list[FakeMessage] = sorted(
        [*user.messages, *user.sent_messages], key=lambda m: (m.date, m.message_id)
    )
    for message in timeline:
        who = "Dyad" if id(message) in bot_messages else user.first_name
        text = message.text.strip().replace("\n", "\n      ")
        out.write(f"{who:>6}: {text}\n")
        if message.buttons:
            out.write(f"        [{'] ['.join(message.button_texts)}]\n")


async def run_demo(*, keep: str | None, seed: int, out: TextIO) -> None:
    """Play the demo and print what each person saw."""
    with tempfile.TemporaryDirectory(prefix="dyad-demo-") as scratch:
        path = Path(keep) if keep else Path(scratch) / "demo.db"
        if path.exists():
            path.unlink()
        db = Database(f"sqlite+aiosqlite:///{path}")
        await db.migrate()
        clock = ManualClock(START)
        async with FakeBotAPI(bot_username="dyad_demo_bot", clock=clock) as fake:
            settings = load_settings(
                _env_file=None,
                telegram_api_url=fake.base_url,
                bot_token=fake.token,
                database_url=db.url,
            )
            bot = DyadBot(
                Deps(settings=settings, db=db, clock=clock, cipher=Cipher([new_key()])),
                fake.token,
                dispatch=DispatchOptions(per_chat_interval=0.0, idle_seconds=0.05),
            )
            await bot.start()
            try:
                await _play(Demo(bot, fake, clock, seed), db, clock, out)
            finally:
                await bot.stop()
        await db.dispose()
        if keep:
            out.write(f"\nThe demo database is kept at {path}\n")


async def _play(demo: Demo, db: Database, clock: ManualClock, out: TextIO) -> None:
    fake = demo.fake
    async with db.uow() as uow:
        practice = await create_practice(
            uow, "North Practice", timezone="Europe/Madrid", language="en", now=clock.now()
        )
        issued = await invite_therapist(
            uow,
            practice.slug,
            "Dr Ana Rivera",
            is_admin=True,
            now=clock.now(),
            ttl=timedelta(days=7),
        )
        await uow.commit()
    out.write(
        f"Practice created: {practice.slug}\nTherapist invite: {issued.link(fake.bot_username)}\n"
    )

    visitor = fake.add_user(900, "Sam", language_code="en")
    await visitor.send_command("start")
    await visitor.wait_for_message()
    await visitor.send_command("help")
    await visitor.wait_for_message()

    ana = fake.add_user(100, "Ana", language_code="en")
    await ana.send_command("start", issued.token)
    await ana.wait_for_message()
    await ana.send_command("newcouple", "J & M")
    created = await ana.wait_for_message(lambda m: "?start=" in m.text)
    token_a, token_b = _LINK.findall(created.text)

    jordan = fake.add_user(201, "Jordan", language_code="en")
    marta = fake.add_user(202, "Marta", language_code="es")
    await demo.join(jordan, token_a, "en", "America/New_York", "evening")
    await demo.join(marta, token_b, "es", "Europe/Madrid", "morning")
    await demo.settle()
    await ana.send_command("goal", "c1 Notice the good moments and talk through the hard ones")
    await ana.wait_for_message(lambda m: "saved" in m.text)
    await demo.settle()
    await ana.send_command("couples")
    await ana.wait_for_message(lambda m: "c1" in m.text)

    _transcript("A visitor without an invitation", visitor, out)
    _transcript("Therapist: Dr Ana Rivera", ana, out)
    _transcript("Partner A: Jordan (English, New York)", jordan, out)
    _transcript("Partner B: Marta (Spanish, Madrid)", marta, out)
    out.write(
        "\nMessages received: "
        f"Jordan {len(jordan.messages)}, Marta {len(marta.messages)} (the same cadence for both)\n"
    )
