"""The Mini App's prompt page: a scheduled prompt answered privately, on one page.

A text prompt (hope, skill, couple space) takes the answer and, as the chat asks
afterwards, "OK to raise in session?" (couple space: "share with your partner?"); a skill
follow-up takes "did you try it?", its optional words and "OK to raise?". Sending the
page stores it through the chat's own steps (``prompts.reply_text``, ``choose``,
``followup_words``, ``set_ok_to_raise``, ``set_share``), in one transaction. A draft is
kept on the server with its words only encrypted; words in it are screened as they
arrive (crisis resources on the page at once, the therapist alerted once, the hold set),
and the alert becomes the reply's when it is sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from bot.channels.base import Outgoing
from bot.core.instruments import TEXT_ANSWER_LIMIT, Choice, InvalidAnswer, Item, validate_answer
from bot.core.safety import CrisisResource
from bot.locales import t
from bot.services import groups, prompts
from bot.services.crypto import Cipher
from bot.services.miniapp import (
    crisis_resources,
    draft_values,
    drop_draft,
    find_draft,
    keep_draft,
    with_page_button,
)
from bot.services.outbox import notify
from bot.services.safety_flow import screen_kept_text
from bot.services.texts import UserError
from bot.services.usecase import OneCommit
from db.models import Delivery, Partner, Response, Therapist
from db.uow import UnitOfWork

PROMPT_PAGE = "prompt"
KEPT = "_kept"  # the draft's note: the row keeping words that raised an alert
TEXT, CHOICE, RAISE, SHARE = "text", "choice", "ok_to_raise", "share"


@dataclass(frozen=True)
class PromptPage:
    """What the prompt page shows, in the partner's language."""

    language: str
    delivery_id: int
    prompt: str  # the prompt's own words
    items: tuple[Item, ...]
    values: Mapping[str, str]
    resources: tuple[CrisisResource, ...]
    show_crisis: bool


@dataclass(frozen=True)
class PromptSent:
    """What sending the page did, and the chat's own last word for it (a share's outcome)."""

    language: str
    said: str
    show_crisis: bool
    resources: tuple[CrisisResource, ...]


def _yes_no(item_id: str, language: str, question: str, yes: str, no: str, **more: str) -> Item:
    return Item(
        id=item_id,
        type="yes_no",
        text={language: t(language, question)},
        choices=(
            Choice("yes", {language: t(language, yes)}),
            Choice("no", {language: t(language, no)}),
        ),
        requires=more.get("requires"),
    )


async def _items(uow: UnitOfWork, partner: Partner, delivery: Delivery) -> tuple[str, list[Item]]:
    """The prompt's words and the page's questions: those the chat asks, in its order."""
    lang = partner.language
    library = await prompts.library_for(uow, partner)
    prompt = library.get(delivery.key)
    words = library.text(prompt.key, lang, name=partner.display_name or "")
    raise_item = _yes_no(
        RAISE, lang, "webapp.raise_question", "prompts.raise_yes", "prompts.raise_no", requires=TEXT
    )
    if prompt.answer == "buttons":
        items = [
            Item(
                id=CHOICE,
                type="choice",
                text={lang: words},
                choices=tuple(
                    Choice(c, {lang: t(lang, f"schedules.choice.{c}")}) for c in prompt.choices
                ),
            )
        ]
        if prompt.optional_text:
            items.append(Item(id=TEXT, type="text", text={lang: t(lang, "webapp.followup_words")}))
            items.append(raise_item)
        return words, items
    answer = Item(id=TEXT, type="text", text={lang: t(lang, "webapp.reply_label")})
    if delivery.kind != "couple_space":
        return words, [answer, raise_item]
    linked = await groups.group_is_linked(uow, partner.couple_id)
    question = "webapp.share_question_group" if linked else "webapp.share_question"
    share = _yes_no(SHARE, lang, question, "prompts.share_yes", "prompts.share_no", requires=TEXT)
    return words, [answer, share]


async def prompt_page(
    uow: UnitOfWork, partner: Partner, telegram_user_id: int, cipher: Cipher, delivery_id: int
) -> PromptPage:
    """Open the page of a prompt sent to this partner and not answered yet, with its draft."""
    delivery = await prompts.unanswered_delivery(uow, partner, delivery_id)
    words, items = await _items(uow, partner, delivery)
    draft = await find_draft(uow, partner, telegram_user_id, PROMPT_PAGE, delivery.id)
    await uow.commit()  # a previous holder's draft, if any, is gone
    return PromptPage(
        language=partner.language,
        delivery_id=delivery.id,
        prompt=words,
        items=tuple(items),
        values=draft_values(draft, cipher),
        resources=await crisis_resources(uow, partner),
        show_crisis=draft is not None and KEPT in draft.choices,
    )


def _choices(items: list[Item], raw: Mapping[str, str]) -> dict[str, str]:
    """The page's valid choices (a draft keeps only what could be sent)."""
    out: dict[str, str] = {}
    for item in items:
        value = raw.get(item.id, "").strip()
        if item.type == "text" or not value:
            continue
        try:
            out[item.id] = str(validate_answer(item, value))
        except InvalidAnswer:
            continue
    return out


async def save_prompt_draft(
    uow: UnitOfWork,
    partner: Partner,
    telegram_user_id: int,
    cipher: Cipher,
    delivery_id: int,
    raw: Mapping[str, str],
    now: datetime,
) -> bool:
    """Keep the half-filled page; True when the crisis resources must show."""
    delivery = await prompts.unanswered_delivery(uow, partner, delivery_id)
    _, items = await _items(uow, partner, delivery)
    text = raw.get(TEXT, "")[:TEXT_ANSWER_LIMIT] if any(i.id == TEXT for i in items) else ""
    texts = {TEXT: text} if text.strip() else {}
    draft = await keep_draft(
        uow,
        partner,
        telegram_user_id,
        cipher,
        PROMPT_PAGE,
        delivery.id,
        _choices(items, raw),
        texts,
        now,
    )
    if text.strip():
        kept = draft.choices.get(KEPT)
        screened = await screen_kept_text(
            uow, partner, cipher, text, now, kept_id=kept if isinstance(kept, int) else None
        )
        if screened is not None:
            draft.choices = {**draft.choices, KEPT: screened[0]}
    crisis = KEPT in draft.choices
    await uow.commit()
    return crisis


def _checked(items: list[Item], raw: Mapping[str, str]) -> dict[str, str]:
    """Every answer checked before anything is stored; a refusal changes nothing."""
    answers: dict[str, str] = {}
    for item in items:
        value = raw.get(item.id, "")
        if not value.strip():
            continue
        try:
            answers[item.id] = str(validate_answer(item, value))
        except InvalidAnswer as error:
            raise UserError(error.key, **error.params) from None
    if any(i.id == CHOICE for i in items):
        if CHOICE not in answers:
            raise UserError("webapp.choose_one")
    elif TEXT not in answers:  # a text prompt is answered by its words
        raise UserError("webapp.reply_empty")
    return answers


async def send_prompt(
    uow: UnitOfWork,
    partner: Partner,
    telegram_user_id: int,
    cipher: Cipher,
    delivery_id: int,
    raw: Mapping[str, str],
    now: datetime,
) -> PromptSent:
    """Store the page through the chat's own steps; the chat gets only the neutral note."""
    delivery = await prompts.unanswered_delivery(uow, partner, delivery_id, lock=True)
    _, items = await _items(uow, partner, delivery)
    answers = _checked(items, raw)
    draft = await find_draft(uow, partner, telegram_user_id, PROMPT_PAGE, delivery.id)
    kept = draft.choices.get(KEPT) if draft is not None else None
    kept_id = kept if isinstance(kept, int) else None
    text = raw.get(TEXT, "")
    batch = OneCommit(uow)  # the chat's steps commit one by one; here they go together
    if CHOICE in answers:
        await prompts.choose(batch, partner, delivery.id, answers[CHOICE], now)
        response = await _response(uow, delivery)
        if TEXT in answers:
            await prompts.followup_words(
                batch, partner, cipher, response.id, text, now, screened_as=kept_id
            )
        else:  # no words: the chat stops waiting for them
            await uow.conversations.clear(telegram_user_id, only=prompts.TYPED_ANSWERS)
    else:
        await prompts.reply_text(
            batch, partner, cipher, delivery, text, now, message_id=None, screened_as=kept_id
        )
        response = await _response(uow, delivery)
    said = t(partner.language, "webapp.reply_saved_body")
    if answers.get(RAISE) and response.text_ciphertext is not None:
        await prompts.set_ok_to_raise(batch, partner, response.id, answers[RAISE])
    if answers.get(SHARE):
        said_key = await prompts.record_share(batch, partner, response.id, answers[SHARE], now)
        said = t(partner.language, said_key)
    await drop_draft(uow, partner, PROMPT_PAGE, delivery.id)
    await notify(  # the same neutral note for every page reply, never its words
        uow,
        partner,
        "prompts.noted",
        dedupe_key=f"webapp:prompt:{delivery.id}",
        now=now,
        couple_id=partner.couple_id,
    )
    risk = response.risk or kept_id is not None
    await uow.commit()
    return PromptSent(partner.language, said, risk, await crisis_resources(uow, partner))


async def _response(uow: UnitOfWork, delivery: Delivery) -> Response:
    response = await uow.session.scalar(
        select(Response).where(Response.delivery_id == delivery.id).limit(1)
    )
    assert response is not None
    return response


class MiniAppPromptRenderer(prompts.PromptRenderer):
    """A scheduled prompt with a button that opens its page too (the chat's way stays)."""

    def __init__(self, webapp_url: str) -> None:
        self.webapp_url = webapp_url.rstrip("/")

    async def render(
        self, uow: UnitOfWork, delivery: Delivery, person: Partner | Therapist
    ) -> Outgoing | None:
        message = await super().render(uow, delivery, person)
        if message is None or not isinstance(person, Partner):
            return message
        return with_page_button(message, person, f"{self.webapp_url}/prompt?d={delivery.id}")
