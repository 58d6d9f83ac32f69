"""Joining Dyad through an invite link: therapists, and partners step by step.

Where each partner stands in onboarding lives in ``partners.onboarding_step``, so a
restart half-way loses nothing: ``/start`` (or any button) picks up at the same step.
Every partner is asked the same questions in the same number of messages, whatever
they answer, and nothing one partner chooses is ever shown to the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.channels.base import Button, Outgoing
from bot.core import callbacks
from bot.core.numbers import is_ascii_digits
from bot.core.timezones import canonical_timezone, offered_timezones
from bot.core.tokens import hash_token, looks_like_token
from bot.locales import SUPPORTED_LANGUAGES, pick_language
from bot.services.outbox import notify
from bot.services.texts import UserError, msg
from db.models import Couple, Partner, Practice, Therapist
from db.uow import UnitOfWork

STEPS = ("consent", "language", "timezone", "window", "discreet", "done")
WINDOWS = ("morning", "afternoon", "evening")
LANGUAGE_NAMES = {"en": "English", "es": "Español", "pt": "Português"}


@dataclass(frozen=True)
class Person:
    """The Telegram user behind an update, without Telegram's types."""

    user_id: int
    chat_id: int
    first_name: str
    language_code: str | None


async def redeem(uow: UnitOfWork, token: str, person: Person, now: datetime) -> list[Outgoing]:
    """``/start TOKEN``: join as a therapist or as one partner of a couple."""
    language = pick_language(person.language_code)
    if not looks_like_token(token):
        raise UserError("onboarding.invite_unknown")
    invite = await uow.invites.by_hash(hash_token(token))
    if invite is None:
        raise UserError("onboarding.invite_unknown")
    if invite.revoked_at is not None:
        raise UserError("onboarding.invite_revoked")
    if invite.used_at is not None:
        raise UserError("onboarding.invite_used")
    if invite.expires_at <= now:
        raise UserError("onboarding.invite_expired")
    practice = await uow.practices.get(invite.practice_id)
    assert practice is not None
    existing_partner = await uow.partners.by_user(person.user_id)
    existing_therapist = await uow.therapists.by_user(person.user_id)

    if invite.kind == "therapist":
        if existing_therapist is not None or existing_partner is not None:
            raise UserError("onboarding.already_member")
        if not await uow.invites.claim(invite.id, now):
            raise UserError("onboarding.invite_used")
        therapist = await uow.therapists.add(
            Therapist(
                practice_id=practice.id,
                display_name=invite.therapist_name or person.first_name,
                is_admin=invite.is_admin,
                telegram_user_id=person.user_id,
                chat_id=person.chat_id,
                language=language,
                timezone=practice.timezone,
                created_at=now,
                joined_at=now,
            )
        )
        await uow.commit()
        return [
            Outgoing(
                msg(
                    language,
                    "onboarding.therapist.welcome",
                    name=therapist.display_name,
                    practice=practice.name,
                )
            )
        ]

    if existing_therapist is not None:
        raise UserError("onboarding.therapist_cannot_join")
    if existing_partner is not None:
        raise UserError("onboarding.already_member")
    assert invite.couple_id is not None and invite.slot is not None
    couple = await uow.couples.get(invite.couple_id)
    assert couple is not None
    if couple.status != "active":
        raise UserError("onboarding.couple_closed")
    partner = next(p for p in await uow.partners.of_couple(couple.id) if p.slot == invite.slot)
    if partner.telegram_user_id is not None:
        raise UserError("onboarding.slot_taken")
    if not await uow.invites.claim(invite.id, now):
        raise UserError("onboarding.invite_used")
    partner.telegram_user_id = person.user_id
    partner.chat_id = person.chat_id
    partner.display_name = person.first_name[:200]
    partner.language = language
    partner.onboarding_step = "consent"
    partner.left_at = None
    partner.reachable = True
    await uow.commit()
    return await step_messages(uow, partner)


async def _context(uow: UnitOfWork, partner: Partner) -> tuple[Couple, Practice, Therapist]:
    couple = await uow.couples.get(partner.couple_id)
    assert couple is not None
    practice = await uow.practices.get(couple.practice_id)
    therapist = await uow.therapists.get(couple.therapist_id)
    assert practice is not None and therapist is not None
    return couple, practice, therapist


def _button(language: str, partner: Partner, step: str, value: str, label_key: str) -> Button:
    return Button(msg(language, label_key), callbacks.encode("ob", partner.id, step, value))


async def step_messages(uow: UnitOfWork, partner: Partner) -> list[Outgoing]:
    """The message(s) that ask the partner's current onboarding question."""
    lang = partner.language
    step = partner.onboarding_step
    if step == "consent":
        _, practice, therapist = await _context(uow, partner)
        text = "\n\n".join(
            (
                msg(
                    lang,
                    "onboarding.welcome",
                    name=partner.display_name or "",
                    therapist=therapist.display_name,
                    practice=practice.name,
                ),
                msg(lang, "onboarding.privacy"),
                msg(lang, "onboarding.consent_question"),
            )
        )
        buttons = (
            (
                _button(lang, partner, "consent", "yes", "onboarding.accept"),
                _button(lang, partner, "consent", "no", "onboarding.decline"),
            ),
        )
        return [Outgoing(text, buttons)]
    if step == "language":
        row = tuple(
            Button(LANGUAGE_NAMES[code], callbacks.encode("ob", partner.id, "language", code))
            for code in SUPPORTED_LANGUAGES
        )
        return [Outgoing(msg(lang, "onboarding.language_question"), (row,))]
    if step == "timezone":
        _, practice, _ = await _context(uow, partner)
        zones = offered_timezones(lang, practice.timezone)
        rows = tuple(
            tuple(
                Button(zone.replace("_", " "), callbacks.encode("ob", partner.id, "tz", i))
                for i, zone in list(enumerate(zones))[start : start + 2]
            )
            for start in range(0, len(zones), 2)
        )
        return [Outgoing(msg(lang, "onboarding.timezone_question"), rows)]
    if step == "window":
        rows = tuple(
            (_button(lang, partner, "window", w, f"onboarding.window_{w}"),) for w in WINDOWS
        )
        return [Outgoing(msg(lang, "onboarding.window_question"), rows)]
    if step == "discreet":
        row = (
            _button(lang, partner, "discreet", "yes", "onboarding.discreet_yes"),
            _button(lang, partner, "discreet", "no", "onboarding.discreet_no"),
        )
        return [Outgoing(msg(lang, "onboarding.discreet_question"), (row,))]
    return [Outgoing(msg(lang, "onboarding.done"))]


async def choose(
    uow: UnitOfWork, partner: Partner, step: str, value: str, now: datetime
) -> list[Outgoing]:
    """Apply a button choice for the partner's current step; a stale step is refused."""
    current = "tz" if partner.onboarding_step == "timezone" else partner.onboarding_step
    if step != current:
        raise UserError("common.stale_button")
    if step == "consent":
        if value == "no":
            return await _decline(uow, partner, now)
        if value != "yes":
            raise UserError("common.stale_button")
        partner.consented_at = now
        partner.onboarding_step = "language"
    elif step == "language":
        if value not in SUPPORTED_LANGUAGES:
            raise UserError("common.stale_button")
        partner.language = value
        partner.onboarding_step = "timezone"
    elif step == "tz":
        _, practice, _ = await _context(uow, partner)
        zones = offered_timezones(partner.language, practice.timezone)
        if not is_ascii_digits(value) or int(value) >= len(zones):
            raise UserError("common.stale_button")
        partner.timezone = zones[int(value)]
        partner.onboarding_step = "window"
    elif step == "window":
        if value not in WINDOWS:
            raise UserError("common.stale_button")
        partner.window = value
        partner.onboarding_step = "discreet"
    elif step == "discreet":
        if value not in ("yes", "no"):
            raise UserError("common.stale_button")
        partner.discreet = value == "yes"
        partner.onboarding_step = "done"
        partner.joined_at = now
    else:
        raise UserError("common.stale_button")
    if partner.onboarding_step == "done":
        await _on_joined(uow, partner, now)
    await uow.commit()
    return await step_messages(uow, partner)


async def typed_timezone(
    uow: UnitOfWork, partner: Partner, text: str, now: datetime
) -> list[Outgoing]:
    """A time zone typed during onboarding: the next step, or a kind refusal."""
    zone = canonical_timezone(text)
    if zone is None:
        raise UserError("onboarding.timezone_unknown", text=text[:64])
    partner.timezone = zone
    partner.onboarding_step = "window"
    await uow.commit()
    return await step_messages(uow, partner)


async def _decline(uow: UnitOfWork, partner: Partner, now: datetime) -> list[Outgoing]:
    language = partner.language
    couple, _, therapist = await _context(uow, partner)
    partner.telegram_user_id = None
    partner.chat_id = None
    partner.display_name = None
    partner.onboarding_step = "declined"
    await notify(
        uow,
        therapist,
        "couple.partner_declined",
        dedupe_key=f"declined:{partner.id}:{now.isoformat()}",
        now=now,
        couple_id=couple.id,
        handle=couple.handle,
        slot=partner.slot,
    )
    await uow.commit()
    return [Outgoing(msg(language, "onboarding.declined"))]


async def _on_joined(uow: UnitOfWork, partner: Partner, now: datetime) -> None:
    """When the second partner finishes, open the couple space for both, in the same words."""
    couple, _, therapist = await _context(uow, partner)
    partners = await uow.partners.of_couple(couple.id)
    if couple.space_ready_at is not None or not all(p.active for p in partners):
        return
    couple.space_ready_at = now
    for each in partners:
        await notify(
            uow,
            each,
            "couple.space_ready_goal" if couple.shared_goal else "couple.space_ready",
            dedupe_key=f"space_ready:{couple.id}:{now.isoformat()}",
            now=now,
            couple_id=couple.id,
            goal=couple.shared_goal or "",
        )
    await notify(
        uow,
        therapist,
        "couple.both_joined",
        dedupe_key=f"both_joined:{couple.id}:{now.isoformat()}",
        now=now,
        couple_id=couple.id,
        handle=couple.handle,
        label=couple.label,
    )
