"""The private check-in: one item per message, state in the database, answers by item id.

Where a partner stands (which item comes next) is derived from the stored answers and
skips, so a restart resumes at the same item. The note is stored only encrypted and is
screened for crisis language; so is a "yes" to the private safety question.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select, update

from bot.channels.base import Button, Outgoing
from bot.core import callbacks
from bot.core.instruments import (
    Instrument,
    InvalidAnswer,
    Item,
    is_risk_answer,
    next_item,
    validate_answer,
)
from bot.core.safety import screen_text
from bot.locales import localized
from bot.services.crypto import Cipher
from bot.services.delivery_render import KindRenderer
from bot.services.practice_config import PracticeConfig, parse_practice_config
from bot.services.safety_flow import raise_alert
from bot.services.texts import UserError, msg
from bot.services.usecase import OneCommit
from db.models import CheckIn, Delivery, Partner, Therapist
from db.uow import UnitOfWork
from schedules.planning import includes_safety_question

STALE_AFTER = timedelta(hours=12)
SAFETY_INSTRUMENT = "dyad_safety"
SKIP = "s"
WRITTEN = "written"  # the stored answer of a note item: the text itself is only encrypted


@dataclass
class Step:
    """What a check-in action produced: messages for the partner, messages to delete."""

    messages: list[Outgoing] = field(default_factory=list)
    delete: list[int] = field(default_factory=list)
    awaiting_note: bool = False
    finished: bool = False


async def _config(uow: UnitOfWork, partner: Partner) -> PracticeConfig:
    couple = await uow.couples.get(partner.couple_id)
    assert couple is not None
    practice = await uow.practices.get(couple.practice_id)
    assert practice is not None
    return parse_practice_config(practice.config_toml)


def _instruments(config: PracticeConfig, checkin: CheckIn) -> list[Instrument]:
    main = config.instruments.get(checkin.instrument) or config.checkin_instrument()
    out = [main]
    if checkin.with_safety:
        out.append(config.instruments[SAFETY_INSTRUMENT])
    return out


def _current(instruments: list[Instrument], checkin: CheckIn) -> Item | None:
    skipped = set(checkin.skipped.get("items", []))
    for instrument in instruments:
        item = next_item(instrument, checkin.answers, skipped)
        if item is not None:
            return item
    return None


def _all_items(instruments: list[Instrument]) -> list[Item]:
    return [item for instrument in instruments for item in instrument.items]


def item_message(
    instruments: list[Instrument], checkin: CheckIn, item: Item, language: str
) -> Outgoing:
    """The question for one item, with its buttons (the 0–10 scale in two rows) and Skip."""
    # Items that follow a skipped one (OK to raise after a skipped note) are not counted.
    skipped = set(checkin.skipped.get("items", []))
    items = [i for i in _all_items(instruments) if i.requires is None or i.requires not in skipped]
    title = instruments[0].title_in(language)
    step = items.index(item) + 1
    lines = [
        msg(language, "checkin.progress", title=title, step=step, total=len(items)),
        "",
        f"<b>{html.escape(item.text_in(language), quote=False)}</b>",
    ]

    def data(value: object) -> str:
        return callbacks.encode("ci", checkin.id, item.id, value)

    rows: list[tuple[Button, ...]] = []
    if item.type == "scale":
        assert item.min is not None and item.max is not None
        lines.append(
            msg(
                language,
                "checkin.scale_hint",
                min=item.min,
                max=item.max,
                min_label=localized(item.min_label, language) if item.min_label else "",
                max_label=localized(item.max_label, language) if item.max_label else "",
            )
        )
        values = list(range(item.min, item.max + 1))
        half = (len(values) + 1) // 2
        for chunk in (values[:half], values[half:]):
            rows.append(tuple(Button(str(v), data(v)) for v in chunk))
    elif item.type in ("choice", "yes_no"):
        rows.append(tuple(Button(c.label_in(language), data(c.id)) for c in item.choices))
    else:
        lines.append(msg(language, "checkin.note_hint"))
    rows.append((Button(msg(language, "checkin.skip"), data(SKIP)),))
    return Outgoing("\n".join(lines), tuple(rows))


async def open_checkin(uow: UnitOfWork, partner: Partner) -> CheckIn | None:
    """The partner's check-in in progress, if any."""
    return await uow.session.scalar(
        select(CheckIn)
        .where(CheckIn.partner_id == partner.id, CheckIn.status == "open")
        .order_by(CheckIn.started_at.desc())
        .limit(1)
    )


async def start(
    uow: UnitOfWork, partner: Partner, now: datetime, *, delivery_id: int | None = None
) -> Step:
    """Start a check-in (or resume the open one at its current item)."""
    config = await _config(uow, partner)
    checkin = await open_checkin(uow, partner)
    if checkin is None:
        done = await uow.session.scalar(
            select(func.count()).where(CheckIn.partner_id == partner.id, CheckIn.status != "open")
        )
        number = int(done or 0) + 1
        checkin = CheckIn(
            partner_id=partner.id,
            couple_id=partner.couple_id,
            instrument=config.checkin_instrument().name,
            with_safety=includes_safety_question(number, config.schedules.checkin.safety_every),
            answers={},
            skipped={"items": []},
            message_ids={},
            delivery_id=delivery_id,
            started_at=now,
        )
        uow.session.add(checkin)
        await uow.flush()
    instruments = _instruments(config, checkin)
    item = _current(instruments, checkin)
    await uow.commit()
    if item is None:  # nothing left to ask: a resumed check-in that had only its end left
        return await _finish(uow, partner, checkin, now)
    return Step(
        [item_message(instruments, checkin, item, partner.language)],
        awaiting_note=item.type == "text",
    )


async def _owned_open(uow: UnitOfWork, partner: Partner, checkin_id: int) -> CheckIn:
    checkin = await uow.session.get(CheckIn, checkin_id)
    if checkin is None or checkin.partner_id != partner.id or checkin.status != "open":
        raise UserError("common.stale_button")
    return checkin


async def answer_button(
    uow: UnitOfWork,
    partner: Partner,
    cipher: Cipher,
    checkin_id: int,
    item_id: str,
    raw: str,
    now: datetime,
    *,
    question_message_id: int | None,
) -> Step:
    """A button press on the current item (a value, or Skip)."""
    checkin = await _owned_open(uow, partner, checkin_id)
    config = await _config(uow, partner)
    instruments = _instruments(config, checkin)
    item = _current(instruments, checkin)
    if item is None or item.id != item_id:
        raise UserError("common.stale_button")
    if raw == SKIP:
        checkin.skipped = {"items": [*checkin.skipped.get("items", []), item.id]}
        value = None
    elif item.type == "text":
        raise UserError("common.stale_button")
    else:
        try:
            value = validate_answer(item, raw)
        except InvalidAnswer:
            raise UserError("common.stale_button") from None
        checkin.answers = {**checkin.answers, item.id: value}
        if item.id == "ok_to_raise" or (item.type == "yes_no" and item.requires):
            checkin.ok_to_raise = value == "yes"
    return await _after_answer(
        uow, partner, checkin, instruments, item, value, now, delete=[question_message_id]
    )


async def answer_note(
    uow: UnitOfWork,
    partner: Partner,
    cipher: Cipher,
    text: str,
    now: datetime,
    *,
    user_message_id: int | None,
) -> Step:
    """The free-text note, typed while the note item is current."""
    checkin = await open_checkin(uow, partner)
    if checkin is None:
        raise UserError("checkin.no_open")
    config = await _config(uow, partner)
    instruments = _instruments(config, checkin)
    item = _current(instruments, checkin)
    if item is None or item.type != "text":
        raise UserError("checkin.no_open")
    try:
        note = validate_answer(item, text)
    except InvalidAnswer as error:
        raise UserError(error.key, **error.params) from None
    assert isinstance(note, str)
    checkin.note_ciphertext = cipher.encrypt(note)
    checkin.answers = {**checkin.answers, item.id: WRITTEN}
    step = await _after_answer(
        uow,
        partner,
        checkin,
        instruments,
        item,
        note,
        now,
        delete=[user_message_id, checkin.message_ids.get("last")],
    )
    return step


async def _after_answer(
    uow: UnitOfWork,
    partner: Partner,
    checkin: CheckIn,
    instruments: list[Instrument],
    item: Item,
    value: object,
    now: datetime,
    *,
    delete: list[int | None],
) -> Step:
    step = Step(delete=[d for d in delete if d] if partner.discreet else [])
    risk = None
    if item.type == "text" and isinstance(value, str):
        result = screen_text(value, partner.language)
        if result.flagged:
            risk = (result.kinds, result.phrase_ids)
    elif isinstance(value, str) and is_risk_answer(item, value):
        risk = (frozenset({"safety_question"}), frozenset())
    await uow.flush()
    if risk is not None:
        checkin.risk = True
        step.messages.append(
            await raise_alert(
                uow,
                partner,
                kinds=risk[0],
                source="checkin",
                source_id=checkin.id,
                phrase_ids=risk[1],
                now=now,
            )
        )
    following = _current(instruments, checkin)
    if following is None:
        finished = await _finish(uow, partner, checkin, now)
        step.messages.extend(finished.messages)
        step.finished = True
        return step
    await uow.commit()
    step.messages.append(item_message(instruments, checkin, following, partner.language))
    step.awaiting_note = following.type == "text"
    return step


async def _finish(uow: UnitOfWork, partner: Partner, checkin: CheckIn, now: datetime) -> Step:
    checkin.status = "complete"
    checkin.completed_at = now
    if checkin.ok_to_raise is None:
        checkin.ok_to_raise = False
    await uow.commit()
    key = "checkin.thanks_discreet" if partner.discreet else "checkin.thanks"
    return Step([Outgoing(msg(partner.language, key))], finished=True)


async def remember_question(uow: UnitOfWork, partner: Partner, message_id: int) -> None:
    """Keep the id of the note question on screen: discreet mode deletes it once the typed
    note is stored (a button answer brings its own question's id; a typed one cannot)."""
    checkin = await open_checkin(uow, partner)
    if checkin is not None:
        checkin.message_ids = {**checkin.message_ids, "last": message_id}
        await uow.commit()


async def expire_stale(uow: UnitOfWork, now: datetime) -> int:
    """Store check-ins left unfinished for 12 hours as partial."""
    result = await uow.session.execute(
        update(CheckIn)
        .where(CheckIn.status == "open", CheckIn.started_at <= now - STALE_AFTER)
        .values(status="partial", completed_at=now)
        .execution_options(synchronize_session=False)
    )
    await uow.commit()
    return int(result.rowcount)  # type: ignore[attr-defined]


async def awaits_note(uow: UnitOfWork, partner: Partner, checkin: CheckIn) -> bool:
    """Whether the check-in's current item is the free-text note."""
    config = await _config(uow, partner)
    item = _current(_instruments(config, checkin), checkin)
    return item is not None and item.type == "text"


async def start_scheduled(
    uow: UnitOfWork, partner: Partner, delivery_id: int, now: datetime
) -> Step:
    """The Start button of a scheduled check-in: only the partner it was sent to may use it."""
    delivery = await uow.session.get(Delivery, delivery_id)
    if delivery is None or delivery.partner_id != partner.id or delivery.kind != "checkin":
        raise UserError("common.stale_button")
    return await start(uow, partner, now, delivery_id=delivery.id)


class CheckinInvitation(KindRenderer):
    """A scheduled check-in: an invitation with a Start button (neutral in discreet mode)."""

    async def render(
        self, uow: UnitOfWork, delivery: Delivery, person: Partner | Therapist
    ) -> Outgoing | None:
        if not isinstance(person, Partner) or not await deliverable(uow, person, delivery):
            return None
        lang = person.language
        if person.discreet:
            text, label = msg(lang, "checkin.discreet_ready"), msg(lang, "checkin.open")
        else:
            text, label = msg(lang, "checkin.intro"), msg(lang, "checkin.start")
        button = Button(label, callbacks.encode("cis", delivery.id))
        return Outgoing(text, ((button,),))


async def deliverable(uow: UnitOfWork, partner: Partner, delivery: Delivery) -> bool:
    """A scheduled message goes only to an active partner of an active, unpaused couple."""
    if not partner.active:
        return False
    if partner.paused_until is not None and partner.paused_until > delivery.due_at:
        return False
    couple = await uow.couples.get(partner.couple_id)
    return couple is not None and couple.status == "active" and not couple.schedule_paused


# --- the Mini App: every item on one page, through the chat's own steps ----------------------


@dataclass(frozen=True)
class CheckinForm:
    """What the one-page check-in shows: the open check-in and its items still to answer."""

    checkin_id: int
    title: str
    items: tuple[Item, ...]
    answered: int  # items already answered or skipped in the chat, which the page keeps
    risk: bool


async def open_form(
    uow: UnitOfWork, partner: Partner, now: datetime, *, delivery_id: int | None = None
) -> CheckinForm | None:
    """Start (or resume) the check-in exactly as the chat does, for the one-page form.

    None when resuming found nothing left to ask (the check-in is now complete).
    """
    if delivery_id is None:
        await start(uow, partner, now)
    else:
        await start_scheduled(uow, partner, delivery_id, now)
    checkin = await open_checkin(uow, partner)
    if checkin is None:
        return None
    return await _form(uow, partner, checkin)


async def open_form_by_id(uow: UnitOfWork, partner: Partner, checkin_id: int) -> CheckinForm:
    """The form of the partner's own open check-in (a stale or foreign id is refused)."""
    return await _form(uow, partner, await _owned_open(uow, partner, checkin_id))


async def _form(uow: UnitOfWork, partner: Partner, checkin: CheckIn) -> CheckinForm:
    instruments = _instruments(await _config(uow, partner), checkin)
    skipped = set(checkin.skipped.get("items", []))
    done = set(checkin.answers) | skipped
    items = tuple(
        item
        for item in _all_items(instruments)
        if item.id not in done and (item.requires is None or item.requires not in skipped)
    )
    return CheckinForm(
        checkin_id=checkin.id,
        title=instruments[0].title_in(partner.language),
        items=items,
        answered=len(done),
        risk=checkin.risk,
    )


async def apply_all(
    uow: UnitOfWork,
    partner: Partner,
    cipher: Cipher,
    checkin_id: int,
    raw: Mapping[str, str],
    now: datetime,
) -> Step:
    """Every remaining item at once (the Mini App); a blank answer is a Skip.

    Each item goes through :func:`answer_button` or :func:`answer_note`, the chat's own
    steps, so the stored row, the encryption and the screening are the chat's. Every
    answer is checked first: a refusal (UserError) changes nothing. Nothing is committed:
    the caller commits once, with whatever else the sending changes. The messages returned
    are the chat's (crisis resources first when risk was found, then the thanks).
    """
    checkin = await _owned_open(uow, partner, checkin_id)
    # A second submission of the same page waits here (PostgreSQL) and then finds it done.
    await uow.session.refresh(checkin, with_for_update=True)
    if checkin.status != "open" or checkin.partner_id != partner.id:
        raise UserError("common.stale_button")
    latest = await open_checkin(uow, partner)
    if latest is None or latest.id != checkin.id:
        raise UserError("common.stale_button")
    instruments = _instruments(await _config(uow, partner), checkin)
    for item in _all_items(instruments):
        value = raw.get(item.id, "")
        if value.strip():
            try:
                validate_answer(item, value)
            except InvalidAnswer as error:
                raise UserError(error.key, **error.params) from None
    batch = OneCommit(uow)
    step = Step()
    while (current := _current(instruments, checkin)) is not None:
        value = raw.get(current.id, "")
        if current.type == "text" and value.strip():
            done = await answer_note(batch, partner, cipher, value, now, user_message_id=None)
        else:
            done = await answer_button(
                batch,
                partner,
                cipher,
                checkin.id,
                current.id,
                value.strip() or SKIP,
                now,
                question_message_id=None,
            )
        if done.finished:
            step.messages.extend(done.messages)
            step.finished = True
        elif len(done.messages) > 1:  # crisis resources come before the next question
            step.messages.extend(done.messages[:-1])
    return step
