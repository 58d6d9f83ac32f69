"""A tiny in-process metrics registry, rendered in Prometheus' text exposition format.

Counters and histograms here count what *this process* did (updates it handled, alerts
it raised, how long its sends took); a scrape of every worker sums them. Figures that
must be right across workers (deliveries sent, failed, waiting) are read from the
database at scrape time instead (``bot.health``), so any one worker reports them whole.

Names and label values are fixed by the code: never a user's text, name or score.
"""

from __future__ import annotations

import math
import threading
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# Telegram answers in tens to hundreds of milliseconds; a 429 or a timeout takes seconds.
LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Counter:
    """A number that only goes up."""

    kind = "counter"

    def __init__(self, name: str, help_text: str) -> None:
        self.name = name
        self.help = help_text
        self._value = 0.0
        self._lock = threading.Lock()

    def inc(self, amount: float = 1.0) -> None:
        """Add ``amount`` (at least zero)."""
        if amount < 0:
            raise ValueError("a counter cannot go down")
        with self._lock:
            self._value += amount

    @property
    def value(self) -> float:
        """The count so far."""
        return self._value

    def samples(self) -> list[str]:
        """Its lines in the exposition format."""
        return [f"{self.name} {_number(self._value)}"]


class Histogram:
    """Observations counted into cumulative ``le`` buckets, with their sum and count."""

    kind = "histogram"

    def __init__(
        self, name: str, help_text: str, buckets: Sequence[float] = LATENCY_BUCKETS
    ) -> None:
        if list(buckets) != sorted(set(buckets)) or not buckets:
            raise ValueError("buckets must be distinct and increasing")
        self.name = name
        self.help = help_text
        self.buckets = tuple(float(b) for b in buckets)
        self._counts = [0] * (len(self.buckets) + 1)  # the last one is +Inf
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        """Count one observation (a latency in seconds, say)."""
        with self._lock:
            self._counts[bisect_left(self.buckets, value)] += 1
            self._sum += value

    @property
    def count(self) -> int:
        """How many observations there were."""
        return sum(self._counts)

    def samples(self) -> list[str]:
        """Its lines in the exposition format."""
        with self._lock:
            counts, total = list(self._counts), self._sum
        lines: list[str] = []
        running = 0
        for bound, count in zip((*self.buckets, math.inf), counts, strict=True):
            running += count
            lines.append(f'{self.name}_bucket{{le="{_number(bound)}"}} {running}')
        lines.append(f"{self.name}_sum {_number(total)}")
        lines.append(f"{self.name}_count {running}")
        return lines


@dataclass(frozen=True)
class Gauge:
    """A value read at scrape time (from the database, or from a running object)."""

    name: str
    help: str
    value: float
    kind: str = "gauge"

    def samples(self) -> list[str]:
        """Its line in the exposition format."""
        return [f"{self.name} {_number(self.value)}"]


Metric = Counter | Histogram | Gauge


class Registry:
    """The metrics one process keeps."""

    def __init__(self) -> None:
        self._metrics: dict[str, Counter | Histogram] = {}

    def counter(self, name: str, help_text: str) -> Counter:
        """Register (or return the existing) counter called ``name``."""
        existing = self._metrics.get(name)
        if isinstance(existing, Counter):
            return existing
        if existing is not None:
            raise ValueError(f"{name} is already registered as a {existing.kind}")
        metric = self._metrics[name] = Counter(name, help_text)
        return metric

    def histogram(
        self, name: str, help_text: str, buckets: Sequence[float] = LATENCY_BUCKETS
    ) -> Histogram:
        """Register (or return the existing) histogram called ``name``."""
        existing = self._metrics.get(name)
        if isinstance(existing, Histogram):
            return existing
        if existing is not None:
            raise ValueError(f"{name} is already registered as a {existing.kind}")
        metric = self._metrics[name] = Histogram(name, help_text, buckets)
        return metric

    def render(self, extra: Iterable[Metric] = ()) -> str:
        """Every metric (and ``extra`` ones read at scrape time) as Prometheus text."""
        lines: list[str] = []
        for metric in (*self._metrics.values(), *extra):
            lines.append(f"# HELP {metric.name} {_escape_help(metric.help)}")
            lines.append(f"# TYPE {metric.name} {metric.kind}")
            lines.extend(metric.samples())
        return "\n".join(lines) + "\n"


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


METRICS = Registry()
"""The process's registry (one process, one registry, as Prometheus expects)."""

UPDATES_HANDLED = METRICS.counter(
    "dyad_updates_handled_total", "Telegram updates this process handled (repeats not counted)."
)
ALERTS_RAISED = METRICS.counter(
    "dyad_alerts_total", "Safety alerts this process raised for therapists."
)
PLANNER_RUNS = METRICS.counter("dyad_planner_runs_total", "Planning passes this process completed.")
PLANNER_PRACTICE_FAILURES = METRICS.counter(
    "dyad_planner_practice_failures_total",
    "Practices a planning pass skipped because their configuration could not be planned.",
)
PLANNER_COUPLE_FAILURES = METRICS.counter(
    "dyad_planner_couple_failures_total",
    "Couples a planning pass could not plan (the others were planned).",
)
SEND_LATENCY = METRICS.histogram(
    "dyad_send_latency_seconds", "Time from sending a delivery to Telegram's answer."
)
