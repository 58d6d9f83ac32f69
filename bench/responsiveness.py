"""Responsiveness: button presses answered while a fan-out fills Telegram's budget.

N partners (default 1,500) each have one notice due now; Dyad's dispatcher sends them
(running in the background of a real ``DyadBot``, as in ``dyad run``) to the fake Bot API,
which enforces 30 messages/s overall and 1/s per chat and answers after a network round
trip (``--rtt-ms``, default 50: half of it on the way there, half back). Meanwhile other
partners, mid-check-in, press answer buttons at random moments (open loop: a Poisson
stream, ``--presses-per-second`` 5 on average, whether or not the bot has caught up; a
partner presses again no sooner than 1.5 s after the previous answer reached them). Each
press is a real update taken in as a webhook would (stored in the inbox first, then
handed to the Application). The figure is the time from the press to the arrival, at the
fake, of the bot's next message in that chat (the next question).

The baseline runs second, in the same process: updates one at a time (as before) and the
window counted in the dispatcher's turn rather than around each request.

    python -m bench.responsiveness [--partners 1500] [--rtt-ms 50] [--presses-per-second 5]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench._common import (
    default_postgres_url,
    emit,
    has_message,
    latency_figures,
    open_bench_database,
    quiet_logging,
    seed_clinic,
)
from bench.fanout import _queue_notices, _unsettled
from bench.updates import MESSAGE_METHODS, _next_action, _Player, answer_of, make_bot, take_in
from fakebotapi import FakeBotAPI, RateLimits

NEXT_PRESS_AFTER = 1.5  # seconds a person takes, at least, to read the next question


@dataclass
class _Press:
    chat_id: int
    at: float
    first_call: int  # index in the fake's call log when the press was made
    answered_at: float | None = None


@dataclass
class _Presser:
    player: _Player
    chat_id: int
    ready_at: float = 0.0
    pending: _Press | None = None
    presses: list[_Press] = field(default_factory=list)


async def measure(
    *,
    partners: int,
    pressers: int,
    rate: float,
    rtt_ms: float,
    database: str,
    postgres_url: str,
    directory: Path,
    baseline: bool,
    seed: int,
) -> tuple[dict[str, Any], list[str]]:
    """One fan-out with presses during it; (figures, notes)."""
    rng = random.Random(seed)
    notes: list[str] = []
    bench_db = await open_bench_database(database, directory, postgres_url=postgres_url)
    assert bench_db is not None
    if bench_db.note:
        notes.append(bench_db.note)
    db = bench_db.db
    limits = RateLimits(overall_per_second=30, per_chat_per_second=1)
    try:
        async with FakeBotAPI(limits=limits, round_trip=rtt_ms / 1000) as fake:
            now = datetime.now(UTC)
            clinic = await seed_clinic(db, math.ceil((partners + pressers) / 2), now)
            recipients = clinic.partners[:partners]
            playing = clinic.partners[partners : partners + pressers]
            for partner in clinic.partners[: partners + pressers]:
                fake.add_user(
                    partner.chat_id,
                    f"P{partner.id}",
                    language_code=partner.language,
                    has_started=True,
                )
            bot = make_bot(db, fake, baseline=baseline)
            await bot.start(mode="none")
            try:
                # Set-up (not timed): every presser opens a check-in, before the fan-out.
                crowd: list[_Presser] = []
                for partner in playing:
                    user = fake.users[partner.chat_id]
                    await user.send_command("checkin")
                    await take_in(bot, fake.updates[-1])
                for partner in playing:
                    user = fake.users[partner.chat_id]
                    await fake.wait_for(has_message(user), 30.0)
                    crowd.append(_Presser(_Player(user), partner.chat_id))
                queued = await _queue_notices(db, [p.id for p in recipients], datetime.now(UTC))
                loop = asyncio.get_running_loop()
                started = loop.time()
                bot.wake_dispatcher()
                await asyncio.sleep(1.0)  # the fan-out is under way before the first press
                feeding: set[asyncio.Task[None]] = set()
                while await _unsettled(db):
                    await asyncio.sleep(rng.expovariate(rate))
                    now_t = loop.time()
                    for presser in crowd:  # answers that came in since
                        press = presser.pending
                        if (
                            press is not None
                            and (at := answer_of(fake, press.chat_id, press.at, press.first_call))
                            is not None
                        ):
                            press.answered_at = at
                            presser.pending = None
                            presser.ready_at = at + NEXT_PRESS_AFTER
                    ready = [p for p in crowd if p.pending is None and p.ready_at <= now_t]
                    if not ready:
                        continue
                    presser = rng.choice(ready)
                    action = _next_action(presser.player, rng)
                    if action is None or action[0] != "press":
                        # The note (typed) or the end of the check-in: a new one begins.
                        presser.ready_at = now_t + NEXT_PRESS_AFTER
                        if action is None:
                            await presser.player.user.send_command("checkin")
                        else:
                            await presser.player.user.send_text(action[1])
                        task = asyncio.create_task(take_in(bot, fake.updates[-1]))
                        feeding.add(task)
                        task.add_done_callback(feeding.discard)
                        continue
                    message = presser.player.user.last_message
                    assert message is not None
                    press = _Press(presser.chat_id, loop.time(), len(fake.calls))
                    await presser.player.user.press(message, action[1])
                    presser.pending = press
                    presser.presses.append(press)
                    task = asyncio.create_task(take_in(bot, fake.updates[-1]))
                    feeding.add(task)
                    task.add_done_callback(feeding.discard)
                fanout_seconds = loop.time() - started
                await asyncio.sleep(2.0)  # the last answers arrive
                if feeding:
                    await asyncio.gather(*feeding)
            finally:
                await bot.stop()
            presses = [press for presser in crowd for press in presser.presses]
            for press in presses:
                if press.answered_at is None:
                    press.answered_at = answer_of(fake, press.chat_id, press.at, press.first_call)
            latencies = [p.answered_at - p.at for p in presses if p.answered_at is not None]
            sends = [c for c in fake.calls if c.method in MESSAGE_METHODS]
            delivered = sum(1 for p in recipients if fake.sent_to(p.chat_id))
    finally:
        await bench_db.close()
    figures = {
        **latency_figures(latencies),
        "presses": len(presses),
        "unanswered": len(presses) - len(latencies),
        "fanout_messages": queued,
        "fanout_delivered": delivered,
        "fanout_seconds": round(fanout_seconds, 2),
        "fanout_rate_share": round(queued / fanout_seconds / 30, 4),
        "http_429": sum(1 for c in sends if c.status == 429),
        "per_chat_violations": fake.rate_limit_violations.per_chat,
        "database": bench_db.kind,
    }
    return figures, notes


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Dyad, then the baseline; side by side."""
    results: dict[str, Any] = {}
    notes: list[str] = []
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="dyad-bench-") as tmp:
        for name, baseline in (("dyad", False), ("baseline", True)):
            if baseline and args.no_baseline:
                continue
            figures, more = await measure(
                partners=args.partners,
                pressers=args.pressers,
                rate=args.presses_per_second,
                rtt_ms=args.rtt_ms,
                database=args.database,
                postgres_url=args.postgres_url,
                directory=Path(tmp),
                baseline=baseline,
                seed=args.seed,
            )
            results[name] = figures
            notes += [n for n in more if n not in notes]
            lines.append(
                f"{name:<9} {figures['presses']} presses during a fan-out of "
                f"{figures['fanout_messages']} ({figures['fanout_seconds']} s, rate_share "
                f"{figures['fanout_rate_share']}): press -> reply p50 {figures['p50_ms']} ms, "
                f"p99 {figures['p99_ms']} ms, max {figures['max_ms']} ms; unanswered "
                f"{figures['unanswered']}; 429s {figures['http_429']}"
            )
    figures = {**results.get("dyad", {}), **{k: v for k, v in results.items() if k != "dyad"}}
    parameters = {
        "partners": args.partners,
        "pressers": args.pressers,
        "presses_per_second": args.presses_per_second,
        "rtt_ms": args.rtt_ms,
        "database": args.database,
    }
    return emit("responsiveness", lines, figures, parameters, notes)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parse the options, run the benchmark, print its figures (JSON last)."""
    parser = argparse.ArgumentParser(prog="python -m bench.responsiveness", description=__doc__)
    parser.add_argument("--partners", type=int, default=1500, help="fan-out recipients")
    parser.add_argument("--pressers", type=int, default=40, help="partners mid-check-in")
    parser.add_argument("--presses-per-second", type=float, default=5.0)
    parser.add_argument("--rtt-ms", type=float, default=50.0)
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--postgres-url", default=default_postgres_url())
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--no-baseline", action="store_true", help="Dyad only")
    args = parser.parse_args(argv)
    quiet_logging()
    return asyncio.run(run(args))


if __name__ == "__main__":
    main()
