"""Therapist commands: /newcouple, /couples, the couple commands, /session(s), the buttons.

Each handler parses its command or button and runs the use case of
:mod:`bot.services.therapist_desk`, which authorises, works in one unit of work and says
what to reply. The goal typed after ``/goal HANDLE`` is a step of the free-text route
(:mod:`handlers.text`).
"""

from __future__ import annotations

from telegram import Update

from bot.services import console as therapist_console
from bot.services import therapist_desk
from handlers._base import Context, HandlerFn, command_args, run


async def newcouple(update: Update, context: Context) -> None:
    """``/newcouple LABEL``: enrol a couple and reply with one invite link per partner."""
    await run(update, context, therapist_desk.new_couple, " ".join(command_args(context)))


async def couples_command(update: Update, context: Context) -> None:
    """``/couples``: handle, label, partners' state and next session of each couple."""
    await run(update, context, therapist_desk.list_couples)


def couple_command(name: str, doc: str) -> HandlerFn:
    """A therapist command on one of their couples: a picker without a handle."""

    async def handler(update: Update, context: Context) -> None:
        await run(update, context, therapist_desk.couple_command, name, command_args(context))

    handler.__name__ = handler.__qualname__ = name
    handler.__doc__ = doc
    return handler


invite = couple_command("invite", "``/invite HANDLE A|B``: a fresh link for one partner place.")
goal = couple_command("goal", "``/goal HANDLE TEXT``: set the shared goal both partners see.")
close = couple_command("close", "``/close HANDLE``: asks first, then ends the couple's use.")
alerts = couple_command("alerts", "``/alerts HANDLE``: safety alerts with the words; audited.")
notes = couple_command("notes", "``/notes HANDLE``: words kept for the therapist only; audited.")
clearhold = couple_command("clearhold", "``/clearhold HANDLE``: lift the safety hold.")
schedule = couple_command("schedule", "``/schedule HANDLE [TEMPLATE|pause|resume]``.")
digest = couple_command("digest", "``/digest HANDLE``: the digest now; the read is audited.")


async def therapist_button(update: Update, context: Context) -> None:
    """Picker, slot and close-confirmation buttons."""
    query = update.callback_query
    assert query is not None
    await run(update, context, therapist_desk.button, query.data)


async def session(update: Update, context: Context) -> None:
    """``/session HANDLE YYYY-MM-DD HH:MM`` | ``weekly WEEKDAY HH:MM`` | ``skip DATE`` |
    ``move [DATE] DATE HH:MM`` | ``cancel`` (the next one) | ``end`` (the weekly series)."""
    await run(update, context, therapist_desk.session, command_args(context))


async def sessions_command(update: Update, context: Context) -> None:
    """``/sessions``: upcoming sessions across the therapist's couples."""
    await run(update, context, therapist_desk.upcoming_sessions)


async def console(update: Update, context: Context) -> None:
    """``/console``: a one-time link into the therapist console (and a Mini App button when
    the pages are served over https)."""
    await run(update, context, therapist_console.console_link)
