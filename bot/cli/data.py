"""``dyad keys`` (encryption keys), ``dyad audit`` (a couple's audit log), ``dyad erase``."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from bot.cli import _common
from bot.config import Settings
from bot.services.crypto import key_file_for, load_cipher, new_key

if TYPE_CHECKING:
    from bot.services.data_rights import Rotation
    from db.uow import UnitOfWork


def configured_keys(settings: Settings) -> list[str]:
    """The keys the bot would use, newest first (creating the SQLite key file like the bot)."""
    load_cipher(settings)  # the same checks, errors and key file as `dyad run`
    if settings.encryption_keys is not None:
        keys = [k.strip() for k in settings.encryption_keys.get_secret_value().split(",")]
        if any(keys):
            return [k for k in keys if k]
    path = key_file_for(settings.database_url)
    assert path is not None  # load_cipher refused a deployment with neither
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


@click.group()
def keys() -> None:
    """Make and rotate the keys that encrypt partners' text at rest."""


@keys.command("new")
def keys_new() -> None:
    """Print a fresh key (put it first in DYAD_ENCRYPTION_KEYS, then `dyad keys rotate`)."""
    click.echo(new_key())


@keys.command("rotate")
@click.option("--batch", default=500, show_default=True, help="Rows per transaction.")
def keys_rotate(batch: int) -> None:
    """Re-encrypt all stored text with the newest key; safe to run again.

    The newest key is the first in DYAD_ENCRYPTION_KEYS (or the key file's first line on
    SQLite); older keys must stay listed until this has run. A row no configured key
    opens is reported and left as it is, and the command then exits with status 1.
    """
    from bot.services.data_rights import rotate_ciphertexts
    from db.engine import Database

    settings = _common.settings()
    newest_first = configured_keys(settings)

    async def _rotate() -> Rotation:
        db = Database(settings.database_url)
        try:
            await db.migrate()
            return await rotate_ciphertexts(db, newest_first, batch=max(1, batch))
        finally:
            await db.dispose()

    report = asyncio.run(_rotate())
    click.echo(
        f"rotated {report.rotated} rows to the newest key; "
        f"{report.current} already used it; {len(report.unreadable)} unreadable"
    )
    for row in report.unreadable:
        click.echo(f"{row}: no configured key opens it; left as it is", err=True)
    if report.unreadable:
        sys.exit(1)


@click.command()
@click.option("--couple", "handle", required=True, help="The couple's handle, e.g. c3.")
@click.option("--practice", "slug", default=None, help="The practice's slug (if handles clash).")
def audit(handle: str, slug: str | None) -> None:
    """Print a couple's audit log: time (UTC), actor, action, detail; one line each."""
    from bot.services.data_rights import couple_audit

    async def work(uow: UnitOfWork, now: datetime) -> list[str]:
        return [
            f"{e.at.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}\t{e.actor}\t{e.action}\t{e.detail or '-'}"
            for e in await couple_audit(uow, handle, slug)
        ]

    for line in _common.admin(work):
        click.echo(line)


@click.command()
@click.option("--couple", "handle", required=True, help="The couple's handle, e.g. c3.")
@click.option("--slot", type=click.Choice(["A", "B"]), required=True, help="The partner's seat.")
@click.option("--practice", "slug", default=None, help="The practice's slug (if handles clash).")
@click.confirmation_option(prompt="Erase this partner's data for good?")
def erase(handle: str, slot: str, slug: str | None) -> None:
    """Erase one partner's data, as /deleteme does (e.g. for a partner who used /stop)."""
    from bot.services.data_rights import Erased, erase_seat

    cipher = load_cipher(_common.settings())

    async def work(uow: UnitOfWork, now: datetime) -> Erased:
        return await erase_seat(uow, handle, slot, cipher, now, slug)

    erased = _common.admin(work)
    click.echo(f"erased seat {slot} of {handle}")
    if erased.group_posts:
        click.echo(
            f"{len(erased.group_posts)} group post(s) still show their answers: the group "
            "link has ended; ask the couple to delete them, or delete them as the bot."
        )
