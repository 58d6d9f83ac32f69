"""The process's Prometheus metrics (prometheus_client), and how a scrape renders them.

Counters and histograms here count what *this process* did (updates it handled, alerts
it raised, how long its sends took); a scrape of every worker sums them. Figures that
must be right across workers (deliveries sent, failed, waiting) are read from the
database at scrape time instead (``bot.health``, through :class:`OutboxFigures`), so any
one worker reports them whole.

Names and label values are fixed by the code: never a user's text, name or score.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

# The text format the scrape answers in (what Prometheus has read since 2.0).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Telegram answers in tens to hundreds of milliseconds; a 429 or a timeout takes seconds.
LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# No `*_created` series: each would be one more per-process start time that nobody graphs.
disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped upstream

METRICS = CollectorRegistry(auto_describe=True)
"""The process's registry (one process, one registry, as Prometheus expects).

Not prometheus_client's global ``REGISTRY``: its process and garbage-collector series
would say things about the host that a scrape of Dyad does not need.
"""

UPDATES_HANDLED = Counter(
    "dyad_updates_handled_total",
    "Telegram updates this process handled (repeats not counted).",
    registry=METRICS,
)
ALERTS_RAISED = Counter(
    "dyad_alerts_total", "Safety alerts this process raised for therapists.", registry=METRICS
)
CRISIS_LINES_FALLBACKS = Counter(
    "dyad_crisis_lines_fallbacks_total",
    "Crisis cards shown with the shipped lines because a practice's file could not be used.",
    registry=METRICS,
)
PLANNER_RUNS = Counter(
    "dyad_planner_runs_total", "Planning passes this process completed.", registry=METRICS
)
PLANNER_PRACTICE_FAILURES = Counter(
    "dyad_planner_practice_failures_total",
    "Practices a planning pass skipped because their configuration could not be planned.",
    registry=METRICS,
)
PLANNER_COUPLE_FAILURES = Counter(
    "dyad_planner_couple_failures_total",
    "Couples a planning pass could not plan (the others were planned).",
    registry=METRICS,
)
SEND_LATENCY = Histogram(
    "dyad_send_latency_seconds",
    "Time from sending a delivery to Telegram's answer.",
    buckets=LATENCY_BUCKETS,
    registry=METRICS,
)


@dataclass(frozen=True)
class OutboxFigures:
    """The outbox as the shared database had it at scrape time: one collector per scrape.

    Every worker reads the same rows, so these are the same on every worker: aggregate
    them with ``max()``, not ``sum()``. Retention may delete old rows, so they are gauges
    (the ``_total`` names are kept from earlier releases, for existing dashboards).
    """

    sent: int
    failed: int
    waiting: int

    def collect(self) -> Iterator[Metric]:
        """The three gauges."""
        yield GaugeMetricFamily(
            "dyad_deliveries_sent_total",
            "Deliveries sent, from the outbox (all workers).",
            value=self.sent,
        )
        yield GaugeMetricFamily(
            "dyad_deliveries_failed_total",
            "Deliveries that failed for good, from the outbox (all workers).",
            value=self.failed,
        )
        yield GaugeMetricFamily(
            "dyad_deliveries_pending",
            "Deliveries due now and not yet sent, or being sent (all workers).",
            value=self.waiting,
        )


def render(registry: CollectorRegistry = METRICS, extra: Iterable[Collector] = ()) -> str:
    """Every metric of ``registry``, then the ``extra`` collectors, in the text format."""
    scrape = CollectorRegistry(auto_describe=True)
    scrape.register(registry)
    for collector in extra:
        scrape.register(collector)  # a name already taken raises: one meaning per name
    return generate_latest(scrape).decode("utf-8")
