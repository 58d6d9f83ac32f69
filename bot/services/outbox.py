"""Putting messages in the outbox (the ``deliveries`` table) inside a unit of work."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite

from db.models import Delivery, Partner, Therapist
from db.uow import UnitOfWork


def recipient_key(person: Partner | Therapist) -> str:
    """``partner:12`` or ``therapist:3``: who a delivery is for."""
    return f"{'partner' if isinstance(person, Partner) else 'therapist'}:{person.id}"


async def enqueue(
    uow: UnitOfWork,
    person: Partner | Therapist,
    *,
    kind: str,
    key: str,
    dedupe_key: str,
    due_at: datetime,
    couple_id: int | None,
    params: dict[str, Any] | None = None,
    not_after: datetime | None = None,
    local_date: str | None = None,
    channel: str = "telegram",
) -> bool:
    """Queue one message; False when the same (recipient, dedupe key) was queued before."""
    values: dict[str, Any] = {
        "recipient": recipient_key(person),
        "couple_id": couple_id,
        "partner_id": person.id if isinstance(person, Partner) else None,
        "therapist_id": person.id if isinstance(person, Therapist) else None,
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
    dialect = uow.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(Delivery).values(values).on_conflict_do_nothing()
    result = await uow.session.execute(statement)
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def notify(
    uow: UnitOfWork,
    person: Partner | Therapist,
    key: str,
    *,
    dedupe_key: str,
    now: datetime,
    couple_id: int | None,
    **params: Any,
) -> bool:
    """Queue a notice (a catalog message rendered in the recipient's language at send time)."""
    return await enqueue(
        uow,
        person,
        kind="notice",
        key=key,
        dedupe_key=dedupe_key,
        due_at=now,
        couple_id=couple_id,
        params=params,
    )
