"""The unit of work: one transaction, with the repositories that work inside it."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.inbox import HANDLING, end_wait_in, mark_in
from db.repositories import (
    AuditRepository,
    ConversationRepository,
    CoupleRepository,
    InviteRepository,
    PartnerRepository,
    PracticeRepository,
    SessionRepository,
    TherapistRepository,
    UpdateRepository,
)

log = logging.getLogger(__name__)
_T = TypeVar("_T")


class RetryingSession(AsyncSession):
    """A session that survives a pooled connection which died while it sat in the pool.

    The pool does not ping a connection on every checkout (a round trip per transaction);
    instead, when the first statement of a transaction fails because its connection is
    gone (the server restarted, a proxy cut it), the pool invalidates it (and every
    connection as old) and that statement runs once more on a fresh one. Nothing had
    happened in the transaction yet, so running it again is safe.
    """

    async def _first_retried(self, call: Callable[[], Awaitable[_T]]) -> _T:
        fresh = not self.in_transaction()
        try:
            return await call()
        except DBAPIError as error:
            if not (fresh and error.connection_invalidated):
                raise
            log.warning("a pooled database connection was dead; trying again on a new one")
            await self.rollback()
            return await call()

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        return await self._first_retried(
            lambda: super(RetryingSession, self).execute(*args, **kwargs)
        )

    async def scalar(self, *args: Any, **kwargs: Any) -> Any:
        return await self._first_retried(
            lambda: super(RetryingSession, self).scalar(*args, **kwargs)
        )

    async def get(self, *args: Any, **kwargs: Any) -> Any:
        return await self._first_retried(lambda: super(RetryingSession, self).get(*args, **kwargs))


class UnitOfWork:
    """One transaction: ``async with db.uow() as uow``; leaving without commit rolls back."""

    session: AsyncSession

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    async def __aenter__(self) -> UnitOfWork:
        self.session = self._sessionmaker()
        self.practices = PracticeRepository(self.session)
        self.therapists = TherapistRepository(self.session)
        self.couples = CoupleRepository(self.session)
        self.partners = PartnerRepository(self.session)
        self.invites = InviteRepository(self.session)
        self.sessions = SessionRepository(self.session)
        self.conversations = ConversationRepository(self.session)
        self.updates = UpdateRepository(self.session)
        self.audit = AuditRepository(self.session)
        handling = HANDLING.get()
        if handling is not None and not handling.done:
            try:
                await end_wait_in(self.session, handling)
            except BaseException:
                await self.session.close()
                raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Objects read here stay usable afterwards (detached, not expired); anything not
        # committed is rolled back when the session closes.
        if exc_type is None:
            self.session.expunge_all()
        await self.session.close()

    async def commit(self) -> None:
        """Make everything done in this unit of work durable.

        While an update is being handled, the first commit also marks it handled, in the
        same transaction (``db.inbox``): its effects and the mark are durable together (and
        a command's end of the typed answer awaited, which every unit of work of its handling
        starts with until one commits).
        """
        handling = HANDLING.get()
        if handling is None or handling.marked or handling.done:
            await self.session.commit()
            return
        await mark_in(self.session, handling)
        await self.session.commit()
        handling.marked = True

    async def rollback(self) -> None:
        """Undo everything not yet committed in this unit of work."""
        await self.session.rollback()

    async def flush(self) -> None:
        """Send pending changes (to get ids) without committing."""
        await self.session.flush()
