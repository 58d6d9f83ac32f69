"""The benchmarks still run: each one, at a tiny size, ends with its JSON line of figures.

No timing is asserted (benchmarks are run by hand, see docs/benchmarks.md); only that
every script works end to end against today's code, and the outcomes that do not depend
on speed: nothing lost or sent twice, the outbox surviving a restart, every update handled.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from bench import digest, fanout, footprint, resilience, responsiveness, scheduling, updates

Main = Callable[[Sequence[str] | None], dict[str, Any]]


def last_json_line(run: Main, argv: list[str], capsys: pytest.CaptureFixture[str]) -> Any:
    """Run a benchmark's main and parse the last line it printed."""
    run(argv)
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines, "the benchmark printed nothing"
    return json.loads(lines[-1])


def assert_reports(figures: Any, *names: str) -> None:
    """The JSON line is an object with these figures, the CPU count and the parameters."""
    assert isinstance(figures, dict)
    assert set(names) | {"cpu_count", "parameters"} <= set(figures)
    assert figures["cpu_count"] >= 1


def test_fanout_sends_every_notice_once(capsys: pytest.CaptureFixture[str]) -> None:
    figures = last_json_line(fanout.main, ["--partners", "4", "--baseline", "none"], capsys)
    assert_reports(figures, "rate_share", "http_429", "per_chat_violations", "duplicates", "lost")
    assert figures["messages"] == 4
    assert (figures["duplicates"], figures["lost"]) == (0, 0)


def test_scheduling_compares_every_side_and_only_stored_plans_survive_a_restart(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A fixed start: five minutes later no firing has entered the 48 hours (at the current
    # time one sometimes has, and the repeat pass rightly plans it).
    argv = ["--partners", "6", "--apscheduler-partners", "6", "--now", "2026-10-19T06:00:00+00:00"]
    figures = last_json_line(scheduling.main, argv, capsys)
    assert_reports(figures, "sqlite")
    sides = figures["sqlite"]
    for side in ("dyad", "jobqueue", "apscheduler_sqlalchemy"):
        passes = ("first_pass", "repeat_pass", "restart_pass")
        assert {f"{name}_ms_per_couple" for name in passes} <= set(sides[side])
    dyad, jobqueue, stored = sides["dyad"], sides["jobqueue"], sides["apscheduler_sqlalchemy"]
    assert jobqueue["jobs"] == stored["jobs"] == 6 * 4, "four rules per partner on each side"
    assert dyad["rows"] > 0 and dyad["repeat_rows"] == 0
    assert dyad["known_after_restart"] == dyad["rows"]
    assert jobqueue["known_after_restart"] == 0
    assert stored["known_after_restart"] == stored["jobs"]


def test_updates_handles_every_press_and_note(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--updates", "12", "--databases", "sqlite", "--partners", "2"]
    argv += ["--think-seconds", "0.05", "--rate", "50", "--no-baseline"]
    figures = last_json_line(updates.main, argv, capsys)
    assert_reports(figures, "sqlite")
    sqlite = figures["sqlite"]
    assert {"p50_ms", "p99_ms", "backlog_max", "sql_per_update"} <= set(sqlite)
    assert (sqlite["updates"], sqlite["answered"]) == (12, 12)
    assert sqlite["notes"] >= 1
    assert sqlite["sql_per_update"]["note"]["transactions"] >= 1
    assert sqlite["handler_errors"] == 0


def test_responsiveness_answers_presses_during_a_fanout(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["--partners", "40", "--pressers", "2", "--presses-per-second", "20"]
    argv += ["--rtt-ms", "0", "--no-baseline"]
    figures = last_json_line(responsiveness.main, argv, capsys)
    assert_reports(figures, "p50_ms", "p99_ms", "presses", "unanswered")
    assert figures["fanout_delivered"] == 40
    assert (figures["unanswered"], figures["http_429"]) == (0, 0)


def test_digest_composes_and_renders_every_couple(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--couples", "2", "--days", "14", "--samples", "2"]
    figures = last_json_line(digest.main, argv, capsys)
    assert_reports(figures, "sqlite")
    for side in ("dyad", "before"):
        run = figures["sqlite"][side]
        assert {"p50_ms", "p99_ms", "compose", "render", "compose_and_render"} <= set(run)
        assert run["digests"] == 2
        assert run["messages_per_digest"] >= 1


def test_footprint_measures_a_real_dyad_run(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--couples", "3", "--batch", "2", "--idle-seconds", "0.5", "--quiet-window", "0.5"]
    figures = last_json_line(footprint.main, argv, capsys)
    assert_reports(figures, "rss_idle_mb", "rss_dispatching_mb")
    assert figures["rss_idle_mb"] > 0
    assert figures["batch_sent"] == 2
    assert figures["exit_code"] == 0


def test_resilience_loses_nothing_and_sends_nothing_twice(
    capsys: pytest.CaptureFixture[str],
) -> None:
    figures = last_json_line(
        resilience.main, ["--scenario", "outage", "--couples", "1", "--outage-minutes", "6"], capsys
    )
    assert_reports(figures, "outage")
    outage = figures["outage"]
    assert (outage["lost"], outage["duplicates"], outage["gave_up"]) == (0, 0, 0)
    assert outage["alert_emails"] == 1
    figures = last_json_line(resilience.main, ["--scenario", "skew", "--couples", "2"], capsys)
    skew = figures["skew"]
    assert (skew["skew_duplicates"], skew["skew_lost"]) == (0, 0)
    assert (skew["slow_send_duplicates"], skew["slow_send_lost"]) == (0, 0)
