"""Scheduling: Dyad's planner and outbox against one PTB JobQueue job per partner.

Both sides start from the same database of joined couples (time zones and windows
varied) and run in fresh subprocesses, one after the other, so their memory figures
do not mix:

* the obvious alternative reads the partners and adds one ``run_daily`` job per partner
  to a real ``telegram.ext.JobQueue`` (APScheduler, in memory) of a real ``Application``;
* Dyad runs its ``Planner`` once, which writes the next 48 hours of ``deliveries`` rows.

Each child schedules twice: once timed (with the RSS growth from VmHWM), then once more
under ``tracemalloc`` for the peak and the retained Python allocations (the second pass
is warm: SQLAlchemy's statement cache and the parsed practice configuration exist).
What survives a restart: for the JobQueue, the jobs a newly built Application holds;
for Dyad, the pending rows the parent process finds after the child has exited.

    python -m bench.scheduling [--partners 20000] [--database sqlite|postgres]
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
import tracemalloc
from collections.abc import Sequence
from datetime import UTC, datetime
from datetime import time as clock_time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, select
from telegram.ext import Application

from bench._common import (
    default_postgres_url,
    emit,
    mib,
    open_bench_database,
    peak_rss_mib,
    quiet_logging,
    reset_peak_rss,
    rss_mib,
    seed_clinic,
)
from bot.core.clock import ManualClock
from db.engine import Database
from db.models import Delivery, Partner
from schedules.planner import Planner

ROOT = Path(__file__).resolve().parents[1]
DUMMY_TOKEN = "123456:bench-dummy-token-never-used"
WINDOW_START = {"morning": 8, "afternoon": 12, "evening": 17}
WINDOW_HOURS = 4


# The alternative: one JobQueue job per partner ----------------------------------------


async def _job(_context: object) -> None:
    """What each partner's daily job would do (never runs here)."""


def _partner_time(partner_id: int, window: str, zone: ZoneInfo) -> clock_time:
    """A stable time inside the partner's window, as a JobQueue bot would pick one."""
    digest = hashlib.sha256(f"{partner_id}".encode()).digest()
    minutes = int.from_bytes(digest[:4], "big") % (WINDOW_HOURS * 60)
    return clock_time(WINDOW_START.get(window, 17) + minutes // 60, minutes % 60, tzinfo=zone)


def _new_application() -> Any:
    return Application.builder().token(DUMMY_TOKEN).updater(None).build()


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


async def _schedule_jobs(db: Database) -> tuple[Any, int, float, float]:
    """Add one daily job per partner to a started JobQueue.

    Returns the application, the job count, the seconds to read the partners and add
    their jobs, and the seconds spent reading alone.
    """
    application = _new_application()
    job_queue = application.job_queue
    await job_queue.start()
    started = time.perf_counter()
    partners = await _load_partners(db)
    loaded = time.perf_counter() - started
    zones: dict[str, ZoneInfo] = {}
    for partner_id, chat_id, timezone, window in partners:
        zone = zones.get(timezone) or zones.setdefault(timezone, ZoneInfo(timezone))
        job_queue.run_daily(
            _job,
            _partner_time(partner_id, window, zone),
            name=f"partner:{partner_id}",
            chat_id=chat_id,
            data={"partner_id": partner_id},
        )
    await asyncio.sleep(0)  # let APScheduler's wake-ups run, as they would in a live bot
    seconds = time.perf_counter() - started
    return application, len(job_queue.jobs()), seconds, loaded


async def _jobqueue_side(db: Database, trace: bool) -> dict[str, Any]:
    rss_before = rss_mib()
    peak_reset = reset_peak_rss()
    application, jobs, seconds, loaded = await _schedule_jobs(db)
    rss_delta = peak_rss_mib() - rss_before
    await application.job_queue.stop(wait=False)
    # A restart: the process is gone, and a new Application starts with an empty JobQueue.
    del application
    restarted = _new_application()
    await restarted.job_queue.start()
    after_restart = len(restarted.job_queue.jobs())
    await restarted.job_queue.stop(wait=False)

    peak = retained = None
    if trace:
        tracemalloc.start()
        traced_app, _, _, _ = await _schedule_jobs(db)
        retained, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        await traced_app.job_queue.stop(wait=False)
    return {
        "scheduled": jobs,
        "seconds": seconds,
        "load_seconds": loaded,
        "rss_delta_mib": rss_delta if peak_reset else None,
        "peak_bytes": peak,
        "retained_bytes": retained,
        "known_after_restart": after_restart,
    }


# Dyad: the planner writes the outbox ------------------------------------------------------


async def _plan(db: Database, now: datetime) -> int:
    stats = await Planner(db, ManualClock(now)).run()
    return stats.created


async def _dyad_side(db: Database, now: datetime, trace: bool) -> dict[str, Any]:
    rss_before = rss_mib()
    peak_reset = reset_peak_rss()
    started = time.perf_counter()
    created = await _plan(db, now)
    seconds = time.perf_counter() - started
    rss_delta = peak_rss_mib() - rss_before

    peak = retained = None
    created_again = created
    if trace:
        async with db.uow() as uow:
            await uow.session.execute(delete(Delivery))
            await uow.commit()
        tracemalloc.start()
        created_again = await _plan(db, now)
        retained, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return {
        "scheduled": created,
        "scheduled_last_pass": created_again,
        "seconds": seconds,
        "rss_delta_mib": rss_delta if peak_reset else None,
        "peak_bytes": peak,
        "retained_bytes": retained,
    }


async def _child(
    side: str, url: str, schema: str | None, now: datetime, trace: bool
) -> dict[str, Any]:
    db = Database(url, search_path=schema)
    try:
        if side == "jobqueue":
            return await _jobqueue_side(db, trace)
        return await _dyad_side(db, now, trace)
    finally:
        await db.dispose()


# The parent: seed, run both children, compare --------------------------------------------


def _run_child(
    side: str, url: str, schema: str | None, now: datetime, trace: bool
) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.scheduling", "--side", side, "--url", url]
    command += ["--now", now.isoformat()]
    if schema is not None:
        command += ["--schema", schema]
    if not trace:
        command.append("--no-tracemalloc")
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"the {side} child failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


async def _pending_rows(url: str, schema: str | None) -> int:
    db = Database(url, search_path=schema)
    try:
        async with db.uow() as uow:
            query = select(func.count()).where(Delivery.status == "pending")
            return int(await uow.session.scalar(query) or 0)
    finally:
        await db.dispose()


def _ratio(over: float | None, under: float | None) -> float | None:
    if over is None or under is None:
        return None
    return round(over / max(under, 1e-9), 4)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _mib_or_none(value: int | None) -> float | None:
    return None if value is None else mib(value)


async def run(partners: int, database: str, postgres_url: str, trace: bool) -> dict[str, Any]:
    """Seed once, run each side in its own process, and compare."""
    notes: list[str] = []
    now = datetime.now(UTC).replace(microsecond=0)
    with tempfile.TemporaryDirectory(prefix="dyad-bench-") as tmp:
        bench_db = await open_bench_database(database, Path(tmp), postgres_url=postgres_url)
        assert bench_db is not None
        if bench_db.note:
            notes.append(bench_db.note)
        try:
            seeding = time.perf_counter()
            await seed_clinic(bench_db.db, math.ceil(partners / 2), now)
            seed_seconds = time.perf_counter() - seeding
            url, schema = bench_db.db.url, bench_db.schema
            await bench_db.db.dispose()  # the children open their own connections
            jobqueue = await asyncio.to_thread(_run_child, "jobqueue", url, schema, now, trace)
            dyad = await asyncio.to_thread(_run_child, "dyad", url, schema, now, trace)
            # The Dyad child has exited: whatever it planned must still be in the database.
            survivors = await _pending_rows(url, schema)
        finally:
            await bench_db.close()

    dyad_planned = dyad["scheduled_last_pass"]
    survives_jobqueue = jobqueue["known_after_restart"] / max(jobqueue["scheduled"], 1)
    survives_dyad = survivors / max(dyad_planned, 1)
    rss_ratio = _ratio(jobqueue["rss_delta_mib"], dyad["rss_delta_mib"])
    traced_ratio = _ratio(jobqueue["peak_bytes"], dyad["peak_bytes"])
    if not trace:
        notes.append("tracemalloc pass skipped: peak_memory_ratio compares RSS growth")
    figures = {
        "schedule_time_ratio": _ratio(jobqueue["seconds"], dyad["seconds"]),
        "peak_memory_ratio": traced_ratio if trace else rss_ratio,
        "survives_restart_jobqueue": round(survives_jobqueue, 4),
        "survives_restart_dyad": round(survives_dyad, 4),
        "jobqueue_seconds": round(jobqueue["seconds"], 3),
        "jobqueue_load_seconds": round(jobqueue["load_seconds"], 3),
        "dyad_seconds": round(dyad["seconds"], 3),
        "jobqueue_peak_mib": _mib_or_none(jobqueue["peak_bytes"]),
        "dyad_peak_mib": _mib_or_none(dyad["peak_bytes"]),
        "jobqueue_retained_mib": _mib_or_none(jobqueue["retained_bytes"]),
        "dyad_retained_mib": _mib_or_none(dyad["retained_bytes"]),
        "jobqueue_rss_delta_mib": _round(jobqueue["rss_delta_mib"]),
        "dyad_rss_delta_mib": _round(dyad["rss_delta_mib"]),
        "rss_delta_ratio": rss_ratio,
        "jobqueue_scheduled": jobqueue["scheduled"],
        "dyad_scheduled": dyad["scheduled"],
        "database": bench_db.kind,
    }
    per_couple_ms = dyad["seconds"] / max(math.ceil(partners / 2), 1) * 1000
    lines = [
        f"database                {bench_db.kind}; {partners} partners seeded in "
        f"{seed_seconds:.1f} s",
        f"JobQueue (run_daily)    {jobqueue['scheduled']} jobs in {jobqueue['seconds']:.2f} s "
        f"(of which reading partners {jobqueue['load_seconds']:.2f} s)",
        f"Dyad planner + outbox   {dyad['scheduled']} rows (48 h ahead) in "
        f"{dyad['seconds']:.2f} s ({per_couple_ms:.1f} ms per couple)",
        f"time ratio              {figures['schedule_time_ratio']} (JobQueue / Dyad)",
        f"tracemalloc peak        JobQueue {figures['jobqueue_peak_mib']} MiB, "
        f"Dyad {figures['dyad_peak_mib']} MiB, ratio {traced_ratio}",
        f"held afterwards         JobQueue {figures['jobqueue_retained_mib']} MiB, "
        f"Dyad {figures['dyad_retained_mib']} MiB",
        f"RSS growth (VmHWM)      JobQueue {figures['jobqueue_rss_delta_mib']} MiB, "
        f"Dyad {figures['dyad_rss_delta_mib']} MiB, ratio {rss_ratio}",
        f"after a restart         JobQueue {jobqueue['known_after_restart']} of "
        f"{jobqueue['scheduled']} jobs; Dyad {survivors} of {dyad_planned} rows pending",
    ]
    parameters = {
        "partners": partners,
        "database": database,
        "planner_horizon_hours": 48,
        "tracemalloc": trace,
    }
    return emit("scheduling", lines, figures, parameters, notes)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parse the options, run the benchmark, print its figures (JSON last)."""
    parser = argparse.ArgumentParser(prog="python -m bench.scheduling", description=__doc__)
    parser.add_argument("--partners", type=int, default=20_000)
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--postgres-url", default=default_postgres_url())
    parser.add_argument(
        "--no-tracemalloc",
        dest="trace",
        action="store_false",
        help="skip the second, traced pass (about halves the run; memory from RSS only)",
    )
    parser.add_argument("--side", choices=("jobqueue", "dyad"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--schema", help=argparse.SUPPRESS)
    parser.add_argument("--now", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    quiet_logging()
    if args.side is not None:
        now = datetime.fromisoformat(args.now)
        result = asyncio.run(_child(args.side, args.url, args.schema, now, args.trace))
        print(json.dumps(result), flush=True)
        return result
    return asyncio.run(run(args.partners, args.database, args.postgres_url, args.trace))


if __name__ == "__main__":
    main()
