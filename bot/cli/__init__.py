"""The ``dyad`` command: run the bot, migrate, demo, and the practice admin's tools.

One module per area (``serve``, ``practice``, ``data``, ``channels``), each defining its
commands without knowing this group; helpers they share are in ``_common``.
"""

from __future__ import annotations

import sys

import click

from bot.cli import channels, data, practice, serve
from bot.config import ConfigError


@click.group()
@click.version_option(package_name="dyad")
def cli() -> None:
    """Dyad: a between-session companion for couples therapy on Telegram."""


for command in (
    serve.run,
    serve.migrate,
    serve.demo,
    serve.worker,
    practice.practice,
    practice.therapist,
    practice.schedules,
    practice.digest_command,
    data.keys,
    data.audit,
    data.erase,
):
    cli.add_command(command)
practice.therapist.add_command(channels.therapist_email)


def main() -> None:
    """Entry point: configuration problems print one line and exit with status 2."""
    try:
        cli.main(standalone_mode=True)
    except ConfigError as error:
        click.echo(f"dyad: configuration error: {error}", err=True)
        sys.exit(2)
