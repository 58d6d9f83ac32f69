"""Shared fixtures: real databases (a SQLite file and PostgreSQL), a manual clock."""

from __future__ import annotations

import asyncio
import atexit
import itertools
import os
import shutil
import ssl
import tempfile
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.core.clock import ManualClock
from db.engine import Database
from db.models import Base


def _share_the_default_tls_context() -> None:
    """Every httpx client of the test process verifies TLS with one shared default context.

    Each client builds its own otherwise, reading the whole CA bundle (some 25 ms of CPU),
    and a running Dyad has half a dozen (its Bot's requests, the group probe, webhooks): a
    few minutes of CPU over the suite, for tests that speak plain http on loopback. The
    context is the one httpx would build; only the clients share it.
    """
    import httpx._transports.default as transports

    # A private name of httpx (no stub exports it): the one function its transports call.
    build = transports.create_ssl_context  # type: ignore[attr-defined]
    shared: dict[tuple[object, ...], ssl.SSLContext] = {}

    def create_ssl_context(
        verify: Any = True, cert: Any = None, trust_env: bool = True
    ) -> ssl.SSLContext:
        if verify is not True or cert is not None:
            return build(verify=verify, cert=cert, trust_env=trust_env)
        # The CA bundle httpx reads: the environment's (SSL_CERT_FILE, SSL_CERT_DIR) or its own.
        key = (trust_env, *(os.environ.get(name) for name in ("SSL_CERT_FILE", "SSL_CERT_DIR")))
        if key not in shared:
            shared[key] = build(verify=verify, cert=cert, trust_env=trust_env)
        return shared[key]

    transports.create_ssl_context = create_ssl_context  # type: ignore[attr-defined]


_share_the_default_tls_context()

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
    schema = await _emptied_schema(url)
    if schema is None:
        schema = f"t_{uuid.uuid4().hex[:16]}"
        admin = create_async_engine(url)
        async with admin.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        await admin.dispose()
    db = Database(url, search_path=schema)
    await db.migrate()
    return db, schema


_given_back: list[str] = []
"""PostgreSQL schemas this process's tests have finished with (``release_schema``)."""


async def _emptied_schema(url: str) -> str | None:
    """A schema an earlier test of this process gave back, emptied; None when there is none.

    Making a schema and migrating it costs a third of a second, mostly the server's work on
    the tables; emptying one costs a tenth. The schema is emptied when it is taken, not when
    it is given back, so nothing a finished test left behind can reach the next one; one
    whose tables are not the migrations' is dropped instead.
    """
    expected = {table.name for table in Base.metadata.sorted_tables} | {"alembic_version"}
    admin = create_async_engine(url)
    try:
        while _given_back:
            schema = _given_back.pop()
            async with admin.begin() as conn:
                rows = await conn.execute(
                    text("SELECT tablename FROM pg_tables WHERE schemaname = :schema"),
                    {"schema": schema},
                )
                tables = {row[0] for row in rows}
                if tables != expected:
                    await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
                    continue
                names = ", ".join(
                    f'"{schema}"."{name}"' for name in sorted(tables - {"alembic_version"})
                )
                await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            return schema
        return None
    finally:
        await admin.dispose()


async def release_schema(schema: str) -> None:
    """A test is done with its PostgreSQL schema: the next test of this process may take it."""
    _given_back.append(schema)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The schemas given back are dropped when this process's tests end."""
    url = postgres_url()
    if url is None or not _given_back:
        return

    async def drop_all() -> None:
        while _given_back:
            await drop_schema(_given_back.pop())

    asyncio.run(drop_all())


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
            await release_schema(schema)


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    """A real, migrated SQLite file (for tests where the database kind does not matter)."""
    database, _ = await open_database("sqlite", tmp_path)
    try:
        yield database
    finally:
        await database.dispose()


# The order `make test` runs in --------------------------------------------------------------

# The files whose tests take tens of seconds in all (summed `--durations` on a quiet two-core
# machine, doubled for three workers sharing it; only their ratios matter), and whether
# their tests may run apart (no module-scoped fixture, such as one browser, to share).
SLOW_FILES: dict[str, tuple[float, bool]] = {
    "tests/e2e/test_lifecycle_stateful.py": (115, True),
    "tests/integration/test_resilience.py": (150, True),
    "tests/integration/test_intake_crash.py": (45, True),
    "tests/integration/test_benchmarks_smoke.py": (60, True),
    "tests/e2e/test_demo.py": (46, True),
    "tests/integration/test_dispatcher.py": (70, True),
    "tests/web/test_miniapp_browser.py": (50, False),
    "tests/web/test_console_browser.py": (25, False),
    "tests/web/test_pages_browser.py": (20, False),
    "tests/integration/test_two_workers.py": (20, True),
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist, each worker starts with its share of the slow tests.

    ``--dist worksteal`` hands each worker one contiguous part of the collection, then
    moves tests from the end of a long queue to an idle worker. A slow test started last
    keeps the whole run waiting, so the slow ones go first in the parts, spread so that
    each part holds about the same seconds of them; the rest keep their order.
    """
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if workers < 2 or len(items) < workers:
        return
    units: list[tuple[float, list[pytest.Item]]] = []
    by_file: dict[str, list[pytest.Item]] = {}
    rest: list[pytest.Item] = []
    for item in items:
        path = item.nodeid.split("::", 1)[0]
        if path in SLOW_FILES:
            by_file.setdefault(path, []).append(item)
        else:
            rest.append(item)
    for path, members in by_file.items():
        seconds, apart = SLOW_FILES[path]
        if apart:
            units.extend((seconds / len(members), [member]) for member in members)
        else:
            units.append((seconds, members))
    # The sizes worksteal gives the parts: an equal share of what is left, in turn.
    sizes, left = [], len(items)
    for remaining in range(workers, 0, -1):
        sizes.append(left // remaining)
        left -= sizes[-1]
    heads: list[list[pytest.Item]] = [[] for _ in range(workers)]
    load = [0.0] * workers
    for seconds, members in sorted(units, key=lambda unit: -unit[0]):
        fits = [n for n in range(workers) if len(heads[n]) + len(members) <= sizes[n]]
        part = min(fits or range(workers), key=lambda n: load[n])
        heads[part].extend(members)
        load[part] += seconds
    ordered: list[pytest.Item] = []
    fill = iter(rest)
    for part in range(workers):
        ordered.extend(heads[part])
        ordered.extend(itertools.islice(fill, max(sizes[part] - len(heads[part]), 0)))
    ordered.extend(fill)
    assert sorted(map(id, ordered)) == sorted(map(id, items))
    items[:] = ordered
