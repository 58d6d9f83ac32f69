"""Scheduled prompts (hope, skill, follow-up, couple space) and the partners' replies.

A reply is private: stored encrypted, screened for crisis language like a note. A
couple-space answer is revealed to the other partner only when both have answered and
both chose to share; otherwise neither sees the other's, and both are told so in the
same words.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select

from bot.channels.base import Button, Outgoing, Sent
from bot.core import callbacks
from bot.core.instruments import TEXT_ANSWER_LIMIT
from bot.core.safety import screen_text
from bot.services import groups
from bot.services.checkins import deliverable
from bot.services.crypto import Cipher
from bot.services.delivery_render import DISCREET_NOTICES, KindRenderer, discreet_note
from bot.services.outbox import enqueue
from bot.services.practice_config import parse_practice_config
from bot.services.safety_flow import adopt_kept_text, raise_alert
from bot.services.texts import UserError, msg
from db.models import Delivery, Partner, Response, Therapist
from db.uow import UnitOfWork
from schedules.library import PromptLibrary
from schedules.planner import place_in_window

TEXT_KINDS = ("hope", "skill", "couple_space")
REPLY_WINDOW = timedelta(hours=72)
SHARE_WINDOW = timedelta(days=7)


async def library_for(uow: UnitOfWork, partner: Partner) -> PromptLibrary:
    """The prompt library of the partner's practice."""
    couple = await uow.couples.get(partner.couple_id)
    assert couple is not None
    practice = await uow.practices.get(couple.practice_id)
    assert practice is not None
    return parse_practice_config(practice.config_toml).library


def prompt_message(library: PromptLibrary, delivery: Delivery, partner: Partner) -> Outgoing:
    """A prompt in the partner's language, with its buttons or a reply hint."""
    lang = partner.language
    prompt = library.get(delivery.key)
    text = html.escape(library.text(prompt.key, lang, name=partner.display_name or ""), False)
    if prompt.answer == "buttons":
        row = tuple(
            Button(msg(lang, f"schedules.choice.{c}"), callbacks.encode("pr", delivery.id, c))
            for c in prompt.choices
        )
        return Outgoing(text, (row,))
    hint = "prompts.space_hint" if prompt.kind == "couple_space" else "prompts.reply_hint"
    return Outgoing(f"{text}\n\n{msg(lang, hint)}")


TYPED_ANSWERS = ("settings_tz", "followup_words")
"""Conversation states that take the partner's next typed text as their answer."""


class PromptRenderer(KindRenderer):
    """Renders a scheduled prompt; in discreet mode a neutral note with an Open button."""

    async def render(
        self, uow: UnitOfWork, delivery: Delivery, person: Partner | Therapist
    ) -> Outgoing | None:
        if not isinstance(person, Partner) or not await deliverable(uow, person, delivery):
            return None
        if delivery.kind == "skill_followup" and not await _skill_was_sent(uow, delivery):
            return None  # "Did you try it?" only about a skill the partner received
        if person.discreet:
            return discreet_note(person, "po", delivery.id)
        return prompt_message(await library_for(uow, person), delivery, person)

    async def on_sent(self, uow: UnitOfWork, delivery: Delivery, sent: Sent) -> None:
        """A new question ends a typed answer still pending; couple-space ones go to the group.

        After a new prompt, the partner's next words answer it, not a time zone asked for
        in ``/settings`` or a follow-up's optional words from before.
        """
        partner = await uow.partners.get(delivery.partner_id or 0)
        if partner is not None and partner.telegram_user_id is not None:
            await uow.conversations.clear(partner.telegram_user_id, only=TYPED_ANSWERS)
        await groups.post_space_prompt(uow, delivery)


async def _skill_was_sent(uow: UnitOfWork, followup: Delivery) -> bool:
    skill = followup.params.get("skill")
    if not isinstance(skill, str):
        return True  # queued by hand (or before follow-ups named their skill)
    found = await uow.session.scalar(
        select(Delivery.id)
        .where(
            Delivery.partner_id == followup.partner_id,
            Delivery.kind == "skill",
            Delivery.key == skill,
            Delivery.status == "sent",
            Delivery.sent_at < followup.due_at,
        )
        .limit(1)
    )
    return found is not None


async def _other_half_coming(uow: UnitOfWork, partner: Partner, response: Response) -> bool:
    """Whether the other partner got, or will get, the same couple-space question."""
    mine = await uow.session.get(Delivery, response.delivery_id) if response.delivery_id else None
    query = select(Delivery).where(
        Delivery.couple_id == partner.couple_id,
        Delivery.partner_id != partner.id,
        Delivery.kind == "couple_space",
        Delivery.key == response.prompt_key,
        Delivery.status.in_(("pending", "claimed", "sent")),
    )
    if mine is not None and mine.local_date is not None:
        query = query.where(Delivery.local_date == mine.local_date)
    else:
        query = query.where(Delivery.due_at >= response.created_at - SHARE_WINDOW)
    for half in await uow.session.scalars(query):
        other = await uow.partners.get(half.partner_id or 0)
        if other is None or not other.active:
            continue
        if half.status == "sent" or await deliverable(uow, other, half):
            return True
    return False


class RevealRenderer(KindRenderer):
    """The outcome of a couple-space prompt: the other's answer, or that both stay private."""

    def __init__(self, cipher: Cipher) -> None:
        self.cipher = cipher

    async def render(
        self, uow: UnitOfWork, delivery: Delivery, person: Partner | Therapist
    ) -> Outgoing | None:
        if not isinstance(person, Partner) or not person.active:
            return None
        if person.discreet:  # the other's words only once the partner opens the note
            return discreet_note(person, "ro", delivery.id)
        return await reveal_message(uow, self.cipher, delivery, person)


async def reveal_message(
    uow: UnitOfWork, cipher: Cipher, delivery: Delivery, person: Partner
) -> Outgoing:
    """The outcome of a couple-space prompt as the partner reads it."""
    library = await library_for(uow, person)
    title = library.text(delivery.key, person.language, name="").strip()
    if delivery.params.get("outcome") != "shared":
        return Outgoing(msg(person.language, "prompts.not_revealed", prompt=title))
    other = await uow.session.get(Response, int(delivery.params.get("response_id", 0)))
    if other is None or other.text_ciphertext is None or other.share is not True or other.risk:
        return Outgoing(msg(person.language, "prompts.not_revealed", prompt=title))
    answer = cipher.decrypt(other.text_ciphertext)
    return Outgoing(msg(person.language, "prompts.revealed", prompt=title, answer=answer))


async def open_discreet(
    uow: UnitOfWork, partner: Partner, cipher: Cipher, action: str, delivery_id: int
) -> Outgoing:
    """The Open button of a discreet reveal (``ro``) or notice (``no``): its full text."""
    delivery = await uow.session.get(Delivery, delivery_id)
    kind = "reveal" if action == "ro" else "notice"
    if (
        delivery is None
        or delivery.partner_id != partner.id
        or delivery.status != "sent"
        or delivery.kind != kind
    ):
        raise UserError("common.stale_button")
    if kind == "reveal":
        return await reveal_message(uow, cipher, delivery, partner)
    couple = await uow.couples.get(partner.couple_id)
    if delivery.key not in DISCREET_NOTICES or couple is None or not couple.shared_goal:
        raise UserError("common.stale_button")
    # The goal as it stands now (an ended row keeps no words of it).
    return Outgoing(msg(partner.language, delivery.key, goal=couple.shared_goal))


async def _owned_delivery(uow: UnitOfWork, partner: Partner, delivery_id: int) -> Delivery:
    delivery = await uow.session.get(Delivery, delivery_id)
    if (
        delivery is None
        or delivery.partner_id != partner.id
        or delivery.status != "sent"
        or delivery.kind not in (*TEXT_KINDS, "skill_followup")
    ):
        raise UserError("common.stale_button")
    return delivery


async def unanswered_delivery(
    uow: UnitOfWork, partner: Partner, delivery_id: int, *, lock: bool = False
) -> Delivery:
    """A prompt sent to this partner and not answered yet (a Mini App page answers it)."""
    delivery = await _owned_delivery(uow, partner, delivery_id)
    if lock:  # a second submission of the same page waits here (PostgreSQL)
        await uow.session.refresh(delivery, with_for_update=True)
    if await _answered(uow, delivery):
        raise UserError("common.stale_button")
    return delivery


async def reveal_discreet(uow: UnitOfWork, partner: Partner, delivery_id: int) -> Outgoing:
    """The Open button of a discreet prompt: the prompt itself, to edit into the message."""
    delivery = await _owned_delivery(uow, partner, delivery_id)
    return prompt_message(await library_for(uow, partner), delivery, partner)


async def _answered(uow: UnitOfWork, delivery: Delivery) -> bool:
    found = await uow.session.scalar(
        select(Response.id).where(Response.delivery_id == delivery.id).limit(1)
    )
    return found is not None


async def open_prompt(
    uow: UnitOfWork, partner: Partner, now: datetime, reply_to: int | None
) -> Delivery | None:
    """The prompt a text answers: the one replied to, else the latest unanswered one."""
    query = select(Delivery).where(
        Delivery.partner_id == partner.id,
        Delivery.status == "sent",
        Delivery.kind.in_(TEXT_KINDS),
    )
    if reply_to is not None:
        replied = await uow.session.scalar(query.where(Delivery.message_id == reply_to))
        if replied is not None and not await _answered(uow, replied):
            return replied
    latest = await uow.session.scalar(
        query.where(Delivery.sent_at >= now - REPLY_WINDOW).order_by(Delivery.sent_at.desc())
    )
    if latest is None or await _answered(uow, latest):
        return None
    return latest


@dataclass
class Replied:
    """What storing a reply produced."""

    messages: list[Outgoing] = field(default_factory=list)
    delete: list[int] = field(default_factory=list)


async def _screen(
    uow: UnitOfWork,
    partner: Partner,
    response: Response,
    text: str,
    now: datetime,
    screened_as: int | None = None,
) -> Outgoing | None:
    result = screen_text(text, partner.language)
    if not result.flagged:
        return None
    response.risk = True
    if screened_as is not None:  # first seen in a Mini App draft: that alert is this reply's
        await adopt_kept_text(uow, partner, screened_as, response)
    return await raise_alert(
        uow,
        partner,
        kinds=result.kinds,
        source="response",
        source_id=response.id,
        phrase_ids=result.phrase_ids,
        now=now,
    )


def _clean(text: str) -> str:
    cleaned = "".join(ch for ch in text if ch in "\n\t" or ch.isprintable()).strip()
    if not cleaned:
        raise UserError("instruments.answer_empty")
    if len(cleaned) > TEXT_ANSWER_LIMIT:
        raise UserError("instruments.answer_too_long", limit=TEXT_ANSWER_LIMIT)
    return cleaned


async def reply_text(
    uow: UnitOfWork,
    partner: Partner,
    cipher: Cipher,
    delivery: Delivery,
    text: str,
    now: datetime,
    *,
    message_id: int | None,
    screened_as: int | None = None,
) -> Replied:
    """Store a text answer to a prompt; couple-space answers then ask about sharing.

    ``screened_as``: the row keeping these words' earlier crisis screening (a Mini App
    draft), whose alert becomes this reply's instead of a second one.
    """
    text = _clean(text)
    response = Response(
        delivery_id=delivery.id,
        partner_id=partner.id,
        couple_id=partner.couple_id,
        prompt_key=delivery.key,
        kind=delivery.kind,
        text_ciphertext=cipher.encrypt(text),
        created_at=now,
    )
    uow.session.add(response)
    await uow.flush()
    out = Replied()
    crisis = await _screen(uow, partner, response, text, now, screened_as)
    if crisis is not None:
        out.messages.append(crisis)
    lang = partner.language
    if delivery.kind == "couple_space":
        row = (
            Button(msg(lang, "prompts.share_yes"), callbacks.encode("sh", response.id, "yes")),
            Button(msg(lang, "prompts.share_no"), callbacks.encode("sh", response.id, "no")),
        )
        # With a linked group, sharing posts there too: the question says so.
        linked = await groups.group_is_linked(uow, partner.couple_id)
        question = "group.share_question" if linked else "prompts.share_question"
        out.messages.append(Outgoing(msg(lang, question), (row,)))
    else:
        out.messages.append(_raise_question(lang, response))
    if partner.discreet:
        out.delete = [m for m in (message_id, delivery.message_id) if m]
    await uow.commit()
    return out


def _raise_question(lang: str, response: Response) -> Outgoing:
    row = (
        Button(msg(lang, "prompts.raise_yes"), callbacks.encode("rr", response.id, "yes")),
        Button(msg(lang, "prompts.raise_no"), callbacks.encode("rr", response.id, "no")),
    )
    return Outgoing(msg(lang, "prompts.saved_raise"), (row,))


async def choose(
    uow: UnitOfWork, partner: Partner, delivery_id: int, choice: str, now: datetime
) -> Replied:
    """A button answer (a follow-up's Yes / Partly / Not yet): stored, then optional words."""
    delivery = await _owned_delivery(uow, partner, delivery_id)
    library = await library_for(uow, partner)
    prompt = library.get(delivery.key)
    if choice not in prompt.choices or await _answered(uow, delivery):
        raise UserError("common.stale_button")
    response = Response(
        delivery_id=delivery.id,
        partner_id=partner.id,
        couple_id=partner.couple_id,
        prompt_key=delivery.key,
        kind=delivery.kind,
        choice=choice,
        created_at=now,
    )
    uow.session.add(response)
    await uow.flush()
    # Discreet: the question about the skill goes once it is answered.
    delete = [delivery.message_id] if partner.discreet and delivery.message_id else []
    if prompt.optional_text and partner.telegram_user_id is not None:
        await uow.conversations.set(
            partner.telegram_user_id, "followup_words", {"response_id": response.id}, now
        )
        await uow.commit()
        return Replied([Outgoing(msg(partner.language, "schedules.optional_text"))], delete)
    await uow.commit()
    return Replied([Outgoing(msg(partner.language, "prompts.noted"))], delete)


async def followup_words(
    uow: UnitOfWork,
    partner: Partner,
    cipher: Cipher,
    response_id: int,
    text: str,
    now: datetime,
    *,
    message_id: int | None = None,
    screened_as: int | None = None,
) -> Replied:
    """The optional words after a follow-up's button (``screened_as`` as in reply_text)."""
    response = await uow.session.get(Response, response_id)
    assert partner.telegram_user_id is not None
    await uow.conversations.clear(partner.telegram_user_id)
    if response is None or response.partner_id != partner.id or response.text_ciphertext:
        await uow.commit()
        raise UserError("prompts.no_open")
    text = _clean(text)
    response.text_ciphertext = cipher.encrypt(text)
    out = Replied()
    crisis = await _screen(uow, partner, response, text, now, screened_as)
    if crisis is not None:
        out.messages.append(crisis)
    out.messages.append(_raise_question(partner.language, response))
    if partner.discreet and message_id:
        out.delete = [message_id]  # the typed words leave the chat once stored
    await uow.commit()
    return out


async def _own_response(uow: UnitOfWork, partner: Partner, response_id: int) -> Response:
    response = await uow.session.get(Response, response_id)
    if response is None or response.partner_id != partner.id:
        raise UserError("common.stale_button")
    return response


async def set_ok_to_raise(
    uow: UnitOfWork, partner: Partner, response_id: int, choice: str
) -> Outgoing:
    """Whether the therapist may bring a reply up in session."""
    response = await _own_response(uow, partner, response_id)
    if choice not in ("yes", "no"):
        raise UserError("common.stale_button")
    response.ok_to_raise = choice == "yes"
    await uow.commit()
    return Outgoing(msg(partner.language, "prompts.noted"))


async def set_share(
    uow: UnitOfWork, partner: Partner, response_id: int, choice: str, now: datetime
) -> Outgoing:
    """A couple-space answer's share choice; once both partners decided, both hear the outcome."""
    return Outgoing(
        msg(partner.language, await record_share(uow, partner, response_id, choice, now))
    )


async def record_share(
    uow: UnitOfWork, partner: Partner, response_id: int, choice: str, now: datetime
) -> str:
    """:func:`set_share`'s work; returns the catalog key of what the partner is told."""
    response = await _own_response(uow, partner, response_id)
    if response.kind != "couple_space" or response.share is not None or choice not in ("yes", "no"):
        raise UserError("common.stale_button")
    response.share = choice == "yes"  # sharing never changes what the therapist may raise
    # The other half is the current holder of the other seat's answer, never a previous one.
    others = [p.id for p in await uow.partners.of_couple(partner.couple_id) if p.id != partner.id]
    other = await uow.session.scalar(
        select(Response)
        .where(
            Response.couple_id == partner.couple_id,
            Response.partner_id.in_(others),
            Response.kind == "couple_space",
            Response.prompt_key == response.prompt_key,
            Response.created_at >= now - SHARE_WINDOW,
        )
        .order_by(Response.created_at.desc())
        .limit(1)
    )
    if other is not None and other.share is not None:
        await _conclude(uow, response, other, now)
        said = "prompts.share_noted_both"  # the outcome follows: no "I'll let you know"
    elif other is not None or await _other_half_coming(uow, partner, response):
        said = "prompts.share_noted"
    else:
        said = "prompts.share_noted_alone"  # a reveal is promised only when one can come
    await uow.commit()
    return said


async def _conclude(uow: UnitOfWork, first: Response, second: Response, now: datetime) -> None:
    """Tell both partners the outcome, in the same words; reveal only if both shared."""
    # An answer that raised a safety alert is never revealed, whatever was chosen: nothing
    # about a risk disclosure reaches the other partner (both hear the same "private").
    shared = first.share and second.share and not (first.risk or second.risk)
    outcome = "shared" if shared else "private"
    pair = sorted((first.id, second.id))
    for mine, theirs in ((first, second), (second, first)):
        partner = await uow.partners.get(mine.partner_id)
        assert partner is not None
        # Quiet hours and the daily maximum hold for a reveal too: it waits for the window.
        due, local_date, _ = await place_in_window(uow, partner, now)
        await enqueue(
            uow,
            partner,
            kind="reveal",
            key=mine.prompt_key,
            dedupe_key=f"reveal:{pair[0]}:{pair[1]}",
            due_at=due,
            couple_id=partner.couple_id,
            params={"outcome": outcome, "response_id": theirs.id},
            local_date=local_date,
        )
    if outcome == "shared":
        await groups.post_shared_answers(uow, first, second, now)
