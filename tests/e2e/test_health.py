"""``/healthz`` says what is wrong; ``/metrics`` counts this process's work and reads the outbox."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select, update

from bot.app import IntakeMode
from bot.core.clock import ManualClock
from bot.health import HealthServer
from bot.services.delivery_render import DyadRenderer
from db.engine import Database
from db.models import Delivery
from fakebotapi import FakeBotAPI
from schedules.dispatcher import Dispatcher
from tests.e2e.test_checkins import _checkin, _couple
from tests.e2e.test_webhook import free_port, running_bot
from tests.integration.test_dispatcher import open_clinic, queue_notes

SAMPLE = re.compile(r"^([a-z_]+)(\{[^}]*\})? (\S+)$")
METRIC_NAMES = (
    "dyad_updates_handled_total",
    "dyad_deliveries_sent_total",
    "dyad_deliveries_failed_total",
    "dyad_deliveries_pending",
    "dyad_send_latency_seconds",
    "dyad_planner_runs_total",
    "dyad_alerts_total",
)


async def _get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


async def _health(port: int) -> tuple[int, dict[str, Any]]:
    url = f"http://127.0.0.1:{port}/healthz"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.json()


async def _scrape(port: int) -> dict[str, float]:
    """Every sample on /metrics by name (with its labels), checking the format as it goes."""
    status, body = await _get(f"http://127.0.0.1:{port}/metrics")
    assert status == 200
    samples: dict[str, float] = {}
    for line in body.splitlines():
        if line.startswith("#"):
            assert re.match(r"^# (HELP|TYPE) dyad_[a-z_]+ ", line), line
            continue
        match = SAMPLE.match(line)
        assert match is not None, line
        name, labels, value = match.groups()
        # The only label is a histogram bucket's bound: nothing about anyone.
        assert labels is None or re.fullmatch(r'\{le="[0-9.+Inf]+"\}', labels), line
        samples[name + (labels or "")] = float(value)
    return samples


def _idle_dispatcher(db: Database, clock: ManualClock) -> Dispatcher:
    """A dispatcher that is only asked whether it is alive."""
    return Dispatcher(db=db, clock=clock, channels={}, renderer=DyadRenderer())


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
@pytest.mark.parametrize("mode", ["poll", "webhook"])
async def test_healthz_is_ok_while_the_database_answers_and_the_dispatcher_runs(
    fake: FakeBotAPI, db: Database, clock: ManualClock, mode: IntakeMode
) -> None:
    port = free_port()
    async with running_bot(fake, db, clock, mode, health_port=port) as harness:
        await fake.wait_for(lambda: harness.bot.dispatcher.alive_at > 0)
        assert await _health(port) == (
            200,
            {"database": "ok", "dispatcher": "ok", "planner": "ok", "channels": "ok"},
        )


async def test_healthz_names_a_stalled_dispatcher_and_an_unreachable_database(
    sqlite_db: Database, clock: ManualClock
) -> None:
    now = [1_000.0]
    dispatcher = _idle_dispatcher(sqlite_db, clock)
    server = HealthServer(
        db=sqlite_db,
        clock=clock,
        dispatcher=dispatcher,
        idle_seconds=2.0,
        slack_seconds=60.0,
        monotonic=lambda: now[0],
    )
    gone = Database("postgresql+asyncpg://nobody@127.0.0.1:1/nothing")
    orphan = HealthServer(db=gone, clock=clock, dispatcher=None, idle_seconds=2.0)
    await server.start()
    await orphan.start()
    try:
        dispatcher.alive_at = now[0]
        ok = {"database": "ok", "dispatcher": "ok", "channels": "ok"}
        assert await _health(server.port) == (200, ok)
        now[0] += 3 * 2.0 + 60.0 + 1.0  # no pass for longer than three idle waits and the slack
        assert await _health(server.port) == (503, {**ok, "dispatcher": "stalled"})
        dispatcher.alive_at = now[0]
        assert (await _health(server.port))[0] == 200
        assert await _health(orphan.port) == (
            503,
            {"database": "unreachable", "dispatcher": "off", "channels": "off"},
        )
        assert (await _get(f"http://127.0.0.1:{orphan.port}/metrics"))[0] == 503
    finally:
        await server.stop()
        await orphan.stop()
        await gone.dispose()


async def test_every_worker_reports_the_same_outbox_figures_from_the_database(
    db: Database, fake: FakeBotAPI, clock: ManualClock
) -> None:
    clinic = await open_clinic(db, fake, clock.now(), couples=1)
    due = await queue_notes(db, clinic.partners, 4, clock.now())
    await queue_notes(db, clinic.partners, 1, clock.now() + timedelta(hours=1))  # not due yet
    states = ["sent"] * 3 + ["failed"] * 2 + ["claimed"] + ["pending"] * 2
    async with db.uow() as uow:
        for delivery_id, status in zip(due, states, strict=True):
            await uow.session.execute(
                update(Delivery).where(Delivery.id == delivery_id).values(status=status)
            )
        await uow.commit()
    other = Database(db.url, search_path=db.search_path)  # a second worker's own connections
    workers = [
        HealthServer(db=database, clock=clock, dispatcher=None, idle_seconds=2.0)
        for database in (db, other)
    ]
    for worker in workers:
        await worker.start()
    try:
        for worker in workers:
            samples = await _scrape(worker.port)
            assert samples["dyad_deliveries_sent_total"] == 3
            assert samples["dyad_deliveries_failed_total"] == 2
            assert samples["dyad_deliveries_pending"] == 3  # two due and one being sent
    finally:
        for worker in workers:
            await worker.stop()
        await other.dispose()


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
async def test_metrics_count_updates_alerts_plans_and_send_times(
    fake: FakeBotAPI, db: Database, clock: ManualClock
) -> None:
    port = free_port()
    async with running_bot(fake, db, clock, "poll", health_port=port) as harness:
        await harness.settle()
        before = await _scrape(port)
        updates_before, runs_before = len(fake.updates), harness.bot.planner.runs
        _, alex, _, _ = await _couple(harness)
        await _checkin(alex, note="Some days I just want to kill myself.")
        await alex.wait_for_message(lambda m: "saved" in m.text)
        await harness.bot.maintain()
        await harness.settle()
        after = await _scrape(port)
        async with db.uow() as uow:
            sent = await uow.session.scalar(select(func.count()).where(Delivery.status == "sent"))

    def grew(name: str) -> float:
        return after[name] - before.get(name, 0.0)

    for name in METRIC_NAMES:
        assert name in after or f"{name}_count" in after, name
    assert grew("dyad_updates_handled_total") == len(fake.updates) - updates_before > 0
    assert grew("dyad_alerts_total") == 1
    assert grew("dyad_planner_runs_total") == harness.bot.planner.runs - runs_before >= 1
    assert after["dyad_deliveries_sent_total"] == sent
    assert after["dyad_deliveries_pending"] == 0
    sends = grew("dyad_deliveries_sent_total")
    assert sends > 0 and grew("dyad_send_latency_seconds_count") == sends
    assert (
        after['dyad_send_latency_seconds_bucket{le="+Inf"}']
        == after["dyad_send_latency_seconds_count"]
    )
