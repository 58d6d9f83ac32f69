"""Fan-out: N partners all due at once, sent by the real dispatcher under Telegram's limits.

One notice is queued per partner (through ``bot.services.outbox.enqueue``); Dyad's own
``Dispatcher`` (with its ``Pacer``) sends them through the real ``TelegramMessenger`` over
the PTB ``Bot`` that ``DyadBot`` builds (direct: no retries inside PTB) to the fake Bot
API, which enforces 30 messages/s overall and 1/s per chat and answers 429 beyond them.

    python -m bench.fanout [--partners 1500] [--database sqlite|postgres]
                           [--rate 30] [--pacer dyad|turn|spacing] [--baseline turn]
                           [--rtt-ms 0]

The baseline (``--baseline``, run second in the same process) is ``turn`` by default:
the window counted in the dispatcher's turn, from start to the row marked sent, as
before the budget moved into the rate limiter. ``spacing`` is the rule before that
(starts spaced ``1/rate`` apart, nothing counted from answers). ``--rtt-ms`` makes the
fake answer like a server that far away (half the round trip each way).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import func, select

from bench._common import (
    BenchDatabase,
    default_postgres_url,
    emit,
    open_bench_database,
    quiet_logging,
    seed_clinic,
)
from bot.app import DispatchOptions, DyadBot
from bot.config import load_settings
from bot.core.clock import SystemClock
from bot.demo import offline_bot, offline_deps
from bot.services.crypto import Cipher, new_key
from bot.services.deps import Deps
from bot.services.outbox import enqueue
from db.engine import Database
from db.models import Delivery, Partner
from fakebotapi import FakeBotAPI, RateLimits
from schedules.dispatcher import Pacer

TELEGRAM_RATE = 30.0
DEFAULT_REDIS_URL = os.environ.get("DYAD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
_CHILD_CONFIG = "DYAD_BENCH_FANOUT_CHILD"
NOTICE = "couple.space_ready"


async def _queue_notices(db: Database, partner_ids: Sequence[int], now: datetime) -> int:
    async with db.uow() as uow:
        partners = await uow.session.scalars(select(Partner).where(Partner.id.in_(partner_ids)))
        queued = 0
        for partner in partners.all():
            queued += await enqueue(
                uow,
                partner,
                kind="notice",
                key=NOTICE,
                dedupe_key=f"bench:fanout:{partner.id}",
                due_at=now,
                couple_id=partner.couple_id,
            )
        await uow.commit()
    return queued


async def _unsettled(db: Database) -> int:
    async with db.uow() as uow:
        query = select(func.count()).where(Delivery.status.in_(("pending", "claimed")))
        return int(await uow.session.scalar(query) or 0)


async def _statuses(db: Database) -> tuple[dict[str, int], int]:
    """Rows per status, and how many rows the dispatcher itself had to put back after a 429."""
    async with db.uow() as uow:
        rows = await uow.session.execute(
            select(Delivery.status, func.count()).group_by(Delivery.status)
        )
        statuses: dict[str, int] = {str(status): int(count) for status, count in rows.all()}
        # The dispatcher notes "rate limited" on a row it retries; PTB's own retries leave none.
        retried = await uow.session.scalar(
            select(func.count()).where(Delivery.last_error.is_not(None))
        )
        return statuses, int(retried or 0)


async def _run_workers(
    workers: int,
    bench_db: BenchDatabase,
    fake: FakeBotAPI,
    rate: float,
    per_chat_interval: float,
    redis_url: str,
    queued: int,
) -> float | None:
    """Dispatch in ``workers`` processes sharing one budget; kill the first a third of the way.

    Returns when the kill happened (the event loop's time), or None if it never did.
    """
    prefix = f"dyad-bench-{uuid.uuid4().hex[:12]}"
    config = {
        "url": bench_db.db.url,
        "schema": bench_db.schema,
        "api_url": fake.base_url,
        "token": fake.token,
        "redis_url": redis_url,
        "redis_prefix": prefix,
        "rate": rate,
        "per_chat_interval": per_chat_interval,
    }
    env = {**os.environ, _CHILD_CONFIG: json.dumps(config)}
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.fanout",
            "--child",
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
        )
        for _ in range(workers)
    ]
    loop = asyncio.get_running_loop()
    killed_at: float | None = None
    deadline = loop.time() + max(90.0, 4 * queued / TELEGRAM_RATE)
    try:
        # The outbox is the truth about what is left; polling it is the point here.
        while await _unsettled(bench_db.db) and loop.time() < deadline:
            await asyncio.sleep(0.25)
            accepted = sum(1 for c in fake.calls if c.method == "sendMessage" and c.status == 200)
            if killed_at is None and accepted >= queued / 3:
                children[0].kill()  # SIGKILL: its leases and its slots in flight are left behind
                killed_at = loop.time()
    finally:
        for child in children:
            if child.returncode is None:
                child.terminate()
        for child in children:
            try:
                await asyncio.wait_for(child.wait(), 15.0)
            except TimeoutError:
                child.kill()
                await child.wait()
        cleaner = Redis.from_url(redis_url)
        try:
            keys = [key async for key in cleaner.scan_iter(f"{prefix}:*")]
            if keys:
                await cleaner.delete(*keys)
        finally:
            await cleaner.aclose()
    return killed_at


async def _child(config: dict[str, Any]) -> None:
    """One worker process: Dyad's dispatcher with the budget in Redis, until SIGTERM."""
    quiet_logging()
    db = Database(config["url"], search_path=config["schema"])
    settings = load_settings(
        _env_file=None,
        telegram_api_url=config["api_url"],
        bot_token=config["token"],
        database_url=config["url"],
        redis_url=config["redis_url"],
        redis_prefix=config["redis_prefix"],
    )
    deps = Deps(settings=settings, db=db, clock=SystemClock(), cipher=Cipher([new_key()]))
    options = DispatchOptions(
        rate_per_second=config["rate"], per_chat_interval=config["per_chat_interval"]
    )
    bot = DyadBot(deps, config["token"], dispatch=options, background_dispatch=False)
    await bot.application.initialize()
    stop, wake = asyncio.Event(), asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await bot.dispatcher.run_forever(stop, wake, 0.25)
    finally:
        await bot.application.shutdown()
        if bot.window is not None:
            await bot.window.aclose()
        await db.dispose()


async def run(
    partners: int,
    database: str,
    postgres_url: str,
    rate: float,
    per_chat_interval: float,
    pacer: str = "dyad",
    rtt_ms: float = 0.0,
    workers: int = 1,
    redis_url: str = DEFAULT_REDIS_URL,
) -> dict[str, Any]:
    """Queue one notice per partner, dispatch them all, and count what Telegram saw.

    With ``workers`` > 1, each worker is a process of its own (sharing the budget in Redis)
    and the first is killed (SIGKILL) once a third of the messages are out.
    """
    notes: list[str] = []
    limits = RateLimits(overall_per_second=30, per_chat_per_second=1)
    with tempfile.TemporaryDirectory(prefix="dyad-bench-") as tmp:
        bench_db = await open_bench_database(database, Path(tmp), postgres_url=postgres_url)
        assert bench_db is not None
        if bench_db.note:
            notes.append(bench_db.note)
        db = bench_db.db
        try:
            async with FakeBotAPI(limits=limits, round_trip=rtt_ms / 1000) as fake:
                now = datetime.now(UTC)
                clinic = await seed_clinic(db, math.ceil(partners / 2), now)
                chosen = clinic.partners[:partners]
                for partner in chosen:
                    fake.add_user(partner.chat_id, f"P{partner.id}", has_started=True)
                queued = await _queue_notices(db, [p.id for p in chosen], now)

                killed_at: float | None = None
                if workers > 1:
                    loop = asyncio.get_running_loop()
                    calls_before = len(fake.calls)
                    started = loop.time()
                    wall_started = time.perf_counter()
                    killed_at = await _run_workers(
                        workers, bench_db, fake, rate, per_chat_interval, redis_url, queued
                    )
                    wall_seconds = time.perf_counter() - wall_started
                else:
                    options = DispatchOptions(
                        rate_per_second=rate, per_chat_interval=per_chat_interval
                    )
                    bot = offline_bot(
                        fake,
                        offline_deps(fake, db, SystemClock()),
                        dispatch=options,
                        background_dispatch=False,
                    )
                    if pacer == "spacing":
                        bot.share_budget(Pacer(rate, per_chat_interval, window_limit=0))
                    elif pacer == "turn":  # the dispatcher's turn holds the slot, not the request
                        assert bot.dispatcher.pacer is not None
                        bot.dispatcher.pacer.counted_by_limiter = False
                    await bot.application.initialize()
                    calls_before = len(fake.calls)

                    loop = asyncio.get_running_loop()
                    stop, wake = asyncio.Event(), asyncio.Event()
                    started = loop.time()
                    wall_started = time.perf_counter()
                    task = asyncio.create_task(
                        bot.dispatcher.run_forever(stop, wake, options.idle_seconds)
                    )
                    # Give up well after the slowest honest run (a 429 storm still ends).
                    deadline = started + max(60.0, 3 * queued / TELEGRAM_RATE)
                    # The outbox is the truth about what is left; polling it is the point here.
                    while await _unsettled(db) and loop.time() < deadline:  # noqa: ASYNC110
                        await asyncio.sleep(0.25)
                    wall_seconds = time.perf_counter() - wall_started
                    stop.set()
                    wake.set()
                    await task
                    await bot.application.shutdown()

                sends = [c for c in fake.calls[calls_before:] if c.method == "sendMessage"]
                ok = [c for c in sends if c.status == 200]
                http_429 = sum(1 for c in sends if c.status == 429)
                if workers > 1:  # from the first request of the workers (after their start-up)
                    started = min((c.time for c in sends), default=started)
                last = max((c.time for c in ok), default=started)
                seconds = max(last - started, 1e-9)
                achieved = len(ok) / seconds
                received = {p.chat_id: len(fake.sent_to(p.chat_id)) for p in chosen}
                duplicates = sum(max(0, n - 1) for n in received.values())
                lost = sum(1 for n in received.values() if n == 0)
                violations = fake.rate_limit_violations
                statuses, retried_rows = await _statuses(db)
        finally:
            await bench_db.close()

    figures = {
        "pacer": pacer,
        "rate_share": round(achieved / TELEGRAM_RATE, 4),
        "http_429": http_429,
        "per_chat_violations": violations.per_chat,
        "duplicates": duplicates,
        "lost": lost,
        "messages": len(ok),
        "seconds": round(seconds, 3),
        "messages_per_second": round(achieved, 3),
        "overall_violations": violations.overall,
        "send_attempts": len(sends),
        "rows": statuses,
        "rows_retried_by_dispatcher": retried_rows,
        "database": bench_db.kind,
        "workers": workers,
        "killed_worker_after_s": None if killed_at is None else round(killed_at - started, 2),
    }
    lines = [
        f"pacer               {pacer}"
        + (f", {workers} worker processes, the first killed" if workers > 1 else ""),
        f"database            {bench_db.kind}",
        f"partners            {len(chosen)} (one notice each, {queued} queued)",
        f"sent                {len(ok)} in {seconds:.2f} s "
        f"(first {'request' if workers > 1 else 'claim'} to last accepted send; "
        f"wall {wall_seconds:.2f} s)",
        f"rate                {achieved:.2f} msg/s = {achieved / TELEGRAM_RATE:.1%} of 30/s",
        f"HTTP 429            {http_429} (overall-limit breaches {violations.overall}, "
        f"per-chat {violations.per_chat})",
        f"duplicates          {duplicates}",
        f"lost                {lost}",
        f"outbox rows         {statuses}; put back by the dispatcher after a refusal: "
        f"{retried_rows}",
    ]
    if http_429 > retried_rows:
        lines.append(
            f"                    so {http_429 - retried_rows} of the 429s never reached the "
            "dispatcher: PTB's AIORateLimiter retried them itself"
        )
    parameters = {
        "partners": partners,
        "database": database,
        "dispatcher_rate_per_second": rate,
        "per_chat_interval": per_chat_interval,
        "pacer": pacer,
        "rtt_ms": rtt_ms,
        "workers": workers,
        "fake_limits": {"overall_per_second": 30, "per_chat_per_second": 1},
    }
    return {"lines": lines, "figures": figures, "parameters": parameters, "notes": notes}


async def run_with_baseline(
    partners: int,
    database: str,
    postgres_url: str,
    rate: float,
    per_chat_interval: float,
    pacer: str,
    baseline: str,
    rtt_ms: float,
    workers: int = 1,
    redis_url: str = DEFAULT_REDIS_URL,
) -> dict[str, Any]:
    """The chosen pacer, then the baseline, in one run; their figures side by side."""
    first = await run(
        partners, database, postgres_url, rate, per_chat_interval, pacer, rtt_ms, workers, redis_url
    )
    figures, lines, notes = dict(first["figures"]), list(first["lines"]), list(first["notes"])
    if baseline != "none":
        # Several workers are compared with one (Dyad's own budget, nobody killed).
        second = await run(
            partners,
            database,
            postgres_url,
            rate,
            per_chat_interval,
            "dyad" if workers > 1 else baseline,
            rtt_ms,
        )
        base = second["figures"]
        figures["baseline"] = base
        lines += ["", *second["lines"], ""]
        lines.append(
            f"side by side        rate_share {figures['rate_share']} vs {base['rate_share']} "
            f"(baseline {'one worker' if workers > 1 else baseline}); "
            f"429s {figures['http_429']} vs {base['http_429']}"
        )
        notes += [n for n in second["notes"] if n not in notes]
    parameters = {**first["parameters"], "baseline": baseline}
    return emit("fanout", lines, figures, parameters, notes)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parse the options, run the benchmark, print its figures (JSON last)."""
    parser = argparse.ArgumentParser(prog="python -m bench.fanout", description=__doc__)
    parser.add_argument("--partners", type=int, default=1500, help="partners due at once")
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--postgres-url", default=default_postgres_url())
    parser.add_argument(
        "--rate", type=float, default=TELEGRAM_RATE, help="the dispatcher's overall rate (msg/s)"
    )
    parser.add_argument(
        "--per-chat-interval", type=float, default=1.0, help="seconds between two sends to a chat"
    )
    pacers = ("dyad", "turn", "spacing")
    parser.add_argument(
        "--pacer",
        choices=pacers,
        default="dyad",
        help="dyad: the product's budget (slots counted around each HTTP request); turn: the "
        "window counted in the dispatcher's turn (the rule before); spacing: starts spaced "
        "1/rate apart, no window (the rule before that)",
    )
    parser.add_argument(
        "--baseline", choices=(*pacers, "none"), default="turn", help="run second, side by side"
    )
    parser.add_argument(
        "--rtt-ms", type=float, default=0.0, help="the fake's network round trip (ms)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes sharing the budget in Redis (PostgreSQL); the first is killed",
    )
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        asyncio.run(_child(json.loads(os.environ[_CHILD_CONFIG])))
        return {}
    if args.workers > 1 and args.database != "postgres":
        parser.error("--workers needs --database postgres (workers share it)")
    quiet_logging()
    return asyncio.run(
        run_with_baseline(
            args.partners,
            args.database,
            args.postgres_url,
            args.rate,
            args.per_chat_interval,
            args.pacer,
            args.baseline,
            args.rtt_ms,
            args.workers,
            args.redis_url,
        )
    )


if __name__ == "__main__":
    main()
