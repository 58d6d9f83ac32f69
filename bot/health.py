"""``/healthz`` and ``/metrics`` over HTTP, for load balancers, orchestrators and Prometheus.

``GET /healthz`` answers 200 ``{"database": "ok", "dispatcher": "ok", "channels": "ok"}``
when the database answers and this process's dispatcher made a pass recently, else 503
with what failed. ``"planner": "degraded"`` says the last planning pass had to skip a
practice or couple (the others were planned; the practice's admins were told).
``channels`` names the channels the dispatcher finds down (``"down: telegram"``): that is
reported, and the answer stays 200, because restarting this process would not bring
Telegram back (its rows wait in the outbox). ``GET /metrics`` is Prometheus text
(prometheus_client): this process's counters (``bot.metrics``) and the outbox figures read
from the database at scrape time, which are the same from every worker.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import CollectorRegistry
from sqlalchemy import func, or_, select

from bot.core.clock import Clock
from bot.metrics import CONTENT_TYPE, METRICS, OutboxFigures, render
from db.engine import Database
from db.models import Delivery
from schedules.dispatcher import Dispatcher
from schedules.planner import Planner

log = logging.getLogger(__name__)

# A pass that waits out a 429 or sends a full batch at one message a second per chat can
# take a while; a restart would not help it, so only a long silence counts as a failure.
DISPATCHER_SLACK_SECONDS = 60.0
DATABASE_TIMEOUT_SECONDS = 3.0


@dataclass
class HealthServer:
    """The HTTP server for health and metrics; ``port=0`` takes any free port."""

    db: Database
    clock: Clock
    dispatcher: Dispatcher | None
    idle_seconds: float
    host: str = "127.0.0.1"
    port: int = 0
    registry: CollectorRegistry = METRICS
    slack_seconds: float = DISPATCHER_SLACK_SECONDS
    monotonic: Callable[[], float] = time.monotonic
    planner: Planner | None = None
    _runner: web.AppRunner | None = field(default=None, init=False)
    _started_at: float = field(default=0.0, init=False)

    async def start(self) -> None:
        """Listen on ``host:port``."""
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        # No access log: a probe every few seconds would drown everything else.
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
            await web.SockSite(runner, sock).start()
        except BaseException:
            sock.close()
            await runner.cleanup()
            raise
        self.port = int(sock.getsockname()[1])
        self._runner = runner
        self._started_at = self.monotonic()
        log.info("health and metrics listening", extra={"port": self.port})

    async def stop(self) -> None:
        """Close the server."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def check(self) -> tuple[bool, dict[str, str]]:
        """Whether this process is healthy, and the state of each part."""
        parts = {"database": await self._database(), "dispatcher": self._dispatcher()}
        if self.planner is not None:
            # Degraded (some practice or couple could not be planned) still serves the others:
            # shown, but not a reason for a load balancer to take this worker out.
            parts["planner"] = self.planner.health.state
        healthy = all(state in ("ok", "off", "degraded") for state in parts.values())
        parts["channels"] = self._channels()
        return healthy, parts

    async def metrics_text(self) -> str:
        """Every metric in Prometheus' text format."""
        return render(self.registry, [await self._outbox_figures()])

    async def _database(self) -> str:
        try:
            answered = await asyncio.wait_for(self.db.ping(), DATABASE_TIMEOUT_SECONDS)
        except TimeoutError:
            return "timeout"
        return "ok" if answered else "unreachable"

    def _dispatcher(self) -> str:
        if self.dispatcher is None:
            return "off"  # this process takes updates only; another one dispatches
        last = max(self.dispatcher.alive_at, self._started_at)
        limit = 3 * self.idle_seconds + self.slack_seconds
        return "ok" if self.monotonic() - last <= limit else "stalled"

    def _channels(self) -> str:
        if self.dispatcher is None:
            return "off"
        down = sorted(self.dispatcher.outages())
        return f"down: {', '.join(down)}" if down else "ok"

    async def _outbox_figures(self) -> OutboxFigures:
        now = self.clock.now()
        by_status = select(Delivery.status, func.count()).group_by(Delivery.status)
        backlog = select(func.count()).where(
            or_(
                (Delivery.status == "pending") & (Delivery.due_at <= now),
                Delivery.status == "claimed",
            )
        )
        async with self.db.uow() as uow:
            counts = {status: int(n) for status, n in (await uow.session.execute(by_status)).all()}
            waiting = int(await uow.session.scalar(backlog) or 0)
        return OutboxFigures(
            sent=counts.get("sent", 0), failed=counts.get("failed", 0), waiting=waiting
        )

    async def _healthz(self, _request: web.Request) -> web.Response:
        healthy, parts = await self.check()
        return web.json_response(parts, status=200 if healthy else 503)

    async def _metrics(self, _request: web.Request) -> web.Response:
        try:
            body = await self.metrics_text()
        except Exception as error:
            # The database is away: say so rather than report figures that are wrong.
            log.warning("metrics scrape failed", extra={"error_type": type(error).__name__})
            return web.Response(status=503, text=json.dumps({"database": "unreachable"}))
        return web.Response(body=body.encode("utf-8"), headers={"Content-Type": CONTENT_TYPE})
