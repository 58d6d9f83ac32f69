"""The ``dyad`` command: run the bot, migrate, demo, and the practice admin's tools."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any

import click

from bot.config import ConfigError, Settings, load_settings
from bot.logs import configure_logging


def _settings() -> Settings:
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    return settings


def _run(coro_factory: Callable[[], Coroutine[Any, Any, object]]) -> object:
    return asyncio.run(coro_factory())


@click.group()
@click.version_option(package_name="dyad")
def cli() -> None:
    """Dyad: a between-session companion for couples therapy on Telegram."""


@cli.command()
def run() -> None:
    """Run the bot: migrate the database, then serve Telegram updates."""
    from bot.runner import run_bot

    settings = _settings()
    _run(lambda: run_bot(settings))


@cli.command()
def migrate() -> None:
    """Bring the database schema up to date (safe to run again)."""
    from db.engine import Database

    settings = _settings()

    async def _migrate() -> None:
        db = Database(settings.database_url)
        try:
            await db.migrate()
        finally:
            await db.dispose()

    _run(_migrate)
    click.echo("database is up to date")


@cli.command()
@click.option("--keep", "keep", type=click.Path(dir_okay=False), help="Keep the demo database here.")
@click.option("--seed", default=1, show_default=True, help="Varies the partners' behaviour.")
def demo(keep: str | None, seed: int) -> None:
    """Run Dyad end to end against a local fake Telegram, with no token and no network."""
    from bot.demo import run_demo

    configure_logging("WARNING")
    _run(lambda: run_demo(keep=keep, seed=seed, out=sys.stdout))


def main() -> None:
    """Entry point: configuration problems print one line and exit with status 2."""
    try:
        cli.main(standalone_mode=True)
    except ConfigError as error:
        click.echo(f"dyad: configuration error: {error}", err=True)
        sys.exit(2)
