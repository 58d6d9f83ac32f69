"""The Mini App's settings page: what ``/settings``, ``/pause`` and ``/resume`` offer, on one page.

Every change goes through the chat's own functions (``partners.change_setting``,
``typed_timezone``, ``pause``, ``resume``), in one transaction, after every field was
checked: a refusal changes nothing. A typed time zone is free text and is screened first,
as the chat screens it: crisis words show the resources at once, alert the therapist and
change no setting. Afterwards the chat gets only the neutral "Saved." note.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.core.numbers import is_ascii_digits
from bot.core.safety import CrisisResource
from bot.core.timezones import canonical_timezone, offered_timezones
from bot.locales import LOCALES, SUPPORTED_LANGUAGES, resolve
from bot.services import partners
from bot.services.crypto import Cipher
from bot.services.miniapp import crisis_resources
from bot.services.onboarding import WINDOWS
from bot.services.outbox import notify
from bot.services.safety_flow import screen_kept_text
from bot.services.texts import UserError
from bot.services.usecase import OneCommit
from db.models import Partner
from db.uow import UnitOfWork

KEEP, PAUSE, RESUME = "keep", "pause", "resume"


@dataclass(frozen=True)
class SettingsPage:
    """The partner's settings as they stand, and the choices the chat offers."""

    language: str
    current: Mapping[str, str]  # field name -> current value
    zones: tuple[str, ...]  # the time zones offered as buttons in the chat
    current_zone: str  # the partner's own, offered or typed
    paused_until: str | None  # local date, when paused now
    resources: tuple[CrisisResource, ...]


@dataclass(frozen=True)
class SettingsSent:
    """What sending the page did."""

    language: str
    show_crisis: bool
    resources: tuple[CrisisResource, ...]


async def _zones(uow: UnitOfWork, partner: Partner) -> tuple[str, ...]:
    couple = await uow.couples.get(partner.couple_id)
    assert couple is not None
    practice = await uow.practices.get(couple.practice_id)
    assert practice is not None
    return tuple(offered_timezones(partner.language, practice.timezone))


def _paused_until(partner: Partner, now: datetime) -> str | None:
    if partner.paused_until is None or partner.paused_until <= now:
        return None
    zone = ZoneInfo(partner.timezone or "UTC")
    return partner.paused_until.astimezone(zone).strftime("%Y-%m-%d")


async def settings_page(uow: UnitOfWork, partner: Partner, now: datetime) -> SettingsPage:
    """The page as the partner's settings stand now."""
    zones = await _zones(uow, partner)
    current = {
        "language": resolve(partner.language),
        "tz": str(zones.index(partner.timezone)) if partner.timezone in zones else "",
        "window": partner.window or "evening",
        "discreet": "yes" if partner.discreet else "no",
        "pause": KEEP,
    }
    return SettingsPage(
        language=partner.language,
        current=current,
        zones=zones,
        current_zone=partner.timezone or "UTC",
        paused_until=_paused_until(partner, now),
        resources=await crisis_resources(uow, partner),
    )


def _checked(raw: Mapping[str, str], zones: tuple[str, ...]) -> dict[str, str]:
    """Every field checked before anything changes; a refusal changes nothing."""
    wanted = {name: raw.get(name, "").strip() for name in ("language", "window", "discreet")}
    if wanted["language"] not in ("", *LOCALES, *SUPPORTED_LANGUAGES):
        raise UserError("webapp.settings_invalid")
    if wanted["window"] not in ("", *WINDOWS) or wanted["discreet"] not in ("", "yes", "no"):
        raise UserError("webapp.settings_invalid")
    tz = raw.get("tz", "").strip()
    if tz and not (is_ascii_digits(tz) and int(tz) < len(zones)):
        raise UserError("webapp.settings_invalid")
    wanted["tz"] = tz
    typed = raw.get("tz_typed", "").strip()
    if typed and canonical_timezone(typed) is None:
        raise UserError("webapp.timezone_unknown", text=typed[:64])
    wanted["tz_typed"] = typed
    pause = raw.get("pause", KEEP) or KEEP
    if pause not in (KEEP, PAUSE, RESUME):
        raise UserError("webapp.settings_invalid")
    days = raw.get("days", "").strip()
    if pause == PAUSE and not (is_ascii_digits(days) and 1 <= int(days) <= partners.MAX_PAUSE_DAYS):
        raise UserError("webapp.pause_invalid", limit=partners.MAX_PAUSE_DAYS)
    wanted["pause"], wanted["days"] = pause, days
    return wanted


async def send_settings(
    uow: UnitOfWork,
    partner: Partner,
    telegram_user_id: int,
    cipher: Cipher,
    raw: Mapping[str, str],
    now: datetime,
) -> SettingsSent:
    """Apply the page through the chat's own steps; the chat gets only "Saved."."""
    typed = raw.get("tz_typed", "").strip()
    if typed:  # free text: screened before anything else, as in the chat
        screened = await screen_kept_text(uow, partner, cipher, typed, now, kept_id=None)
        if screened is not None:
            await uow.commit()
            return SettingsSent(partner.language, True, await crisis_resources(uow, partner))
    zones = await _zones(uow, partner)
    wanted = _checked(raw, zones)
    batch = OneCommit(uow)  # each chat step commits; here they go together
    current = (await settings_page(uow, partner, now)).current
    for name, field in (("window", "window"), ("discreet", "discreet"), ("tz", "tz")):
        if wanted[field] and wanted[field] != current[field]:
            await partners.change_setting(batch, partner, name, wanted[field], now)
    if wanted["tz_typed"]:
        await partners.typed_timezone(batch, partner, wanted["tz_typed"], now)
    if wanted["pause"] == PAUSE:
        await partners.pause(batch, partner, wanted["days"], now)
    elif wanted["pause"] == RESUME:
        await partners.resume(batch, partner, now)
    if wanted["language"] and wanted["language"] != resolve(partner.language):
        await partners.change_setting(batch, partner, "language", wanted["language"], now)
    await uow.conversations.clear(telegram_user_id, only=("settings_tz",))
    await notify(
        uow,
        partner,
        "partner.saved",
        dedupe_key=f"webapp:settings:{partner.id}:{now.isoformat()}",
        now=now,
        couple_id=partner.couple_id,
    )
    await uow.commit()
    return SettingsSent(partner.language, False, await crisis_resources(uow, partner))
