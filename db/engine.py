"""Engine, session factory and migrations, the same on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import event, inspect, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from db.uow import CoupleHolds, RetryingSession, UnitOfWork

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"
_MIGRATION_LOCK = 716_205_113  # any constant: serialises concurrent `dyad migrate` on PostgreSQL
_ANALYSIS_LIMIT = 1000
"""Rows SQLite's ANALYZE reads per index: close enough statistics, in milliseconds."""
_STATISTICS_PROBE = "deliveries"
"""The table whose statistics tell whether any were collected (the largest, most queried)."""


def _sqlite_pragmas(busy_ms: int) -> Any:
    def set_pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.close()

    return set_pragmas


class Database:
    """One database: its engine, its session factory, and its migrations."""

    def __init__(
        self,
        url: str,
        *,
        search_path: str | None = None,
        pool_size: int = 5,
        application_name: str = "dyad",
        lock_timeout: float | None = None,
    ) -> None:
        """``lock_timeout``: how long a statement waits for another's lock, in seconds
        (None: 10 s on SQLite; as long as it takes on PostgreSQL)."""
        parsed = make_url(url)
        self.url = url
        self.search_path = search_path
        self.dialect = parsed.get_backend_name()
        # No ping on every checkout: a connection found dead is replaced when its first
        # statement fails (db.uow.RetryingSession), which costs nothing while all is well.
        kwargs: dict[str, Any] = {"pool_pre_ping": False}
        if self.dialect == "sqlite":
            kwargs["connect_args"] = {"timeout": lock_timeout or 10.0}
            if parsed.database:
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        else:
            kwargs["pool_size"] = pool_size
            kwargs["max_overflow"] = pool_size
            # Named, so that pg_stat_activity shows which connections are Dyad's workers.
            server_settings = {"application_name": application_name}
            if lock_timeout is not None:
                server_settings["lock_timeout"] = str(int(lock_timeout * 1000))
            if search_path:
                server_settings["search_path"] = search_path
            kwargs["connect_args"] = {"server_settings": server_settings}
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.dialect == "sqlite":
            busy_ms = int((lock_timeout or 10.0) * 1000)
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas(busy_ms))
        self.sessionmaker: async_sessionmaker[AsyncSession] = async_sessionmaker(
            self.engine, expire_on_commit=False, class_=RetryingSession
        )
        self.holds = CoupleHolds(locks=self.dialect == "sqlite")
        """Couples held by this process's units of work (on SQLite, the locks themselves)."""

    @property
    def is_postgres(self) -> bool:
        """Whether this is PostgreSQL (row locks with SKIP LOCKED are available)."""
        return self.dialect == "postgresql"

    def uow(self) -> UnitOfWork:
        """A new unit of work (use as ``async with db.uow() as uow``)."""
        return UnitOfWork(self.sessionmaker, self.holds)

    async def migrate(self) -> None:
        """Bring the schema to the newest migration; harmless when it is already there.

        Then the query planner's statistics are collected: always after a migration that
        changed the schema, else only when there are none (a fresh process then plans
        its first queries with them, not with guesses).
        """
        async with self.engine.begin() as conn:
            if self.is_postgres:
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK}
                )
            changed = await conn.run_sync(_upgrade)
        await self.collect_statistics(only_if_missing=not changed)

    async def collect_statistics(self, *, only_if_missing: bool = False) -> bool:
        """``ANALYZE`` the tables (SQLite: a sampled one); returns whether it ran.

        ``only_if_missing``: only when the outbox has rows but no statistics yet.
        """
        try:
            async with self.engine.begin() as conn:
                if only_if_missing and not await self._statistics_missing(conn):
                    return False
                if self.is_postgres:
                    tables = ", ".join(f'"{name}"' for name in await conn.run_sync(_tables))
                    await conn.execute(text(f"ANALYZE {tables}"))
                else:
                    await conn.execute(text(f"PRAGMA analysis_limit={_ANALYSIS_LIMIT}"))
                    await conn.execute(text("ANALYZE"))
        except OperationalError:
            # Busy with another writer: statistics can wait for the next periodic pass.
            log.info("database statistics not collected this time (database busy)")
            return False
        return True

    async def _statistics_missing(self, conn: AsyncConnection) -> bool:
        if self.is_postgres:
            # reltuples is -1 for a table never analysed (PostgreSQL 14 and later).
            tuples = await conn.scalar(
                text("SELECT reltuples FROM pg_class WHERE oid = to_regclass(:name)"),
                {"name": _STATISTICS_PROBE},
            )
            return tuples is not None and tuples < 0
        found = await conn.scalar(
            text("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = :name"),
            {"name": "sqlite_stat1"},
        )
        if found:
            known = await conn.scalar(
                text("SELECT count(*) FROM sqlite_stat1 WHERE tbl = :name"),
                {"name": _STATISTICS_PROBE},
            )
            if known:
                return False
        # Statistics of an empty table are none at all: worth collecting once it has rows.
        rows = await conn.scalar(text(f"SELECT 1 FROM {_STATISTICS_PROBE} LIMIT 1"))
        return rows is not None

    async def optimize(self) -> None:
        """Refresh SQLite's query-planner statistics (PostgreSQL's autovacuum does this itself).

        Without them SQLite may pick the (status, due_at) index for per-partner outbox
        queries and read every sent row. The first time the outbox has rows it runs a full
        (sampled) ``ANALYZE``; after that ``PRAGMA optimize``, which is cheap when nothing
        changed.
        """
        if self.dialect != "sqlite":
            return
        if await self.collect_statistics(only_if_missing=True):
            return
        try:
            async with self.engine.begin() as conn:
                await conn.execute(text("PRAGMA optimize"))
        except OperationalError:
            # Busy with another writer: statistics can wait for the next periodic pass.
            log.info("sqlite statistics not refreshed this time (database busy)")

    async def ping(self) -> bool:
        """Whether the database answers."""
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration, pointed at our migrations (and a live connection)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _upgrade(connection: Connection) -> bool:
    """Upgrade to the newest migration; returns whether anything was applied."""
    before = _revision(connection)
    command.upgrade(alembic_config(connection), "head")
    return _revision(connection) != before


def _tables(connection: Connection) -> list[str]:
    """The tables of this schema that the models know."""
    from db.models import Base

    present = set(inspect(connection).get_table_names())
    return [name for name in Base.metadata.tables if name in present]
