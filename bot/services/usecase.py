"""How an entry point runs a use case: one caller, one unit of work, one reply.

A use case is an ``async`` function whose first argument is a :class:`Call` (the unit of
work, who is calling, the process's dependencies and the time) and which returns a
:class:`Reply` (what to say, and whether queued messages should go out now). Entry points
(Telegram handlers, the web pages, the command line) build a :class:`Caller` from their
input and run the use case with :func:`perform`, which

- opens **one** unit of work and identifies the caller in it,
- runs the use case, which authorises through :mod:`bot.services.access`; the service
  steps it calls may ``commit()`` (they are written to stand alone too), but inside a use
  case a step's commit only flushes (:class:`OneCommit`),
- commits once at the end (the update's inbox mark goes in the same transaction),
- turns a refusal (:class:`~bot.services.texts.UserError`, a forged button) into a kind
  reply in the caller's language after rolling back, so a refusal changes nothing.

The entry point then only delivers the reply; it never touches the database. One reply
may ask for a second, small unit of work after it is delivered (:attr:`Reply.after_sent`):
an id that only exists once a message is sent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Concatenate, ParamSpec

from bot.channels.base import Outgoing
from bot.core.callbacks import ForgedCallback
from bot.locales import t
from bot.services.deps import Deps
from bot.services.identity import Actor, identify
from bot.services.texts import UserError
from db.uow import UnitOfWork

P = ParamSpec("P")
UseCase = Callable[Concatenate["Call", P], Awaitable["Reply"]]


@dataclass(frozen=True)
class Caller:
    """Who is asking, as the entry point knows them (no messenger types)."""

    user_id: int
    chat_id: int
    language_code: str | None = None
    first_name: str = ""
    pressed_button: bool = False
    """The request is a button press: a refusal is a pop-up rather than a message."""


@dataclass(frozen=True)
class Call:
    """What a use case works with: its unit of work, the identified caller, the time."""

    uow: UnitOfWork
    actor: Actor
    caller: Caller
    deps: Deps
    now: datetime

    @property
    def language(self) -> str:
        """The caller's language."""
        return self.actor.language


class OneCommit(UnitOfWork):
    """The caller's unit of work, in which each step's commit only flushes.

    Service steps written to stand alone (a check-in answer, a setting) commit as they
    finish; run one after another inside a use case or a Mini App page, they share the
    caller's transaction, committed once at the end, so a failure half-way stores nothing.
    """

    def __init__(self, outer: UnitOfWork) -> None:  # same session and repositories
        self.__dict__.update(outer.__dict__)

    async def commit(self) -> None:
        await self.session.flush()


@dataclass
class Reply:
    """What the entry point should say, in order, and what else it should do."""

    messages: list[Outgoing] = field(default_factory=list)
    popup: str | None = None
    """For a button press: the text of its pop-up (``None``: a silent acknowledgement)."""
    alert: bool = False
    """Show ``popup`` as a dialog the user closes, rather than a passing notice."""
    wake: bool = False
    """Something was queued for the dispatcher: wake it rather than wait for its next round."""
    delete: list[tuple[int, int]] = field(default_factory=list)
    """Messages to delete afterwards, as (chat, message id); best effort (Telegram allows
    deleting for 48 hours, and a message may already be gone)."""
    delete_first: list[int] = field(default_factory=list)
    """Messages of the caller's own chat to delete before the reply goes out, by id
    (discreet mode: what was just answered leaves the chat first); best effort too."""
    edit: Outgoing | None = None
    """For a button press: what the message holding the button now shows instead."""
    therapist_menu: str | None = None
    """The caller just joined as a therapist: their chat gets the therapist command menu,
    in this language (the ``/start`` handler sets it before the messages go)."""
    after_sent: UseCase[[int]] | None = None
    """A use case to run, in a second unit of work, with the id of the last message of
    ``messages`` once it is sent (Telegram gives the id only then). Only for what a later
    update needs and cannot carry itself; everything else belongs in the first one."""

    @classmethod
    def say(cls, *texts: str | Outgoing, wake: bool = False) -> Reply:
        """Reply with these messages (plain texts become messages without buttons)."""
        return cls(
            [text if isinstance(text, Outgoing) else Outgoing(text) for text in texts], wake=wake
        )

    @classmethod
    def refusal(cls, text: str, *, pressed_button: bool) -> Reply:
        """A kind refusal: a pop-up for a button press, a message otherwise."""
        if pressed_button:
            return cls(popup=text[:200], alert=True)
        return cls.say(text)


async def perform(
    deps: Deps, caller: Caller, case: UseCase[P], /, *args: P.args, **kwargs: P.kwargs
) -> Reply:
    """Run ``case`` for ``caller`` in one unit of work; see the module's documentation."""
    async with deps.db.uow() as uow:
        actor = await identify(uow, caller.user_id, caller.language_code)
        call = Call(OneCommit(uow), actor, caller, deps, deps.clock.now())
        try:
            reply = await case(call, *args, **kwargs)
        except UserError as error:
            await uow.rollback()
            return Reply.refusal(error.text(actor.language), pressed_button=caller.pressed_button)
        except ForgedCallback:
            await uow.rollback()
            text = t(actor.language, "common.stale_button")
            return Reply.refusal(text, pressed_button=caller.pressed_button)
        await uow.commit()
    return reply
