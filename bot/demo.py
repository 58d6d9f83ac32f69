"""``dyad demo``: a fortnight of Dyad, end to end, on a throwaway SQLite file, offline.

Everything here is the real product: the PTB Application and its handlers, the
services, the planner, the outbox and its dispatcher, talking real HTTP to the fake
Bot API on 127.0.0.1. Only the people are played (by the fake's user simulator,
answering what the bot sends them), and time comes from a manual clock that jumps from
one due message to the next, so fourteen days take seconds.
"""

from __future__ import annotations

import asyncio
import random
import re
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from bot.app import DispatchOptions, DyadBot
from bot.config import Settings, load_settings
from bot.core.clock import Clock, ManualClock
from bot.locales import t
from bot.services.crypto import Cipher, new_key
from bot.services.deps import Deps
from bot.services.onboarding import LANGUAGE_NAMES
from bot.services.practices import create_practice, invite_therapist
from db.engine import Database
from db.models import Delivery
from fakebotapi import FakeBotAPI, FakeMessage, FakeUser

_LINK = re.compile(r"\?start=([A-Za-z0-9_-]+)")
START = datetime(2026, 10, 19, 6, 0, tzinfo=UTC)  # a Monday, a week before Europe's DST change
DAYS = 14
STEP = timedelta(hours=6)


@dataclass
class Persona:
    """How one played partner answers: seeded, with a few fixed moments the demo must show."""

    user: FakeUser
    language: str
    zone: str
    rng: random.Random
    notes: list[tuple[str, bool]]  # (note text, OK to raise), used in order
    space_shares: list[bool]  # share the 1st, 2nd... couple-space answer?
    seen: int = 0
    checkins: int = 0
    followups: int = 0
    spaces: int = 0
    log: list[str] = field(default_factory=list)


def offline_settings(fake: FakeBotAPI, db: Database, **settings: Any) -> Settings:
    """Dyad's settings for a run against ``fake`` on ``db`` (no .env), with ``settings`` on top."""
    return load_settings(
        _env_file=None,
        telegram_api_url=fake.base_url,
        bot_token=fake.token,
        database_url=db.url,
        **settings,
    )


def offline_deps(
    fake: FakeBotAPI, db: Database, clock: Clock, *, cipher: Cipher | None = None, **settings: Any
) -> Deps:
    """What Dyad runs on against ``fake``: ``db``, ``clock`` and a fresh key unless ``cipher``."""
    return Deps(
        settings=offline_settings(fake, db, **settings),
        db=db,
        clock=clock,
        cipher=cipher if cipher is not None else Cipher([new_key()]),
    )


def offline_bot(
    fake: FakeBotAPI,
    deps: Deps,
    *,
    dispatch: DispatchOptions | None = None,
    background_dispatch: bool = True,
) -> DyadBot:
    """Dyad against the fake Bot API, for the demo, the tests and the benchmarks.

    By default the dispatcher sends at once (no spacing per chat), notices in 50 ms that it
    is idle and plans only when asked.
    """
    if dispatch is None:
        dispatch = DispatchOptions(per_chat_interval=0.0, idle_seconds=0.05, plan_every_seconds=0)
    return DyadBot(deps, fake.token, dispatch=dispatch, background_dispatch=background_dispatch)


class Demo:
    """The demo's stage: the bot, the fake Telegram, the clock and the database."""

    def __init__(self, bot: DyadBot, fake: FakeBotAPI, clock: ManualClock, db: Database) -> None:
        self.bot, self.fake, self.clock, self.db = bot, fake, clock, db

    async def settle(self) -> None:
        """Let the dispatcher send everything that is due, and the bot answer everyone."""
        for _ in range(200):
            await self.bot.dispatcher.run_until_idle()
            await asyncio.sleep(0.02)
            if not await self.bot.dispatcher.outstanding() and not self.fake.pending_updates:
                return

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

    async def act(self, persona: Persona) -> None:
        """Answer whatever the bot has sent this partner since last time."""
        user = persona.user
        while persona.seen < len(user.messages):
            message = user.messages[persona.seen]
            persona.seen += 1
            count = len(user.messages)
            if await self._answer(persona, message):
                await user.wait_for_message(after=count)  # the bot answers before time moves
                await self.settle()

    async def _press(self, persona: Persona, message: FakeMessage, prefix: str, pick: str) -> bool:
        for _, data in message.buttons:
            if data and data.startswith(prefix) and data.endswith(f"|{pick}"):
                await persona.user.press(message, data)
                return True
        return False

    async def _answer(self, persona: Persona, message: FakeMessage) -> bool:
        data = [d for _, d in message.buttons if d]
        user, rng, lang = persona.user, persona.rng, persona.language
        if any(d.startswith("1|cis|") for d in data):
            persona.checkins += 1
            await user.press(message, data[0])
            return True
        if any(d.startswith("1|ci|") for d in data):
            item = data[0].split("|")[3]
            if item in ("wellbeing", "hope", "safe_to_be_honest", "understood"):
                base = {"wellbeing": 6, "hope": 6, "safe_to_be_honest": 7, "understood": 7}[item]
                trend = persona.checkins // 2
                value = max(0, min(10, base + trend + rng.choice((-1, 0, 0, 1))))
                return await self._press(persona, message, "1|ci|", str(value))
            if item == "skill":
                choice = rng.choice(("yes", "partly", "no"))
                return await self._press(persona, message, "1|ci|", choice)
            if item == "note":
                if persona.notes:
                    text, _ = persona.notes[0]
                    await user.send_text(text)
                    persona.log.append(text)
                    return True
                return await self._press(persona, message, "1|ci|", "s")
            if item == "ok_to_raise":
                _, raise_it = persona.notes.pop(0)
                return await self._press(persona, message, "1|ci|", "yes" if raise_it else "no")
            return await self._press(persona, message, "1|ci|", "no")  # the safety question
        if any(d.startswith("1|pr|") for d in data):
            persona.followups += 1
            choice = "yes" if persona.followups == 1 else rng.choice(("partly", "not_yet"))
            return await self._press(persona, message, "1|pr|", choice)
        if message.text == t(lang, "schedules.optional_text"):
            words = {
                "en": "We tried it after dinner; it felt awkward, then easier.",
                "es": "Lo probamos después de cenar; al principio costó, luego mejor.",
            }
            await user.send_text(words[lang])
            return True
        if any(d.startswith("1|rr|") for d in data):
            return await self._press(persona, message, "1|rr|", rng.choice(("yes", "no")))
        if any(d.startswith("1|sh|") for d in data):
            share = persona.space_shares[min(persona.spaces - 1, len(persona.space_shares) - 1)]
            return await self._press(persona, message, "1|sh|", "yes" if share else "no")
        if t(lang, "prompts.space_hint").replace("<i>", "").replace("</i>", "") in message.text:
            persona.spaces += 1
            answers = {
                "en": [
                    "The way you made coffee for me every morning this week.",
                    "Our walk by the river on Saturday.",
                ],
                "es": [
                    "Que me escucharas sin prisa el jueves por la noche.",
                    "La cena con tus padres; me sentí parte del equipo.",
                ],
            }[lang]
            await user.reply_to(message, answers[(persona.spaces - 1) % len(answers)])
            return True
        reply_hint = t(lang, "prompts.reply_hint").replace("<i>", "").replace("</i>", "")
        if reply_hint in message.text and rng.random() < 0.6:
            replies = {
                "en": ["A small thing: we laughed while cooking.", "I'll try it this weekend."],
                "es": ["Algo pequeño: nos reímos cocinando.", "Lo probaré este fin de semana."],
            }[lang]
            await user.reply_to(message, rng.choice(replies))
            return True
        return False


def _clip(text: str, width: int = 96) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def _transcript(title: str, user: FakeUser, zone: str, out: TextIO, since: int) -> None:
    out.write(f"\n=== {title} ===\n")
    tz = ZoneInfo(zone)
    bot_ids = {id(m) for m in user.messages}
    timeline = sorted([*user.messages, *user.sent_messages], key=lambda m: (m.date, m.message_id))
    hidden = sum(1 for m in user.messages if m.date < since)
    out.write(f"(joining: {hidden} messages from Dyad, not shown)\n")
    for message in timeline:
        if message.date < since:
            continue
        when = datetime.fromtimestamp(message.date, tz).strftime("%a %d %b %H:%M")
        who = "Dyad" if id(message) in bot_ids else user.first_name
        text = message.text or ((message.document.file_name or "") if message.document else "")
        buttons = f"  [{' | '.join(message.button_texts)}]" if message.buttons else ""
        out.write(f"{when}  {who:>6}: {_clip(text)}{_clip(buttons, 60)}\n")


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
            bot = offline_bot(fake, offline_deps(fake, db, clock), background_dispatch=False)
            await bot.start()
            try:
                await _play(Demo(bot, fake, clock, db), seed, out)
            finally:
                await bot.stop()
        await db.dispose()
        if keep:
            out.write(f"\nThe demo database is kept at {path}\n")


async def _play(demo: Demo, seed: int, out: TextIO) -> None:
    fake, clock, db = demo.fake, demo.clock, demo.db
    rng = random.Random(seed)
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
        "Dyad demo: two weeks of a couple's between-session work, played against a local fake "
        "Telegram.\n"
        f"Practice: {practice.slug}. Therapist invite: {issued.link(fake.bot_username)}\n"
    )

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
    session_day = (clock.now() + timedelta(days=DAYS)).astimezone(ZoneInfo("Europe/Madrid"))
    await ana.send_command("session", f"c1 {session_day:%Y-%m-%d} 18:00")
    await ana.wait_for_message(lambda m: "Session for c1" in m.text)
    await demo.settle()

    personas = [
        Persona(
            jordan, "en", "America/New_York", random.Random(rng.random()),
            notes=[("I keep replaying Sunday's argument and haven't said it aloud.", False),
                   ("I pull away when Marta goes quiet; I'd like us to talk about it.", True)],
            space_shares=[True, True],
        ),
        Persona(
            marta, "es", "Europe/Madrid", random.Random(rng.random()),
            notes=[("Esta semana sentí que nos escuchamos más; me gustaría hablar de ello.", True)],
            space_shares=[True, False],
        ),
    ]  # fmt: skip
    for persona in personas:
        persona.seen = len(persona.user.messages)
    since = int(clock.now().timestamp()) + 1
    end = START + timedelta(days=DAYS, hours=6)
    while clock.now() < end:
        await demo.bot.maintain()
        await demo.settle()
        for persona in personas:
            await demo.act(persona)
        async with db.uow() as uow:
            next_due = await uow.session.scalar(
                select(func.min(Delivery.due_at)).where(
                    Delivery.status == "pending", Delivery.due_at > clock.now()
                )
            )
        target = min(clock.now() + STEP, next_due or end, end)
        clock.set(max(target, clock.now() + timedelta(minutes=1)))

    async with db.uow() as uow:
        digest_ids = set(
            await uow.session.scalars(
                select(Delivery.message_id).where(
                    Delivery.kind == "digest", Delivery.status == "sent"
                )
            )
        )
    _transcript("Partner A: Jordan (English, New York)", jordan, "America/New_York", out, since)
    _transcript("Partner B: Marta (Spanish, Madrid)", marta, "Europe/Madrid", out, since)
    out.write("\n=== The pre-session digest, exactly as Dr Ana Rivera received it ===\n")
    for message in ana.messages:
        if message.message_id in digest_ids:
            out.write(message.text + "\n")
    fortnight_end = START.date() + timedelta(days=DAYS)
    out.write(
        "\n=== Scheduled messages per partner, local days "
        f"{START:%d %b} to {fortnight_end - timedelta(days=1):%d %b} ===\n"
    )
    async with db.uow() as uow:
        rows = (
            await uow.session.execute(
                select(Delivery.partner_id, Delivery.kind, func.count())
                .where(Delivery.status == "sent", Delivery.partner_id.is_not(None))
                .where(Delivery.local_date < f"{fortnight_end:%Y-%m-%d}")
                .where(
                    Delivery.kind.in_(
                        ("checkin", "hope", "skill", "skill_followup", "couple_space")
                    )
                )
                .group_by(Delivery.partner_id, Delivery.kind)
            )
        ).all()
        partners = {p.id: p for p in await uow.partners.of_couple(1)}
    for partner_id in sorted(partners):
        counts = {kind: n for pid, kind, n in rows if pid == partner_id}
        name = partners[partner_id].display_name
        parts = ", ".join(f"{kind} {counts[kind]}" for kind in sorted(counts))
        out.write(f"{name}: {sum(counts.values())} ({parts})\n")
    out.write(
        f"All messages from Dyad, including answers to their own replies: "
        f"Jordan {len(jordan.messages)}, Marta {len(marta.messages)}\n"
    )


async def run_web_demo(*, port: int, out: TextIO, stop: asyncio.Event | None = None) -> None:
    """``dyad demo --web``: the one-page check-in served on loopback, a link per partner.

    The links carry a valid test ``initData`` (signed with the fake Telegram's token), so
    any browser opens them; the demo clock stands still, so they stay valid while it runs.
    Serves until ``stop`` is set (or the process is interrupted), then prints what each
    partner's chat holds: the invitation and the "saved" note, nothing of the answers.
    """
    from bot.services.outbox import enqueue
    from bot.web.server import WebServer
    from fakebotapi.webapps import launch_url, user_init_data

    with tempfile.TemporaryDirectory(prefix="dyad-demo-web-") as scratch:
        db = Database(f"sqlite+aiosqlite:///{Path(scratch) / 'demo.db'}")
        await db.migrate()
        clock = ManualClock(START)
        async with FakeBotAPI(bot_username="dyad_demo_bot", clock=clock) as fake:
            # The pages' address is known once they listen; the bot then gets it.
            deps = offline_deps(fake, db, clock, webapp_url="http://127.0.0.1/app")
            web = WebServer(deps, fake.token, host="127.0.0.1", port=port)
            await web.start()
            deps.settings = offline_settings(fake, db, webapp_url=web.base_url)
            bot = offline_bot(fake, deps)
            await bot.start()
            demo = Demo(bot, fake, clock, db)
            try:
                partners = await _web_couple(demo)
                out.write(
                    "Dyad demo: the private check-in as a Mini App, served on "
                    f"{web.base_url}.\nOpen a link in any browser (each is that partner's own "
                    "page, as Telegram would open it):\n"
                )
                for user in partners:
                    async with db.uow() as uow:
                        partner = await uow.partners.by_user(user.id)
                        assert partner is not None
                        await enqueue(
                            uow,
                            partner,
                            kind="checkin",
                            key="checkin",
                            dedupe_key="demo:web",
                            due_at=clock.now(),
                            couple_id=partner.couple_id,
                        )
                        await uow.commit()
                    await demo.settle()
                    label = t(partner.language, "webapp.button")
                    invitation = await user.wait_for_message(_has_page_button, after=0)
                    page = invitation.web_app_url_for(label)
                    assert page is not None
                    init = user_init_data(user.to_api(), fake.token, fake.date())
                    out.write(f"\n{user.first_name}: {launch_url(page, init)}\n")
                out.write("\nPress Ctrl-C to stop.\n")
                out.flush()
                await (stop or asyncio.Event()).wait()
                await demo.settle()
                for user in partners:
                    out.write(f"\n=== {user.first_name}'s chat, last messages ===\n")
                    for message in user.messages[-2:]:
                        out.write(f"{message.text}\n")
            finally:
                await bot.stop()
                await web.stop()
        await db.dispose()


def _has_page_button(message: FakeMessage) -> bool:
    rows = (message.reply_markup_raw or {}).get("inline_keyboard", [])
    return any("web_app" in button for row in rows for button in row)


async def _web_couple(demo: Demo) -> list[FakeUser]:
    """A practice, its therapist, and a couple whose two partners have joined."""
    fake, clock = demo.fake, demo.clock
    async with demo.db.uow() as uow:
        practice = await create_practice(
            uow, "North Practice", timezone="Europe/Madrid", language="en", now=clock.now()
        )
        issued = await invite_therapist(
            uow, practice.slug, "Dr Ana Rivera", is_admin=True, now=clock.now(),
            ttl=timedelta(days=7),
        )  # fmt: skip
        await uow.commit()
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
    return [jordan, marta]
