"""What every benchmark shares: databases, fast seeding, figures, memory readings."""

from __future__ import annotations

import json
import logging
import math
import os
import random
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from db.engine import Database
from db.models import Couple, Partner, Practice, Therapist

if TYPE_CHECKING:  # the memory benchmarks never load the fake Bot API
    from fakebotapi import FakeUser

DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
POSTGRES_URL_VAR = "DYAD_TEST_DATABASE_URL"
TIMEZONES = (
    "Europe/Madrid",
    "America/New_York",
    "America/Mexico_City",
    "America/Bogota",
    "America/Los_Angeles",
    "Europe/London",
    "Africa/Johannesburg",
    "Asia/Kolkata",
    "Asia/Tokyo",
    "Australia/Sydney",
)
WINDOWS = ("morning", "afternoon", "evening")
_CHUNK = 2_000  # rows per INSERT batch: well inside both databases' parameter limits


def default_postgres_url() -> str:
    """The PostgreSQL URL benchmarks use: ``DYAD_TEST_DATABASE_URL``, else the local one."""
    return os.environ.get(POSTGRES_URL_VAR) or DEFAULT_POSTGRES_URL


def quiet_logging() -> None:
    """Only warnings and errors, so a benchmark's output stays its figures."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for name in ("httpx", "httpcore", "apscheduler", "alembic", "aiohttp.access"):
        logging.getLogger(name).setLevel(logging.WARNING)


# Databases -------------------------------------------------------------------------------


@dataclass
class BenchDatabase:
    """A migrated, empty database made for one run; ``close`` removes what it made."""

    db: Database
    kind: str  # "sqlite" | "postgres"
    schema: str | None = None
    admin_url: str | None = None
    note: str | None = None  # why this is not the kind that was asked for

    async def close(self) -> None:
        """Dispose the engine and drop the run's PostgreSQL schema."""
        await self.db.dispose()
        if self.schema is not None and self.admin_url is not None:
            await drop_schema(self.admin_url, self.schema)


async def postgres_problem(url: str) -> str | None:
    """Why PostgreSQL at ``url`` cannot be used, or None when it answers."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as error:
        return f"{type(error).__name__}: {error}".splitlines()[0][:200]
    finally:
        await engine.dispose()
    return None


async def drop_schema(url: str, schema: str) -> None:
    """Drop a benchmark's PostgreSQL schema and everything in it."""
    admin = create_async_engine(url)
    try:
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        await admin.dispose()


async def open_bench_database(
    kind: str, directory: Path, *, postgres_url: str | None = None, fallback: bool = True
) -> BenchDatabase | None:
    """A fresh database: a SQLite file in (existing) ``directory``, or a PostgreSQL schema.

    When PostgreSQL does not answer, a SQLite file stands in (``fallback``, with a note
    saying so) or None is returned.
    """
    note = None
    if kind == "postgres":
        url = postgres_url or default_postgres_url()
        problem = await postgres_problem(url)
        if problem is None:
            schema = f"bench_{uuid.uuid4().hex[:12]}"
            admin = create_async_engine(url)
            try:
                async with admin.begin() as conn:
                    await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            finally:
                await admin.dispose()
            db = Database(url, search_path=schema, pool_size=10)
            await db.migrate()
            return BenchDatabase(db, "postgres", schema, url)
        if not fallback:
            return None
        note = f"PostgreSQL unreachable ({problem}); a SQLite file was used instead"
    db = Database(f"sqlite+aiosqlite:///{directory / f'bench-{uuid.uuid4().hex[:8]}.db'}")
    await db.migrate()
    return BenchDatabase(db, "sqlite", note=note)


# Seeding -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeededPartner:
    """A joined partner as seeded: enough to address them and to play them."""

    id: int
    couple_id: int
    slot: str
    chat_id: int
    language: str
    timezone: str
    window: str
    discreet: bool


@dataclass
class Clinic:
    """One practice, its therapists, and couples whose partners have both joined."""

    practice_id: int
    therapist_ids: list[int]
    therapist_chats: list[int]
    couple_ids: list[int]
    partners: list[SeededPartner] = field(default_factory=list)


def chunks(
    rows: Sequence[dict[str, Any]], size: int = _CHUNK
) -> Iterable[Sequence[dict[str, Any]]]:
    """``rows`` in slices of at most ``size``."""
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


async def insert_rows(db: Database, model: type[Any], rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert many rows of one table in batches; returns their ids, in order.

    Plain multi-row INSERTs are several times faster on SQLite than ones that return
    ordered ids; with this single writer, new ids are simply the ones above the old maximum.
    """
    async with db.uow() as uow:
        before = await uow.session.scalar(select(func.max(model.id))) or 0
        for batch in chunks(rows):
            await uow.session.execute(insert(model), list(batch))
        ids = list(
            (
                await uow.session.scalars(
                    select(model.id).where(model.id > before).order_by(model.id)
                )
            ).all()
        )
        await uow.commit()
    if len(ids) != len(rows):
        raise RuntimeError(f"another writer touched {model.__tablename__} while seeding")
    return ids


async def seed_clinic(
    db: Database,
    couples: int,
    now: datetime,
    *,
    first_chat: int = 10_000_000,
    couples_per_therapist: int = 100,
    languages: Sequence[str] = ("en", "es"),
    discreet_every: int = 0,
    seed: int = 7,
    practice_config: str | None = None,
) -> Clinic:
    """Insert a practice and ``couples`` couples whose partners have both joined.

    Rows go in directly (fast), as onboarding would leave them: consented, joined,
    ``onboarding_step`` done, the couple space ready, time zones and windows varied.
    Partner chat ids are ``first_chat``, ``first_chat + 1``, ...; therapists' chats come
    below ``first_chat``.
    """
    rng = random.Random(seed)
    [practice_id] = await insert_rows(
        db,
        Practice,
        [
            {
                "slug": f"bench-{uuid.uuid4().hex[:8]}",
                "name": "Benchmark Practice",
                "timezone": "Europe/Madrid",
                "language": "en",
                "config_toml": practice_config,
                "next_couple_number": couples + 1,
                "created_at": now,
            }
        ],
    )
    therapist_count = max(1, math.ceil(couples / couples_per_therapist))
    therapist_chats = [first_chat - 1 - index for index in range(therapist_count)]
    therapist_ids = await insert_rows(
        db,
        Therapist,
        [
            {
                "practice_id": practice_id,
                "display_name": f"Therapist {index + 1}",
                "telegram_user_id": chat,
                "chat_id": chat,
                "language": languages[index % len(languages)],
                "timezone": TIMEZONES[index % len(TIMEZONES)],
                "created_at": now,
                "joined_at": now,
            }
            for index, chat in enumerate(therapist_chats)
        ],
    )
    couple_ids = await insert_rows(
        db,
        Couple,
        [
            {
                "practice_id": practice_id,
                "therapist_id": therapist_ids[number // couples_per_therapist],
                "handle": f"c{number + 1}",
                "label": f"Couple {number + 1}",
                "status": "active",
                "space_ready_at": now,
                "created_at": now,
            }
            for number in range(couples)
        ],
    )
    specs: list[dict[str, Any]] = []
    for index, couple_id in enumerate(couple_ids):
        # Both partners of a couple usually share a time zone; a few live apart.
        zone = TIMEZONES[index % len(TIMEZONES)]
        for slot in ("A", "B"):
            chat = first_chat + len(specs)
            other_zone = rng.random() < 0.1
            specs.append(
                {
                    "couple_id": couple_id,
                    "slot": slot,
                    "display_name": f"{slot}{index + 1}",
                    "telegram_user_id": chat,
                    "chat_id": chat,
                    "language": languages[len(specs) % len(languages)],
                    "timezone": rng.choice(TIMEZONES) if other_zone else zone,
                    "window": rng.choice(WINDOWS),
                    "discreet": bool(discreet_every) and len(specs) % discreet_every == 0,
                    "onboarding_step": "done",
                    "reachable": True,
                    "consented_at": now,
                    "joined_at": now,
                }
            )
    partner_ids = await insert_rows(db, Partner, specs)
    partners = [
        SeededPartner(
            id=partner_id,
            couple_id=spec["couple_id"],
            slot=spec["slot"],
            chat_id=spec["chat_id"],
            language=spec["language"],
            timezone=spec["timezone"],
            window=spec["window"],
            discreet=spec["discreet"],
        )
        for partner_id, spec in zip(partner_ids, specs, strict=True)
    ]
    return Clinic(practice_id, therapist_ids, therapist_chats, couple_ids, partners)


# Figures -----------------------------------------------------------------------------------


def has_message(user: FakeUser) -> Callable[[], bool]:
    """A condition for ``FakeBotAPI.wait_for``: ``user`` can see a message from the bot."""
    return lambda: user.last_message is not None


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latency_figures(seconds: Sequence[float]) -> dict[str, float]:
    """p50, p99, mean and max of some durations, in milliseconds."""
    return {
        "p50_ms": round(percentile(seconds, 50) * 1000, 3),
        "p99_ms": round(percentile(seconds, 99) * 1000, 3),
        "mean_ms": round(sum(seconds) / len(seconds) * 1000, 3) if seconds else 0.0,
        "max_ms": round(max(seconds) * 1000, 3) if seconds else 0.0,
    }


def emit(
    benchmark: str,
    lines: Iterable[str],
    figures: Mapping[str, Any],
    parameters: Mapping[str, Any],
    notes: Sequence[str] = (),
) -> dict[str, Any]:
    """Print the readable lines, then (last) one JSON line; returns what that line holds."""
    print(f"== {benchmark} ==")
    for line in lines:
        print(line)
    for note in notes:
        print(f"note: {note}")
    result: dict[str, Any] = {
        "benchmark": benchmark,
        **figures,
        "cpu_count": os.cpu_count(),
        "parameters": dict(parameters),
    }
    if notes:
        result["notes"] = list(notes)
    print(json.dumps(result, sort_keys=False), flush=True)
    return result


# Memory ------------------------------------------------------------------------------------


def status_kib(field_name: str, pid: int | str = "self") -> int:
    """A ``kB`` field of /proc/PID/status (VmRSS, VmHWM...); 0 when it is not there."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0
    for line in lines:
        if line.startswith(f"{field_name}:"):
            return int(line.split()[1])
    return 0


def rss_mib(pid: int | str = "self") -> float:
    """Resident memory of a process now (VmRSS), in MiB."""
    return status_kib("VmRSS", pid) / 1024


def peak_rss_mib(pid: int | str = "self") -> float:
    """The process's peak resident memory (VmHWM) since start or the last reset, in MiB."""
    return status_kib("VmHWM", pid) / 1024


def reset_peak_rss() -> bool:
    """Start VmHWM again from the current RSS (Linux ``clear_refs`` 5); False if refused."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def mib(value_bytes: float) -> float:
    """Bytes as MiB, rounded for a report."""
    return round(value_bytes / (1024 * 1024), 2)
