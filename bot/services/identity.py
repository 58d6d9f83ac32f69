"""Who is writing: a therapist, a partner, or someone without an invitation."""

from __future__ import annotations

from dataclasses import dataclass

from bot.locales import pick_locale
from db.models import Partner, Therapist
from db.uow import UnitOfWork


@dataclass(frozen=True)
class Actor:
    """The person behind an update, as Dyad knows them."""

    user_id: int
    language: str
    therapist: Therapist | None = None
    partner: Partner | None = None

    @property
    def role(self) -> str:
        """``therapist``, ``partner`` or ``stranger``."""
        if self.therapist is not None:
            return "therapist"
        if self.partner is not None and self.partner.left_at is None:
            return "partner"
        return "stranger"


async def identify(uow: UnitOfWork, user_id: int, language_code: str | None) -> Actor:
    """Find the therapist or partner behind a Telegram user id."""
    therapist = await uow.therapists.by_user(user_id)
    if therapist is not None:
        return Actor(user_id, therapist.language, therapist=therapist)
    partner = await uow.partners.by_user(user_id)
    if partner is not None and partner.left_at is None:
        return Actor(user_id, partner.language, partner=partner)
    return Actor(user_id, pick_locale(language_code))
