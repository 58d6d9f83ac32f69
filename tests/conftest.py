"""Shared fixtures: real databases (a SQLite file and PostgreSQL), a manual clock."""

from __future__ import annotations

import os
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


async def open_database(kind: str, tmp_path: Path) -> tuple[Database, str | None]:
    """A migrated, empty database of the given kind; PostgreSQL gets a schema of its own."""
    if kind == "sqlite":
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'dyad.db'}")
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
