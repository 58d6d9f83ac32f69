"""/metrics keeps its names, types and meanings on prometheus_client."""

from __future__ import annotations

import re

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram

from bot.metrics import LATENCY_BUCKETS, METRICS, OutboxFigures, render


def types(text: str) -> dict[str, str]:
    return dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, flags=re.MULTILINE))


def test_the_process_metrics_and_the_outbox_gauges_keep_their_names_and_types() -> None:
    text = render(METRICS, [OutboxFigures(sent=3, failed=2, waiting=1)])
    assert types(text) == {
        "dyad_updates_handled_total": "counter",
        "dyad_alerts_total": "counter",
        "dyad_crisis_lines_fallbacks_total": "counter",
        "dyad_planner_runs_total": "counter",
        "dyad_planner_practice_failures_total": "counter",
        "dyad_planner_couple_failures_total": "counter",
        "dyad_send_latency_seconds": "histogram",
        "dyad_deliveries_sent_total": "gauge",
        "dyad_deliveries_failed_total": "gauge",
        "dyad_deliveries_pending": "gauge",
    }
    assert "\ndyad_deliveries_sent_total 3.0\n" in text
    assert "\ndyad_deliveries_failed_total 2.0\n" in text
    assert "\ndyad_deliveries_pending 1.0\n" in text
    assert "_created" not in text  # no per-process start times
    assert not re.search(r"^(python|process)_", text, flags=re.MULTILINE)


def test_counts_and_latencies_are_exposed_as_observed() -> None:
    registry = CollectorRegistry()
    updates = Counter("dyad_updates_handled_total", "Updates.", registry=registry)
    latency = Histogram(
        "dyad_send_latency_seconds", "Latency.", buckets=LATENCY_BUCKETS, registry=registry
    )
    updates.inc()
    updates.inc()
    for seconds in (0.02, 0.1, 0.1, 40.0):
        latency.observe(seconds)
    text = render(registry)
    assert "\ndyad_updates_handled_total 2.0\n" in text
    # Buckets are cumulative and a bound counts an observation equal to it.
    assert 'dyad_send_latency_seconds_bucket{le="0.025"} 1.0' in text
    assert 'dyad_send_latency_seconds_bucket{le="0.1"} 3.0' in text
    assert 'dyad_send_latency_seconds_bucket{le="30.0"} 3.0' in text
    assert 'dyad_send_latency_seconds_bucket{le="+Inf"} 4.0' in text
    assert "\ndyad_send_latency_seconds_count 4.0\n" in text
    assert "\ndyad_send_latency_seconds_sum 40.22\n" in text


def test_a_scrape_refuses_two_meanings_for_one_name() -> None:
    registry = CollectorRegistry()
    Counter("dyad_deliveries_pending", "Clashes with the outbox gauge.", registry=registry)
    with pytest.raises(ValueError, match="dyad_deliveries_pending"):
        render(registry, [OutboxFigures(sent=0, failed=0, waiting=0)])
