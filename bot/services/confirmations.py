"""Confirmations for irreversible actions (leave, erase, close).

Asking stores what is being confirmed in the person's conversation state; the button
acts only while that state is still there, so a replayed, forged or stale "yes" (one
whose question was never asked, or was overtaken by another command) changes nothing.
"""

from __future__ import annotations

from datetime import datetime

from bot.services.texts import UserError
from db.uow import UnitOfWork

KIND = "confirm"


async def ask(uow: UnitOfWork, user_id: int, action: str, subject_id: int, now: datetime) -> None:
    """Remember that ``user_id`` was asked to confirm ``action`` on ``subject_id``."""
    await uow.conversations.set(user_id, KIND, {"action": action, "id": subject_id}, now)
    await uow.commit()


async def take(uow: UnitOfWork, user_id: int, action: str, subject_id: int) -> None:
    """Use up the pending confirmation, or refuse the button as stale."""
    state = await uow.conversations.get(user_id)
    if (
        state is None
        or state.kind != KIND
        or state.data.get("action") != action
        or state.data.get("id") != subject_id
    ):
        raise UserError("common.stale_button")
    await uow.conversations.clear(user_id)
