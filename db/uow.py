"""The unit of work: one transaction, with the repositories that work inside it."""

from __future__ import annotations

from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.inbox import HANDLING, mark_in
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
        same transaction (``db.inbox``): its effects and the mark are durable together.
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
