"""Putting messages in the outbox (the ``deliveries`` table) inside a unit of work."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from db.models import Delivery, DeliveryKind, Partner, Therapist
from db.uow import UnitOfWork


def recipient_key(person: Partner | Therapist) -> str:
    """``partner:12`` or ``therapist:3``: who a delivery is for."""
    return f"{'partner' if isinstance(person, Partner) else 'therapist'}:{person.id}"


async def enqueue(
    uow: UnitOfWork,
    person: Partner | Therapist,
    *,
    kind: DeliveryKind,
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
    return await uow.deliveries.queue(
        recipient=recipient_key(person),
        couple_id=couple_id,
        partner_id=person.id if isinstance(person, Partner) else None,
        therapist_id=person.id if isinstance(person, Therapist) else None,
        channel=channel,
        kind=kind,
        key=key,
        params=params,
        dedupe_key=dedupe_key,
        local_date=local_date,
        due_at=due_at,
        not_after=not_after,
    )


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


async def copy_to_channel(uow: UnitOfWork, delivery: Delivery, channel: str, now: datetime) -> bool:
    """Queue a copy of ``delivery`` on another channel, due now; False when there is none to make.

    Once per (row, channel): the copy's dedupe key names both. An email copy goes only to a
    therapist who gave an address (nothing of a partner's ever goes by email).
    """
    person: Partner | Therapist | None = None
    if delivery.therapist_id is not None:
        person = await uow.therapists.get(delivery.therapist_id)
    elif delivery.partner_id is not None and channel != "email":
        person = await uow.partners.get(delivery.partner_id)
    if person is None or (channel == "email" and not getattr(person, "email", None)):
        return False
    return await enqueue(
        uow,
        person,
        kind=delivery.kind,
        key=delivery.key,
        dedupe_key=f"{delivery.dedupe_key}@{channel}"[:160],
        due_at=now,
        couple_id=delivery.couple_id,
        params=dict(delivery.params),
        not_after=delivery.not_after,
        channel=channel,
    )


SEALED_PARAMS = ("text", "email", "data_ciphertext")
"""Outbox parameters that hold ciphertext: a digest's chunk, its e-mail, an event's data."""
