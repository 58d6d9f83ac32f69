"""``dyad schedules preview``: both partners' coming deliveries, side by side, in local time."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.services.practices import AdminError
from db.models import Couple, Partner
from db.uow import UnitOfWork
from schedules.planner import plan_for_partner

_WIDTH = 44


def _cell(partner: Partner, when: datetime, kind: str, key: str) -> str:
    local = when.astimezone(ZoneInfo(partner.timezone or "UTC"))
    return f"{local:%a %d %b %H:%M}  {kind:<14} {key}"[:_WIDTH]


async def find_couple(uow: UnitOfWork, handle: str, slug: str | None) -> Couple:
    """The active couple with this handle (in this practice, if given), or an AdminError."""
    query = select(Couple).where(Couple.handle == handle.lower(), Couple.status == "active")
    if slug is not None:
        practice = await uow.practices.by_slug(slug)
        if practice is None:
            raise AdminError(f"no practice with slug {slug!r}")
        query = query.where(Couple.practice_id == practice.id)
    found = list(await uow.session.scalars(query))
    if not found:
        raise AdminError(f"no active couple {handle!r}")
    if len(found) > 1:
        raise AdminError(f"several practices have a couple {handle!r}; add --practice SLUG")
    return found[0]


async def preview_lines(
    uow: UnitOfWork, handle: str, slug: str | None, now: datetime, days: int
) -> list[str]:
    """The preview table as lines of text."""
    couple = await find_couple(uow, handle, slug)
    practice = await uow.practices.get(couple.practice_id)
    assert practice is not None
    partners = [p for p in await uow.partners.of_couple(couple.id) if p.timezone]
    if not partners:
        raise AdminError(f"{handle}: no partner has finished joining yet")
    columns: list[list[str]] = []
    headers: list[str] = []
    for partner in partners:
        headers.append(f"{partner.slot}: {partner.timezone} ({partner.window})"[:_WIDTH])
        planned = plan_for_partner(couple, practice, partner, now, now + timedelta(days=days))
        columns.append([_cell(partner, p.due_at_utc, p.kind, p.prompt_key) for p in planned])
    rows = max(len(c) for c in columns)
    lines = [" | ".join(h.ljust(_WIDTH) for h in headers).rstrip()]
    lines.append("-+-".join("-" * _WIDTH for _ in headers))
    for i in range(rows):
        cells = [c[i] if i < len(c) else "" for c in columns]
        lines.append(" | ".join(cell.ljust(_WIDTH) for cell in cells).rstrip())
    counts = ", ".join(f"{p.slot} {len(c)}" for p, c in zip(partners, columns, strict=True))
    lines.append(f"{days} days: {counts} deliveries")
    return lines
