"""The command table is the one list of commands: menus, handlers and README agree with it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from telegram.ext import Application, CommandHandler, filters

import handlers
from bot.locales import SUPPORTED_LANGUAGES, catalog
from handlers.commands import COMMANDS, ROLES, Role, menu_of, readme_row
from handlers.context import CONTEXT_TYPES

README = Path(__file__).parents[2] / "README.md"


@pytest.mark.parametrize("role", ROLES)
def test_the_readme_lists_each_roles_commands_as_the_table_does(role: Role) -> None:
    rows = re.findall(rf"^\| {role} \| private chat \| (.*) \|$", README.read_text(), re.M)
    assert rows == [readme_row(role)]


def test_every_command_of_the_table_is_registered_for_private_chats_once() -> None:
    application = (
        Application.builder().token("1:x").updater(None).context_types(CONTEXT_TYPES).build()
    )
    handlers.register(application)
    private = [
        name
        for handler in application.handlers[0]
        if isinstance(handler, CommandHandler) and handler.filters is filters.ChatType.PRIVATE
        for name in handler.commands
    ]
    assert sorted(private) == sorted(["start", *(c.name for c in COMMANDS)])


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_every_menu_command_has_a_description_in_every_language(language: str) -> None:
    for role in ROLES:
        for name in menu_of(role):
            assert catalog(language)[f"common.commands.{name}"].strip()


def test_each_menu_ends_with_help_and_shares_only_what_both_roles_use() -> None:
    assert menu_of("therapist")[-1] == menu_of("partner")[-1] == "help"
    shared = set(menu_of("therapist")) & set(menu_of("partner"))
    assert shared == {"linkgroup", "help"}


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
@pytest.mark.parametrize("role", ROLES)
def test_each_roles_help_names_every_command_of_the_role_in_every_language(
    role: Role, language: str
) -> None:
    named = re.findall(r"^/(\w+)", catalog(language)[f"common.help_{role}"], re.M)
    assert sorted(named) == sorted(c.name for c in COMMANDS if role in c.usage)
