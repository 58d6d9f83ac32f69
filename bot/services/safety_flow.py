"""Risk: crisis resources for the partner at once, a private alert, a safety hold.

Nothing here ever reaches the other partner: the alert goes to the couple's therapist
only, and the hold changes which exercises are planned, never how many.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from bot.channels.base import Button, Outgoing
from bot.core import callbacks
from bot.core.safety import render_crisis_message, screen_text
from bot.locales.formats import format_datetime
from bot.metrics import ALERTS_RAISED
from bot.services import events
from bot.services.crypto import Cipher
from bot.services.outbox import notify
from bot.services.practice_config import crisis_lines_for
from bot.services.texts import msg
from db.models import Alert, CheckIn, Couple, Partner, Response, Therapist
from db.uow import UnitOfWork
from schedules.planner import substitute_pending_for_hold

# The most serious kind names the alert when one message holds several.
_PRIORITY = ("suicide", "self_harm", "violence", "safety_question")


async def raise_alert(
    uow: UnitOfWork,
    partner: Partner,
    *,
    kinds: frozenset[str],
    source: str,
    source_id: int | None,
    phrase_ids: frozenset[str],
    now: datetime,
) -> Outgoing:
    """Record one alert, hold the couple, tell the therapist; returns the partner's resources."""
    couple = await uow.couples.get(partner.couple_id)
    assert couple is not None
    practice = await uow.practices.get(couple.practice_id)
    therapist = await uow.therapists.get(couple.therapist_id)
    assert practice is not None and therapist is not None
    kind = next(k for k in _PRIORITY if k in kinds)
    if await _raised_before(uow, source, source_id, kind):
        # The same words seen again (a Mini App draft, then the page sent): the therapist
        # hears of it once; the partner sees the resources every time.
        resources = crisis_lines_for(practice.config_toml, partner.language, partner.timezone)
        return Outgoing(render_crisis_message(partner.language, resources))
    alert = Alert(
        couple_id=couple.id,
        partner_id=partner.id,
        slot=partner.slot,
        kind=kind,
        source=source,
        source_id=source_id,
        phrase_ids={"kinds": sorted(kinds), "phrases": sorted(phrase_ids)},
        created_at=now,
    )
    uow.session.add(alert)
    await uow.flush()
    ALERTS_RAISED.inc()
    if not couple.safety_hold:
        couple.safety_hold = True
        await substitute_pending_for_hold(uow, couple)
    await notify(
        uow,
        therapist,
        "alerts.notice",
        dedupe_key=f"alert:{alert.id}",
        now=now,
        couple_id=couple.id,
        handle=couple.handle,
        slot=partner.slot,
        kind_key=f"safety.kind.{kind}",
        when=_local(now, therapist.timezone, therapist.language),
    )
    await events.alert_raised(uow, couple, alert, now)
    resources = crisis_lines_for(practice.config_toml, partner.language, partner.timezone)
    return crisis_card(partner, render_crisis_message(partner.language, resources))


CRISIS_DONE = "cd"  # callback data: 1|cd|<partner id>


def crisis_card(partner: Partner, text: str) -> Outgoing:
    """The crisis resources; in discreet mode with a button that removes them once read."""
    if not partner.discreet:
        return Outgoing(text)
    done = Button(
        msg(partner.language, "safety.crisis_done"), callbacks.encode(CRISIS_DONE, partner.id)
    )
    return Outgoing(text, ((done,),))


FREE_TEXT = "message"
"""The ``kind`` of a stored text a partner sent when no question was asked (crisis words)."""


async def screen_free_text(
    uow: UnitOfWork, partner: Partner, cipher: Cipher, text: str, now: datetime
) -> Outgoing | None:
    """A text no question asked for: crisis words get the resources, an alert and the hold.

    Nothing else changes for either partner. The words are kept, encrypted, so that the
    therapist can read them with ``/alerts`` (and the partner export or erase them); they
    are never quoted in a digest. Returns None when the text holds no crisis words.
    """
    screened = await screen_kept_text(uow, partner, cipher, text, now, kept_id=None)
    if screened is None:
        return None
    await uow.commit()
    return screened[1]


async def screen_kept_text(
    uow: UnitOfWork,
    partner: Partner,
    cipher: Cipher,
    text: str,
    now: datetime,
    *,
    kept_id: int | None,
) -> tuple[int, Outgoing] | None:
    """Screen a text; crisis words are kept (encrypted) for ``/alerts`` and alerted. No commit.

    ``kept_id``: the row that already keeps earlier words of the same text (a Mini App
    draft being written): it takes the newer words, and the therapist hears once per kind.
    Returns the keeping row's id and the partner's crisis resources, or None.
    """
    result = screen_text(text, partner.language)
    if not result.flagged:
        return None
    response = await uow.session.get(Response, kept_id) if kept_id is not None else None
    if response is None or response.partner_id != partner.id or response.kind != FREE_TEXT:
        response = Response(
            partner_id=partner.id,
            couple_id=partner.couple_id,
            prompt_key=FREE_TEXT,
            kind=FREE_TEXT,
            risk=True,
            created_at=now,
        )
        uow.session.add(response)
    response.text_ciphertext = cipher.encrypt(text)
    await uow.flush()
    resources = await raise_alert(
        uow,
        partner,
        kinds=result.kinds,
        source="response",
        source_id=response.id,
        phrase_ids=result.phrase_ids,
        now=now,
    )
    return response.id, resources


async def adopt_kept_text(
    uow: UnitOfWork, partner: Partner, kept_id: int, response: Response
) -> None:
    """Words kept from a draft are now stored as ``response``: its alerts become the
    response's, and the kept copy goes (so the therapist hears of the words once)."""
    kept = await uow.session.get(Response, kept_id)
    if kept is None or kept.partner_id != partner.id or kept.kind != FREE_TEXT:
        return
    await uow.session.execute(
        update(Alert)
        .where(Alert.source == "response", Alert.source_id == kept.id)
        .values(source_id=response.id)
        .execution_options(synchronize_session=False)
    )
    await uow.session.delete(kept)
    await uow.flush()


def crisis_guidance(language: str, text: str) -> Outgoing | None:
    """Crisis words from someone Dyad does not know: the general emergency guidance."""
    if not screen_text(text, language).flagged:
        return None
    return Outgoing(render_crisis_message(language, ()))


async def _raised_before(uow: UnitOfWork, source: str, source_id: int | None, kind: str) -> bool:
    if source_id is None:
        return False
    found = await uow.session.scalar(
        select(Alert.id)
        .where(Alert.source == source, Alert.source_id == source_id, Alert.kind == kind)
        .limit(1)
    )
    return found is not None


def _local(when: datetime, zone: str, language: str) -> str:
    return format_datetime(when.astimezone(ZoneInfo(zone)), language)


async def alerts_view(
    uow: UnitOfWork, therapist: Therapist, couple: Couple, now: datetime, cipher: Cipher
) -> str:
    """The couple's alerts with the words that raised them; marks them seen and audits the read."""
    lang = therapist.language
    alerts = list(
        await uow.session.scalars(
            select(Alert).where(Alert.couple_id == couple.id).order_by(Alert.created_at)
        )
    )
    uow.audit.record(
        actor=f"therapist:{therapist.id}", action="alerts.read", couple_id=couple.id, at=now
    )
    if not alerts:
        await uow.commit()
        return msg(lang, "alerts.none", handle=couple.handle)
    lines = [msg(lang, "alerts.header", handle=couple.handle)]
    for alert in alerts:
        state = "cleared" if alert.cleared_at else ("seen" if alert.seen_at else "new")
        lines.append(
            msg(
                lang,
                "alerts.line",
                when=_local(alert.created_at, therapist.timezone, lang),
                slot=alert.slot,
                kind=msg(lang, f"safety.kind.{alert.kind}"),
                state=msg(lang, f"alerts.state_{state}"),
            )
        )
        words = await _words(uow, alert, cipher)
        if words:
            lines.append(msg(lang, "alerts.words", words=words[:500]))
        if alert.seen_at is None:
            alert.seen_at = now
    hold = "alerts.hold_on" if couple.safety_hold else "alerts.hold_off"
    lines.append(msg(lang, hold, handle=couple.handle))
    await uow.commit()
    return "\n".join(lines)


async def _words(uow: UnitOfWork, alert: Alert, cipher: Cipher) -> str | None:
    if alert.source_id is None:
        return None
    row: CheckIn | Response | None
    if alert.source == "checkin":
        row = await uow.session.get(CheckIn, alert.source_id)
        token = row.note_ciphertext if row is not None else None
    else:
        row = await uow.session.get(Response, alert.source_id)
        token = row.text_ciphertext if row is not None else None
    return cipher.decrypt(token) if token else None


async def clear_hold(uow: UnitOfWork, therapist: Therapist, couple: Couple, now: datetime) -> str:
    """Lift the couple's safety hold; its alerts are marked cleared."""
    if not couple.safety_hold:
        return msg(therapist.language, "alerts.not_held", handle=couple.handle)
    couple.safety_hold = False
    for alert in await uow.session.scalars(
        select(Alert).where(Alert.couple_id == couple.id, Alert.cleared_at.is_(None))
    ):
        alert.cleared_at = now
    uow.audit.record(
        actor=f"therapist:{therapist.id}", action="hold.clear", couple_id=couple.id, at=now
    )
    await uow.commit()
    return msg(therapist.language, "alerts.cleared", handle=couple.handle)
