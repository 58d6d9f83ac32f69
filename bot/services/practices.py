"""Practice and therapist enrolment, for the practice admin's command line."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.core.timezones import canonical_timezone
from bot.core.tokens import deep_link, hash_token, new_token
from bot.locales import LOCALES, SUPPORTED_LANGUAGES
from db.models import Invite, Practice, Slot, Therapist
from db.uow import UnitOfWork


class AdminError(Exception):
    """A bad command-line argument; the message says what is wrong."""


def slugify(name: str) -> str:
    """A short ASCII slug for a practice name (``Clínica Norte`` -> ``clinica-norte``)."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", folded.lower()).strip("-")
    return slug[:48] or "practice"


async def create_practice(
    uow: UnitOfWork, name: str, *, timezone: str, language: str, now: datetime
) -> Practice:
    """Create a practice with a unique slug."""
    name = name.strip()
    if not name or len(name) > 200:
        raise AdminError("the practice name must be 1 to 200 characters")
    zone = canonical_timezone(timezone)
    if zone is None:
        raise AdminError(f"unknown time zone {timezone!r}; use an IANA name such as Europe/Madrid")
    if language not in SUPPORTED_LANGUAGES and language not in LOCALES:
        choices = ", ".join(dict.fromkeys((*SUPPORTED_LANGUAGES, *LOCALES)))
        raise AdminError(f"unsupported language {language!r}; choose one of {choices}")
    base = slugify(name)
    taken = await uow.practices.slugs_like(base)
    slug, n = base, 2
    while slug in taken:
        slug, n = f"{base}-{n}", n + 1
    return await uow.practices.add(
        Practice(slug=slug, name=name, timezone=zone, language=language, created_at=now)
    )


async def practice_by_slug(uow: UnitOfWork, slug: str) -> Practice:
    """The practice with this slug, or an :class:`AdminError` naming it."""
    practice = await uow.practices.by_slug(slug)
    if practice is None:
        raise AdminError(f"no practice with slug {slug!r} (see `dyad practice list`)")
    return practice


@dataclass(frozen=True)
class IssuedInvite:
    """A new invite: the token exists only here, never in the database."""

    invite: Invite
    token: str

    def link(self, bot_username: str) -> str:
        """The deep link to pass on."""
        return deep_link(bot_username, self.token)


async def issue_invite(
    uow: UnitOfWork,
    *,
    practice_id: int,
    now: datetime,
    ttl: timedelta,
    couple_id: int | None = None,
    slot: Slot | None = None,
    therapist_name: str | None = None,
    is_admin: bool = False,
) -> IssuedInvite:
    """A one-time invite for a therapist (no couple) or for one partner slot of a couple."""
    token = new_token()
    invite = await uow.invites.add(
        Invite(
            token_hash=hash_token(token),
            kind="partner" if couple_id is not None else "therapist",
            practice_id=practice_id,
            couple_id=couple_id,
            slot=slot,
            therapist_name=therapist_name,
            is_admin=is_admin,
            created_at=now,
            expires_at=now + ttl,
        )
    )
    return IssuedInvite(invite, token)


async def invite_therapist(
    uow: UnitOfWork, slug: str, name: str, *, is_admin: bool, now: datetime, ttl: timedelta
) -> IssuedInvite:
    """A one-time invite for a therapist to join a practice."""
    practice = await practice_by_slug(uow, slug)
    name = name.strip()
    if not name or len(name) > 200:
        raise AdminError("the therapist's name must be 1 to 200 characters")
    return await issue_invite(
        uow, practice_id=practice.id, now=now, ttl=ttl, therapist_name=name, is_admin=is_admin
    )


async def therapists_of(uow: UnitOfWork, slug: str) -> list[Therapist]:
    """The therapists of a practice."""
    practice = await practice_by_slug(uow, slug)
    return list(await uow.therapists.of_practice(practice.id))
