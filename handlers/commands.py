"""Every private-chat command of Dyad, once: registration, menus and the README follow it.

Each :class:`Command` names its handler and how each role writes it. ``handlers.register``
attaches the handlers from this table, :mod:`handlers.menus` builds each role's command
menu from it (``set_my_commands``), and a test checks that the README's "Who does what"
table says the same (:func:`readme_row`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from handlers import checkin, common, data_rights, partner, therapist
from handlers import group as linked_group
from handlers._base import HandlerFn

Role = Literal["therapist", "partner"]
ROLES: tuple[Role, ...] = ("therapist", "partner")


@dataclass(frozen=True)
class Command:
    """One private-chat command: its handler, and how each role that may use it writes it."""

    name: str
    handler: HandlerFn
    usage: Mapping[Role, str]
    menu: bool = True
    """Shown in the roles' command menus (otherwise only in /help and the README)."""


def _both(usage: str) -> Mapping[Role, str]:
    return {"therapist": usage, "partner": usage}


# In menu order: each role's menu is this table filtered to that role.
COMMANDS: tuple[Command, ...] = (
    Command("newcouple", therapist.newcouple, {"therapist": "/newcouple LABEL"}),
    Command("couples", therapist.couples_command, {"therapist": "/couples"}),
    Command("invite", therapist.invite, {"therapist": "/invite HANDLE A|B"}),
    Command("goal", therapist.goal, {"therapist": "/goal HANDLE TEXT"}),
    Command(
        "schedule", therapist.schedule, {"therapist": "/schedule HANDLE [TEMPLATE|pause|resume]"}
    ),
    Command(
        "session",
        therapist.session,
        {
            "therapist": "/session HANDLE YYYY-MM-DD HH:MM|weekly WEEKDAY HH:MM|skip YYYY-MM-DD"
            "|move [YYYY-MM-DD] YYYY-MM-DD HH:MM|cancel|end"
        },
    ),
    Command("sessions", therapist.sessions_command, {"therapist": "/sessions"}),
    Command("digest", therapist.digest, {"therapist": "/digest HANDLE"}),
    Command("alerts", therapist.alerts, {"therapist": "/alerts HANDLE"}),
    Command("notes", therapist.notes, {"therapist": "/notes HANDLE"}),
    Command("clearhold", therapist.clearhold, {"therapist": "/clearhold HANDLE"}),
    Command("checkin", checkin.checkin_command, {"partner": "/checkin"}),
    Command("settings", partner.settings, {"partner": "/settings"}),
    Command("pause", partner.pause, {"partner": "/pause [DAYS]"}),
    Command("resume", partner.resume, {"partner": "/resume"}),
    Command("privacy", partner.privacy, {"partner": "/privacy"}),
    Command(
        "linkgroup",
        linked_group.link_private,
        {"therapist": "/linkgroup HANDLE", "partner": "/linkgroup"},
    ),
    Command(
        "unlinkgroup",
        linked_group.unlink_private,
        {"therapist": "/unlinkgroup HANDLE", "partner": "/unlinkgroup"},
        menu=False,
    ),
    Command("close", therapist.close, {"therapist": "/close HANDLE"}),
    Command("export", data_rights.export, {"partner": "/export"}),
    Command("deleteme", data_rights.deleteme, {"partner": "/deleteme"}),
    Command("stop", partner.stop, {"partner": "/stop"}),
    Command("help", common.help_command, _both("/help")),
)


def menu_of(role: Role) -> tuple[str, ...]:
    """The command names in one role's menu, in order."""
    return tuple(c.name for c in COMMANDS if c.menu and role in c.usage)


def readme_row(role: Role) -> str:
    """The README's commands cell for one role (Markdown, ``|`` escaped)."""
    return ", ".join(
        "`" + c.usage[role].replace("|", "\\|") + "`" for c in COMMANDS if role in c.usage
    )
