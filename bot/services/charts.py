"""The rating charts of one couple: what the console's couple page and the e-mailed digest
draw (``bot.core.charts`` draws them; this module reads their values).

A chart carries ratings only: each partner's role scores from their completed check-ins,
their display name and the session dates. Never a note, a reply or an alert's words.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.core.charts import ChartSeries, ChartSpec
from bot.core.digest import SCORE_ROLES, Slot
from bot.core.instruments import score_summary
from bot.locales import t
from bot.services.practice_config import parse_practice_config
from db.models import CheckIn, Couple, Partner, TherapySession
from db.uow import UnitOfWork

CHART_PERIOD = timedelta(days=84)  # the charts show at most the last twelve weeks
MIN_CHART_SPAN = timedelta(days=28)


async def _series(
    uow: UnitOfWork, partner: Partner, config_text: str | None, since: datetime, now: datetime
) -> dict[str, list[tuple[datetime, float]]]:
    config = parse_practice_config(config_text)
    rows = await uow.session.scalars(
        select(CheckIn)
        .where(
            CheckIn.partner_id == partner.id,
            CheckIn.status != "open",
            CheckIn.started_at >= since,
            CheckIn.started_at < now,
        )
        .order_by(CheckIn.started_at)
    )
    out: dict[str, list[tuple[datetime, float]]] = {role: [] for role in SCORE_ROLES}
    for row in rows:
        instrument = config.instruments.get(row.instrument) or config.checkin_instrument()
        for role, value in score_summary(instrument, row.answers).items():
            if role in out:
                out[role].append((row.started_at, value))
    return out


async def couple_charts(
    uow: UnitOfWork,
    couple: Couple,
    order: tuple[Slot, Slot],
    names: dict[Slot, str],
    language: str,
    zone: ZoneInfo,
    threshold: float,
    now: datetime,
) -> tuple[ChartSpec, ...]:
    """One chart per rating role, both partners (``order``: the digest's first partner
    first), from the first rating of the last twelve weeks (at least four weeks) to now."""
    practice = await uow.practices.get(couple.practice_id)
    assert practice is not None
    since = now - CHART_PERIOD
    partners = {p.slot: p for p in await uow.partners.of_couple(couple.id)}
    series = {
        slot: await _series(uow, partners[slot], practice.config_toml, since, now) for slot in order
    }
    # From the first rating shown (at least four weeks), so that few weeks fill the width.
    earliest = min(
        (at for by_role in series.values() for pts in by_role.values() for at, _ in pts),
        default=now,
    )
    since = max(since, min(earliest - timedelta(days=3), now - MIN_CHART_SPAN))
    sessions = tuple(
        await uow.session.scalars(
            select(TherapySession.starts_at).where(
                TherapySession.couple_id == couple.id,
                TherapySession.cancelled_at.is_(None),
                TherapySession.starts_at >= since,
                TherapySession.starts_at <= now,
            )
        )
    )
    charts = []
    for role in SCORE_ROLES:
        first, second = (
            ChartSeries(slot, names[slot], tuple(series[slot][role])) for slot in order
        )
        charts.append(
            ChartSpec(
                chart_id=f"chart-{role}",
                title=t(language, f"digest.role.{role}"),
                series=(first, second),
                start=since,
                end=now,
                sessions=sessions,
                language=language,
                tz=zone,
                gap_threshold=threshold if role == "alliance" else None,
            )
        )
    return tuple(charts)
