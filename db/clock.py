"""The database's own time, for leases that several workers must agree on.

Each worker's wall clock may be off (121 s apart was seen in a chaos run), so a lease
written by one worker and read by another must be in one clock both share: the
database's. :class:`DatabaseTime` measures the offset between this process's monotonic
clock and the database's clock (half a round trip of error, milliseconds) and measures it
again now and then; its ``now()`` is then the database's time without a query per call.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from db.engine import Database

_RESYNC = 30.0  # seconds between two measurements


async def database_now(db: Database) -> datetime:
    """The database server's current time, as an aware UTC datetime."""
    async with db.engine.connect() as conn:
        if db.is_postgres:
            value = await conn.scalar(text("SELECT clock_timestamp()"))
            assert isinstance(value, datetime)
            return value.astimezone(UTC)
        # SQLite's time is the time of the machine that holds the file, to the millisecond.
        raw = await conn.scalar(text("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')"))
    return datetime.strptime(str(raw), "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)


class DatabaseTime:
    """The database's time, read through a measured offset from this process's monotonic clock."""

    def __init__(
        self,
        db: Database,
        *,
        resync_seconds: float = _RESYNC,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.resync_seconds = resync_seconds
        self._monotonic = monotonic
        self._offset: float | None = None
        self._measured_at = 0.0

    async def now(self) -> datetime:
        """The database's time now (measured again when the last measurement is old)."""
        at = self._monotonic()
        if self._offset is None or at - self._measured_at > self.resync_seconds:
            try:
                await self.sync()
            except Exception:
                if self._offset is None:
                    raise
                # The database is away: the last offset is still good for a while.
        return self.estimate()

    def estimate(self) -> datetime:
        """The database's time now, from the last measurement (no query)."""
        if self._offset is None:
            raise RuntimeError("the database's time has not been measured yet")
        return datetime.fromtimestamp(self._monotonic() + self._offset, UTC)

    async def sync(self) -> timedelta:
        """Measure the offset again; returns the round trip it took."""
        before = self._monotonic()
        server = await database_now(self.db)
        after = self._monotonic()
        self._offset = server.timestamp() - (before + after) / 2
        self._measured_at = after
        return timedelta(seconds=after - before)
