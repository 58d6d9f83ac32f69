"""The ``dyad`` command: run the bot, migrate, demo, and the practice admin's tools."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import click

from bot.config import ConfigError, Settings, load_settings
from bot.logs import configure_logging

if TYPE_CHECKING:
    from db.uow import UnitOfWork

T = TypeVar("T")


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
@click.option(
    "--keep", "keep", type=click.Path(dir_okay=False), help="Keep the demo database here."
)
@click.option("--seed", default=1, show_default=True, help="Varies the partners' behaviour.")
@click.option("--web", is_flag=True, help="Serve the check-in Mini App on loopback instead.")
@click.option("--port", default=8780, show_default=True, help="The loopback port for --web.")
def demo(keep: str | None, seed: int, web: bool, port: int) -> None:
    """Run Dyad end to end against a local fake Telegram, with no token and no network."""
    from bot.demo import run_demo, run_web_demo

    configure_logging("WARNING")
    if web:
        with contextlib.suppress(KeyboardInterrupt):
            _run(lambda: run_web_demo(port=port, out=sys.stdout))
        return
    _run(lambda: run_demo(keep=keep, seed=seed, out=sys.stdout))


def _admin(work: Callable[[UnitOfWork, datetime], Awaitable[T]]) -> T:
    """Run one admin action in a unit of work; an :class:`AdminError` is one line, exit 1."""
    from bot.services.practices import AdminError
    from db.engine import Database

    settings = _settings()

    async def _go() -> T:
        db = Database(settings.database_url)
        try:
            await db.migrate()
            async with db.uow() as uow:
                result = await work(uow, datetime.now(UTC))
                await uow.commit()
                return result
        finally:
            await db.dispose()

    try:
        return asyncio.run(_go())
    except AdminError as error:
        raise click.ClickException(str(error)) from None


async def _bot_username(settings: Settings) -> str:
    """The bot's username, from getMe on the configured Bot API."""
    from telegram import Bot

    if settings.bot_token is None:
        raise ConfigError("DYAD_BOT_TOKEN: required to make invite links (ask @BotFather)")
    bot = Bot(settings.bot_token.get_secret_value(), base_url=settings.telegram_api_url)
    async with bot:
        me = await bot.get_me()
    if not me.username:
        raise click.ClickException("the Bot API did not tell the bot's username (getMe)")
    return me.username


@cli.group()
def practice() -> None:
    """Create and list practices."""


@practice.command("create")
@click.option("--name", required=True, help="The practice's name.")
@click.option("--timezone", "timezone", default="UTC", show_default=True, help="IANA time zone.")
@click.option("--language", default="en", show_default=True, help="Default language (en, es).")
def practice_create(name: str, timezone: str, language: str) -> None:
    """Create a practice and print its slug."""
    from bot.services.practices import create_practice

    async def work(uow: UnitOfWork, now: datetime) -> str:
        created = await create_practice(uow, name, timezone=timezone, language=language, now=now)
        return created.slug

    click.echo(_admin(work))


@practice.command("list")
def practice_list() -> None:
    """List practices: slug, time zone, language, name."""

    async def work(uow: UnitOfWork, now: datetime) -> list[str]:
        return [
            f"{p.slug}\t{p.timezone}\t{p.language}\t{p.name}" for p in await uow.practices.all()
        ]

    for line in _admin(work):
        click.echo(line)


@cli.group()
def therapist() -> None:
    """Invite and list therapists."""


@therapist.command("invite")
@click.option("--practice", "slug", required=True, help="The practice's slug.")
@click.option("--name", required=True, help="The therapist's name as couples will see it.")
@click.option("--admin", is_flag=True, help="The therapist also administers the practice.")
def therapist_invite(slug: str, name: str, admin: bool) -> None:
    """Create a one-time therapist invite; the link is the last line printed."""
    from bot.services.practices import invite_therapist

    settings = _settings()
    username = asyncio.run(_bot_username(settings))
    ttl = timedelta(days=settings.invite_ttl_days)

    async def work(uow: UnitOfWork, now: datetime) -> str:
        issued = await invite_therapist(uow, slug, name, is_admin=admin, now=now, ttl=ttl)
        return issued.link(username)

    link = _admin(work)
    click.echo(f"One-time invite for {name}; it expires in {settings.invite_ttl_days} days:")
    click.echo(link)


@therapist.command("list")
@click.option("--practice", "slug", required=True, help="The practice's slug.")
def therapist_list(slug: str) -> None:
    """List a practice's therapists."""
    from bot.services.practices import therapists_of

    async def work(uow: UnitOfWork, now: datetime) -> list[str]:
        rows = await therapists_of(uow, slug)
        return [
            f"{t.id}\t{'admin' if t.is_admin else 'therapist'}\t"
            f"{'joined' if t.joined_at else 'invited'}\t{t.display_name}"
            for t in rows
        ]

    for line in _admin(work):
        click.echo(line)


@practice.command("configure")
@click.argument("slug")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
def practice_configure(slug: str, file: str) -> None:
    """Check a practice.toml and store it as the practice's configuration."""
    from pathlib import Path

    from bot.services.practice_config import parse_practice_config
    from bot.services.practices import practice_by_slug
    from schedules.check import check_practice_file, format_problems

    result = check_practice_file(file)
    if not result.ok:
        for line in format_problems(result):
            click.echo(line, err=True)
        sys.exit(1)
    text = Path(file).read_text(encoding="utf-8")
    try:
        parse_practice_config(text)
    except ValueError as error:
        raise click.ClickException(f"{file}: {error}") from None

    async def work(uow: UnitOfWork, now: datetime) -> str:
        practice = await practice_by_slug(uow, slug)
        practice.config_toml = text
        return practice.slug

    click.echo(f"{_admin(work)}: {result.summary}")


@cli.group()
def schedules() -> None:
    """Check practice schedules and preview what a couple will receive."""


@schedules.command("check")
@click.argument("file", type=click.Path(dir_okay=False))
def schedules_check(file: str) -> None:
    """Validate a practice.toml: each problem with its line, or a one-line summary."""
    from schedules.check import check_practice_file, format_problems

    result = check_practice_file(file)
    if not result.ok:
        for line in format_problems(result):
            click.echo(line)
        sys.exit(1)
    click.echo(result.summary)


@schedules.command("preview")
@click.option("--couple", "handle", required=True, help="The couple's handle, such as c3.")
@click.option("--practice", "slug", default=None, help="The practice (needed if several).")
@click.option("--days", default=14, show_default=True, type=click.IntRange(1, 60))
def schedules_preview(handle: str, slug: str | None, days: int) -> None:
    """What each partner will receive and when, side by side, in their own local time."""
    from bot.services.schedule_preview import preview_lines

    async def work(uow: UnitOfWork, now: datetime) -> list[str]:
        return await preview_lines(uow, handle, slug, now, days)

    for line in _admin(work):
        click.echo(line)


@cli.command("digest")
@click.argument("handle")
@click.option("--practice", "slug", default=None, help="The practice (needed if several).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "html", "json"]),
    default="text",
    show_default=True,
)
def digest_command(handle: str, slug: str | None, fmt: str) -> None:
    """Print a couple's digest now (since the last session, or the last 14 days); audited."""
    from bot.core.digest_render import render_html_page, render_json, render_text
    from bot.services.crypto import load_cipher
    from bot.services.digests import compose_for
    from bot.services.schedule_preview import find_couple

    settings = _settings()
    cipher = load_cipher(settings)

    async def work(uow: UnitOfWork, now: datetime) -> str:
        couple = await find_couple(uow, handle, slug)
        therapist = await uow.therapists.get(couple.therapist_id)
        assert therapist is not None
        digest = await compose_for(uow, couple, cipher, now, actor="cli")
        if fmt == "json":
            return render_json(digest)
        if fmt == "html":
            return render_html_page(digest, therapist.language)
        return render_text(digest, therapist.language)

    click.echo(_admin(work))


@cli.command()
@click.option("--once", is_flag=True, help="Plan and send what is due, then exit.")
def worker(once: bool) -> None:
    """Plan and send prompts without serving Telegram updates."""
    from bot.runner import run_worker

    settings = _settings()
    _run(lambda: run_worker(settings, once=once))


def _register_data_commands() -> None:
    from bot.cli_data import audit, erase, keys

    cli.add_command(keys)
    cli.add_command(audit)
    cli.add_command(erase)
    from bot.cli_channels import therapist_email

    therapist.add_command(therapist_email)


_register_data_commands()


def main() -> None:
    """Entry point: configuration problems print one line and exit with status 2."""
    try:
        cli.main(standalone_mode=True)
    except ConfigError as error:
        click.echo(f"dyad: configuration error: {error}", err=True)
        sys.exit(2)
