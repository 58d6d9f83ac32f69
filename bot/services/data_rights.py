"""A partner's rights over their own data (a copy, erasure) and keeping it encrypted at rest.

An export holds the asking partner's own rows only. A couple-space answer is exported
by the partner who wrote it, never by the other one, even once both answers were
revealed: what the other partner wrote is theirs to export or erase. Nothing the
therapist writes, and no name or word of the other partner, is ever in an export.

Erasing deletes the partner's check-ins and answers, clears their settings and
unlinks their chat. Alerts stay in the therapist's safety record as kind, time and
slot, without any link to the words that raised them.

Also here: re-encrypting stored text under the newest key, and reading a couple's
audit log (who read or changed what, for the practice admin).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update

from bot.channels.base import Button, Outgoing
from bot.core import callbacks
from bot.locales import DEFAULT_LANGUAGE, t
from bot.services import confirmations, digests, groups, partners
from bot.services.access import joined_partner
from bot.services.crypto import Cipher
from bot.services.outbox import SEALED_PARAMS
from bot.services.practices import AdminError, practice_by_slug
from bot.services.texts import UserError, msg
from bot.services.usecase import Call, Reply
from db.engine import Database
from db.models import (
    AuditEntry,
    CheckIn,
    Couple,
    Delivery,
    Partner,
    Response,
    WebAppDraft,
)
from db.uow import UnitOfWork

EXPORT_FORMAT = "dyad-export/1"
EXPORT_FILENAME = "dyad-export.json"
ERASE_ACTION = "del"  # callback data: 1|del|<partner id>|yes|no


def _when(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _open(cipher: Cipher, token: bytes | None, language: str) -> str | None:
    if token is None:
        return None
    try:
        return cipher.decrypt(token)
    except ValueError:
        # A note under a key that is no longer configured: say so rather than fail the export.
        return t(language, "data.export_unreadable")


async def collect_export(
    uow: UnitOfWork, partner: Partner, cipher: Cipher, now: datetime
) -> dict[str, Any]:
    """The partner's own data as plain values, ready for JSON."""
    checkins = await uow.checkins.of_partner(partner.id)
    responses = await uow.responses.of_partner(partner.id)
    alerts = await uow.alerts.of_partner(partner.id)
    return {
        "format": EXPORT_FORMAT,
        "about": t(partner.language, "data.export_about"),  # plain text, not Telegram HTML
        "exported_at": _when(now),
        "settings": {
            "language": partner.language,
            "timezone": partner.timezone,
            "delivery_window": partner.window,
            "discreet": partner.discreet,
            "paused_until": _when(partner.paused_until),
            "joined_at": _when(partner.joined_at),
        },
        "checkins": [
            {
                "instrument": c.instrument,
                "status": c.status,
                "answers": dict(c.answers),
                "skipped_items": list(c.skipped.get("items", [])),
                "note": _open(cipher, c.note_ciphertext, partner.language),
                "ok_to_raise": c.ok_to_raise,
                "started_at": _when(c.started_at),
                "completed_at": _when(c.completed_at),
            }
            for c in checkins
        ],
        "responses": [
            {
                "prompt_key": r.prompt_key,
                "kind": r.kind,
                "choice": r.choice,
                "text": _open(cipher, r.text_ciphertext, partner.language),
                "shared_in_couple_space": r.share,
                "ok_to_raise": r.ok_to_raise,
                "created_at": _when(r.created_at),
            }
            for r in responses
        ],
        "safety_alerts": [{"kind": a.kind, "raised_at": _when(a.created_at)} for a in alerts],
    }


async def export(uow: UnitOfWork, partner: Partner, cipher: Cipher, now: datetime) -> Outgoing:
    """The partner's own data as one JSON document; the export is audit-logged."""
    data = await collect_export(uow, partner, cipher, now)
    uow.audit.record(
        actor=f"partner:{partner.id}", action="export", couple_id=partner.couple_id, at=now
    )
    await uow.commit()
    document = json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8")
    return Outgoing(
        msg(partner.language, "data.export_caption"), document=document, filename=EXPORT_FILENAME
    )


def erase_confirmation(partner: Partner) -> Outgoing:
    """Ask before erasing anything."""
    lang = partner.language
    row = (
        Button(msg(lang, "data.erase_yes"), callbacks.encode(ERASE_ACTION, partner.id, "yes")),
        Button(msg(lang, "data.erase_no"), callbacks.encode(ERASE_ACTION, partner.id, "no")),
    )
    return Outgoing(msg(lang, "data.erase_confirm"), (row,))


@dataclass(frozen=True)
class Erased:
    """What an erasure leaves to the caller: the reply, and group posts to delete."""

    message: Outgoing
    group_posts: list[tuple[int, int]] = field(default_factory=list)  # (chat id, message id)


async def erase(
    uow: UnitOfWork, partner: Partner, cipher: Cipher, now: datetime, *, actor: str | None = None
) -> Erased:
    """Erase the partner's private data everywhere Dyad keeps a copy, in one transaction.

    Their check-ins and answers go; alerts stay in the therapist's safety record as kind,
    time and slot, detached from the person and the words; the outbox keeps nothing of
    theirs (their pending messages go, and a digest still waiting to be sent is composed
    again without them, for Telegram, e-mail and webhooks alike); the couple's group link
    ends, and the group posts that showed their answers are to be deleted while Telegram
    allows it. Then they are unlinked from their chat.
    """
    language = partner.language
    couple = await uow.couples.get(partner.couple_id)
    assert couple is not None
    response_ids = await uow.responses.ids_of_partner(partner.id)
    group_posts = await groups.end_for_erasure(uow, couple, response_ids, now)
    await _delete(uow, WebAppDraft, WebAppDraft.partner_id == partner.id)  # half-filled pages
    checkins = await _delete(uow, CheckIn, CheckIn.partner_id == partner.id)
    responses = await _delete(uow, Response, Response.partner_id == partner.id)
    alerts = await _unlink_alerts(uow, partner)
    # Only rows no dispatcher holds: a claimed row is finished by its sender, which skips
    # a recipient who has gone.
    deliveries = await _delete(
        uow, Delivery, (Delivery.partner_id == partner.id) & (Delivery.status == "pending")
    )
    await _scrub_finished(uow, partner)
    digests_again = await digests.recompose_pending(uow, couple, cipher, now)
    partner.display_name = None
    partner.language = DEFAULT_LANGUAGE
    partner.timezone = None
    partner.window = None
    partner.discreet = False
    partner.paused_until = None
    partner.paused_since = None
    partner.unreachable_since = None
    uow.audit.record(
        actor=actor or f"partner:{partner.id}",
        action="erase",
        couple_id=partner.couple_id,
        at=now,
        detail=(
            f"checkins={checkins} responses={responses} alerts_unlinked={alerts} "
            f"deliveries={deliveries} digests_recomposed={digests_again} "
            f"group_posts={len(group_posts)}"
        ),
    )
    # leave() tells the therapist (without content) and commits everything above with it.
    await partners.leave(uow, partner, now, erased=True)
    return Erased(Outgoing(msg(language, "data.erased")), group_posts)


async def _delete(uow: UnitOfWork, model: type[Any], condition: Any) -> int:
    result = await uow.session.execute(
        delete(model).where(condition).execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


_FINISHED = ("sent", "failed", "skipped")


async def _scrub_finished(uow: UnitOfWork, partner: Partner) -> None:
    """The partner's finished outbox rows keep no parameters (nothing of what they said)."""
    await uow.session.execute(
        update(Delivery)
        .where(Delivery.partner_id == partner.id, Delivery.status.in_(_FINISHED))
        .values(params={})
        .execution_options(synchronize_session=False)
    )


async def _unlink_alerts(uow: UnitOfWork, partner: Partner) -> int:
    alerts = await uow.alerts.of_partner(partner.id)
    for alert in alerts:
        alert.source_id = None
        alert.partner_id = None  # the safety record keeps slot, kind and time, not the person
        # Which crisis phrases matched says something of the words; the kinds are the record.
        alert.phrase_ids = {"kinds": list(alert.phrase_ids.get("kinds", [alert.kind]))}
    return len(alerts)


# Encryption keys ------------------------------------------------------------------------

CIPHERTEXT_COLUMNS: tuple[tuple[type[Any], str], ...] = (
    (CheckIn, "note_ciphertext"),
    (Response, "text_ciphertext"),
    (WebAppDraft, "text_ciphertext"),
)


@dataclass
class Rotation:
    """What a key rotation did: rows re-encrypted, rows already current, rows no key opens."""

    rotated: int = 0
    current: int = 0
    unreadable: list[str] = field(default_factory=list)  # "checkins#12"


async def rotate_ciphertexts(db: Database, keys: Sequence[str], *, batch: int = 500) -> Rotation:
    """Re-encrypt every stored ciphertext with the newest key (``keys[0]``); safe to re-run.

    That is every sealed column (notes, replies) and every sealed outbox parameter (digests
    and events waiting to be sent), so nothing queued becomes unreadable.
    """
    everyone, newest = Cipher(list(keys)), Cipher(list(keys[:1]))
    report = Rotation()
    for model, column_name in CIPHERTEXT_COLUMNS:
        column = getattr(model, column_name)
        last_id = 0
        while True:
            async with db.uow() as uow:
                rows = (
                    await uow.session.execute(
                        select(model.id, column)
                        .where(model.id > last_id, column.is_not(None))
                        .order_by(model.id)
                        .limit(batch)
                    )
                ).all()
                if not rows:
                    break
                for row_id, token in rows:
                    last_id = row_id
                    if _opens(newest, token):
                        report.current += 1
                    elif _opens(everyone, token):
                        # Compare-and-set: a row rewritten meanwhile is left to the next run.
                        await uow.session.execute(
                            update(model)
                            .where(model.id == row_id, column == token)
                            .values({column_name: everyone.rotate(token)})
                            .execution_options(synchronize_session=False)
                        )
                        report.rotated += 1
                    else:
                        report.unreadable.append(f"{model.__tablename__}#{row_id}")
                await uow.commit()
    await _rotate_outbox(db, everyone, newest, report, batch)
    return report


async def _rotate_outbox(
    db: Database, everyone: Cipher, newest: Cipher, report: Rotation, batch: int
) -> None:
    """Re-encrypt the sealed parameters of outbox rows not yet sent (digests, events)."""
    last_id = 0
    while True:
        async with db.uow() as uow:
            rows = list(
                await uow.session.scalars(
                    select(Delivery)
                    .where(Delivery.id > last_id, Delivery.kind.in_(("digest", "event")))
                    .order_by(Delivery.id)
                    .limit(batch)
                )
            )
            if not rows:
                return
            for row in rows:
                last_id = row.id
                sealed = [k for k in SEALED_PARAMS if isinstance(row.params.get(k), str)]
                if not sealed:
                    continue
                params = dict(row.params)
                changed = False
                for name in sealed:
                    try:
                        token = base64.b64decode(params[name], validate=True)
                    except ValueError:
                        continue  # a plain parameter of that name, not a sealed one
                    if _opens(newest, token):
                        report.current += 1
                    elif _opens(everyone, token):
                        params[name] = base64.b64encode(everyone.rotate(token)).decode("ascii")
                        report.rotated += 1
                        changed = True
                    else:
                        report.unreadable.append(f"deliveries#{row.id}.{name}")
                if changed:
                    # Compare-and-set on the row's status: a row sent meanwhile is left alone.
                    await uow.session.execute(
                        update(Delivery)
                        .where(Delivery.id == row.id, Delivery.status == row.status)
                        .values(params=params)
                        .execution_options(synchronize_session=False)
                    )
            await uow.commit()


def _opens(cipher: Cipher, token: bytes) -> bool:
    try:
        cipher.decrypt(token)
    except ValueError:
        return False
    return True


# The audit log -------------------------------------------------------------------------


async def erase_seat(
    uow: UnitOfWork,
    handle: str,
    slot: str,
    cipher: Cipher,
    now: datetime,
    practice_slug: str | None = None,
) -> Erased:
    """``dyad erase``: erase the data of a seat's holder, as ``/deleteme`` does.

    For a partner who can no longer ask themselves (they used ``/stop``, lost their phone,
    or asked their therapist). Group posts cannot be deleted from the command line; the
    group link ends all the same, and the posts to delete are returned.
    """
    couple = await _couple_by_handle(uow, handle, practice_slug)
    partner = next((p for p in await uow.partners.of_couple(couple.id) if p.slot == slot), None)
    if partner is None or partner.consented_at is None:
        raise AdminError(f"seat {slot} of {couple.handle} holds nobody's data")
    return await erase(uow, partner, cipher, now, actor="cli")


async def _couple_by_handle(uow: UnitOfWork, handle: str, practice_slug: str | None) -> Couple:
    handle = handle.strip().lower()
    practice_id = None
    if practice_slug is not None:
        practice_id = (await practice_by_slug(uow, practice_slug)).id
    couples = await uow.couples.with_handle(handle, practice_id)
    if not couples:
        where = f" in practice {practice_slug!r}" if practice_slug is not None else ""
        raise AdminError(f"no couple with handle {handle!r}{where}")
    if len(couples) > 1:
        raise AdminError(f"several practices have a couple {handle!r}; add --practice SLUG")
    return couples[0]


async def couple_audit(
    uow: UnitOfWork, handle: str, practice_slug: str | None = None
) -> Sequence[AuditEntry]:
    """A couple's audit log, oldest first; an unknown or ambiguous handle is an AdminError."""
    couple = await _couple_by_handle(uow, handle, practice_slug)
    return await uow.audit.of_couple(couple.id)


# --- the partner's use cases (run with bot.services.usecase.perform) -----------------------


async def export_own(call: Call) -> Reply:
    """``/export``: one JSON document of the partner's own data, nothing of the other's."""
    partner = await joined_partner(call.uow, call.caller.user_id, actor=call.actor)
    return Reply.say(await export(call.uow, partner, call.deps.cipher, call.now))


async def ask_erasure(call: Call) -> Reply:
    """``/deleteme``: asks for confirmation before erasing anything."""
    partner = await joined_partner(call.uow, call.caller.user_id, actor=call.actor)
    await confirmations.ask(call.uow, call.caller.user_id, "erase", partner.id, call.now)
    return Reply.say(erase_confirmation(partner))


async def answer_erasure(call: Call, raw: str | None) -> Reply:
    """``1|del|partner|yes|no``: erase and leave, or keep everything.

    Erasing also deletes the linked group's posts that showed the partner's answers
    (best effort, after the reply); the link has ended either way.
    """
    data = callbacks.decode(raw)
    partner = await joined_partner(call.uow, call.caller.user_id, actor=call.actor)
    # The pressing user must own the partner the button names; anything else is refused.
    if partner.id != data.int_arg(0) or data.arg(1) not in ("yes", "no"):
        raise UserError("common.stale_button")
    await confirmations.take(call.uow, call.caller.user_id, "erase", partner.id)
    if data.arg(1) == "no":
        return Reply.say(msg(partner.language, "data.kept"), wake=True)
    erased = await erase(call.uow, partner, call.deps.cipher, call.now)
    answer = Reply.say(erased.message, wake=True)
    answer.delete.extend(erased.group_posts)
    return answer
