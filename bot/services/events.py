"""Events for a practice's own systems, queued in the outbox and sent as signed webhooks.

A practice lists endpoints in its practice.toml (``[[webhooks]]``); each event goes, once,
to every endpoint subscribed to its type, through the outbox like any message (retries,
leases, pacing). An event has an id that stays the same on every retry, its type, when it
happened, and its data:

- ``digest.ready``: a pre-session digest (the structure ``render_json`` gives), which holds
  only what the digest itself holds (never a word a partner kept private); stored only
  encrypted in the outbox.
- ``alert.raised``: the couple's handle, the partner's slot, the kind and the time; never
  the words that raised it.
- ``partner.unreachable``: a partner blocked the bot; handle, slot, since when.
- ``couple.closed``: handle and time.
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
from datetime import UTC, datetime
from typing import Any, Final

from bot.channels.base import Outgoing, Sent
from bot.channels.registry import WEBHOOK
from bot.core.digest import Digest, render_json
from bot.services.crypto import Cipher
from bot.services.practice_config import WEBHOOK_EVENTS, parse_practice_config
from db.models import Alert, Couple, Delivery, Partner
from db.uow import UnitOfWork
from schedules.check import PracticeFileError
from schedules.dispatcher import Rendered

log = logging.getLogger(__name__)

EVENT_KIND: Final = "event"


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def queue_event(
    uow: UnitOfWork,
    couple: Couple,
    event_type: str,
    data: dict[str, Any],
    *,
    now: datetime,
    dedupe_key: str,
    cipher: Cipher | None = None,
) -> int:
    """Queue an event for each endpoint of the couple's practice subscribed to it; how many.

    ``dedupe_key`` names the happening (``alert:17``), so queueing it again does nothing.
    With a ``cipher`` the data is kept only encrypted until it is sent (data holding words).
    """
    if event_type not in WEBHOOK_EVENTS:
        raise ValueError(f"unknown event type {event_type!r}")
    practice = await uow.practices.get(couple.practice_id)
    assert practice is not None
    try:
        endpoints = parse_practice_config(practice.config_toml).webhooks_for(event_type)
    except PracticeFileError:
        # A stored file that can no longer be read names no endpoint anyone could trust;
        # what happened (a close, an alert) must not fail with it (the planner tells its admins).
        log.exception(
            "a practice's file cannot be read: no event", extra={"practice_id": practice.id}
        )
        return 0
    if not endpoints:
        return 0
    data = {"practice": practice.slug, "couple": couple.handle, **data}
    params: dict[str, Any] = {
        "id": f"evt_{uuid.uuid4().hex}",  # one id for the event, whichever endpoint gets it
        "created_at": _iso(now),
        "practice_id": practice.id,
    }
    if cipher is not None:
        token = cipher.encrypt(json.dumps(data, ensure_ascii=False))
        params["data_ciphertext"] = base64.b64encode(token).decode("ascii")
    else:
        params["data"] = data
    deliveries = uow.deliveries
    queued = 0
    for endpoint in endpoints:
        queued += await deliveries.queue(
            recipient=f"webhook:{practice.id}:{endpoint.key}",
            couple_id=couple.id,
            channel=WEBHOOK,
            kind=EVENT_KIND,
            key=event_type,
            params={**params, "endpoint": endpoint.key},
            dedupe_key=f"{event_type}:{dedupe_key}",
            due_at=now,
        )
    return queued


async def alert_raised(uow: UnitOfWork, couple: Couple, alert: Alert, now: datetime) -> int:
    """``alert.raised``: who (slot), what kind, when; never the words."""
    data = {"partner": alert.slot, "kind": alert.kind, "raised_at": _iso(alert.created_at)}
    return await queue_event(
        uow, couple, "alert.raised", data, now=now, dedupe_key=f"alert:{alert.id}"
    )


async def partner_unreachable(
    uow: UnitOfWork, couple: Couple, partner: Partner, now: datetime
) -> int:
    """``partner.unreachable``: a partner blocked the bot (or their chat is gone)."""
    data = {"partner": partner.slot, "since": _iso(now)}
    return await queue_event(
        uow,
        couple,
        "partner.unreachable",
        data,
        now=now,
        dedupe_key=f"unreachable:{partner.id}:{_iso(now)}",
    )


async def couple_closed(uow: UnitOfWork, couple: Couple, now: datetime) -> int:
    """``couple.closed``: the therapist ended the couple's use of Dyad."""
    data = {"closed_at": _iso(couple.closed_at or now)}
    return await queue_event(
        uow, couple, "couple.closed", data, now=now, dedupe_key=f"closed:{couple.id}"
    )


async def digest_ready(
    uow: UnitOfWork, couple: Couple, digest: Digest, cipher: Cipher, now: datetime, key: str
) -> int:
    """``digest.ready``: the pre-session digest's structure, encrypted until it is sent."""
    data = {"digest": json.loads(render_json(digest))}
    return await queue_event(
        uow, couple, "digest.ready", data, now=now, dedupe_key=key, cipher=cipher
    )


class EventRenderer:
    """Renders the ``webhook`` channel: the event's body, for its endpoint, to be signed.

    The endpoint's URL and secret are read from the practice's configuration at send time,
    so a changed secret applies to retries and a removed endpoint gets nothing more.
    """

    def __init__(self, cipher: Cipher) -> None:
        self.cipher = cipher

    async def render(self, uow: UnitOfWork, delivery: Delivery) -> Rendered | None:
        """The signed request's body and endpoint, or None when the endpoint is gone."""
        params = delivery.params
        practice = await uow.practices.get(int(params["practice_id"]))
        if practice is None:
            return None
        endpoint = parse_practice_config(practice.config_toml).webhook(str(params["endpoint"]))
        if endpoint is None or delivery.key not in endpoint.events:
            return None
        if "data_ciphertext" in params:
            token = base64.b64decode(str(params["data_ciphertext"]))
            data = json.loads(self.cipher.decrypt(token))
        else:
            data = params["data"]
        event_id = str(params["id"])
        body = {"id": event_id, "type": delivery.key, "created_at": params["created_at"]}
        text = json.dumps({**body, "data": data}, ensure_ascii=False, separators=(",", ":"))
        message = Outgoing(text, idempotency_key=event_id, signing_secret=endpoint.secret)
        return Rendered(endpoint.url, message)

    async def on_sent(self, uow: UnitOfWork, delivery: Delivery, sent: Sent) -> None:
        """Nothing follows a delivered event."""
