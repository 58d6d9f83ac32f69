"""Use cases open to everyone: /help, /start without an invitation, the fallbacks."""

from __future__ import annotations

from bot.locales import t
from bot.services.usecase import Call, Reply


def help_text(role: str, language: str) -> str:
    """The command list for one role, in the user's language."""
    return t(language, f"common.help_{role}")


async def start_without_invite(call: Call) -> Reply:
    """``/start`` with no invitation: explain Dyad, or show a known user their commands."""
    if call.actor.role == "stranger":
        return Reply.say(t(call.language, "common.start_stranger"))
    return Reply.say(help_text(call.actor.role, call.language))


async def help_command(call: Call) -> Reply:
    """``/help``: the commands for the caller's role."""
    return Reply.say(help_text(call.actor.role, call.language))


async def unknown_command(call: Call) -> Reply:
    """Any command Dyad does not know."""
    return Reply.say(t(call.language, "common.unknown_command"))


async def stray_text(call: Call) -> Reply:
    """Text nobody is waiting for."""
    return Reply.say(t(call.language, "common.stray_text"))


async def private_button_elsewhere(call: Call) -> Reply:
    """A partner's or therapist's button pressed outside their private chat: a private
    pop-up only the presser sees; nothing changes."""
    return Reply(popup=t(call.language, "common.private_button"), alert=True)


async def stale_button(call: Call) -> Reply:
    """A button press that no handler recognised (old, forged or foreign)."""
    return Reply(popup=t(call.language, "common.stale_button"), alert=True)


async def something_failed(call: Call) -> Reply:
    """What someone hears when handling their update failed."""
    return Reply.say(t(call.language, "common.error"))
