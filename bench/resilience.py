"""Resilience: outages, crashes and clock skew, counted as lost and duplicated messages.

Four runs, each against the real code over loopback (the fake Bot API, aiosmtpd, a TCP
proxy in front of PostgreSQL), each printing what was lost and what was sent twice:

- ``outage``: the Bot API fails every send (70 % 5xx, 30 % timeouts) for six minutes of
  a manual clock, longer than the old give-up time (eight tries, about four minutes);
  then it is back. A safety alert is among the rows; the therapist has an email address.
- ``skew``: two dispatchers whose clocks differ by 121 s share one outbox, the first one
  slow; then a row gets three 429s with ``retry_after`` 45 s while two workers run.
- ``intake-kill``: ``dyad run`` (polling) has stored and acknowledged 100 updates and is
  killed with SIGKILL while handling the first; a fresh process takes over.
- ``intake-outage`` (PostgreSQL): 240 updates from 240 people arrive over about 40 s while
  the database is unreachable for 20 s (a proxy refuses and cuts every connection).

    python -m bench.resilience [--scenario outage|skew|intake-kill|intake-outage|all]
                               [--database sqlite|postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from telegram import Bot
from telegram.ext import ExtBot
from telegram.request import HTTPXRequest

from bench._common import default_postgres_url, emit, open_bench_database, quiet_logging
from bot.app import DispatchOptions, DyadBot
from bot.channels.base import Messenger, Outgoing, Sent
from bot.channels.email import EmailMessenger, SmtpConfig
from bot.channels.registry import EMAIL, EMAIL_LIMITS, TELEGRAM, ChannelRegistry
from bot.channels.telegram import DyadRateLimiter, TelegramMessenger
from bot.config import load_settings
from bot.core.clock import ManualClock
from bot.locales import t
from bot.services.crypto import Cipher, new_key
from bot.services.delivery_render import DyadRenderer
from bot.services.deps import Deps
from bot.services.outbox import enqueue, notify
from db.clock import DatabaseTime
from db.engine import Database
from db.models import Couple, Delivery, InboxUpdate, Partner, Practice, Therapist
from fakebotapi import FakeBotAPI
from schedules.dispatcher import Dispatcher, Pacer

ROOT = Path(__file__).resolve().parents[1]
START = datetime(2026, 10, 19, 9, 0, tzinfo=UTC)
THERAPIST_CHAT = 500
NOTE = "couple.goal_set"  # "... set by your therapist: {goal}": each row's text is its own


# Shared set-up ------------------------------------------------------------------------------


async def seed(
    db: Database, fake: FakeBotAPI, couples: int, email: str | None = None
) -> list[Partner]:
    """A practice, a therapist (chat 500) and ``couples`` joined couples (chats 1001...)."""
    async with db.uow() as uow:
        practice = Practice(slug="north", name="North", created_at=START)
        uow.session.add(practice)
        await uow.flush()
        therapist = Therapist(
            practice_id=practice.id,
            display_name="Dr Rivera",
            telegram_user_id=THERAPIST_CHAT,
            chat_id=THERAPIST_CHAT,
            created_at=START,
            joined_at=START,
            email=email,
        )
        uow.session.add(therapist)
        await uow.flush()
        rows = [
            Couple(
                practice_id=practice.id,
                therapist_id=therapist.id,
                handle=f"c{n}",
                label=f"Couple {n}",
                created_at=START,
            )
            for n in range(1, couples + 1)
        ]
        uow.session.add_all(rows)
        await uow.flush()
        partners = [
            Partner(
                couple_id=couple.id,
                slot=slot,
                display_name=f"{slot}{couple.handle}",
                telegram_user_id=chat,
                chat_id=chat,
                language="en",
                timezone="Europe/Madrid",
                window="evening",
                onboarding_step="done",
                consented_at=START,
                joined_at=START,
            )
            for i, couple in enumerate(rows)
            for slot, chat in (("A", 1001 + 2 * i), ("B", 1002 + 2 * i))
        ]
        uow.session.add_all(partners)
        await uow.commit()
    fake.add_user(THERAPIST_CHAT, "Ana", has_started=True)
    for partner in partners:
        fake.add_user(partner.chat_id or 0, partner.display_name or "P", has_started=True)
    return partners


async def queue(
    db: Database, partners: Sequence[Partner], tag: str, due: datetime, **extra: Any
) -> list[str]:
    """One numbered note per partner; returns the notes' texts."""
    notes = []
    async with db.uow() as uow:
        for partner in partners:
            note = f"{tag}-{partner.id}"
            await enqueue(
                uow,
                partner,
                kind="notice",
                key=NOTE,
                dedupe_key=note,
                due_at=due,
                couple_id=partner.couple_id,
                params={"goal": note},
                **extra,
            )
            notes.append(note)
        await uow.commit()
    return notes


def received(fake: FakeBotAPI, notes: Sequence[str]) -> Counter[str]:
    """How often each note reached its partner."""
    wanted = set(notes)
    counts: Counter[str] = Counter()
    for message in fake.bot_messages:
        note = message.text.rsplit(": ", 1)[-1]
        if note in wanted:
            counts[note] += 1
    return counts


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Mailbox:
    """aiosmtpd's handler: keeps what it accepts."""

    def __init__(self) -> None:
        self.accepted: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.accepted.append(bytes(envelope.content))
        return "250 OK"


# outage ----------------------------------------------------------------------------------------


async def outage(db: Database, minutes: float, couples: int) -> dict[str, Any]:
    clock = ManualClock(START)
    box, port = Mailbox(), free_port()
    smtp = Controller(box, hostname="127.0.0.1", port=port)
    smtp.start()
    try:
        async with FakeBotAPI(clock=clock, timeout_delay=0.05) as fake:
            partners = await seed(db, fake, couples, email="ana@north.example")
            length = timedelta(minutes=minutes)
            notices = await queue(db, partners, "notice", START)
            prompts = await queue(db, partners, "prompt", START, not_after=START + 2 * length)
            async with db.uow() as uow:
                therapist = await uow.session.scalar(select(Therapist))
                assert therapist is not None
                await notify(
                    uow,
                    therapist,
                    "alerts.notice",
                    dedupe_key="alert:1",
                    now=START,
                    couple_id=partners[0].couple_id,
                    handle="c1",
                    slot="A",
                    kind_key="safety.kind.self_harm",
                    when="09:00",
                )
                await uow.commit()
            fake.set_fault_rates(
                server_error=0.7, timeout=0.3, seed=19, methods=frozenset({"sendMessage"})
            )
            config = SmtpConfig(host="127.0.0.1", port=port, sender="d@n.example", starttls=False)
            request = HTTPXRequest(read_timeout=2.0)
            async with Bot(fake.token, base_url=fake.base_url, request=request) as bot:
                channels = ChannelRegistry()
                channels.register(TELEGRAM, TelegramMessenger(bot))
                channels.register(EMAIL, EmailMessenger(config, clock), EMAIL_LIMITS)
                worker = Dispatcher(
                    db=db,
                    clock=clock,
                    channels=channels,
                    renderer=DyadRenderer(),
                    rate_per_second=1000.0,
                    per_chat_interval=0.0,
                )
                emailed_after = None
                while clock.now() - START < length:
                    await worker.run_until_idle()
                    if emailed_after is None and box.accepted:
                        emailed_after = (clock.now() - START).total_seconds()
                    clock.advance(timedelta(seconds=15))
                during = len(fake.calls_of("sendMessage"))
                down = sorted(worker.outages())
                fake.faults.clear()
                for _ in range(60):
                    await worker.run_until_idle()
                    async with db.uow() as uow:
                        left = await uow.session.scalar(
                            select(func.count()).where(Delivery.status.in_(("pending", "claimed")))
                        )
                    if not left:
                        break
                    clock.advance(timedelta(seconds=15))
            got = received(fake, notices + prompts)
            async with db.uow() as uow:
                statuses = Counter(await uow.session.scalars(select(Delivery.status)))
                attempts = max(await uow.session.scalars(select(Delivery.attempts)))
            alert_telegram = sum("Safety alert" in m.text for m in fake.sent_to(THERAPIST_CHAT))
    finally:
        smtp.stop()
    timely = notices + prompts
    return {
        "rows_timely": len(timely) + 1,
        "lost": sum(1 for note in timely if got[note] == 0),
        "duplicates": sum(n - 1 for n in got.values() if n > 1),
        "gave_up": statuses.get("failed", 0),
        "alert_on_telegram": alert_telegram,
        "alert_emails": len(box.accepted),
        "alert_email_after_s": emailed_after,
        "channels_down_during": down,
        "send_requests_during_outage": during,
        "max_attempts": attempts,
    }


# skew and slow sends --------------------------------------------------------------------------


class Slow:
    """A Messenger whose every send takes ``delay`` seconds more."""

    def __init__(self, inner: Messenger, delay: float) -> None:
        self.inner, self.delay = inner, delay

    async def send(self, address: Any, message: Outgoing) -> Sent:
        await asyncio.sleep(self.delay)
        return await self.inner.send(address, message)

    async def edit(self, address: Any, message_id: int, message: Outgoing) -> None:
        await self.inner.edit(address, message_id, message)

    async def delete(self, address: Any, message_id: int) -> None:
        await self.inner.delete(address, message_id)


def leased(db: Database, clock: ManualClock, messenger: Messenger, **options: Any) -> Dispatcher:
    return Dispatcher(
        db=db,
        clock=clock,
        channels={TELEGRAM: messenger},
        renderer=DyadRenderer(),
        rate_per_second=1000.0,
        per_chat_interval=0.0,
        lease_clock=DatabaseTime(db),
        **options,
    )


async def skew(db: Database, couples: int) -> dict[str, Any]:
    clock = ManualClock(START)
    ahead = ManualClock(START + timedelta(seconds=121))
    async with FakeBotAPI(clock=clock) as fake:
        partners = await seed(db, fake, couples)
        notes = await queue(db, partners, "skew", START - timedelta(minutes=5))
        async with Bot(fake.token, base_url=fake.base_url) as bot:
            plain = TelegramMessenger(bot)
            behind = leased(db, clock, Slow(plain, 0.05), concurrency=1, batch_size=10)
            rushing = leased(db, ahead, plain, concurrency=1, batch_size=5)
            await asyncio.gather(behind.run_until_idle(), rushing.run_until_idle())
        skewed = received(fake, notes)

        slow_notes = await queue(db, partners[:1], "slow", clock.now())
        fake.inject("sendMessage", chat_id=partners[0].chat_id, kind="429", retry_after=45, times=3)
        limiter = DyadRateLimiter(max_retries=3)
        async with ExtBot(fake.token, base_url=fake.base_url, rate_limiter=limiter) as ext:
            direct = TelegramMessenger(ext, direct=True)
            pacer = Pacer(1000.0, 0.0, monotonic=lambda: clock.now().timestamp())
            first = leased(db, clock, direct, pacer=pacer)
            second = leased(db, clock, direct, pacer=pacer)
            for _ in range(5):
                await asyncio.gather(first.run_until_idle(), second.run_until_idle())
                clock.advance(timedelta(seconds=45))
        slow = received(fake, slow_notes)
    return {
        "skew_notes": len(notes),
        "skew_duplicates": sum(n - 1 for n in skewed.values() if n > 1),
        "skew_lost": sum(1 for note in notes if skewed[note] == 0),
        "slow_send_duplicates": sum(n - 1 for n in slow.values() if n > 1),
        "slow_send_lost": sum(1 for note in slow_notes if slow[note] == 0),
        "slow_send_requests": len(fake.calls_of("sendMessage")) - len(notes),
    }


# intake-kill ----------------------------------------------------------------------------------


async def intake_kill(db: Database, directory: Path, updates: int) -> dict[str, Any]:
    if db.is_postgres:
        raise SystemExit("intake-kill runs on SQLite (the process opens the database by URL)")
    token = "7012345679:AAHcrashCRASHcrashCRASHcrashCRASH12"
    key = new_key()
    async with FakeBotAPI(token=token) as fake:
        await seed(db, fake, 0)
        therapist = fake.users[THERAPIST_CHAT]
        for number in range(updates):
            await therapist.send_command("newcouple", f"Pair {number}")
        fake.inject("sendMessage", kind="timeout", timeout_applies=True, delay=60.0)

        async def start() -> asyncio.subprocess.Process:
            env = {k: v for k, v in os.environ.items() if not k.startswith("DYAD_")}
            env.update(
                PYTHONPATH=str(ROOT),
                DYAD_DATABASE_URL=db.url,
                DYAD_BOT_TOKEN=token,
                DYAD_TELEGRAM_API_URL=fake.base_url,
                DYAD_ENCRYPTION_KEYS=key,
                DYAD_INTAKE_LEASE_SECONDS="1",
                DYAD_LOG_LEVEL="ERROR",
            )
            return await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                "from bot.cli import main; main()",
                "run",
                env=env,
                cwd=directory,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )

        def answers() -> int:
            return sum("?start=" in m.text for m in therapist.messages)

        first = await start()
        await fake.wait_for(lambda: not fake.pending_updates and fake.faults.fired, 60.0)
        acknowledged = updates - len(fake.pending_updates)
        answered_at_kill = answers()
        first.send_signal(signal.SIGKILL)
        await first.wait()
        began = time.monotonic()
        second = await start()
        await fake.wait_for(lambda: answers() >= updates, 120.0)
        recovered = time.monotonic() - began
        second.send_signal(signal.SIGTERM)
        await second.wait()
        async with db.uow() as uow:
            labels = Counter(await uow.session.scalars(select(Couple.label)))
            unhandled = await uow.session.scalar(
                select(func.count()).where(InboxUpdate.handled_at.is_(None))
            )
    return {
        "updates": updates,
        "acknowledged_before_kill": acknowledged,
        "answered_before_kill": answered_at_kill,
        "lost": sum(1 for n in range(updates) if labels[f"Pair {n}"] == 0) + (unhandled or 0),
        "handled_twice": sum(n - 1 for n in labels.values() if n > 1),
        "answers": answers(),
        "restart_to_last_answer_s": round(recovered, 2),
    }


# intake-outage --------------------------------------------------------------------------------


class Proxy:
    """A TCP proxy to PostgreSQL that can be cut: open connections dropped, new ones refused."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.cut = False
        self._pipes: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        self.drop()

    def drop(self) -> None:
        for writer in list(self._pipes):
            writer.close()
        self._pipes.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._pipes |= {writer, up_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._pipes -= {writer, up_writer}


async def intake_outage(postgres_url: str, people: int, seconds: float) -> dict[str, Any]:
    target = make_url(postgres_url)
    proxy = Proxy(target.host or "127.0.0.1", target.port or 5432)
    await proxy.start()
    name = f"bench_outage_{uuid.uuid4().hex[:8]}"
    admin = Database(postgres_url)
    async with admin.engine.connect() as conn:
        await conn.execute(text("COMMIT"))
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = target.set(host="127.0.0.1", port=proxy.port, database=name).render_as_string(False)
    db = Database(url)
    try:
        await db.migrate()
        async with FakeBotAPI() as fake:
            settings = load_settings(
                _env_file=None,
                telegram_api_url=fake.base_url,
                bot_token=fake.token,
                database_url=url,
            )
            deps = Deps(
                settings=settings, db=db, clock=ManualClock(START), cipher=Cipher([new_key()])
            )
            bot = DyadBot(
                deps,
                fake.token,
                dispatch=DispatchOptions(idle_seconds=0.5, plan_every_seconds=0),
            )
            await bot.start()
            users = [fake.add_user(20_000 + i, f"User {i}") for i in range(people)]
            gap = (2 * seconds) / people
            try:
                for index, user in enumerate(users):
                    if index == people // 4:
                        proxy.cut = True
                        proxy.drop()
                        cut_at = time.monotonic()
                    if proxy.cut and time.monotonic() - cut_at >= seconds:
                        proxy.cut = False
                    await user.send_command("help")
                    await asyncio.sleep(gap)
                proxy.cut = False
                helped = t("en", "common.help_stranger")
                with contextlib.suppress(AssertionError):
                    await fake.wait_for(
                        lambda: all(any(m.text == helped for m in u.messages) for u in users),
                        90.0,
                    )
            finally:
                await bot.stop()
            busy, error = t("en", "common.intake_busy"), t("en", "common.error")
            answers = [sum(m.text == helped for m in u.messages) for u in users]
            apologies = [sum(m.text in (busy, error) for m in u.messages) for u in users]
    finally:
        await db.dispose()
        await proxy.stop()
        async with admin.engine.connect() as conn:
            await conn.execute(text("COMMIT"))
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()
    return {
        "updates": people,
        "outage_s": seconds,
        "lost": answers.count(0),
        "handled_twice": sum(n - 1 for n in answers if n > 1),
        "got_one_kind_reply": sum(1 for n in apologies if n == 1),
        "got_two_or_more_kind_replies": sum(1 for n in apologies if n > 1),
    }


# main -----------------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    lines: list[str] = []
    notes: list[str] = []
    scenarios = (
        ["outage", "skew", "intake-kill", "intake-outage"]
        if args.scenario == "all"
        else [args.scenario]
    )
    with tempfile.TemporaryDirectory() as tmp:
        for scenario in scenarios:
            if scenario == "intake-outage":
                result = await intake_outage(args.postgres_url, args.people, args.outage_seconds)
            else:
                kind = "sqlite" if scenario == "intake-kill" else args.database
                bench = await open_bench_database(kind, Path(tmp), postgres_url=args.postgres_url)
                assert bench is not None
                if bench.note:
                    notes.append(bench.note)
                try:
                    if scenario == "outage":
                        result = await outage(bench.db, args.outage_minutes, args.couples)
                    elif scenario == "skew":
                        result = await skew(bench.db, args.couples)
                    else:
                        result = await intake_kill(bench.db, Path(tmp), args.updates)
                finally:
                    await bench.close()
                result = {"database": bench.kind, **result}
            figures[scenario] = result
            lines.append(f"{scenario}: " + ", ".join(f"{k}={v}" for k, v in result.items()))
    return emit("resilience", lines, figures, vars(args), notes)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parse the options, run the scenarios, print their figures (JSON last)."""
    parser = argparse.ArgumentParser(prog="python -m bench.resilience", description=__doc__)
    parser.add_argument(
        "--scenario",
        choices=("outage", "skew", "intake-kill", "intake-outage", "all"),
        default="all",
    )
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--postgres-url", default=default_postgres_url())
    parser.add_argument("--couples", type=int, default=30, help="couples (two partners each)")
    parser.add_argument("--outage-minutes", type=float, default=6.0)
    parser.add_argument("--updates", type=int, default=100, help="intake-kill: updates")
    parser.add_argument("--people", type=int, default=240, help="intake-outage: updates")
    parser.add_argument("--outage-seconds", type=float, default=20.0)
    args = parser.parse_args(argv)
    quiet_logging()
    return asyncio.run(run(args))


if __name__ == "__main__":
    main()
