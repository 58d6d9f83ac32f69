"""A partner's own settings, pauses and leaving; the other partner is never told."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.channels.base import Button, Outgoing
from bot.core import callbacks
from bot.core.numbers import is_ascii_digits
from bot.core.safety import render_crisis_message
from bot.core.timezones import canonical_timezone, offered_timezones
from bot.locales import (
    LOCALES,
    SUPPORTED_LANGUAGES,
    display_name,
    pick_locale,
    resolve,
    stored,
)
from bot.locales.formats import format_date
from bot.services import groups
from bot.services.onboarding import WINDOWS
from bot.services.outbox import notify
from bot.services.practice_config import crisis_lines_for
from bot.services.texts import Html, UserError, msg
from db.models import Partner
from db.uow import UnitOfWork
from schedules.planner import replan_partner

MAX_PAUSE_DAYS = 30
SETTINGS = ("language", "timezone", "window", "discreet")


def settings_menu(partner: Partner) -> Outgoing:
    """The partner's current settings with a button for each."""
    lang = partner.language
    discreet = "partner.discreet_on" if partner.discreet else "partner.discreet_off"
    text = msg(
        lang,
        "partner.settings_menu",
        language=display_name(resolve(lang)),
        timezone=partner.timezone or "",
        window=msg(lang, f"onboarding.window_{partner.window or 'evening'}"),
        discreet=msg(lang, discreet),
    )
    rows = tuple(
        (Button(msg(lang, f"partner.settings_{name}"), callbacks.encode("set", partner.id, name)),)
        for name in SETTINGS
    )
    return Outgoing(text, rows)


async def setting_options(uow: UnitOfWork, partner: Partner, name: str) -> Outgoing:
    """The choices for one setting (the same as in onboarding)."""
    lang = partner.language
    if name == "language":
        locales = tuple(
            (Button(display_name(c), callbacks.encode("setv", partner.id, "language", c)),)
            for c in LOCALES
        )
        return Outgoing(msg(lang, "onboarding.language_question"), locales)
    if name == "timezone":
        zones = await _zones(uow, partner)
        rows = tuple(
            tuple(
                Button(z.replace("_", " "), callbacks.encode("setv", partner.id, "tz", i))
                for i, z in list(enumerate(zones))[s : s + 2]
            )
            for s in range(0, len(zones), 2)
        )
        return Outgoing(msg(lang, "onboarding.timezone_question"), rows)
    if name == "window":
        rows = tuple(
            (
                Button(
                    msg(lang, f"onboarding.window_{w}"),
                    callbacks.encode("setv", partner.id, "window", w),
                ),
            )
            for w in WINDOWS
        )
        return Outgoing(msg(lang, "onboarding.window_question"), rows)
    if name == "discreet":
        row = (
            Button(
                msg(lang, "onboarding.discreet_yes"),
                callbacks.encode("setv", partner.id, "discreet", "yes"),
            ),
            Button(
                msg(lang, "onboarding.discreet_no"),
                callbacks.encode("setv", partner.id, "discreet", "no"),
            ),
        )
        return Outgoing(msg(lang, "onboarding.discreet_question"), (row,))
    raise UserError("common.stale_button")


async def _zones(uow: UnitOfWork, partner: Partner) -> list[str]:
    couple = await uow.couples.get(partner.couple_id)
    assert couple is not None
    practice = await uow.practices.get(couple.practice_id)
    assert practice is not None
    return offered_timezones(partner.language, practice.timezone)


async def change_setting(
    uow: UnitOfWork, partner: Partner, name: str, value: str, now: datetime | None = None
) -> Outgoing:
    """Apply one setting from a button; invalid values are refused and change nothing.

    With ``now``, the partner's pending prompts are re-planned at once for the new setting.
    """
    if name == "language" and value in LOCALES:
        partner.language = stored(value)
    elif name == "language" and value in SUPPORTED_LANGUAGES:  # a button from before locales
        partner.language = stored(pick_locale(value, partner.timezone))
    elif (
        name == "tz"
        and is_ascii_digits(value)
        and int(value) < len(zones := await _zones(uow, partner))
    ):
        partner.timezone = zones[int(value)]
    elif name == "window" and value in WINDOWS:
        partner.window = value
    elif name == "discreet" and value in ("yes", "no"):
        partner.discreet = value == "yes"
    else:
        raise UserError("common.stale_button")
    if now is not None:
        await replan_partner(uow, partner, now)
    await uow.commit()
    return Outgoing(msg(partner.language, "partner.saved"))


async def typed_timezone(
    uow: UnitOfWork, partner: Partner, text: str, now: datetime | None = None
) -> Outgoing:
    """A time zone typed after choosing Time zone in /settings (re-planned with ``now``)."""
    zone = canonical_timezone(text)
    if zone is None:
        raise UserError("onboarding.timezone_unknown", text=text[:64])
    partner.timezone = zone
    if now is not None:
        await replan_partner(uow, partner, now)
    await uow.commit()
    return Outgoing(msg(partner.language, "partner.saved"))


async def pause(
    uow: UnitOfWork, partner: Partner, days_text: str | None, now: datetime
) -> Outgoing:
    """Pause this partner's prompts for some days (7 by default)."""
    days = 7
    if days_text is not None:
        if not is_ascii_digits(days_text) or not 1 <= int(days_text) <= MAX_PAUSE_DAYS:
            raise UserError("partner.pause_invalid", limit=MAX_PAUSE_DAYS)
        days = int(days_text)
    if partner.paused_until is None or partner.paused_until <= now:
        partner.paused_since = now  # a new pause; the digest counts paused days from here
    partner.paused_until = now + timedelta(days=days)
    await replan_partner(uow, partner, now)
    await uow.commit()
    zone = ZoneInfo(partner.timezone or "UTC")
    until = format_date(partner.paused_until.astimezone(zone), partner.language)
    return Outgoing(msg(partner.language, "partner.paused", until=until))


async def resume(uow: UnitOfWork, partner: Partner, now: datetime) -> Outgoing:
    """Start this partner's prompts again."""
    if partner.paused_until is None or partner.paused_until <= now:
        return Outgoing(msg(partner.language, "partner.not_paused"))
    partner.paused_until = now  # ended now: the pause's span stays known to the digest
    await replan_partner(uow, partner, now)
    await uow.commit()
    return Outgoing(msg(partner.language, "partner.resumed"))


async def require_programme(uow: UnitOfWork, partner: Partner) -> None:
    """Refuse answers once the couple's programme has ended (``/close``), with crisis lines."""
    couple = await uow.couples.get(partner.couple_id)
    assert couple is not None
    if couple.status == "active":
        return
    practice = await uow.practices.get(couple.practice_id)
    assert practice is not None
    resources = crisis_lines_for(practice.config_toml, partner.language, partner.timezone)
    crisis = Html(render_crisis_message(partner.language, resources))
    raise UserError("couple.programme_ended", crisis=crisis)


def stop_confirmation(partner: Partner) -> Outgoing:
    """Ask before leaving."""
    lang = partner.language
    row = (
        Button(msg(lang, "partner.stop_yes"), callbacks.encode("stop", partner.id, "yes")),
        Button(msg(lang, "partner.stop_no"), callbacks.encode("stop", partner.id, "no")),
    )
    return Outgoing(msg(lang, "partner.stop_confirm"), (row,))


async def leave(uow: UnitOfWork, partner: Partner, now: datetime, *, erased: bool = False) -> None:
    """Unlink the partner from their chat; their therapist is told, without content."""
    couple = await uow.couples.get(partner.couple_id)
    assert couple is not None
    therapist = await uow.therapists.get(couple.therapist_id)
    assert therapist is not None
    if partner.telegram_user_id is not None:
        await uow.conversations.clear(partner.telegram_user_id)
    partner.left_at = now
    partner.telegram_user_id = None
    partner.chat_id = None
    partner.onboarding_step = "left"
    # The group was agreed to by the two who held the seats then: it stops here.
    await groups.seat_changed(uow, couple, now)
    await replan_partner(uow, partner, now)  # their couple-space halves go with the other's
    await notify(
        uow,
        therapist,
        "couple.partner_erased" if erased else "couple.partner_left",
        dedupe_key=f"left:{partner.id}:{now.isoformat()}",
        now=now,
        couple_id=couple.id,
        handle=couple.handle,
        slot=partner.slot,
    )
    await uow.commit()
