"""Repositories: the queries Dyad's services need, one class per aggregate.

A unit of work carries one of each, on its session (``uow.couples``, ``uow.deliveries``,
``uow.group_links``). A query a second service needs goes here rather than being written
again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import (
    LIVE_LINK,
    Alert,
    AuditEntry,
    CheckIn,
    ConversationState,
    Couple,
    Delivery,
    DeliveryKind,
    GroupLink,
    GroupLinkCode,
    InboxUpdate,
    Invite,
    Partner,
    Practice,
    Response,
    Slot,
    SuspendReason,
    Therapist,
    TherapySession,
)


class _Repository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session


class PracticeRepository(_Repository):
    async def add(self, practice: Practice) -> Practice:
        self.session.add(practice)
        await self.session.flush()
        return practice

    async def by_slug(self, slug: str) -> Practice | None:
        return await self.session.scalar(select(Practice).where(Practice.slug == slug))

    async def get(self, practice_id: int) -> Practice | None:
        return await self.session.get(Practice, practice_id)

    async def all(self) -> Sequence[Practice]:
        return (await self.session.scalars(select(Practice).order_by(Practice.slug))).all()

    async def slugs_like(self, prefix: str) -> set[str]:
        rows = await self.session.scalars(
            select(Practice.slug).where(Practice.slug.like(f"{prefix}%"))
        )
        return set(rows)

    async def take_couple_number(self, practice_id: int) -> int:
        """Reserve the practice's next couple number (atomic on both databases)."""
        number = await self.session.scalar(
            update(Practice)
            .where(Practice.id == practice_id)
            .values(next_couple_number=Practice.next_couple_number + 1)
            .returning(Practice.next_couple_number)
        )
        assert number is not None
        return int(number) - 1


class TherapistRepository(_Repository):
    async def add(self, therapist: Therapist) -> Therapist:
        self.session.add(therapist)
        await self.session.flush()
        return therapist

    async def get(self, therapist_id: int) -> Therapist | None:
        return await self.session.get(Therapist, therapist_id)

    async def by_user(self, telegram_user_id: int) -> Therapist | None:
        return await self.session.scalar(
            select(Therapist).where(Therapist.telegram_user_id == telegram_user_id)
        )

    async def of_practice(self, practice_id: int) -> Sequence[Therapist]:
        return (
            await self.session.scalars(
                select(Therapist).where(Therapist.practice_id == practice_id).order_by(Therapist.id)
            )
        ).all()


class CoupleRepository(_Repository):
    async def add(self, couple: Couple) -> Couple:
        self.session.add(couple)
        await self.session.flush()
        return couple

    async def get(self, couple_id: int) -> Couple | None:
        return await self.session.get(Couple, couple_id)

    async def of_therapist(
        self, therapist_id: int, *, include_closed: bool = False
    ) -> Sequence[Couple]:
        query = select(Couple).where(Couple.therapist_id == therapist_id)
        if not include_closed:
            query = query.where(Couple.status == "active")
        return (await self.session.scalars(query.order_by(Couple.id))).all()

    async def by_handle(self, practice_id: int, handle: str) -> Couple | None:
        return await self.session.scalar(
            select(Couple).where(Couple.practice_id == practice_id, Couple.handle == handle)
        )

    async def active(self) -> Sequence[Couple]:
        return (await self.session.scalars(select(Couple).where(Couple.status == "active"))).all()

    async def with_weekly_session(self) -> Sequence[Couple]:
        """The active couples that have a weekly session rhythm."""
        return (
            await self.session.scalars(
                select(Couple).where(Couple.status == "active", Couple.weekly_session.is_not(None))
            )
        ).all()

    async def with_handle(self, handle: str, practice_id: int | None = None) -> Sequence[Couple]:
        """The couples with this handle, in every practice or in one."""
        query = select(Couple).where(Couple.handle == handle)
        if practice_id is not None:
            query = query.where(Couple.practice_id == practice_id)
        return (await self.session.scalars(query)).all()


class PartnerRepository(_Repository):
    async def add(self, partner: Partner) -> Partner:
        self.session.add(partner)
        await self.session.flush()
        return partner

    async def get(self, partner_id: int) -> Partner | None:
        return await self.session.get(Partner, partner_id)

    async def by_user(self, telegram_user_id: int) -> Partner | None:
        return await self.session.scalar(
            select(Partner).where(Partner.telegram_user_id == telegram_user_id)
        )

    async def of_couple(self, couple_id: int) -> list[Partner]:
        """The couple's current seat holders (A, then B); retired holders are not among them."""
        rows = await self.session.scalars(
            select(Partner)
            .where(Partner.couple_id == couple_id, Partner.retired_at.is_(None))
            .order_by(Partner.slot)
        )
        return list(rows)

    async def of_couples(self, couple_ids: Sequence[int]) -> dict[int, list[Partner]]:
        out: dict[int, list[Partner]] = {couple_id: [] for couple_id in couple_ids}
        if couple_ids:
            rows = await self.session.scalars(
                select(Partner)
                .where(Partner.couple_id.in_(couple_ids), Partner.retired_at.is_(None))
                .order_by(Partner.slot)
            )
            for partner in rows:
                out[partner.couple_id].append(partner)
        return out


class InviteRepository(_Repository):
    async def add(self, invite: Invite) -> Invite:
        self.session.add(invite)
        await self.session.flush()
        return invite

    async def by_hash(self, token_hash: str) -> Invite | None:
        return await self.session.scalar(select(Invite).where(Invite.token_hash == token_hash))

    async def claim(self, invite_id: int, now: datetime) -> bool:
        """Mark an invite used, only if it still is usable (a second claimer gets False)."""
        result = await self.session.execute(
            update(Invite)
            .where(
                Invite.id == invite_id,
                Invite.used_at.is_(None),
                Invite.revoked_at.is_(None),
                Invite.expires_at > now,
            )
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1  # type: ignore[attr-defined,no-any-return]

    async def revoke_open(self, couple_id: int, slot: Slot, now: datetime) -> int:
        result = await self.session.execute(
            update(Invite)
            .where(
                Invite.couple_id == couple_id,
                Invite.slot == slot,
                Invite.used_at.is_(None),
                Invite.revoked_at.is_(None),
            )
            .values(revoked_at=now)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]


class SessionRepository(_Repository):
    async def add(self, row: TherapySession) -> TherapySession:
        self.session.add(row)
        await self.session.flush()
        return row

    async def get(self, session_id: int) -> TherapySession | None:
        return await self.session.get(TherapySession, session_id)

    async def at(self, couple_id: int, starts_at: datetime) -> TherapySession | None:
        """The couple's session starting at ``starts_at``, cancelled or not."""
        return await self.session.scalar(
            select(TherapySession).where(
                TherapySession.couple_id == couple_id, TherapySession.starts_at == starts_at
            )
        )

    async def first_between(
        self, couple_id: int, since: datetime, until: datetime
    ) -> TherapySession | None:
        """The couple's first session starting from ``since`` until ``until`` (not cancelled)."""
        return await self.session.scalar(
            select(TherapySession)
            .where(
                TherapySession.couple_id == couple_id,
                TherapySession.starts_at >= since,
                TherapySession.starts_at < until,
                TherapySession.cancelled_at.is_(None),
            )
            .order_by(TherapySession.starts_at)
            .limit(1)
        )

    async def after(self, couple_id: int, now: datetime) -> Sequence[TherapySession]:
        """The couple's sessions starting after ``now``, cancelled ones too, in time order."""
        return (
            await self.session.scalars(
                select(TherapySession)
                .where(TherapySession.couple_id == couple_id, TherapySession.starts_at > now)
                .order_by(TherapySession.starts_at)
            )
        ).all()

    async def weekly_after(self, couple_id: int, now: datetime) -> Sequence[TherapySession]:
        """The couple's coming sessions of its weekly series (not cancelled)."""
        return (
            await self.session.scalars(
                select(TherapySession).where(
                    TherapySession.couple_id == couple_id,
                    TherapySession.starts_at > now,
                    TherapySession.recurring.is_(True),
                    TherapySession.cancelled_at.is_(None),
                )
            )
        ).all()

    async def last_start_before(self, couple_id: int, before: datetime) -> datetime | None:
        """When the couple's latest session before ``before`` started (cancelled ones aside)."""
        return await self.session.scalar(
            select(TherapySession.starts_at)
            .where(
                TherapySession.couple_id == couple_id,
                TherapySession.starts_at < before,
                TherapySession.cancelled_at.is_(None),
            )
            .order_by(TherapySession.starts_at.desc())
            .limit(1)
        )

    async def next_for(self, couple_id: int, now: datetime) -> TherapySession | None:
        return await self.session.scalar(
            select(TherapySession)
            .where(
                TherapySession.couple_id == couple_id,
                TherapySession.starts_at > now,
                TherapySession.cancelled_at.is_(None),
            )
            .order_by(TherapySession.starts_at)
            .limit(1)
        )


class ConversationRepository(_Repository):
    async def get(self, telegram_user_id: int) -> ConversationState | None:
        return await self.session.get(ConversationState, telegram_user_id)

    async def set(
        self, telegram_user_id: int, kind: str, data: dict[str, Any], now: datetime
    ) -> None:
        state = await self.session.get(ConversationState, telegram_user_id)
        if state is None:
            self.session.add(
                ConversationState(
                    telegram_user_id=telegram_user_id, kind=kind, data=data, updated_at=now
                )
            )
        else:
            state.kind, state.data, state.updated_at = kind, dict(data), now

    async def clear(self, telegram_user_id: int, *, only: Sequence[str] | None = None) -> None:
        """Forget what the bot waits for from this user (``only``: if it is one of these)."""
        state = await self.session.get(ConversationState, telegram_user_id)
        if state is not None and (only is None or state.kind in only):
            await self.session.delete(state)


class UpdateRepository(_Repository):
    async def count(self) -> int:
        """How many updates the inbox holds (handled or not)."""
        return int(await self.session.scalar(select(func.count()).select_from(InboxUpdate)) or 0)


class AuditRepository(_Repository):
    def record(
        self,
        *,
        actor: str,
        action: str,
        couple_id: int | None,
        at: datetime,
        detail: str | None = None,
    ) -> None:
        self.session.add(
            AuditEntry(actor=actor, action=action, couple_id=couple_id, at=at, detail=detail)
        )

    async def of_couple(self, couple_id: int) -> Sequence[AuditEntry]:
        return (
            await self.session.scalars(
                select(AuditEntry)
                .where(AuditEntry.couple_id == couple_id)
                .order_by(AuditEntry.at, AuditEntry.id)
            )
        ).all()


class DeliveryRepository(_Repository):
    """The outbox (``deliveries``): what Dyad queues; the dispatcher's claims stay its own."""

    async def get(self, delivery_id: int) -> Delivery | None:
        return await self.session.get(Delivery, delivery_id)

    async def queue(
        self,
        *,
        recipient: str,
        kind: DeliveryKind,
        key: str,
        dedupe_key: str,
        due_at: datetime,
        couple_id: int | None,
        partner_id: int | None = None,
        therapist_id: int | None = None,
        channel: str = "telegram",
        params: dict[str, Any] | None = None,
        local_date: str | None = None,
        not_after: datetime | None = None,
    ) -> bool:
        """Queue one row, pending from ``due_at``; False when (recipient, dedupe key) was
        queued before (that row is left as it is)."""
        values: dict[str, Any] = {
            "recipient": recipient,
            "couple_id": couple_id,
            "partner_id": partner_id,
            "therapist_id": therapist_id,
            "channel": channel,
            "kind": kind,
            "key": key,
            "params": params or {},
            "dedupe_key": dedupe_key,
            "local_date": local_date,
            "due_at": due_at,
            "not_after": not_after,
            "status": "pending",
            "attempts": 0,
            "created_at": due_at,
        }
        insert = postgresql.insert if _dialect(self.session) == "postgresql" else sqlite.insert
        result = await self.session.execute(
            insert(Delivery).values(values).on_conflict_do_nothing()
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def delete_ids(self, delivery_ids: Sequence[int]) -> None:
        """Remove these rows from the outbox."""
        await self.session.execute(delete(Delivery).where(Delivery.id.in_(list(delivery_ids))))


class CheckInRepository(_Repository):
    async def of_partner(self, partner_id: int) -> Sequence[CheckIn]:
        """Every check-in of this partner, oldest first."""
        return (
            await self.session.scalars(
                select(CheckIn)
                .where(CheckIn.partner_id == partner_id)
                .order_by(CheckIn.started_at, CheckIn.id)
            )
        ).all()

    async def completed_between(
        self, partner_id: int, since: datetime, until: datetime | None = None
    ) -> bool:
        """Whether the partner completed a check-in started from ``since`` (before ``until``)."""
        query = select(CheckIn.id).where(
            CheckIn.partner_id == partner_id,
            CheckIn.status == "complete",
            CheckIn.started_at >= since,
        )
        if until is not None:
            query = query.where(CheckIn.started_at < until)
        return await self.session.scalar(query.limit(1)) is not None


class ResponseRepository(_Repository):
    async def of_partner(self, partner_id: int) -> Sequence[Response]:
        """Everything this partner answered, oldest first."""
        return (
            await self.session.scalars(
                select(Response)
                .where(Response.partner_id == partner_id)
                .order_by(Response.created_at, Response.id)
            )
        ).all()

    async def ids_of_partner(self, partner_id: int) -> list[int]:
        return list(
            await self.session.scalars(select(Response.id).where(Response.partner_id == partner_id))
        )


class AlertRepository(_Repository):
    async def of_partner(self, partner_id: int) -> Sequence[Alert]:
        """The alerts still linked to this partner, oldest first."""
        return (
            await self.session.scalars(
                select(Alert)
                .where(Alert.partner_id == partner_id)
                .order_by(Alert.created_at, Alert.id)
            )
        ).all()


class GroupLinkRepository(_Repository):
    """A couple's group link and the one-time codes that make one.

    Every change of a link's state is conditional on the state it changes from (and its
    attempt), so two workers, or two partners at once, cannot both make it.
    """

    async def get(self, link_id: int) -> GroupLink | None:
        return await self.session.get(GroupLink, link_id)

    async def of_couple(self, couple_id: int) -> GroupLink | None:
        return await self.session.scalar(select(GroupLink).where(GroupLink.couple_id == couple_id))

    async def of_chat(self, chat_id: int) -> GroupLink | None:
        return await self.session.scalar(select(GroupLink).where(GroupLink.chat_id == chat_id))

    def add(self, link: GroupLink) -> None:
        self.session.add(link)

    def add_code(self, code: GroupLinkCode) -> None:
        self.session.add(code)

    async def code_by_hash(self, code_hash: str) -> GroupLinkCode | None:
        return await self.session.scalar(
            select(GroupLinkCode).where(GroupLinkCode.code_hash == code_hash)
        )

    async def claim_code(self, code_id: int, now: datetime) -> bool:
        """Mark a code used, only if it still is usable (a second claimer gets False)."""
        result = await self.session.execute(
            update(GroupLinkCode)
            .where(
                GroupLinkCode.id == code_id,
                GroupLinkCode.used_at.is_(None),
                GroupLinkCode.expires_at > now,
            )
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1  # type: ignore[attr-defined,no-any-return]

    async def agree(
        self, link_id: int, attempt: int, slot: Slot, now: datetime
    ) -> tuple[datetime | None, datetime | None] | None:
        """One partner agrees to a pending link; both agreement times, or None if it was
        not pending at this attempt or that partner had agreed already."""
        column = GroupLink.a_agreed_at if slot == "A" else GroupLink.b_agreed_at
        row = (
            await self.session.execute(
                update(GroupLink)
                .where(
                    GroupLink.id == link_id,
                    GroupLink.attempt == attempt,
                    GroupLink.status == "pending",
                    column.is_(None),
                )
                .values({column: now})
                .returning(GroupLink.a_agreed_at, GroupLink.b_agreed_at)
                .execution_options(synchronize_session=False)
            )
        ).one_or_none()
        return None if row is None else (row.a_agreed_at, row.b_agreed_at)

    async def activate(self, link_id: int, attempt: int, now: datetime) -> bool:
        """A pending link becomes ``active``; False if it was not pending at this attempt."""
        result = await self.session.execute(
            update(GroupLink)
            .where(
                GroupLink.id == link_id, GroupLink.attempt == attempt, GroupLink.status == "pending"
            )
            .values(status="active", active_since=now)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1  # type: ignore[attr-defined,no-any-return]

    async def end_pending(self, link_id: int, attempt: int) -> bool:
        """A pending link ends (``unlinked``, the chat forgotten); False if it was not pending."""
        result = await self.session.execute(
            update(GroupLink)
            .where(
                GroupLink.id == link_id, GroupLink.attempt == attempt, GroupLink.status == "pending"
            )
            .values(status="unlinked", chat_id=None)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1  # type: ignore[attr-defined,no-any-return]

    async def unlink(self, link_id: int) -> bool:
        """A link ends whatever its state (the chat forgotten); False if it had ended."""
        result = await self.session.execute(
            update(GroupLink)
            .where(GroupLink.id == link_id, GroupLink.status != "unlinked")
            .values(status="unlinked", chat_id=None)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1  # type: ignore[attr-defined,no-any-return]

    async def suspend(
        self, link_id: int, reason: SuspendReason, now: datetime
    ) -> tuple[int, int] | None:
        """A live link is suspended; its couple and attempt, or None if it was not live."""
        row = (
            await self.session.execute(
                update(GroupLink)
                .where(GroupLink.id == link_id, GroupLink.status.in_(LIVE_LINK))
                .values(status="suspended", suspended_at=now, suspended_reason=reason)
                .returning(GroupLink.couple_id, GroupLink.attempt)
                .execution_options(synchronize_session=False)
            )
        ).one_or_none()
        return None if row is None else (row.couple_id, row.attempt)


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


INSERT_BATCH = 500
"""Rows per multi-row INSERT: about 8,000 parameters, inside both databases' limits."""


async def insert_new(
    session: AsyncSession, model: type[Any], rows: Sequence[dict[str, Any]]
) -> list[int]:
    """Insert many rows of one table, ``INSERT … ON CONFLICT DO NOTHING`` per batch.

    Rows whose unique key already exists are left as they are. Returns the ids of the rows
    actually inserted (every row must have the same columns).
    """
    insert = postgresql.insert if _dialect(session) == "postgresql" else sqlite.insert
    # One statement with the rows as parameters: SQLAlchemy sends it as multi-row INSERTs
    # ("insertmanyvalues") compiled once, rather than compiling a new VALUES list per batch.
    statement = insert(model).on_conflict_do_nothing().returning(model.id)
    created: list[int] = []
    for begin in range(0, len(rows), INSERT_BATCH):
        batch = list(rows[begin : begin + INSERT_BATCH])
        created.extend(await session.scalars(statement, batch))
    return created
