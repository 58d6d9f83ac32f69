"""Footprint: resident memory of one real ``dyad run`` process.

A SQLite database is filled beforehand with 10,000 joined couples (20,000 partners).
The fake Bot API runs in this (the benchmark's) process; ``dyad run`` runs as a
subprocess pointed at it (``DYAD_BOT_TOKEN``, ``DYAD_TELEGRAM_API_URL``, a key in
``DYAD_ENCRYPTION_KEYS``) and its VmRSS is read from /proc/PID/status:

* ``rss_idle_mb``: after start-up, once its first planning pass over every couple has
  finished and nothing is due (the median of the samples over ``--idle-seconds``);
* ``rss_dispatching_mb``: while a batch of due notices, queued directly in the outbox,
  is being sent (the highest sample until the batch has gone out).

    python -m bench.footprint [--couples 10000] [--batch 600]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bench._common import SeededPartner, emit, quiet_logging, rss_mib, seed_clinic, status_kib
from bot.services.crypto import new_key
from bot.services.outbox import enqueue
from db.engine import Database
from db.models import Partner
from fakebotapi import FakeBotAPI

NOTICE = "couple.space_ready"


@dataclass
class _Watch:
    """What the benchmark learns from the bot's JSON log lines (and its RSS samples)."""

    planner_runs: list[dict[str, Any]] = field(default_factory=list)
    running: asyncio.Event = field(default_factory=asyncio.Event)
    planned: asyncio.Event = field(default_factory=asyncio.Event)
    errors: list[str] = field(default_factory=list)
    tail: list[str] = field(default_factory=list)


async def _read_logs(stream: asyncio.StreamReader, watch: _Watch) -> None:
    while line := await stream.readline():
        text = line.decode("utf-8", "replace").rstrip()
        watch.tail = [*watch.tail[-40:], text]
        try:
            record = json.loads(text)
        except ValueError:
            continue
        message = record.get("message", "")
        if message.startswith("dyad is running"):
            watch.running.set()
        elif message == "planner run":
            watch.planner_runs.append(record)
            watch.planned.set()
        if record.get("level") in ("ERROR", "CRITICAL"):
            watch.errors.append(message)


def _dyad_command() -> list[str]:
    script = Path(sys.executable).parent / "dyad"
    if script.exists():
        return [str(script), "run"]
    return [sys.executable, "-c", "from bot.cli import main; main()", "run"]


def _environment(fake: FakeBotAPI, database_url: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("DYAD_")}
    env.update(
        {
            "DYAD_BOT_TOKEN": fake.token,
            "DYAD_TELEGRAM_API_URL": fake.base_url,
            "DYAD_DATABASE_URL": database_url,
            "DYAD_ENCRYPTION_KEYS": new_key(),
            "DYAD_LOG_FORMAT": "json",
            "DYAD_LOG_LEVEL": "INFO",
        }
    )
    return env


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # After the command name: state is field 3, so utime (14) and stime (15) sit at 11 and 12.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _until_quiet(
    process: asyncio.subprocess.Process, limit: float, share: float = 0.05, window: float = 2.0
) -> tuple[float, list[float]]:
    """Wait until the process uses under ``share`` of a CPU over ``window`` seconds.

    Returns the seconds waited and the RSS samples taken meanwhile.
    """
    samples: list[float] = []
    started = time.perf_counter()
    while time.perf_counter() - started < limit:
        if process.returncode is not None:
            raise RuntimeError("dyad run exited early")
        before = _cpu_seconds(process.pid)
        samples += await _sample(process.pid, window)
        if _cpu_seconds(process.pid) - before < share * window:
            return time.perf_counter() - started, samples
    raise RuntimeError(f"dyad run stayed busy for {limit:.0f} s")


async def _sample(pid: int, seconds: float, every: float = 0.25) -> list[float]:
    samples: list[float] = []
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end:
        value = rss_mib(pid)
        if value:
            samples.append(value)
        await asyncio.sleep(every)
    return samples


async def _queue_batch(database_url: str, partners: Sequence[SeededPartner]) -> None:
    db = Database(database_url)
    try:
        async with db.uow() as uow:
            ids = [p.id for p in partners]
            rows = await uow.session.scalars(select(Partner).where(Partner.id.in_(ids)))
            now = datetime.now(UTC)
            for partner in rows.all():
                await enqueue(
                    uow,
                    partner,
                    kind="notice",
                    key=NOTICE,
                    dedupe_key=f"bench:footprint:{partner.id}",
                    due_at=now,
                    couple_id=partner.couple_id,
                )
            await uow.commit()
    finally:
        await db.dispose()


async def run(
    couples: int,
    batch: int,
    idle_seconds: float,
    start_timeout: float,
    wait_for_planner: bool,
    quiet_window: float = 2.0,
) -> dict[str, Any]:
    """Seed, start ``dyad run`` against the fake, and sample its memory."""
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="dyad-bench-") as tmp:
        database_url = f"sqlite+aiosqlite:///{Path(tmp) / 'dyad.db'}"
        db = Database(database_url)
        seeding = time.perf_counter()
        await db.migrate()
        clinic = await seed_clinic(db, couples, datetime.now(UTC))
        await db.dispose()
        seed_seconds = time.perf_counter() - seeding

        async with FakeBotAPI() as fake:
            for partner in clinic.partners:
                fake.add_user(partner.chat_id, f"P{partner.id}", has_started=True)
            for chat in clinic.therapist_chats:
                fake.add_user(chat, "Therapist", has_started=True)
            watch = _Watch()
            process = await asyncio.create_subprocess_exec(
                *_dyad_command(),
                cwd=tmp,
                env=_environment(fake, database_url),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            assert process.stdout is not None
            reader = asyncio.create_task(_read_logs(process.stdout, watch))
            launched = time.perf_counter()
            try:
                # Start-up is over once the process has gone quiet (its CPU use drops):
                # after migrating, connecting and, when it plans at start, planning.
                while not watch.running.is_set():
                    if process.returncode is not None:
                        raise RuntimeError("dyad run exited:\n" + "\n".join(watch.tail))
                    if time.perf_counter() - launched > start_timeout:
                        raise RuntimeError("dyad run did not start in time")
                    await asyncio.sleep(0.1)
                _, startup_samples = await _until_quiet(process, start_timeout, window=quiet_window)
                if wait_for_planner:
                    while not watch.planned.is_set():
                        if time.perf_counter() - launched > start_timeout:
                            raise RuntimeError("no planning pass finished in time")
                        startup_samples += await _sample(process.pid, 1.0)
                    _, more = await _until_quiet(process, start_timeout, window=quiet_window)
                    startup_samples += more
                startup_seconds = time.perf_counter() - launched
                planned_during_startup = list(watch.planner_runs)
                idle = await _sample(process.pid, idle_seconds)
                if len(watch.planner_runs) > len(planned_during_startup):
                    notes.append("a planning pass ended during the idle samples")
                if not planned_during_startup:
                    notes.append(
                        "no planning pass had finished when idle memory was sampled "
                        "(see --wait-for-planner)"
                    )

                calls_before = len(fake.calls)
                chosen = clinic.partners[:batch]
                await _queue_batch(database_url, chosen)
                queued_at = time.perf_counter()
                dispatching: list[float] = []
                targets = {p.chat_id for p in chosen}

                def delivered() -> int:
                    return sum(
                        1
                        for call in fake.calls[calls_before:]
                        if call.method == "sendMessage"
                        and call.status == 200
                        and int(call.params.get("chat_id", 0)) in targets
                    )

                deadline = queued_at + max(60.0, 4 * batch / 30)
                while delivered() < len(chosen) and time.perf_counter() < deadline:
                    dispatching += await _sample(process.pid, 1.0)
                sent = delivered()
                dispatch_seconds = time.perf_counter() - queued_at
                peak_hwm = status_kib("VmHWM", process.pid) / 1024
            finally:
                if process.returncode is None:
                    process.send_signal(signal.SIGTERM)
                    try:
                        await asyncio.wait_for(process.wait(), 30)
                    except TimeoutError:
                        process.kill()
                        await process.wait()
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait_for(reader, 5)

    if sent < len(chosen):
        notes.append(f"only {sent} of {len(chosen)} notices went out before the deadline")
    figures = {
        "rss_idle_mb": round(statistics.median(idle), 1) if idle else None,
        "rss_dispatching_mb": round(max(dispatching), 1) if dispatching else None,
        "rss_startup_max_mb": round(max(startup_samples), 1) if startup_samples else None,
        "rss_idle_max_mb": round(max(idle), 1) if idle else None,
        "rss_dispatching_median_mb": (
            round(statistics.median(dispatching), 1) if dispatching else None
        ),
        "vm_hwm_mb": round(peak_hwm, 1),
        "startup_seconds": round(startup_seconds, 1),
        "planner_passes_before_idle": len(planned_during_startup),
        "planner_rows_before_idle": sum(
            int(run.get("rows_created") or 0) for run in planned_during_startup
        ),
        "batch_sent": sent,
        "dispatch_seconds": round(dispatch_seconds, 1),
        "exit_code": process.returncode,
        "errors_logged": len(watch.errors),
    }
    lines = [
        f"database            SQLite file, {couples} couples ({2 * couples} partners), "
        f"seeded in {seed_seconds:.1f} s",
        f"start-up            {startup_seconds:.1f} s until quiet; planning passes finished "
        f"meanwhile: {len(planned_during_startup)} "
        f"({figures['planner_rows_before_idle']} rows); "
        f"RSS up to {figures['rss_startup_max_mb']} MiB",
        f"idle                RSS {figures['rss_idle_mb']} MiB (median of {len(idle)} samples "
        f"over {idle_seconds:.0f} s; max {figures['rss_idle_max_mb']} MiB)",
        f"dispatching         {sent} of {len(chosen)} notices in {dispatch_seconds:.1f} s; "
        f"RSS up to {figures['rss_dispatching_mb']} MiB "
        f"(median {figures['rss_dispatching_median_mb']} MiB)",
        f"peak (VmHWM)        {figures['vm_hwm_mb']} MiB over the whole run",
        f"stopped             exit code {process.returncode}; errors logged {len(watch.errors)}",
    ]
    parameters = {
        "wait_for_planner": wait_for_planner,
        "quiet_window": quiet_window,
        "couples": couples,
        "partners": 2 * couples,
        "batch": batch,
        "idle_seconds": idle_seconds,
        "database": "sqlite",
    }
    return emit("footprint", lines, figures, parameters, notes)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parse the options, run the benchmark, print its figures (JSON last)."""
    parser = argparse.ArgumentParser(prog="python -m bench.footprint", description=__doc__)
    parser.add_argument("--couples", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=600, help="due notices sent at once")
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument(
        "--start-timeout", type=float, default=1800.0, help="seconds allowed for start-up"
    )
    parser.add_argument(
        "--wait-for-planner",
        action="store_true",
        help="sample idle memory only after a planning pass over every couple has finished",
    )
    parser.add_argument(
        "--quiet-window",
        type=float,
        default=2.0,
        help="seconds under 5%% CPU that mark the end of start-up",
    )
    args = parser.parse_args(argv)
    quiet_logging()
    return asyncio.run(
        run(
            args.couples,
            args.batch,
            args.idle_seconds,
            args.start_timeout,
            args.wait_for_planner,
            args.quiet_window,
        )
    )


if __name__ == "__main__":
    main()
