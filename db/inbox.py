"""The mark that an update was handled, written in the same transaction as its effects.

While a worker handles an update, ``HANDLING`` holds its claim. The first unit of work
that commits in that context also marks the inbox row handled (and clears its payload),
so the update's effects and the mark are durable together: a crash before that commit
leaves the update to be handled again, one after it never repeats the effects. The mark
is fenced by the claim's token: a worker whose claim was taken over (its lease ran out)
cannot commit effects for it any more.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import ConversationState, InboxUpdate


class LostUpdate(Exception):
    """The update is no longer ours to handle: another worker took it over."""


@dataclass
class Handling:
    """This worker's claim on one update while its handlers run."""

    update_id: int
    token: str
    now: datetime
    marked: bool = False
    done: bool = False
    sender: int | None = None
    """The Telegram user who sent the update: each transaction of its handling holds their
    couple first (``UnitOfWork.hold_couple_of``), so one couple's updates never interleave."""
    ends_wait_of: int | None = None
    """The update is a command from this Telegram user: it ends whatever typed answer the
    bot was waiting for from them, first thing in each transaction of its handling until
    one commits (``end_wait_in``), so the handlers never read the old wait."""


HANDLING: ContextVar[Handling | None] = ContextVar("dyad_handling", default=None)


def handled_values(now: datetime) -> dict[str, object]:
    """What a handled row keeps: its id and when; never the update's text."""
    return {"handled_at": now, "payload": None, "lease_until": None}


async def end_wait_in(session: AsyncSession, handling: Handling) -> None:
    """A command ends the typed answer its sender was awaited for (see ``ends_wait_of``).

    Only a wait that exists is deleted: on SQLite a write takes the database's one write
    lock until the commit, which a transaction should not hold before it holds its couple.
    """
    if handling.ends_wait_of is None or handling.marked:
        return
    waiting = await session.scalar(
        select(ConversationState.telegram_user_id).where(
            ConversationState.telegram_user_id == handling.ends_wait_of
        )
    )
    if waiting is None:
        return
    await session.execute(
        delete(ConversationState)
        .where(ConversationState.telegram_user_id == handling.ends_wait_of)
        .execution_options(synchronize_session=False)
    )


async def mark_in(session: AsyncSession, handling: Handling) -> None:
    """Mark the update handled inside ``session``'s transaction (before its commit)."""
    result = await session.execute(
        update(InboxUpdate)
        .where(InboxUpdate.update_id == handling.update_id)
        .where(InboxUpdate.lease_token == handling.token)
        .values(**handled_values(handling.now))
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise LostUpdate(handling.update_id)
