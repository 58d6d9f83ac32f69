"""``dyad run``, ``migrate``, ``demo`` and ``worker``: the processes Dyad runs as."""

from __future__ import annotations

import contextlib
import sys

import click

from bot.cli import _common
from bot.logs import configure_logging


@click.command()
def run() -> None:
    """Run the bot: migrate the database, then serve Telegram updates."""
    from bot.runner import run_bot

    settings = _common.settings()
    _common.run(lambda: run_bot(settings))


@click.command()
def migrate() -> None:
    """Bring the database schema up to date (safe to run again)."""
    from db.engine import Database

    settings = _common.settings()

    async def _migrate() -> None:
        db = Database(settings.database_url)
        try:
            await db.migrate()
        finally:
            await db.dispose()

    _common.run(_migrate)
    click.echo("database is up to date")


@click.command()
@click.option(
    "--keep", "keep", type=click.Path(dir_okay=False), help="Keep the demo database here."
)
@click.option("--seed", default=1, show_default=True, help="Varies the partners' behaviour.")
@click.option("--web", is_flag=True, help="Serve the check-in Mini App on loopback instead.")
@click.option("--port", default=8780, show_default=True, help="The loopback port for --web.")
def demo(keep: str | None, seed: int, web: bool, port: int) -> None:
    """Run Dyad end to end against a local fake Telegram, with no token and no network."""
    try:
        from bot.demo import run_demo, run_web_demo
    except ModuleNotFoundError as error:
        if (error.name or "").partition(".")[0] != "fakebotapi":
            raise
        raise click.ClickException(
            "the demo needs a source checkout of Dyad: it plays Telegram with the fake Bot "
            "API (fakebotapi/), which this installation leaves out (the Docker image does). "
            "In a checkout, `make demo` sets everything up and runs it."
        ) from None

    configure_logging("WARNING")
    if web:
        with contextlib.suppress(KeyboardInterrupt):
            _common.run(lambda: run_web_demo(port=port, out=sys.stdout))
        return
    _common.run(lambda: run_demo(keep=keep, seed=seed, out=sys.stdout))


@click.command()
@click.option("--once", is_flag=True, help="Plan and send what is due, then exit.")
def worker(once: bool) -> None:
    """Plan and send prompts without serving Telegram updates."""
    from bot.runner import run_worker

    settings = _common.settings()
    _common.run(lambda: run_worker(settings, once=once))
