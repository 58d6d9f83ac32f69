"""Updates: check-in presses and notes arriving open loop, with the dispatcher running beside.

Dyad runs as ``DyadBot`` builds it (handlers, Dyad's rate limiter, the dispatcher in the
background, the database) against a running fake Bot API that answers after a network
round trip (``--rtt-ms``, default 50 ms, half each way). Joined partners are inserted
directly; each opens a check-in with ``/checkin`` (set-up, not timed). Then updates
arrive at random moments (open loop: a Poisson stream, ``--rate`` 20/s on average,
whether or not the bot has caught up): a partner who has read the next question (1.5 s
after it reached them) presses an answer or types the note. Each update is a real one
made by the fake, taken in as Dyad's webhook takes it (stored in the inbox first, then
handed to the Application). The figure is the time from the update to the arrival, at
the fake, of the bot's next message in that chat; the backlog is how many partners are
waiting for one, sampled each second. SQL statements and transactions are counted per
kind of update with SQLAlchemy's engine events (``before_cursor_execute``, ``commit``),
from the store to the last commit of the handlers.

The baseline runs second on each database: one update at a time (as before), the window
held by the dispatcher's turn.

    python -m bench.updates [--updates 2000] [--databases postgres] [--rate 20] [--rtt-ms 50]
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextvars
import json
import logging
import math
import os
import random
import tempfile
import time
import weakref
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, select

from bench._common import (
    default_postgres_url,
    emit,
    has_message,
    latency_figures,
    open_bench_database,
    quiet_logging,
    seed_clinic,
)
from bot.app import DispatchOptions, DyadBot
from bot.core.clock import SystemClock
from bot.demo import offline_bot, offline_deps
from bot.intake import InboxProcessor
from db.engine import Database
from db.models import CheckIn
from fakebotapi import FakeBotAPI, FakeUser

_WORDS = (
    "we talked after dinner and it went better than last week",
    "I felt unheard when the plans changed again",
    "we tried the pause when voices got louder",
    "a calm walk on Sunday",
    "money came up and we both got tense",
    "I noticed I was quicker to listen",
    "the kids were ill so we had little time",
    "I would like to talk about how we split the chores",
)
_SAFE_CHOICES = ("no", "prefer_not")


class _ErrorCount(logging.Handler):
    """Counts error records (a failed handler logs one) during the run."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


@dataclass
class _Player:
    user: FakeUser


def _next_action(player: _Player, rng: random.Random) -> tuple[str, str] | None:
    """What the partner does next: ("press", data) or ("type", text); None when finished."""
    message = player.user.last_message
    if message is None:
        return None
    data = [d for _, d in message.buttons if d is not None and d.startswith("1|ci|")]
    if not data:
        return None
    item = data[0].split("|")[3]
    values = [d for d in data if not d.endswith("|s")]
    if not values:  # the free-text note: only a Skip button
        return ("type", f"{rng.choice(_WORDS)}; {rng.choice(_WORDS)}.")
    if item == "ok_to_raise":
        return ("press", rng.choice(values))
    safe = [d for d in values if d.rsplit("|", 1)[1] in _SAFE_CHOICES]
    return ("press", rng.choice(safe or values))


MESSAGE_METHODS = frozenset({"sendMessage", "editMessageText"})
NEXT_ACTION_AFTER = 1.5  # seconds a person takes, at least, to read the next question
_UPDATE_KIND: contextvars.ContextVar[str | None] = contextvars.ContextVar("kind", default=None)


def make_bot(db: Database, fake: FakeBotAPI, *, baseline: bool, idle: float = 0.2) -> DyadBot:
    """``DyadBot`` as ``dyad run`` builds it; the baseline as it was before the budget moved.

    The baseline handles one update at a time, and its window is held by the dispatcher's
    turn (from a send's start to its row marked sent) rather than around each request.
    """
    options = DispatchOptions(idle_seconds=idle, plan_every_seconds=0)
    bot = offline_bot(fake, offline_deps(fake, db, SystemClock()), dispatch=options)
    if baseline:
        processor = bot.application.update_processor
        assert isinstance(processor, InboxProcessor)
        processor._working = asyncio.Semaphore(1)
        assert bot.dispatcher.pacer is not None
        bot.dispatcher.pacer.counted_by_limiter = False
    return bot


async def take_in(bot: DyadBot, data: dict[str, Any], kind: str | None = None) -> None:
    """What Dyad's webhook does with one update: store it, then queue it for handling."""
    if kind is not None:
        _UPDATE_KIND.set(kind)
    await bot.intake.take(data, json.dumps(data, ensure_ascii=False))


class _Replies:
    """The bot's messages per chat, read once from the fake's call log as it grows."""

    def __init__(self) -> None:
        self.cursor = 0
        self.by_chat: dict[int, list[float]] = {}

    def read(self, fake: FakeBotAPI) -> None:
        calls = fake.calls
        while self.cursor < len(calls):
            call = calls[self.cursor]
            if call.status == 0:  # still being answered: read it next time
                return
            if call.method in MESSAGE_METHODS and call.status == 200 and call.chat_id is not None:
                self.by_chat.setdefault(call.chat_id, []).append(call.time)
            self.cursor += 1


_REPLIES: weakref.WeakKeyDictionary[FakeBotAPI, _Replies] = weakref.WeakKeyDictionary()


def answer_of(fake: FakeBotAPI, chat_id: int, at: float, first_call: int = 0) -> float | None:
    """When the bot's next message in the chat reached the fake, after ``at``."""
    replies = _REPLIES.get(fake)
    if replies is None:
        replies = _REPLIES[fake] = _Replies()
    replies.read(fake)
    times = replies.by_chat.get(chat_id, [])  # in arrival order
    index = bisect.bisect_left(times, at)
    return times[index] if index < len(times) else None


@dataclass
class SqlCounter:
    """SQL statements and transactions, per kind of update (SQLAlchemy engine events)."""

    statements: Counter[str] = field(default_factory=Counter)
    transactions: Counter[str] = field(default_factory=Counter)

    def attach(self, db: Database) -> None:
        engine = db.engine.sync_engine

        @event.listens_for(engine, "before_cursor_execute")
        def statement(*args: Any) -> None:
            kind = _UPDATE_KIND.get()
            if kind is not None:
                self.statements[kind] += 1
                if os.environ.get("DYAD_BENCH_SQL_LOG"):
                    print("SQL", kind, " ".join(str(args[2]).split())[:150])

        @event.listens_for(engine, "commit")
        def commit(*_: Any) -> None:
            kind = _UPDATE_KIND.get()
            if kind is not None:
                self.transactions[kind] += 1

    def per_update(self, counts: Counter[str]) -> dict[str, dict[str, float]]:
        return {
            kind: {
                "updates": counts[kind],
                "statements": round(self.statements[kind] / counts[kind], 2),
                "transactions": round(self.transactions[kind] / counts[kind], 2),
            }
            for kind in sorted(counts)
            if counts[kind]
        }


def _kind_of(action: tuple[str, str]) -> str:
    """The update's kind, for its SQL figures: "note", or the check-in item pressed."""
    what, value = action
    return "note" if what == "type" else f"press:{value.split('|')[3]}"


@dataclass
class _Pending:
    chat_id: int
    at: float
    first_call: int
    kind: str


async def measure(
    kind: str,
    updates: int,
    directory: Path,
    postgres_url: str,
    *,
    seed: int,
    rate: float,
    rtt_ms: float,
    players: int,
    baseline: bool,
    think: float = NEXT_ACTION_AFTER,
) -> tuple[dict[str, Any] | None, str | None]:
    """``updates`` check-in updates arriving open loop at ``rate``/s; (figures, note)."""
    bench_db = await open_bench_database(kind, directory, postgres_url=postgres_url, fallback=False)
    if bench_db is None:
        return None, f"PostgreSQL at {postgres_url} unreachable: its variant did not run"
    rng = random.Random(seed)
    errors = _ErrorCount()
    logging.getLogger().addHandler(errors)
    db = bench_db.db
    sql = SqlCounter()
    counts: Counter[str] = Counter()
    try:
        async with FakeBotAPI(round_trip=rtt_ms / 1000) as fake:
            clinic = await seed_clinic(db, math.ceil(players / 2), datetime.now(UTC))
            bot = make_bot(db, fake, baseline=baseline)
            await bot.start(mode="none")  # the dispatcher runs beside intake, as in dyad run
            try:
                crowd: list[_Player] = []
                set_up = time.perf_counter()
                for partner in clinic.partners[:players]:
                    user = fake.add_user(
                        partner.chat_id,
                        f"P{partner.id}",
                        language_code=partner.language,
                        has_started=True,
                    )
                    await user.send_command("checkin")
                    await take_in(bot, fake.updates[-1])
                    crowd.append(_Player(user))
                for player in crowd:
                    await fake.wait_for(has_message(player.user), 60.0)
                set_up_seconds = time.perf_counter() - set_up
                sql.attach(db)
                kinds: dict[int, str] = {}
                processor = bot.application.update_processor
                assert isinstance(processor, InboxProcessor)
                handle = processor._handle

                async def counted(update: Any, coroutine: Any) -> None:
                    # The handlers run in PTB's tasks: their statements count for the update.
                    _UPDATE_KIND.set(kinds.get(update.update_id))
                    await handle(update, coroutine)

                processor._handle = counted  # type: ignore[method-assign]

                loop = asyncio.get_running_loop()
                ready_at = {id(p): 0.0 for p in crowd}
                pending: dict[int, _Pending] = {}
                latencies: list[float] = []
                backlog: list[int] = []
                feeding: set[asyncio.Task[None]] = set()
                sent = presses = notes = 0
                started = next_sample = loop.time()
                while sent < updates:
                    await asyncio.sleep(rng.expovariate(rate))
                    now = loop.time()
                    for key, waiting in list(pending.items()):
                        answered = answer_of(fake, waiting.chat_id, waiting.at, waiting.first_call)
                        if answered is not None:
                            latencies.append(answered - waiting.at)
                            ready_at[key] = answered + think
                            del pending[key]
                    if now >= next_sample:
                        backlog.append(len(pending))
                        next_sample += 1.0
                    ready = [p for p in crowd if id(p) not in pending and ready_at[id(p)] <= now]
                    if not ready:
                        continue  # everyone is waiting for the bot: that is the backlog
                    player = rng.choice(ready)
                    action = _next_action(player, rng)
                    if action is None:  # finished: a new check-in begins (set-up, untimed)
                        await player.user.send_command("checkin")
                        await take_in(bot, fake.updates[-1])
                        ready_at[id(player)] = now + think
                        continue
                    what, value = action
                    chat = player.user.id
                    update_kind = _kind_of(action)
                    waiting = _Pending(chat, loop.time(), len(fake.calls), update_kind)
                    if what == "press":
                        message = player.user.last_message
                        assert message is not None
                        await player.user.press(message, value)
                        presses += 1
                    else:
                        await player.user.send_text(value)
                        notes += 1
                    pending[id(player)] = waiting
                    counts[update_kind] += 1
                    kinds[fake.updates[-1]["update_id"]] = update_kind
                    task = asyncio.create_task(take_in(bot, fake.updates[-1], update_kind))
                    feeding.add(task)
                    task.add_done_callback(feeding.discard)
                    sent += 1
                arrivals_seconds = loop.time() - started
                deadline = loop.time() + 60.0
                while pending and loop.time() < deadline:
                    await asyncio.sleep(0.05)
                    for key, waiting in list(pending.items()):
                        answered = answer_of(fake, waiting.chat_id, waiting.at, waiting.first_call)
                        if answered is not None:
                            latencies.append(answered - waiting.at)
                            del pending[key]
                drain_seconds = loop.time() - started - arrivals_seconds
                if feeding:
                    await asyncio.gather(*feeding)
            finally:
                await bot.stop()
            async with db.uow() as uow:
                completed = await uow.session.scalar(
                    select(func.count()).where(CheckIn.status == "complete")
                )
            refused = sum(1 for call in fake.calls if call.status != 200)
    finally:
        logging.getLogger().removeHandler(errors)
        await bench_db.close()
    half = len(backlog) // 2
    figures: dict[str, Any] = {
        **latency_figures(latencies),
        "updates": sent,
        "answered": len(latencies),
        "arrival_rate_per_s": round(sent / arrivals_seconds, 2),
        "backlog_max": max(backlog, default=0),
        "backlog_first_half_mean": round(sum(backlog[:half]) / max(half, 1), 2),
        "backlog_second_half_mean": round(sum(backlog[half:]) / max(len(backlog) - half, 1), 2),
        "drain_seconds_after_last_arrival": round(drain_seconds, 2),
        "sql_per_update": sql.per_update(counts),
        "button_presses": presses,
        "notes": notes,
        "checkins_completed": int(completed or 0),
        "set_up_seconds": round(set_up_seconds, 3),
        "handler_errors": errors.count,
        "bot_api_refusals": refused,
    }
    return figures, None


async def run(
    updates: int,
    databases: Sequence[str],
    postgres_url: str,
    *,
    rate: float,
    rtt_ms: float,
    players: int,
    with_baseline: bool,
    think: float = NEXT_ACTION_AFTER,
    baseline_updates: int = 400,
) -> dict[str, Any]:
    """Measure each database in turn, Dyad then the baseline, and report them side by side."""
    results: dict[str, Any] = {}
    notes: list[str] = []
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="dyad-bench-") as tmp:
        for index, kind in enumerate(databases):
            for variant in ("dyad", "baseline") if with_baseline else ("dyad",):
                figures, note = await measure(
                    kind,
                    updates if variant == "dyad" else min(updates, baseline_updates),
                    Path(tmp),
                    postgres_url,
                    seed=index + 1,
                    rate=rate,
                    rtt_ms=rtt_ms,
                    players=players,
                    baseline=variant == "baseline",
                    think=think,
                )
                name = kind if variant == "dyad" else f"{kind}_baseline"
                results[name] = figures
                if note and note not in notes:
                    notes.append(note)
                if figures is None:
                    lines.append(f"{name:<18} did not run")
                    continue
                sql = ", ".join(
                    f"{k} {v['statements']} st/{v['transactions']} tx"
                    for k, v in figures["sql_per_update"].items()
                )
                lines.append(
                    f"{name:<18} {figures['updates']} updates at "
                    f"{figures['arrival_rate_per_s']}/s: p50 {figures['p50_ms']} ms, "
                    f"p99 {figures['p99_ms']} ms; backlog max {figures['backlog_max']} "
                    f"(mean {figures['backlog_first_half_mean']} then "
                    f"{figures['backlog_second_half_mean']}); errors {figures['handler_errors']}"
                )
                lines.append(f"{'':<18} per update: {sql}")
    parameters = {
        "updates": updates,
        "databases": list(databases),
        "arrivals_per_second": rate,
        "rtt_ms": rtt_ms,
        "partners_playing": players,
        "think_seconds": think,
        "baseline_updates": min(updates, baseline_updates),
        "baseline": with_baseline,
    }
    return emit("updates", lines, results, parameters, notes)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parse the options, run the benchmark, print its figures (JSON last)."""
    parser = argparse.ArgumentParser(prog="python -m bench.updates", description=__doc__)
    parser.add_argument("--updates", type=int, default=2000)
    parser.add_argument(
        "--databases",
        default="postgres",
        help="comma-separated, from sqlite and postgres",
    )
    parser.add_argument("--postgres-url", default=default_postgres_url())
    parser.add_argument("--rate", type=float, default=20.0, help="arrivals per second")
    parser.add_argument("--rtt-ms", type=float, default=50.0, help="the fake's round trip")
    parser.add_argument("--partners", type=int, default=100, help="partners mid-check-in")
    parser.add_argument(
        "--think-seconds",
        type=float,
        default=NEXT_ACTION_AFTER,
        help="how long a partner reads the next question before acting",
    )
    parser.add_argument("--no-baseline", action="store_true", help="Dyad only")
    parser.add_argument(
        "--baseline-updates",
        type=int,
        default=400,
        help="updates for the baseline (it falls behind: fewer keep the run short)",
    )
    args = parser.parse_args(argv)
    databases = [name.strip() for name in args.databases.split(",") if name.strip()]
    unknown = set(databases) - {"sqlite", "postgres"}
    if unknown or not databases:
        parser.error(f"--databases takes sqlite and/or postgres, not {sorted(unknown)}")
    quiet_logging()
    return asyncio.run(
        run(
            args.updates,
            databases,
            args.postgres_url,
            rate=args.rate,
            rtt_ms=args.rtt_ms,
            players=args.partners,
            with_baseline=not args.no_baseline,
            think=args.think_seconds,
            baseline_updates=args.baseline_updates,
        )
    )


if __name__ == "__main__":
    main()
