"""The Mini App's use cases: whose page it is, the one-page check-in, its server-side draft.

The web layer (bot/web) validates Telegram's ``initData`` and hands over the Telegram
user id it vouches for; everything else is decided here, from the database. A draft is
what a half-filled page holds: kept on the server (choices as item ids and scores, free
text only encrypted), tied to the person who wrote it, gone once the page is sent.
Free text in a draft is screened as it arrives, like every text a partner sends: crisis
words or a "yes" to the safety question show the resources at once, alert the therapist
and set the hold, and sending the page afterwards does not alert a second time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import delete, select

from bot.channels.base import Button, Outgoing
from bot.core.instruments import TEXT_ANSWER_LIMIT, InvalidAnswer, is_risk_answer, validate_answer
from bot.core.safety import CrisisResource, screen_text
from bot.services import checkins
from bot.services.checkins import CheckinForm, CheckinInvitation
from bot.services.crypto import Cipher
from bot.services.outbox import notify
from bot.services.practice_config import crisis_lines_for
from bot.services.safety_flow import raise_alert
from bot.services.texts import UserError, msg
from db.models import CheckIn, Delivery, Partner, Therapist, WebAppDraft
from db.uow import UnitOfWork

CHECKIN_PAGE = "checkin"
DRAFT_LIFETIME = checkins.STALE_AFTER


@dataclass(frozen=True)
class CheckinPage:
    """What the check-in page shows, in the partner's language."""

    language: str
    form: CheckinForm | None  # None: nothing is left to answer; the check-in is saved
    values: Mapping[str, str]  # the draft: raw answers by item id
    resources: tuple[CrisisResource, ...]
    show_crisis: bool


@dataclass(frozen=True)
class Sent:
    """What sending the page did."""

    language: str
    show_crisis: bool
    resources: tuple[CrisisResource, ...]


async def partner_of(
    uow: UnitOfWork, telegram_user_id: int, *, in_programme: bool = True
) -> Partner:
    """The active partner behind a Telegram user id; anyone else is refused kindly.

    ``in_programme``: for answering, the couple must still be in the programme. The
    couple is held for the rest of the transaction, as for an update from the chat.
    """
    await uow.hold_couple_of(telegram_user_id)
    partner = await uow.partners.by_user(telegram_user_id)
    if partner is None or not partner.active:
        raise UserError("webapp.not_a_partner")
    couple = await uow.couples.get(partner.couple_id)
    if in_programme and (couple is None or couple.status != "active"):
        # As in the chat: a closed programme takes no answers, and says where help is.
        lines = "; ".join(f"{r.name}: {r.number}" for r in await crisis_resources(uow, partner))
        raise UserError("webapp.programme_ended", lines=lines)
    return partner


async def crisis_resources(uow: UnitOfWork, partner: Partner) -> tuple[CrisisResource, ...]:
    """The crisis lines for this partner (practice, language, time zone)."""
    couple = await uow.couples.get(partner.couple_id)
    assert couple is not None
    practice = await uow.practices.get(couple.practice_id)
    assert practice is not None
    return tuple(crisis_lines_for(practice.config_toml, partner.language, partner.timezone))


async def find_draft(
    uow: UnitOfWork, partner: Partner, telegram_user_id: int, page: str, ref_id: int
) -> WebAppDraft | None:
    """The partner's draft of one page (``ref_id``: its check-in or delivery), if any."""
    draft = await uow.session.scalar(
        select(WebAppDraft).where(
            WebAppDraft.partner_id == partner.id,
            WebAppDraft.page == page,
            WebAppDraft.ref_id == ref_id,
        )
    )
    if draft is not None and draft.telegram_user_id != telegram_user_id:
        # Written by someone who held this seat before: never shown, gone now.
        await uow.session.delete(draft)
        await uow.flush()
        return None
    return draft


def draft_values(draft: WebAppDraft | None, cipher: Cipher) -> dict[str, str]:
    """What a draft holds, as the page's raw values by field name."""
    if draft is None:
        return {}
    values = {
        str(key): str(value) for key, value in draft.choices.items() if not key.startswith("_")
    }
    if draft.text_ciphertext is not None:
        values.update(json.loads(cipher.decrypt(draft.text_ciphertext)))
    return values


async def keep_draft(
    uow: UnitOfWork,
    partner: Partner,
    telegram_user_id: int,
    cipher: Cipher,
    page: str,
    ref_id: int,
    choices: Mapping[str, object],
    texts: Mapping[str, str],
    now: datetime,
) -> WebAppDraft:
    """Keep a half-filled page on the server: choices as they are, free text only encrypted.

    Keys of ``choices`` starting with ``_`` are the server's own notes, kept across saves.
    """
    draft = await find_draft(uow, partner, telegram_user_id, page, ref_id)
    if draft is None:
        draft = WebAppDraft(
            partner_id=partner.id,
            telegram_user_id=telegram_user_id,
            page=page,
            ref_id=ref_id,
            checkin_id=ref_id if page == CHECKIN_PAGE else None,
            choices={},
            updated_at=now,
        )
        uow.session.add(draft)
    notes = {key: value for key, value in (draft.choices or {}).items() if key.startswith("_")}
    draft.choices = {**dict(choices), **notes}
    draft.text_ciphertext = cipher.encrypt(json.dumps(texts, ensure_ascii=False)) if texts else None
    draft.updated_at = now
    await uow.flush()
    return draft


async def drop_draft(uow: UnitOfWork, partner: Partner, page: str, ref_id: int) -> None:
    """The page was sent: its draft goes."""
    await uow.session.execute(
        delete(WebAppDraft).where(
            WebAppDraft.partner_id == partner.id,
            WebAppDraft.page == page,
            WebAppDraft.ref_id == ref_id,
        )
    )


async def checkin_page(
    uow: UnitOfWork,
    partner: Partner,
    telegram_user_id: int,
    cipher: Cipher,
    now: datetime,
    *,
    delivery_id: int | None = None,
) -> CheckinPage:
    """Open the check-in page: start or resume the check-in as the chat does, with its draft."""
    form = await checkins.open_form(uow, partner, now, delivery_id=delivery_id)
    values: dict[str, str] = {}
    if form is not None:
        draft = await find_draft(uow, partner, telegram_user_id, CHECKIN_PAGE, form.checkin_id)
        values = draft_values(draft, cipher)
        await uow.commit()
    return CheckinPage(
        language=partner.language,
        form=form,
        values=values,
        resources=await crisis_resources(uow, partner),
        show_crisis=form is not None and form.risk,
    )


async def reopen_checkin(uow: UnitOfWork, partner: Partner, checkin_id: int) -> CheckinPage:
    """The page again for the partner's own open check-in (after an answer to correct)."""
    form = await checkins.open_form_by_id(uow, partner, checkin_id)
    return CheckinPage(
        language=partner.language,
        form=form,
        values={},
        resources=await crisis_resources(uow, partner),
        show_crisis=form.risk,
    )


async def save_checkin_draft(
    uow: UnitOfWork,
    partner: Partner,
    telegram_user_id: int,
    cipher: Cipher,
    checkin_id: int,
    raw: Mapping[str, str],
    now: datetime,
) -> bool:
    """Keep a half-filled page on the server; True when the crisis resources must show."""
    form = await checkins.open_form_by_id(uow, partner, checkin_id)
    choices: dict[str, str] = {}
    texts: dict[str, str] = {}
    risky: list[tuple[frozenset[str], frozenset[str]]] = []
    for item in form.items:
        value = raw.get(item.id, "")
        if not value.strip():
            continue
        if item.type == "text":
            texts[item.id] = value[:TEXT_ANSWER_LIMIT]
            screened = screen_text(value, partner.language)
            if screened.flagged:
                risky.append((screened.kinds, screened.phrase_ids))
            continue
        try:
            answer = validate_answer(item, value)
        except InvalidAnswer:
            continue  # a draft keeps only what could be sent
        choices[item.id] = value.strip()
        if is_risk_answer(item, answer):
            risky.append((frozenset({"safety_question"}), frozenset()))
    await keep_draft(
        uow, partner, telegram_user_id, cipher, CHECKIN_PAGE, checkin_id, choices, texts, now
    )
    if risky:
        checkin = await uow.session.get(CheckIn, checkin_id)
        assert checkin is not None
        checkin.risk = True
        for kinds, phrase_ids in risky:  # one alert per item, as the chat raises them
            await raise_alert(
                uow,
                partner,
                kinds=kinds,
                source="checkin",
                source_id=checkin_id,
                phrase_ids=phrase_ids,
                now=now,
            )
    await uow.commit()
    return form.risk or bool(risky)


async def send_checkin(
    uow: UnitOfWork,
    partner: Partner,
    telegram_user_id: int,
    cipher: Cipher,
    checkin_id: int,
    raw: Mapping[str, str],
    now: datetime,
) -> Sent:
    """Store the whole page through the chat's own steps; the chat gets only the "saved" note."""
    step = await checkins.apply_all(uow, partner, cipher, checkin_id, raw, now)
    await drop_draft(uow, partner, CHECKIN_PAGE, checkin_id)
    if step.finished:
        # The same note the chat ends with; never the answers, never the crisis card.
        await notify(
            uow,
            partner,
            "checkin.thanks_discreet" if partner.discreet else "checkin.thanks",
            dedupe_key=f"webapp:checkin:{checkin_id}",
            now=now,
            couple_id=partner.couple_id,
        )
    checkin = await uow.session.get(CheckIn, checkin_id)
    assert checkin is not None
    risk = checkin.risk
    await uow.commit()
    return Sent(partner.language, risk, await crisis_resources(uow, partner))


async def purge_drafts(uow: UnitOfWork, now: datetime) -> int:
    """Forget drafts nobody came back to, and those of check-ins no longer open."""
    closed = select(CheckIn.id).where(CheckIn.status != "open")
    result = await uow.session.execute(
        delete(WebAppDraft)
        .where(
            (WebAppDraft.updated_at <= now - DRAFT_LIFETIME) | WebAppDraft.checkin_id.in_(closed)
        )
        .execution_options(synchronize_session=False)
    )
    await uow.commit()
    return int(result.rowcount)  # type: ignore[attr-defined]


class MiniAppCheckinInvitation(CheckinInvitation):
    """The check-in invitation with a button that opens the one-page check-in too.

    The same two buttons for both partners, in discreet mode as well (neutral label): the
    Mini App, and the chat's own Start button, which stays.
    """

    def __init__(self, webapp_url: str) -> None:
        self.webapp_url = webapp_url.rstrip("/")

    async def render(
        self, uow: UnitOfWork, delivery: Delivery, person: Partner | Therapist
    ) -> Outgoing | None:
        message = await super().render(uow, delivery, person)
        if message is None:
            return None
        assert isinstance(person, Partner)  # the base class renders nothing for anyone else
        return with_page_button(message, person, f"{self.webapp_url}/checkin?d={delivery.id}")


def with_page_button(message: Outgoing, partner: Partner, url: str) -> Outgoing:
    """``message`` with a first row that opens ``url`` as a Mini App; the chat's own buttons
    stay. The same for both partners (in discreet mode, a neutral label)."""
    key = "webapp.button_discreet" if partner.discreet else "webapp.button"
    page = Button(msg(partner.language, key), "", web_app_url=url)
    return replace(message, buttons=((page,), *message.buttons))
