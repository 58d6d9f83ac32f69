"""Scheduling: Dyad's planner and outbox against job schedulers, for the same rules.

All sides start from the same database of joined couples (time zones and windows
varied) and follow the same standard template: four rules (check-ins Monday and
Thursday, hope prompts Tuesday and Saturday, a skill on Wednesday, a couple-space prompt
on Sunday), each at a minute of the partner's own window moved out of quiet hours, in
the partner's zone. Each side runs in fresh subprocesses, one after the other:

* **JobQueue**: a real ``telegram.ext.JobQueue`` (APScheduler in memory) of a real
  ``Application``; one ``run_daily`` job per partner and rule. Caps, pairs and
  follow-ups would be decided when a job fires (nothing at scheduling time).
* **APScheduler + SQLAlchemyJobStore**: the persistent alternative, in a table of the
  same database (PostgreSQL through psycopg when it is installed); one cron job per
  partner and rule, pickled into the job store.
* **Dyad**: ``Planner.run()`` writes the next 48 hours of outbox rows (caps, pairs and
  follow-ups decided now); then a repeat pass five minutes later in the same process.

Restart: a new process each. The JobQueue starts empty and must add every job again
(timed); APScheduler starts on its job store (timed until every job is known); Dyad finds
its rows in the database and its first pass there plans with an empty cache (timed).

    python -m bench.scheduling [--partners 20000] [--database sqlite|postgres|both]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, make_url, select, text
from telegram.ext import Application

from bench._common import (
    default_postgres_url,
    emit,
    open_bench_database,
    peak_rss_mib,
    quiet_logging,
    reset_peak_rss,
    rss_mib,
    seed_clinic,
)
from bot.core.clock import ManualClock
from bot.services.practice_config import parse_practice_config
from db.engine import Database
from db.models import Delivery, Partner
from schedules.model import DeliverySettings, Rule
from schedules.planner import Planner

ROOT = Path(__file__).resolve().parents[1]
DUMMY_TOKEN = "123456:bench-dummy-token-never-used"
REPEAT_AFTER = timedelta(minutes=5)  # the dispatcher's planning interval
RESTART_AFTER = timedelta(minutes=10)
JOB_TABLE = "bench_apscheduler_jobs"
# PTB's run_daily counts days from Sunday (0) to Saturday (6).
_PTB_DAY = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}


# The same rules, as a job scheduler would hold them ---------------------------------------


def _rules() -> tuple[DeliverySettings, tuple[Rule, ...]]:
    config = parse_practice_config(None)
    return config.schedules.delivery, config.schedules.template().rules


def _job_minute(delivery: DeliverySettings, rule: Rule, partner_id: int, window: str) -> int:
    """A stable minute of the partner's window for one rule, out of quiet hours."""
    span = delivery.resolve_window(rule.window, window)
    digest = hashlib.sha256(f"{partner_id}|{rule.id}".encode()).digest()
    minute = span.start + int.from_bytes(digest[:4], "big") % (min(rule.jitter, 239) + 1)
    quiet = delivery.quiet_hours
    while quiet is not None and quiet.contains(minute) and minute + 1 < span.end:
        minute += 1
    return minute


async def fire(partner_id: int, rule_id: str) -> None:
    """What each job would do when it fires (never runs here): cap, pair, send."""


async def _ptb_fire(_context: object) -> None:
    """The same, with PTB's callback signature."""


async def _load_partners(db: Database) -> list[tuple[int, int, str, str]]:
    async with db.uow() as uow:
        rows = await uow.session.execute(
            select(Partner.id, Partner.chat_id, Partner.timezone, Partner.window).where(
                Partner.onboarding_step == "done", Partner.left_at.is_(None)
            )
        )
        return [
            (pid, chat or 0, tz or "UTC", window or "evening") for pid, chat, tz, window in rows
        ]


def _new_application() -> Any:
    return Application.builder().token(DUMMY_TOKEN).updater(None).build()


async def _jobqueue_side(db: Database) -> dict[str, Any]:
    delivery, rules = _rules()
    application = _new_application()
    job_queue = application.job_queue
    await job_queue.start()
    rss_before = rss_mib()
    peak_reset = reset_peak_rss()
    started, cpu = time.perf_counter(), time.process_time()
    zones: dict[str, ZoneInfo] = {}
    for partner_id, chat_id, timezone, window in await _load_partners(db):
        zone = zones.get(timezone) or zones.setdefault(timezone, ZoneInfo(timezone))
        for rule in rules:
            minute = _job_minute(delivery, rule, partner_id, window)
            job_queue.run_daily(
                _ptb_fire,
                clock_time(minute // 60, minute % 60, tzinfo=zone),
                days=tuple(_PTB_DAY[d] for d in rule.days),
                name=f"{partner_id}:{rule.id}",
                chat_id=chat_id,
                data={"partner_id": partner_id, "rule": rule.id},
            )
    await asyncio.sleep(0)  # let APScheduler's wake-ups run, as they would in a live bot
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    jobs = len(job_queue.jobs())
    rss_delta = peak_rss_mib() - rss_before
    await job_queue.stop(wait=False)
    rss = rss_delta if peak_reset else None
    return {"scheduled": jobs, "seconds": seconds, "cpu": cpu, "rss_mib": rss}


def _job_store_url(url: str, schema: str | None) -> tuple[str, str | None, str | None]:
    """The synchronous URL APScheduler's job store uses, its schema, and a note if not PG."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return parsed.set(drivername="sqlite").render_as_string(hide_password=False), None, None
    try:
        import psycopg  # type: ignore[import-not-found, unused-ignore]  # noqa: F401
    except ImportError:
        note = "psycopg is not installed: APScheduler's job store used a SQLite file"
        return f"sqlite:///{tempfile.mkdtemp(prefix='dyad-jobs-')}/jobs.db", None, note
    sync = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return sync, schema, None


def _scheduler(store_url: str, schema: str | None) -> Any:
    from apscheduler.jobstores.sqlalchemy import (  # type: ignore[import-untyped]
        SQLAlchemyJobStore,
    )
    from apscheduler.schedulers.asyncio import (  # type: ignore[import-untyped]
        AsyncIOScheduler,
    )

    store = SQLAlchemyJobStore(url=store_url, tablename=JOB_TABLE, tableschema=schema)
    return AsyncIOScheduler(jobstores={"default": store}, timezone=UTC)


async def _apscheduler_side(
    db: Database, store_url: str, schema: str | None, limit: int
) -> dict[str, Any]:
    from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]

    delivery, rules = _rules()
    scheduler = _scheduler(store_url, schema)
    scheduler.start(paused=True)  # holds the jobs, fires none during the benchmark
    rss_before = rss_mib()
    peak_reset = reset_peak_rss()
    started, cpu = time.perf_counter(), time.process_time()
    for partner_id, _, timezone, window in (await _load_partners(db))[:limit]:
        for rule in rules:
            minute = _job_minute(delivery, rule, partner_id, window)
            trigger = CronTrigger(
                day_of_week=",".join(rule.days),
                hour=minute // 60,
                minute=minute % 60,
                timezone=ZoneInfo(timezone),
            )
            scheduler.add_job(
                fire,
                trigger,
                args=(partner_id, rule.id),
                id=f"{partner_id}:{rule.id}",
                replace_existing=True,
            )
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    rss_delta = peak_rss_mib() - rss_before
    jobs = len(scheduler.get_jobs())
    scheduler.shutdown(wait=False)
    rss = rss_delta if peak_reset else None
    return {"scheduled": jobs, "seconds": seconds, "cpu": cpu, "rss_mib": rss}


async def _apscheduler_restart(store_url: str, schema: str | None) -> dict[str, Any]:
    started, cpu = time.perf_counter(), time.process_time()
    scheduler = _scheduler(store_url, schema)
    scheduler.start(paused=True)
    known = len(scheduler.get_jobs())  # every job unpickled from the store
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    scheduler.shutdown(wait=False)
    return {"known": known, "seconds": seconds, "cpu": cpu}


# Dyad: the planner writes the outbox ------------------------------------------------------


async def _pending_rows(db: Database) -> int:
    async with db.uow() as uow:
        query = select(func.count()).where(Delivery.status == "pending")
        return int(await uow.session.scalar(query) or 0)


async def _dyad_side(db: Database, now: datetime) -> dict[str, Any]:
    clock = ManualClock(now)
    planner = Planner(db, clock)
    rss_before = rss_mib()
    peak_reset = reset_peak_rss()
    started, cpu = time.perf_counter(), time.process_time()
    first = await planner.run()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    rss_delta = peak_rss_mib() - rss_before
    clock.set(now + REPEAT_AFTER)
    if db.is_postgres:
        # In the five minutes between two passes PostgreSQL's autovacuum analyses the table
        # the first pass filled (its default settings: within a minute of 50 new rows); the
        # clock here moves at once, so the benchmark does that, untimed. Without it the
        # repeat pass reads every live row per batch (a plan for an empty table).
        async with db.engine.begin() as conn:
            await conn.execute(text("ANALYZE deliveries"))
    started, repeat_cpu = time.perf_counter(), time.process_time()
    repeat = await planner.run()
    repeat_seconds = time.perf_counter() - started
    repeat_cpu = time.process_time() - repeat_cpu
    days = getattr(planner, "days", None)  # None: a planner without the day cache
    return {
        "scheduled": first.created,
        "couples": first.couples,
        "seconds": seconds,
        "cpu": cpu,
        "repeat_created": repeat.created,
        "repeat_seconds": repeat_seconds,
        "repeat_cpu": repeat_cpu,
        "rss_mib": rss_delta if peak_reset else None,
        "cached_days": None if days is None else len(days),
    }


async def _dyad_restart(db: Database, now: datetime) -> dict[str, Any]:
    known = await _pending_rows(db)  # what the previous process left, before planning
    started, cpu = time.perf_counter(), time.process_time()
    stats = await Planner(db, ManualClock(now + RESTART_AFTER)).run()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"known": known, "seconds": seconds, "cpu": cpu, "created": stats.created}


async def _child(args: argparse.Namespace) -> dict[str, Any]:
    now = datetime.fromisoformat(args.now)
    if args.side.startswith("apscheduler"):
        store_url, schema = args.store_url, args.store_schema
        if args.side == "apscheduler-restart":
            return await _apscheduler_restart(store_url, schema)
    db = Database(args.url, search_path=args.schema)
    try:
        if args.side == "jobqueue":
            return await _jobqueue_side(db)
        if args.side == "apscheduler":
            return await _apscheduler_side(db, store_url, schema, int(args.limit))
        if args.side == "dyad":
            return await _dyad_side(db, now)
        return await _dyad_restart(db, now)
    finally:
        await db.dispose()


# The parent: seed, run every side, compare -------------------------------------------------


def _run_child(side: str, now: datetime, **options: str | None) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.scheduling", "--side", side, "--now", now.isoformat()]
    for name, value in options.items():
        if value is not None:
            command += [f"--{name.replace('_', '-')}", value]
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"the {side} child failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _ms_per_couple(seconds: float, couples: int) -> float:
    return round(seconds / max(couples, 1) * 1000, 3)


async def _one_database(
    kind: str,
    partners: int,
    postgres_url: str,
    now: datetime,
    notes: list[str],
    apscheduler_partners: int,
) -> dict[str, Any]:
    couples = math.ceil(partners / 2)
    # APScheduler's store commits each job on its own: a subset, figures per couple of it.
    aps_partners = min(partners, apscheduler_partners)
    aps_couples = math.ceil(aps_partners / 2)
    with tempfile.TemporaryDirectory(prefix="dyad-bench-") as tmp:
        bench_db = await open_bench_database(kind, Path(tmp), postgres_url=postgres_url)
        assert bench_db is not None
        if bench_db.note:
            notes.append(bench_db.note)
        try:
            seeding = time.perf_counter()
            await seed_clinic(bench_db.db, couples, now)
            seed_seconds = time.perf_counter() - seeding
            url, schema = bench_db.db.url, bench_db.schema
            await bench_db.db.dispose()  # the children open their own connections
            store_url, store_schema, note = _job_store_url(url, schema)
            if note:
                notes.append(note)
            db_options = {"url": url, "schema": schema}
            store = {"store_url": store_url, "store_schema": store_schema}
            limit = {"limit": str(aps_partners)}
            sides: dict[str, dict[str, Any]] = {}
            for side, options in (
                ("jobqueue", db_options),
                ("jobqueue-restart", db_options),
                ("apscheduler", {**db_options, **store, **limit}),
                ("apscheduler-restart", store),
                ("dyad", db_options),
                ("dyad-restart", db_options),
            ):
                child = "jobqueue" if side == "jobqueue-restart" else side
                sides[side] = await asyncio.to_thread(_run_child, child, now, **options)
        finally:
            await bench_db.close()
    jobqueue, apscheduler, dyad = sides["jobqueue"], sides["apscheduler"], sides["dyad"]
    return {
        "database": bench_db.kind,
        "couples": couples,
        "seed_seconds": round(seed_seconds, 1),
        "dyad": {
            "first_pass_ms_per_couple": _ms_per_couple(dyad["seconds"], couples),
            "repeat_pass_ms_per_couple": _ms_per_couple(dyad["repeat_seconds"], couples),
            "restart_pass_ms_per_couple": _ms_per_couple(sides["dyad-restart"]["seconds"], couples),
            "cpu_ms_per_couple": [
                _ms_per_couple(dyad["cpu"], couples),
                _ms_per_couple(dyad["repeat_cpu"], couples),
                _ms_per_couple(sides["dyad-restart"]["cpu"], couples),
            ],
            "rows": dyad["scheduled"],
            "repeat_rows": dyad["repeat_created"],
            "known_after_restart": sides["dyad-restart"]["known"],
            "rss_mib": _round(dyad["rss_mib"]),
            "cached_days": dyad["cached_days"],
        },
        "jobqueue": {
            "first_pass_ms_per_couple": _ms_per_couple(jobqueue["seconds"], couples),
            "repeat_pass_ms_per_couple": 0.0,  # the jobs are there until the process ends
            "restart_pass_ms_per_couple": _ms_per_couple(
                sides["jobqueue-restart"]["seconds"], couples
            ),
            "cpu_ms_per_couple": [
                _ms_per_couple(jobqueue["cpu"], couples),
                0.0,
                _ms_per_couple(sides["jobqueue-restart"]["cpu"], couples),
            ],
            "jobs": jobqueue["scheduled"],
            "known_after_restart": 0,  # a new process starts with an empty JobQueue
            "rss_mib": _round(jobqueue["rss_mib"]),
        },
        "apscheduler_sqlalchemy": {
            "first_pass_ms_per_couple": _ms_per_couple(apscheduler["seconds"], aps_couples),
            "repeat_pass_ms_per_couple": 0.0,  # nothing to do until a setting changes
            "restart_pass_ms_per_couple": _ms_per_couple(
                sides["apscheduler-restart"]["seconds"], aps_couples
            ),
            "cpu_ms_per_couple": [
                _ms_per_couple(apscheduler["cpu"], aps_couples),
                0.0,
                _ms_per_couple(sides["apscheduler-restart"]["cpu"], aps_couples),
            ],
            "couples": aps_couples,
            "jobs": apscheduler["scheduled"],
            "known_after_restart": sides["apscheduler-restart"]["known"],
            "rss_mib": _round(apscheduler["rss_mib"]),
        },
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _lines(result: dict[str, Any]) -> list[str]:
    dyad, jq, aps = result["dyad"], result["jobqueue"], result["apscheduler_sqlalchemy"]
    head = "ms per couple"
    return [
        f"[{result['database']}] {result['couples']} couples seeded in {result['seed_seconds']} s",
        f"  {head:<22}{'first pass':>12}{'repeat':>10}{'restart':>10}   scheduled, after restart",
        f"  {'Dyad planner':<22}{dyad['first_pass_ms_per_couple']:>12}"
        f"{dyad['repeat_pass_ms_per_couple']:>10}{dyad['restart_pass_ms_per_couple']:>10}"
        f"   {dyad['rows']} rows (48 h), {dyad['known_after_restart']} pending",
        f"  {'JobQueue (memory)':<22}{jq['first_pass_ms_per_couple']:>12}"
        f"{jq['repeat_pass_ms_per_couple']:>10}{jq['restart_pass_ms_per_couple']:>10}"
        f"   {jq['jobs']} jobs, {jq['known_after_restart']} known",
        f"  {'APScheduler+SQLAlchemy':<22}{aps['first_pass_ms_per_couple']:>12}"
        f"{aps['repeat_pass_ms_per_couple']:>10}{aps['restart_pass_ms_per_couple']:>10}"
        f"   {aps['jobs']} jobs ({aps['couples']} couples), "
        f"{aps['known_after_restart']} known",
        f"  CPU ms per couple (first, repeat, restart; this process only): Dyad "
        f"{dyad['cpu_ms_per_couple']}, JobQueue {jq['cpu_ms_per_couple']}, "
        f"APScheduler {aps['cpu_ms_per_couple']}",
        f"  RSS growth MiB: Dyad {dyad['rss_mib']}, JobQueue {jq['rss_mib']}, "
        f"APScheduler {aps['rss_mib']}",
    ]


async def run(
    partners: int,
    databases: Sequence[str],
    postgres_url: str,
    apscheduler_partners: int,
    start: datetime | None = None,
) -> dict[str, Any]:
    """Seed each database once, run each side in its own processes, and compare.

    ``start``: the first pass's time (default now); the repeat pass comes five minutes later.
    """
    notes: list[str] = []
    now = start or datetime.now(UTC).replace(microsecond=0)
    results = {
        kind: await _one_database(kind, partners, postgres_url, now, notes, apscheduler_partners)
        for kind in databases
    }
    lines = [line for result in results.values() for line in _lines(result)]
    parameters = {
        "partners": partners,
        "databases": list(databases),
        "planner_horizon_hours": 48,
        "repeat_after_s": REPEAT_AFTER.total_seconds(),
        "rules": [rule.id for rule in _rules()[1]],
    }
    return emit("scheduling", lines, results, parameters, notes)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parse the options, run the benchmark, print its figures (JSON last)."""
    parser = argparse.ArgumentParser(prog="python -m bench.scheduling", description=__doc__)
    parser.add_argument("--partners", type=int, default=20_000)
    parser.add_argument("--database", choices=("sqlite", "postgres", "both"), default="sqlite")
    parser.add_argument("--postgres-url", default=default_postgres_url())
    parser.add_argument(
        "--apscheduler-partners",
        type=int,
        default=2_000,
        help="partners whose jobs go into APScheduler's job store (one commit per job: slow)",
    )
    parser.add_argument(
        "--now",
        help="the first pass's time, ISO 8601 (default: now); a fixed time plans the same rows",
    )
    hidden_options = ("--side", "--url", "--schema", "--store-url", "--store-schema")
    for hidden in (*hidden_options, "--limit"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    quiet_logging()
    if args.side is not None:
        result = asyncio.run(_child(args))
        print(json.dumps(result), flush=True)
        return result
    databases = ("sqlite", "postgres") if args.database == "both" else (args.database,)
    start = datetime.fromisoformat(args.now) if args.now else None
    return asyncio.run(
        run(args.partners, databases, args.postgres_url, args.apscheduler_partners, start)
    )


if __name__ == "__main__":
    main()
