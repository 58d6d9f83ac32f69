"""The practice admin's commands: practices, therapists, schedules and a couple's digest."""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import click

from bot.cli import _common

if TYPE_CHECKING:
    from db.uow import UnitOfWork


@click.group()
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

    click.echo(_common.admin(work))


@practice.command("list")
def practice_list() -> None:
    """List practices: slug, time zone, language, name."""

    async def work(uow: UnitOfWork, now: datetime) -> list[str]:
        return [
            f"{p.slug}\t{p.timezone}\t{p.language}\t{p.name}" for p in await uow.practices.all()
        ]

    for line in _common.admin(work):
        click.echo(line)


@click.group()
def therapist() -> None:
    """Invite and list therapists."""


@therapist.command("invite")
@click.option("--practice", "slug", required=True, help="The practice's slug.")
@click.option("--name", required=True, help="The therapist's name as couples will see it.")
@click.option("--admin", is_flag=True, help="The therapist also administers the practice.")
def therapist_invite(slug: str, name: str, admin: bool) -> None:
    """Create a one-time therapist invite; the link is the last line printed."""
    from bot.services.practices import invite_therapist

    settings = _common.settings()
    username = asyncio.run(_common.bot_username(settings))
    ttl = timedelta(days=settings.invite_ttl_days)

    async def work(uow: UnitOfWork, now: datetime) -> str:
        issued = await invite_therapist(uow, slug, name, is_admin=admin, now=now, ttl=ttl)
        return issued.link(username)

    link = _common.admin(work)
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

    for line in _common.admin(work):
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

    click.echo(f"{_common.admin(work)}: {result.summary}")


@click.group()
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

    for line in _common.admin(work):
        click.echo(line)


@click.command("digest")
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
    from bot.core.digest import render_html_page, render_json, render_text
    from bot.services.crypto import load_cipher
    from bot.services.digests import compose_for
    from bot.services.schedule_preview import find_couple

    settings = _common.settings()
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

    click.echo(_common.admin(work))
