"""``dyad therapist email``: where a therapist's pre-session digests are also emailed."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import click

from bot.cli import _common
from bot.config import EMAIL_ADDRESS

if TYPE_CHECKING:
    from db.uow import UnitOfWork

MAX_EMAIL = 320  # the column's size, and RFC 5321's limit


def valid_email(address: str) -> str:
    """The address, trimmed, if it is a plain mailbox address; otherwise a ValueError."""
    address = address.strip()
    if len(address) > MAX_EMAIL or not EMAIL_ADDRESS.match(address):
        raise ValueError(f"{address[:80]!r} is not an email address such as ana@practice.example")
    return address


async def set_therapist_email(
    uow: UnitOfWork, slug: str, therapist_id: int, address: str | None, now: datetime
) -> str:
    """Set or clear a therapist's digest email (audited); returns their name."""
    from bot.services.practices import AdminError, practice_by_slug

    practice = await practice_by_slug(uow, slug)
    therapist = await uow.therapists.get(therapist_id)
    if therapist is None or therapist.practice_id != practice.id:
        raise AdminError(
            f"no therapist {therapist_id} in practice {slug!r} (see `dyad therapist list`)"
        )
    therapist.email = address
    uow.audit.record(
        actor="cli",
        action="therapist.email_clear" if address is None else "therapist.email_set",
        couple_id=None,
        at=now,
        detail=f"therapist:{therapist.id}",
    )
    return therapist.display_name


@click.command("email")
@click.option("--practice", "slug", required=True, help="The practice's slug.")
@click.option(
    "--therapist", "therapist_id", required=True, type=int, help="The therapist's id (list)."
)
@click.option("--email", "address", default=None, help="Where their digests are emailed.")
@click.option("--clear", is_flag=True, help="Stop emailing their digests.")
def therapist_email(slug: str, therapist_id: int, address: str | None, clear: bool) -> None:
    """Also email a therapist's pre-session digests (or stop, with --clear)."""

    if clear == (address is not None):
        raise click.UsageError("give either --email ADDRESS or --clear")
    if address is not None:
        try:
            address = valid_email(address)
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--email") from None
    settings = _common.settings()
    chosen = address

    async def work(uow: UnitOfWork, now: datetime) -> str:
        return await set_therapist_email(uow, slug, therapist_id, chosen, now)

    name = _common.admin(work)
    if chosen is None:
        click.echo(f"{name}: digests are no longer emailed")
        return
    click.echo(f"{name}: pre-session digests are also emailed to {chosen}")
    if not settings.smtp_enabled:
        click.echo(
            "note: DYAD_SMTP_HOST is not set, so no email is sent until an SMTP relay is "
            "configured",
            err=True,
        )
