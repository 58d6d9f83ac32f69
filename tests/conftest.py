"""Shared fixtures: real databases (a SQLite file and PostgreSQL), a manual clock."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.core.clock import ManualClock
from db.engine import Database

PG_URL_VAR = "DYAD_TEST_DATABASE_URL"
PG_SKIP_REASON = f"{PG_URL_VAR} is not set, so the PostgreSQL variant does not run"


def postgres_url() -> str | None:
    """The PostgreSQL URL tests use, or None when the environment gives none."""
    return os.environ.get(PG_URL_VAR) or None


@pytest.fixture
def clock() -> ManualClock:
    """A clock that starts on a fixed Monday morning and moves only when told."""
    return ManualClock(datetime(2026, 10, 19, 9, 0, tzinfo=UTC))


_sqlite_template: Path | None = None


async def _migrated_sqlite_file() -> Path:
    """A SQLite file this process migrated once, to copy for each test that needs one."""
    global _sqlite_template
    if _sqlite_template is None:
        scratch = Path(tempfile.mkdtemp(prefix="dyad-template-"))
        atexit.register(shutil.rmtree, scratch, ignore_errors=True)
        template = Database(f"sqlite+aiosqlite:///{scratch / 'migrated.db'}")
        await template.migrate()
        await template.dispose()  # the last connection folds the WAL into the file
        _sqlite_template = scratch / "migrated.db"
    return _sqlite_template


async def open_database(kind: str, tmp_path: Path) -> tuple[Database, str | None]:
    """A migrated, empty database of the given kind; PostgreSQL gets a schema of its own.

    SQLite starts from a copy of a file the migrations made earlier in this process (they
    take a few hundred milliseconds, mostly waiting on the disk, and the copy a few); the
    start's own ``migrate`` then finds it up to date, as a restarted Dyad does.
    """
    if kind == "sqlite":
        path = tmp_path / "dyad.db"
        shutil.copyfile(await _migrated_sqlite_file(), path)
        db = Database(f"sqlite+aiosqlite:///{path}")
        await db.migrate()
        return db, None
    url = postgres_url()
    if url is None:
        pytest.skip(PG_SKIP_REASON)
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_async_engine(url)
    async with admin.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    await admin.dispose()
    db = Database(url, search_path=schema)
    await db.migrate()
    return db, schema


async def drop_schema(schema: str) -> None:
    """Remove a test's PostgreSQL schema and everything in it."""
    url = postgres_url()
    assert url is not None
    admin = create_async_engine(url)
    async with admin.begin() as conn:
        await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    await admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A real, migrated database: a SQLite file, then PostgreSQL."""
    database, schema = await open_database(request.param, tmp_path)
    try:
        yield database
    finally:
        await database.dispose()
        if schema is not None:
            await drop_schema(schema)


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    """A real, migrated SQLite file (for tests where the database kind does not matter)."""
    database, _ = await open_database("sqlite", tmp_path)
    try:
        yield database
    finally:
        await database.dispose()
