"""SQLAlchemy 2 typed models: the tables Dyad keeps.

Times are stored as aware UTC datetimes (``UtcDateTime``) on both SQLite and PostgreSQL.
Partner free text is stored only as ciphertext (``*_ciphertext`` columns).

Status, slot and kind columns are typed with the ``Literal`` of the values they may hold
(``Mapped[CoupleStatus]``), so ``mypy`` refuses a write of any other value. Each still
names its ``String(n)`` column type: the database keeps plain strings (no enum type, no
check constraint), as migrated.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, TypeGuard, get_args

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


CoupleStatus = Literal["active", "closed"]
Slot = Literal["A", "B"]
"""A partner's seat in a couple."""
OnboardingStep = Literal[
    "invited", "consent", "language", "timezone", "window", "discreet", "done", "declined", "left"
]
InviteKind = Literal["therapist", "partner"]
DeliveryStatus = Literal["pending", "claimed", "sent", "failed", "skipped"]
DeliveryKind = Literal[
    "notice",  # a catalog text, rendered in the recipient's language at send time
    "checkin",
    "hope",
    "skill",
    "skill_followup",
    "couple_space",
    "reveal",  # the outcome of a couple-space prompt both answered
    "checkin_reminder",
    "digest",
    "event",  # a webhook event
    "group_consent",  # the private question before a group is used
    "group_notice",
    "group_goal",
    "group_prompt",
    "group_reveal",
]
CheckInStatus = Literal["open", "complete", "partial"]
ResponseKind = Literal["hope", "skill", "skill_followup", "couple_space", "message"]
"""The prompt's kind, or ``message``: a text sent when no question was asked."""
AlertKind = Literal["suicide", "self_harm", "violence", "safety_question"]
AlertSource = Literal["checkin", "response"]
GroupLinkStatus = Literal["pending", "active", "suspended", "unlinked"]
LIVE_LINK: tuple[GroupLinkStatus, ...] = ("pending", "active")
"""A group link waiting for both partners' consent, or in use."""
SuspendReason = Literal["seat_changed", "migrated", "outsider", "bot_removed", "partner_left"]
DraftPage = Literal["checkin", "reply", "followup"]

SLOTS: tuple[Slot, ...] = get_args(Slot)


def is_slot(value: str) -> TypeGuard[Slot]:
    """Whether ``value`` names a seat (``A`` or ``B``)."""
    return value in SLOTS


class UtcDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime, stored naive-UTC on SQLite and timestamptz on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; pass an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UtcDateTime(),
        dict[str, Any]: JSON(),
        bytes: LargeBinary(),
    }


class Practice(Base):
    __tablename__ = "practices"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    language: Mapped[str] = mapped_column(String(8), default="en")
    config_toml: Mapped[str | None] = mapped_column(Text)
    next_couple_number: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime]


class Therapist(Base):
    __tablename__ = "therapists"

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id", ondelete="CASCADE"))
    display_name: Mapped[str] = mapped_column(String(200))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    telegram_user_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    chat_id: Mapped[int | None] = mapped_column(BigInteger)
    language: Mapped[str] = mapped_column(String(8), default="en")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    email: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime]
    joined_at: Mapped[datetime | None]

    practice: Mapped[Practice] = relationship(lazy="raise")


class Couple(Base):
    __tablename__ = "couples"
    __table_args__ = (UniqueConstraint("practice_id", "handle"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id", ondelete="CASCADE"))
    therapist_id: Mapped[int] = mapped_column(ForeignKey("therapists.id", ondelete="CASCADE"))
    handle: Mapped[str] = mapped_column(String(16))
    label: Mapped[str] = mapped_column(String(200))
    shared_goal: Mapped[str | None] = mapped_column(Text)
    status: Mapped[CoupleStatus] = mapped_column(String(16), default="active")
    safety_hold: Mapped[bool] = mapped_column(Boolean, default=False)
    schedule_template: Mapped[str | None] = mapped_column(String(64))
    schedule_paused: Mapped[bool] = mapped_column(Boolean, default=False)
    space_ready_at: Mapped[datetime | None]
    weekly_session: Mapped[str | None] = mapped_column(String(16))  # "mon 18:00", therapist's tz
    digests_sent: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]

    practice: Mapped[Practice] = relationship(lazy="raise")
    therapist: Mapped[Therapist] = relationship(lazy="raise")


class Partner(Base):
    """One person in one seat (A or B) of a couple.

    A seat that changes hands gets a new row: the previous holder's row is *retired*
    (``retired_at``) and keeps their history for the therapist's record, so nothing of
    theirs is ever read through the newcomer's id. At most one current row per seat.
    """

    __tablename__ = "partners"
    __table_args__ = (
        Index(
            "uq_partners_current_seat",
            "couple_id",
            "slot",
            unique=True,
            sqlite_where=text("retired_at IS NULL"),
            postgresql_where=text("retired_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    couple_id: Mapped[int] = mapped_column(ForeignKey("couples.id", ondelete="CASCADE"))
    slot: Mapped[Slot] = mapped_column(String(1))
    display_name: Mapped[str | None] = mapped_column(String(200))
    telegram_user_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    chat_id: Mapped[int | None] = mapped_column(BigInteger)
    language: Mapped[str] = mapped_column(String(8), default="en")
    timezone: Mapped[str | None] = mapped_column(String(64))
    window: Mapped[str | None] = mapped_column(String(16))  # morning | afternoon | evening
    discreet: Mapped[bool] = mapped_column(Boolean, default=False)
    onboarding_step: Mapped[OnboardingStep] = mapped_column(String(16), default="invited")
    paused_until: Mapped[datetime | None]
    paused_since: Mapped[datetime | None]
    reachable: Mapped[bool] = mapped_column(Boolean, default=True)
    unreachable_since: Mapped[datetime | None]
    consented_at: Mapped[datetime | None]
    joined_at: Mapped[datetime | None]
    left_at: Mapped[datetime | None]
    retired_at: Mapped[datetime | None]

    couple: Mapped[Couple] = relationship(lazy="raise")

    @property
    def active(self) -> bool:
        """Joined, consented and not gone."""
        return self.onboarding_step == "done" and self.left_at is None


class Invite(Base):
    __tablename__ = "invites"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[InviteKind] = mapped_column(String(16))
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id", ondelete="CASCADE"))
    couple_id: Mapped[int | None] = mapped_column(ForeignKey("couples.id", ondelete="CASCADE"))
    slot: Mapped[Slot | None] = mapped_column(String(1))
    therapist_name: Mapped[str | None] = mapped_column(String(200))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class TherapySession(Base):
    """A couple's therapy session (the table is ``sessions``)."""

    __tablename__ = "sessions"
    __table_args__ = (UniqueConstraint("couple_id", "starts_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    couple_id: Mapped[int] = mapped_column(ForeignKey("couples.id", ondelete="CASCADE"))
    starts_at: Mapped[datetime]
    digest_due_at: Mapped[datetime]
    digest_sent_at: Mapped[datetime | None]
    digest_lease_until: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    recurring: Mapped[bool] = mapped_column(Boolean, default=False)
    moved_from: Mapped[datetime | None]  # a moved occurrence: when it was to start


class ConversationState(Base):
    """What the bot is waiting for from one Telegram user (kept here, not in memory)."""

    __tablename__ = "conversation_states"

    telegram_user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime]


class InboxUpdate(Base):
    """A Telegram update, stored before it is acknowledged and marked once it is handled.

    ``payload`` is the update's JSON, encrypted (it holds what a person wrote); it is cleared
    when the update is handled, so a handled row keeps its id alone, which is what makes a
    repeat of the same update (a retried webhook, a second worker) a no-op. ``lease_until``
    and ``lease_token``: the worker handling it now (in the database's time); a row whose
    lease ran out unhandled is taken over by any worker's sweeper.
    """

    __tablename__ = "inbox_updates"
    __table_args__ = (Index("ix_inbox_updates_unhandled", "handled_at", "received_at"),)

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    payload: Mapped[bytes | None]
    received_at: Mapped[datetime]
    handled_at: Mapped[datetime | None]
    lease_until: Mapped[datetime | None]
    lease_token: Mapped[str | None] = mapped_column(String(32))
    attempts: Mapped[int] = mapped_column(Integer, default=0)


class AuditEntry(Base):
    """Who read or changed what about which couple, and when."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_couple_at", "couple_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    actor: Mapped[str] = mapped_column(String(64))  # e.g. therapist:3, cli, system
    action: Mapped[str] = mapped_column(String(64))
    couple_id: Mapped[int | None] = mapped_column(ForeignKey("couples.id", ondelete="SET NULL"))
    detail: Mapped[str | None] = mapped_column(String(200))
    at: Mapped[datetime]


class Delivery(Base):
    """The outbox: every message Dyad sends on its own initiative, sent exactly from here.

    A row is unique per (recipient, dedupe_key), so a prompt or notice can never be
    queued twice; the dispatcher claims due rows with a lease and marks them sent.
    """

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("recipient", "dedupe_key"),
        Index("ix_deliveries_status_due", "status", "due_at"),
        Index("ix_deliveries_partner", "partner_id", "kind"),
        # A digest's queries: one partner's sent prompts, one couple's prompts of a kind.
        Index("ix_deliveries_partner_sent", "partner_id", "status", "sent_at"),
        Index("ix_deliveries_couple_kind", "couple_id", "kind", "status", "sent_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    recipient: Mapped[str] = mapped_column(String(32))  # partner:12 | therapist:3
    couple_id: Mapped[int | None] = mapped_column(ForeignKey("couples.id", ondelete="CASCADE"))
    partner_id: Mapped[int | None] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"))
    therapist_id: Mapped[int | None] = mapped_column(
        ForeignKey("therapists.id", ondelete="CASCADE")
    )
    channel: Mapped[str] = mapped_column(String(16), default="telegram")
    kind: Mapped[DeliveryKind] = mapped_column(String(24))
    key: Mapped[str] = mapped_column(String(80))  # catalog key or prompt key
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    dedupe_key: Mapped[str] = mapped_column(String(160))
    local_date: Mapped[str | None] = mapped_column(String(10))
    due_at: Mapped[datetime]
    not_after: Mapped[datetime | None]
    status: Mapped[DeliveryStatus] = mapped_column(String(12), default="pending")
    lease_until: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(200))
    sent_at: Mapped[datetime | None]
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
    lease_token: Mapped[str | None] = mapped_column(String(32))
    """Who holds the claim now: set by each claim, checked by every later change to the row."""
    followup_due_at: Mapped[datetime | None]
    """Sent, but what it starts (``on_sent``) failed: run it again at this time."""


class CheckIn(Base):
    """One private check-in of one partner: item ids and answers, the note only encrypted."""

    __tablename__ = "checkins"
    __table_args__ = (Index("ix_checkins_partner_started", "partner_id", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"))
    couple_id: Mapped[int] = mapped_column(ForeignKey("couples.id", ondelete="CASCADE"))
    instrument: Mapped[str] = mapped_column(String(40))
    with_safety: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[CheckInStatus] = mapped_column(String(12), default="open")
    answers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    skipped: Mapped[dict[str, Any]] = mapped_column(default=dict)
    note_ciphertext: Mapped[bytes | None]
    ok_to_raise: Mapped[bool | None] = mapped_column(Boolean)
    risk: Mapped[bool] = mapped_column(Boolean, default=False)
    message_ids: Mapped[dict[str, Any]] = mapped_column(default=dict)
    delivery_id: Mapped[int | None] = mapped_column(
        ForeignKey("deliveries.id", ondelete="SET NULL")
    )
    started_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]


class Response(Base):
    """A partner's reply to a prompt: private, encrypted, screened like notes."""

    __tablename__ = "responses"
    __table_args__ = (
        Index("ix_responses_partner_created", "partner_id", "created_at"),
        Index("ix_responses_couple_kind", "couple_id", "kind", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int | None] = mapped_column(
        ForeignKey("deliveries.id", ondelete="SET NULL")
    )
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"))
    couple_id: Mapped[int] = mapped_column(ForeignKey("couples.id", ondelete="CASCADE"))
    prompt_key: Mapped[str] = mapped_column(String(80))
    kind: Mapped[ResponseKind] = mapped_column(String(24))
    choice: Mapped[str | None] = mapped_column(String(16))  # a follow-up's tried: yes|partly|no
    text_ciphertext: Mapped[bytes | None]
    share: Mapped[bool | None] = mapped_column(Boolean)  # couple-space answers only
    ok_to_raise: Mapped[bool] = mapped_column(Boolean, default=False)
    risk: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]


class Alert(Base):
    """A safety alert for the therapist: kind and time; the words only on request."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_couple_created", "couple_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    couple_id: Mapped[int] = mapped_column(ForeignKey("couples.id", ondelete="CASCADE"))
    partner_id: Mapped[int | None] = mapped_column(ForeignKey("partners.id", ondelete="SET NULL"))
    slot: Mapped[str] = mapped_column(String(1))  # "A" | "B"
    kind: Mapped[AlertKind] = mapped_column(String(24))
    source: Mapped[AlertSource] = mapped_column(String(16))
    source_id: Mapped[int | None]
    phrase_ids: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    seen_at: Mapped[datetime | None]
    cleared_at: Mapped[datetime | None]


class GroupLink(Base):
    """A Telegram group that mirrors a couple's shared space (optional, one per couple).

    ``pending`` until both partners agree privately; ``active`` while the group holds only
    the two partners, perhaps their therapist, and the bot; ``suspended`` once anyone else
    joins, a partner leaves or the bot is removed; ``unlinked`` when a partner or the
    therapist ends it (the chat id is then forgotten). ``attempt`` counts link attempts, so
    an old consent button cannot approve a newer one.
    """

    __tablename__ = "group_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    couple_id: Mapped[int] = mapped_column(
        ForeignKey("couples.id", ondelete="CASCADE"), unique=True
    )
    chat_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    status: Mapped[GroupLinkStatus] = mapped_column(String(16), default="pending")
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    linked_by: Mapped[str] = mapped_column(String(32))  # partner:12 | therapist:3
    members_seen: Mapped[int] = mapped_column(Integer, default=0)  # at the last full check
    a_agreed_at: Mapped[datetime | None]
    b_agreed_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    active_since: Mapped[datetime | None]
    suspended_at: Mapped[datetime | None]
    suspended_reason: Mapped[SuspendReason | None] = mapped_column(String(24))


class GroupLinkCode(Base):
    """A one-time code that links a group to a couple: short-lived, kept only as a hash."""

    __tablename__ = "group_link_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    couple_id: Mapped[int] = mapped_column(ForeignKey("couples.id", ondelete="CASCADE"))
    issued_by: Mapped[str] = mapped_column(String(32))  # partner:12 | therapist:3
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class WebAppDraft(Base):
    """A half-filled Mini App page, kept on the server (never in the browser) until sent.

    One per (check-in or delivery, page); ``telegram_user_id`` is who wrote it, so a seat
    that changes hands never sees the previous holder's draft. Free text only encrypted.
    """

    __tablename__ = "webapp_drafts"
    __table_args__ = (UniqueConstraint("partner_id", "page", "ref_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"))
    telegram_user_id: Mapped[int] = mapped_column(BigInteger)
    page: Mapped[DraftPage] = mapped_column(String(16))
    ref_id: Mapped[int] = mapped_column(Integer)  # the check-in's or the delivery's id
    checkin_id: Mapped[int | None] = mapped_column(
        ForeignKey("checkins.id", ondelete="CASCADE"), index=True
    )
    choices: Mapped[dict[str, Any]] = mapped_column(default=dict)  # item id -> choice or score
    text_ciphertext: Mapped[bytes | None]  # the free-text fields, as encrypted JSON
    updated_at: Mapped[datetime] = mapped_column(index=True)


class ConsoleLoginLink(Base):
    """A one-time link into the therapist console: short-lived, kept only as a hash."""

    __tablename__ = "console_login_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    therapist_id: Mapped[int] = mapped_column(
        ForeignKey("therapists.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class ConsoleSession(Base):
    """A therapist's signed-in browser: the cookie's hash, ended after inactivity.

    ``last_seen_at`` moves with each request; a session unused for the configured idle
    time, past ``expires_at`` or ``ended_at`` (signed out) lets nothing in.
    """

    __tablename__ = "console_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    therapist_id: Mapped[int] = mapped_column(
        ForeignKey("therapists.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
