"""The unit of work: one transaction, with the repositories that work inside it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from types import TracebackType
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.inbox import HANDLING, end_wait_in, mark_in
from db.models import Couple, Partner
from db.repositories import (
    AlertRepository,
    AuditRepository,
    CheckInRepository,
    ConversationRepository,
    CoupleRepository,
    DeliveryRepository,
    GroupLinkRepository,
    InviteRepository,
    PartnerRepository,
    PracticeRepository,
    ResponseRepository,
    SessionRepository,
    TherapistRepository,
    UpdateRepository,
)

log = logging.getLogger(__name__)
_T = TypeVar("_T")
_HOLDERS: ContextVar[dict[int, UnitOfWork] | None] = ContextVar("dyad_couple_holders", default=None)
"""The units of work of this context (an update's handling, say) that hold couples: one
opened inside them, or by a task they started, is covered by their hold while it lasts."""


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


class CoupleHolds:
    """Locks on couples inside one process, where the database has no row locks (SQLite).

    PostgreSQL's row lock serialises a couple's transactions across workers; SQLite has no
    row locks and one process takes the updates, so there a lock per couple in that process
    does it (``locks``). A couple's lock lives while someone holds or waits for it.
    """

    def __init__(self, *, locks: bool) -> None:
        self.locks = locks
        self._locks: dict[int, asyncio.Lock] = {}
        self._users: dict[int, int] = {}

    async def acquire(self, couple_id: int) -> None:
        """Hold this couple (on SQLite, once it is free)."""
        self._users[couple_id] = self._users.get(couple_id, 0) + 1
        if not self.locks:
            return
        lock = self._locks.setdefault(couple_id, asyncio.Lock())
        try:
            await lock.acquire()
        except BaseException:
            self._leave(couple_id)
            raise

    def release(self, couple_id: int) -> None:
        """The holder's transaction ended: let the next one in."""
        if self.locks:
            self._locks[couple_id].release()
        self._leave(couple_id)

    def waiting(self, couple_id: int) -> int:
        """How many units of work wait for this couple here (the holder not counted)."""
        return max(self._users.get(couple_id, 0) - 1, 0)

    def _leave(self, couple_id: int) -> None:
        users = self._users[couple_id] - 1
        if users:
            self._users[couple_id] = users
            return
        del self._users[couple_id]
        self._locks.pop(couple_id, None)


def _covering() -> bool:
    """Whether a unit of work of this context holds a couple now."""
    return any(couple_id in uow._held for couple_id, uow in (_HOLDERS.get() or {}).items())


class UnitOfWork:
    """One transaction: ``async with db.uow() as uow``; leaving without commit rolls back.

    While an update is being handled (``db.inbox.HANDLING``), the transaction first holds
    the sender's couple (:meth:`hold_couple_of`), then ends the typed answer a command's
    sender was awaited for.
    """

    session: AsyncSession

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], holds: CoupleHolds | None = None
    ) -> None:
        self._sessionmaker = sessionmaker
        self._holds = holds if holds is not None else CoupleHolds(locks=False)
        self._held: list[int] = []
        self._kept: list[Couple] = []
        """The held couples as read when held: kept so that the session's identity map (weak
        references) still has them for the rest of the unit of work, without reading again."""

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
        self.deliveries = DeliveryRepository(self.session)
        self.checkins = CheckInRepository(self.session)
        self.responses = ResponseRepository(self.session)
        self.alerts = AlertRepository(self.session)
        self.group_links = GroupLinkRepository(self.session)
        handling = HANDLING.get()
        if handling is not None and not handling.done:
            try:
                if handling.sender is not None:
                    await self.hold_couple_of(handling.sender)
                await end_wait_in(self.session, handling)
            except BaseException:
                await self._close()
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
        await self._close()

    async def _close(self) -> None:
        try:
            await self.session.close()
        finally:
            self._let_go()

    def _let_go(self) -> None:
        """The transaction ended: its holds end with it (PostgreSQL's row locks already did)."""
        if not self._held:
            return
        holders = _HOLDERS.get() or {}
        mine = [c for c in self._held if holders.get(c) is self]
        if mine:
            _HOLDERS.set({c: uow for c, uow in holders.items() if c not in mine})
        while self._held:
            self._holds.release(self._held.pop())

    async def hold_couple(self, couple_id: int) -> Couple | None:
        """Hold this couple until this transaction ends, and read it afresh.

        Updates of one couple come from several chats (each partner's, the group's, the
        therapist's) and, with several workers, from several processes; holding the couple
        makes their transactions run one after the other, so none acts on what another is
        changing (an erasure, a close, a seat changing hands, a shared answer). PostgreSQL:
        the couple's row lock (``FOR UPDATE``); SQLite: :class:`CoupleHolds`. Take the hold
        before writing anything (on SQLite a write holds the one write lock until commit).
        """
        covered = await self._hold_here(couple_id)
        statement = (
            select(Couple).where(Couple.id == couple_id).execution_options(populate_existing=True)
        )
        if not covered:
            statement = statement.with_for_update()
        couple: Couple | None = await self.session.scalar(statement)
        if couple is not None:
            self._kept.append(couple)
        return couple

    async def hold_couple_of(self, telegram_user_id: int) -> int | None:
        """Hold the couple of the partner behind this Telegram user (see :meth:`hold_couple`),
        before anything else is read; the couple's id, or None for anyone who is no partner."""
        if not self._holds.locks and not _covering():
            # PostgreSQL, and this task holds nothing yet: find and lock in one statement.
            locked = (
                select(Couple)
                .join(Partner, Partner.couple_id == Couple.id)
                .where(Partner.telegram_user_id == telegram_user_id)
                .with_for_update(of=Couple)
                .execution_options(populate_existing=True)
            )
            couple: Couple | None = await self.session.scalar(locked)
            if couple is None:
                return None
            await self._hold_here(couple.id)
            self._kept.append(couple)
            return couple.id
        couple_id: int | None = await self.session.scalar(
            select(Partner.couple_id).where(Partner.telegram_user_id == telegram_user_id)
        )
        if couple_id is not None:
            await self.hold_couple(couple_id)
        return couple_id

    async def _hold_here(self, couple_id: int) -> bool:
        """Take the hold in this process; True when a unit of work of this context already
        holds it (one inside the same handling), so the database must not be asked again."""
        if couple_id in self._held:
            return False
        holders = _HOLDERS.get() or {}
        holder = holders.get(couple_id)
        if holder is not None and couple_id in holder._held:
            return True
        await self._holds.acquire(couple_id)
        self._held.append(couple_id)
        _HOLDERS.set({**holders, couple_id: self})
        return False

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
        else:
            await mark_in(self.session, handling)
            await self.session.commit()
            handling.marked = True
        self._let_go()

    async def rollback(self) -> None:
        """Undo everything not yet committed in this unit of work."""
        await self.session.rollback()
        self._let_go()

    async def flush(self) -> None:
        """Send pending changes (to get ids) without committing."""
        await self.session.flush()
