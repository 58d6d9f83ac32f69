"""``dyad schedules preview``: both partners' coming deliveries, side by side, in local time."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.services.practice_config import parse_practice_config
from bot.services.practices import AdminError
from db.models import Couple, Partner
from db.uow import UnitOfWork
from schedules.library import PromptLibrary
from schedules.planner import couple_plan
from schedules.planning import PlannedDelivery

_FIRST_WORDS = 6


def first_words(text: str, count: int = _FIRST_WORDS) -> str:
    """The first ``count`` words of a prompt, with an ellipsis when there is more."""
    words = text.split()
    head = " ".join(words[:count])
    return head + ("…" if len(words) > count else "")


def _cell(partner: Partner, library: PromptLibrary, planned: PlannedDelivery) -> str:
    local = planned.due_at_utc.astimezone(ZoneInfo(partner.timezone or "UTC"))
    text = library.text(planned.prompt_key, partner.language, name=partner.display_name or "")
    words = first_words(text) if planned.kind != "checkin" else ""
    quoted = f"  “{words}”" if words else ""
    return f"{local:%H:%M} {planned.kind:<14} {planned.prompt_key}{quoted}"


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
    """The preview table as lines: one row per local date, each partner in their own column.

    Built with :func:`schedules.planner.couple_plan`, the function the planner queues
    from, so couple-space pairs, follow-ups and the daily cap read exactly as they will
    be sent (rows already queued count, as they do for the planner).
    """
    couple = await find_couple(uow, handle, slug)
    practice = await uow.practices.get(couple.practice_id)
    assert practice is not None
    config = parse_practice_config(practice.config_toml)
    everyone = await uow.partners.of_couple(couple.id)
    partners = [p for p in everyone if p.timezone]
    if not partners:
        raise AdminError(f"{handle}: no partner has finished joining yet")
    is_open = couple.space_ready_at is not None and not couple.schedule_paused
    plans = await couple_plan(
        uow, couple, config, everyone, now, now + timedelta(days=days), assume_open=True
    )
    by_date: dict[date, dict[int, list[str]]] = defaultdict(lambda: defaultdict(list))
    for partner in partners:
        for planned in plans.get(partner.id, []):
            cell = _cell(partner, config.library, planned)
            by_date[planned.local_date][partner.id].append(cell)
    headers = [f"{p.slot}: {p.timezone} ({p.window})" for p in partners]
    widths = [
        max([len(headers[i])] + [len(c) for d in by_date.values() for c in d[p.id]])
        for i, p in enumerate(partners)
    ]
    date_width = len("Mon 2026-01-01")
    lines = [
        " | ".join(
            ["date".ljust(date_width), *(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
        ).rstrip()
    ]
    lines.append("-+-".join("-" * w for w in (date_width, *widths)))
    for day in sorted(by_date):
        cells = by_date[day]
        rows = max(len(cells[p.id]) for p in partners)
        for i in range(rows):
            label = f"{day:%a %Y-%m-%d}" if i == 0 else ""
            row = [label.ljust(date_width)]
            for partner, width in zip(partners, widths, strict=True):
                mine = cells[partner.id]
                row.append((mine[i] if i < len(mine) else "").ljust(width))
            lines.append(" | ".join(row).rstrip())
    if not is_open:
        why = "its schedule is paused" if couple.schedule_paused else "both have not joined yet"
        lines.insert(0, f"{couple.handle} receives nothing yet ({why}); once it does:")
    counts = ", ".join(f"{p.slot} {len(plans.get(p.id, []))}" for p in partners)
    lines.append(f"{days} days: {counts} deliveries")
    return lines
