"""``dyad schedules preview``: both partners' coming deliveries, side by side, in local time.

:func:`schedule_preview` gives the rows; :func:`preview_lines` prints them as the command
line's text table, and the console's admin page shows them in the therapist's language.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
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


@dataclass(frozen=True)
class PreviewCell:
    """One coming delivery: its local time, kind, prompt key and the prompt's first words
    in the partner's language (none for a check-in)."""

    at: datetime
    kind: str
    prompt_key: str
    words: str


@dataclass(frozen=True)
class PreviewColumn:
    """One partner's column: their seat, time zone, delivery window and how many come."""

    slot: str
    timezone: str
    window: str | None
    deliveries: int


@dataclass(frozen=True)
class SchedulePreview:
    """Both partners' coming deliveries by local date (each row: one list per column).

    ``waiting`` says why the couple receives nothing yet (``paused``: its schedule is
    paused; ``not_joined``: both have not joined yet), or is None.
    """

    handle: str
    days: int
    columns: tuple[PreviewColumn, ...]
    rows: tuple[tuple[date, tuple[tuple[PreviewCell, ...], ...]], ...]
    waiting: str | None


class NobodyJoined(AdminError):
    """No partner of the couple has finished joining: there is nothing to preview."""


def _cell(partner: Partner, library: PromptLibrary, planned: PlannedDelivery) -> PreviewCell:
    local = planned.due_at_utc.astimezone(ZoneInfo(partner.timezone or "UTC"))
    text = library.text(planned.prompt_key, partner.language, name=partner.display_name or "")
    words = first_words(text) if planned.kind != "checkin" else ""
    return PreviewCell(local, planned.kind, planned.prompt_key, words)


def _cell_text(cell: PreviewCell) -> str:
    quoted = f"  “{cell.words}”" if cell.words else ""
    return f"{cell.at:%H:%M} {cell.kind:<14} {cell.prompt_key}{quoted}"


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


async def schedule_preview(
    uow: UnitOfWork, handle: str, slug: str | None, now: datetime, days: int
) -> SchedulePreview:
    """Both partners' coming ``days`` of deliveries, one row per local date.

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
        raise NobodyJoined(f"{handle}: no partner has finished joining yet")
    plans = await couple_plan(
        uow, couple, config, everyone, now, now + timedelta(days=days), assume_open=True
    )
    by_date: dict[date, dict[int, list[PreviewCell]]] = defaultdict(lambda: defaultdict(list))
    for partner in partners:
        for planned in plans.get(partner.id, []):
            by_date[planned.local_date][partner.id].append(_cell(partner, config.library, planned))
    waiting = None
    if couple.space_ready_at is None or couple.schedule_paused:
        waiting = "paused" if couple.schedule_paused else "not_joined"
    return SchedulePreview(
        handle=couple.handle,
        days=days,
        columns=tuple(
            PreviewColumn(p.slot, p.timezone or "UTC", p.window, len(plans.get(p.id, [])))
            for p in partners
        ),
        rows=tuple(
            (day, tuple(tuple(by_date[day][p.id]) for p in partners)) for day in sorted(by_date)
        ),
        waiting=waiting,
    )


async def preview_lines(
    uow: UnitOfWork, handle: str, slug: str | None, now: datetime, days: int
) -> list[str]:
    """The preview as ``dyad schedules preview`` prints it: a text table, one row per
    local date, each partner in their own column (:func:`schedule_preview`)."""
    preview = await schedule_preview(uow, handle, slug, now, days)
    columns = preview.columns
    headers = [f"{c.slot}: {c.timezone} ({c.window})" for c in columns]
    widths = [
        max(
            [len(headers[i])]
            + [len(_cell_text(cell)) for _, cells in preview.rows for cell in cells[i]]
        )
        for i in range(len(columns))
    ]
    date_width = len("Mon 2026-01-01")
    lines = [
        " | ".join(
            ["date".ljust(date_width), *(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
        ).rstrip()
    ]
    lines.append("-+-".join("-" * w for w in (date_width, *widths)))
    for day, cells in preview.rows:
        for i in range(max(len(mine) for mine in cells)):
            label = f"{day:%a %Y-%m-%d}" if i == 0 else ""
            row = [label.ljust(date_width)]
            for mine, width in zip(cells, widths, strict=True):
                row.append((_cell_text(mine[i]) if i < len(mine) else "").ljust(width))
            lines.append(" | ".join(row).rstrip())
    if preview.waiting is not None:
        why = (
            "its schedule is paused" if preview.waiting == "paused" else "both have not joined yet"
        )
        lines.insert(0, f"{preview.handle} receives nothing yet ({why}); once it does:")
    counts = ", ".join(f"{c.slot} {c.deliveries}" for c in columns)
    lines.append(f"{days} days: {counts} deliveries")
    return lines
