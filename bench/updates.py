"""Updates: check-in button presses and notes through ``Application.process_update``.

Dyad runs as ``DyadBot`` builds it (handlers, PTB's rate limiter, the database) against
a running fake Bot API, on SQLite and then on PostgreSQL. Joined partners are inserted
directly; each opens a check-in with ``/checkin`` (set-up, not timed). Then the played
partners answer, interleaved: every press and every typed note is a real update made
by the fake (so its callback query exists there), decoded with ``Update.de_json`` and
handed to ``application.process_update``, which returns once the handlers are done
(the reply sent, the answer stored). Updates are handled one at a time, as Dyad's
Application does (no concurrent updates).

    python -m bench.updates [--updates 5000] [--databases sqlite,postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import random
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from telegram import Update

from bench._common import (
    default_postgres_url,
    emit,
    latency_figures,
    open_bench_database,
    quiet_logging,
    seed_clinic,
)
from bot.app import DispatchOptions, DyadBot
from bot.config import load_settings
from bot.core.clock import SystemClock
from bot.fakebotapi import FakeBotAPI, FakeUser
from bot.services.crypto import Cipher, new_key
from bot.services.deps import Deps
from db.models import CheckIn

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


async def _feed(bot: DyadBot, fake: FakeBotAPI) -> float:
    """Hand the newest update the fake made to the Application; the seconds it took."""
    update = Update.de_json(fake.updates[-1], bot.application.bot)
    started = time.perf_counter()
    await bot.application.process_update(update)
    return time.perf_counter() - started


async def measure(
    kind: str,
    updates: int,
    directory: Path,
    postgres_url: str,
    *,
    seed: int,
    concurrent: int,
) -> tuple[dict[str, Any] | None, str | None]:
    """Run ``updates`` check-in updates on one database; (figures, note).

    ``concurrent`` partners are mid-check-in at any time, their updates interleaved.
    """
    bench_db = await open_bench_database(kind, directory, postgres_url=postgres_url, fallback=False)
    if bench_db is None:
        return None, f"PostgreSQL at {postgres_url} unreachable: its variant did not run"
    rng = random.Random(seed)
    errors = _ErrorCount()
    logging.getLogger().addHandler(errors)
    db = bench_db.db
    try:
        async with FakeBotAPI() as fake:
            # A check-in is 6 to 8 updates; a few spare partners keep the stream full.
            needed = math.ceil(updates / 6) + 2
            clinic = await seed_clinic(db, math.ceil(needed / 2), datetime.now(UTC))
            settings = load_settings(
                _env_file=None,
                telegram_api_url=fake.base_url,
                bot_token=fake.token,
                database_url=db.url,
            )
            deps = Deps(settings=settings, db=db, clock=SystemClock(), cipher=Cipher([new_key()]))
            bot = DyadBot(deps, fake.token, dispatch=DispatchOptions(), background_dispatch=False)
            await bot.start(poll=False)
            try:
                players = []
                set_up = time.perf_counter()
                for partner in clinic.partners:
                    user = fake.add_user(
                        partner.chat_id,
                        f"P{partner.id}",
                        language_code=partner.language,
                        has_started=True,
                    )
                    await user.send_command("checkin")
                    await _feed(bot, fake)
                    players.append(_Player(user))
                set_up_seconds = time.perf_counter() - set_up

                latencies: list[float] = []
                presses = notes = 0
                waiting = list(reversed(players))
                active = [waiting.pop() for _ in range(min(concurrent, len(waiting)))]
                started = time.perf_counter()
                while len(latencies) < updates:
                    if not active:
                        raise RuntimeError("every check-in finished before enough updates ran")
                    for player in list(active):
                        if len(latencies) >= updates:
                            break
                        action = _next_action(player, rng)
                        if action is None:  # finished: the next partner takes the place
                            active.remove(player)
                            if waiting:
                                active.append(waiting.pop())
                            continue
                        what, value = action
                        if what == "press":
                            message = player.user.last_message
                            assert message is not None
                            await player.user.press(message, value)
                            presses += 1
                        else:
                            await player.user.send_text(value)
                            notes += 1
                        latencies.append(await _feed(bot, fake))
                seconds = time.perf_counter() - started
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
    figures: dict[str, Any] = {
        "updates_per_s": round(len(latencies) / seconds, 2),
        **latency_figures(latencies),
        "updates": len(latencies),
        "button_presses": presses,
        "notes": notes,
        "checkins_completed": int(completed or 0),
        "seconds": round(seconds, 3),
        "set_up_seconds": round(set_up_seconds, 3),
        "handler_errors": errors.count,
        "bot_api_refusals": refused,
    }
    return figures, None


async def run(
    updates: int, databases: Sequence[str], postgres_url: str, concurrent: int
) -> dict[str, Any]:
    """Measure each database in turn and report them side by side."""
    results: dict[str, Any] = {}
    notes: list[str] = []
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="dyad-bench-") as tmp:
        for index, kind in enumerate(databases):
            figures, note = await measure(
                kind, updates, Path(tmp), postgres_url, seed=index + 1, concurrent=concurrent
            )
            results[kind] = figures
            if note:
                notes.append(note)
            if figures is None:
                lines.append(f"{kind:<9} did not run")
                continue
            lines.append(
                f"{kind:<9} {figures['updates']} updates ({figures['button_presses']} presses, "
                f"{figures['notes']} notes) in {figures['seconds']:.1f} s: "
                f"{figures['updates_per_s']}/s, p50 {figures['p50_ms']} ms, "
                f"p99 {figures['p99_ms']} ms; {figures['checkins_completed']} check-ins "
                f"completed; errors {figures['handler_errors']}, Bot API refusals "
                f"{figures['bot_api_refusals']}"
            )
    parameters = {
        "updates": updates,
        "databases": list(databases),
        "partners_mid_checkin": concurrent,
    }
    return emit("updates", lines, results, parameters, notes)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parse the options, run the benchmark, print its figures (JSON last)."""
    parser = argparse.ArgumentParser(prog="python -m bench.updates", description=__doc__)
    parser.add_argument("--updates", type=int, default=5000)
    parser.add_argument(
        "--databases",
        default="sqlite,postgres",
        help="comma-separated, from sqlite and postgres",
    )
    parser.add_argument("--postgres-url", default=default_postgres_url())
    parser.add_argument(
        "--concurrent", type=int, default=50, help="partners mid-check-in at any time"
    )
    args = parser.parse_args(argv)
    databases = [name.strip() for name in args.databases.split(",") if name.strip()]
    unknown = set(databases) - {"sqlite", "postgres"}
    if unknown or not databases:
        parser.error(f"--databases takes sqlite and/or postgres, not {sorted(unknown)}")
    quiet_logging()
    return asyncio.run(run(args.updates, databases, args.postgres_url, args.concurrent))


if __name__ == "__main__":
    main()
