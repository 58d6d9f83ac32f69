"""The composition root: builds the PTB Application with its database, services and dispatcher."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal
from urllib.parse import urlsplit

from telegram import Bot, BotCommandScopeDefault
from telegram.ext import Application

import handlers
from bot.channels.budget import RedisWindow, Window
from bot.channels.group import GROUP_LIMITS, TelegramGroupProbe
from bot.channels.registry import GROUP_CHANNEL, build_channels
from bot.channels.telegram import DyadRateLimiter, TelegramMessenger
from bot.config import ConfigError
from bot.health import HealthServer
from bot.intake import Inbox, InboxProcessor, Intake
from bot.locales import SUPPORTED_LANGUAGES
from bot.metrics import SEND_LATENCY
from bot.services import digests, reminders, sessions
from bot.services.checkins import CheckinInvitation
from bot.services.delivery_render import DyadRenderer
from bot.services.deps import Deps
from bot.services.events import EventRenderer
from bot.services.groups import CONSENT_KIND, GroupConsentRenderer, GroupRenderer
from bot.services.miniapp import MiniAppCheckinInvitation, purge_drafts
from bot.services.miniapp_prompts import MiniAppPromptRenderer
from bot.services.prompts import PromptRenderer, RevealRenderer
from bot.web.server import WebServer
from handlers.context import CONTEXT_TYPES, DyadApplication
from handlers.menus import PARTNER_COMMANDS, bot_commands
from schedules.dispatcher import Dispatcher, Pacer
from schedules.planner import Planner

log = logging.getLogger(__name__)

ALLOWED_UPDATES = ["message", "callback_query", "my_chat_member", "chat_member"]

IntakeMode = Literal["poll", "webhook", "none"]
"""How updates reach this process: long polling, Telegram's webhook, or not at all."""


def file_url_for(api_url: str) -> str:
    """Telegram's file URL beside a Bot API URL (``…/bot`` -> ``…/file/bot``)."""
    return api_url[: -len("bot")] + "file/bot" if api_url.endswith("/bot") else api_url


def build_application(
    deps: Deps, token: str, processor: InboxProcessor | None = None
) -> DyadApplication:
    """A PTB Application wired to Dyad's handlers, database and clock.

    Updates reach it through :mod:`bot.intake` (stored first), not PTB's Updater; with a
    ``processor``, each is claimed in the inbox before its handlers run. Handlers read the
    dependencies and the Messenger from their typed context (:mod:`handlers.context`).
    """
    api_url = deps.settings.telegram_api_url
    builder = (
        Application.builder()
        .token(token)
        .base_url(api_url)
        .base_file_url(file_url_for(api_url))
        # Every message request passes Dyad's own limiter: replies take urgent turns in the
        # dispatcher's budget, outbox sends bulk slots (see DyadBot); no retries in PTB.
        .rate_limiter(DyadRateLimiter(max_retries=3))
        .updater(None)
        .context_types(CONTEXT_TYPES)
    )
    if processor is not None:
        builder = builder.concurrent_updates(processor)
    application = builder.build()
    application.bot_data.deps = deps
    application.bot_data.messenger = TelegramMessenger(application.bot)
    handlers.register(application)
    return application


@dataclass
class DispatchOptions:
    """How fast the dispatcher may send from this process, and how often to plan."""

    rate_per_second: float = 30.0
    per_chat_interval: float = 1.0
    idle_seconds: float = 2.0
    plan_every_seconds: float = 300.0  # 0 turns the periodic JobQueue work off
    concurrency: int = 16
    """Sends in progress at once: each renders its row, waits for its turn, sends and marks
    it, so with a network round trip and a busy database 8 could not keep 30/s going."""


class DyadBot:
    """One running bot: the Application, its update intake and its dispatcher."""

    def __init__(
        self,
        deps: Deps,
        token: str,
        *,
        dispatch: DispatchOptions | None = None,
        background_dispatch: bool = True,
    ) -> None:
        self.deps = deps
        processor = InboxProcessor(max_concurrent=deps.settings.concurrent_updates)
        self.application = build_application(deps, token, processor)
        self.inbox = Inbox(
            deps.db, deps.cipher, lease=timedelta(seconds=deps.settings.intake_lease_seconds)
        )
        replies = self.application.bot_data.messenger
        assert replies is not None
        self.intake = Intake(self.application, self.inbox, replies)
        processor.intake = self.intake
        settings = deps.settings
        # A shared window needs no static split between workers: each takes what is free.
        share = 1.0 if settings.redis_url else settings.worker_share
        options = dispatch or DispatchOptions(rate_per_second=settings.send_rate_per_second * share)
        self.options = options
        self.renderer = DyadRenderer()
        self.renderer.kinds["checkin"] = CheckinInvitation()
        if deps.settings.webapp_url is not None:  # the invitation offers the Mini App too
            self.renderer.kinds["checkin"] = MiniAppCheckinInvitation(deps.settings.webapp_url)
        for kind in ("hope", "skill", "skill_followup", "couple_space"):
            self.renderer.kinds[kind] = (
                PromptRenderer()
                if deps.settings.webapp_url is None
                else MiniAppPromptRenderer(deps.settings.webapp_url)  # its page too
            )
        self.renderer.kinds["reveal"] = RevealRenderer(deps.cipher)
        self.renderer.kinds[reminders.REMINDER_KIND] = reminders.CheckinReminder()
        self.renderer.kinds["digest"] = digests.DigestRenderer(deps.cipher)
        self.planner = Planner(deps.db, deps.clock)
        # The dispatcher's own Telegram adapter: no retries inside PTB, so its 429s reach it.
        outbox_messenger = TelegramMessenger(self.application.bot, direct=True)
        self.channels = build_channels(deps.settings, outbox_messenger, clock=deps.clock)
        self.renderer.channels["webhook"] = EventRenderer(deps.cipher)
        self.renderer.kinds[CONSENT_KIND] = GroupConsentRenderer()
        self.channels.register(GROUP_CHANNEL, outbox_messenger, GROUP_LIMITS)
        # Membership reads before each group post go around the send rate limiter.
        api_url = deps.settings.telegram_api_url
        self._probe_bot = Bot(token, base_url=api_url, base_file_url=file_url_for(api_url))
        self.renderer.channels[GROUP_CHANNEL] = GroupRenderer(
            deps.cipher, TelegramGroupProbe(self.application.bot, self._probe_bot), deps.clock
        )
        self.window: Window | None = None
        if settings.redis_url:
            self.window = RedisWindow(
                settings.redis_url,
                prefix=f"{settings.redis_prefix}:budget",
                limit=int(options.rate_per_second),
            )
        pacer = Pacer(options.rate_per_second, options.per_chat_interval, window=self.window)
        self.dispatcher = Dispatcher(
            db=deps.db,
            clock=deps.clock,
            channels=self.channels,
            renderer=self.renderer,
            rate_per_second=options.rate_per_second,
            per_chat_interval=options.per_chat_interval,
            concurrency=options.concurrency,
            pacer=pacer,
        )
        self.share_budget(self.dispatcher.pacer)
        # The dispatcher's hook for metrics, replaced on this instance as it invites.
        setattr(self.dispatcher, "metrics_send_latency", SEND_LATENCY.observe)  # noqa: B010
        self.health: HealthServer | None = None
        self.web: WebServer | None = None
        self._token = token
        self.background_dispatch = background_dispatch
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # Handlers and the Mini App pages wake the dispatcher when they queued something.
        deps.dispatch_wake = self._wake

    def share_budget(self, pacer: Pacer | None) -> None:
        """One Telegram budget for every request: the limiter counts each in ``pacer``."""
        assert pacer is not None
        self.dispatcher.pacer = pacer
        limiter = self.application.bot.rate_limiter
        if isinstance(limiter, DyadRateLimiter):
            limiter.budget = pacer
            limiter.spacing = self._spacing
            pacer.counted_by_limiter = pacer.window is not None

    def _spacing(self, chat: int | str) -> float:
        """The interval between two messages to a chat: a group's own, or a private chat's."""
        if isinstance(chat, int) and chat < 0:
            interval = self.dispatcher.pacer_for(GROUP_CHANNEL)[1]
            return GROUP_LIMITS.per_address_interval if interval is None else interval
        return self.options.per_chat_interval

    async def start(self, mode: IntakeMode = "poll", *, poll: bool = True) -> None:
        """Initialise, register the command menus, start intake, the dispatcher and health.

        ``poll=False`` is the older spelling of ``mode="none"``.
        """
        if not poll:
            mode = "none"
        settings = self.deps.settings
        if mode == "webhook" and (settings.webhook_url is None or settings.webhook_secret is None):
            raise ConfigError("DYAD_WEBHOOK_URL and DYAD_WEBHOOK_SECRET: both needed for webhooks")
        app = self.application
        await app.initialize()
        await self._probe_bot.initialize()
        self.deps.bot_username = app.bot.username
        for language in SUPPORTED_LANGUAGES:
            await app.bot.set_my_commands(
                bot_commands(PARTNER_COMMANDS, language),
                scope=BotCommandScopeDefault(),
                language_code=None if language == "en" else language,
            )
        await app.start()
        if mode == "poll":
            await self.intake.start_polling(ALLOWED_UPDATES, long_poll=5)
        elif mode == "webhook":
            await self._start_webhook()
        if self.background_dispatch:
            self._task = asyncio.create_task(
                self.dispatcher.run_forever(self._stop, self._wake, self.options.idle_seconds)
            )
            if self.options.plan_every_seconds > 0:  # 0: the caller runs maintain() itself
                assert app.job_queue is not None
                app.job_queue.run_repeating(
                    self._maintain,
                    interval=self.options.plan_every_seconds,
                    first=1.0,  # 0 would make APScheduler wait a whole interval first
                    name="planner",
                    job_kwargs={"max_instances": 1, "coalesce": True},
                )
        if settings.health_port is not None:
            self.health = HealthServer(
                db=self.deps.db,
                clock=self.deps.clock,
                dispatcher=self.dispatcher if self.background_dispatch else None,
                idle_seconds=self.options.idle_seconds,
                planner=self.planner,
                host=settings.webhook_listen,
                port=settings.health_port,
            )
            await self.health.start()
        if settings.webapp_url is not None and settings.webapp_port is not None:
            self.web = WebServer(
                self.deps, self._token, host=settings.webapp_listen, port=settings.webapp_port
            )
            await self.web.start()

    async def _start_webhook(self) -> None:
        """Serve Telegram's webhook; several workers may share one URL behind a balancer."""
        settings = self.deps.settings
        assert settings.webhook_url is not None and settings.webhook_secret is not None
        # A request without the secret is refused before its body is read, and no body
        # over 1 MiB is read at all. Every worker sets the same webhook; none deletes it
        # on stop, so the others keep serving.
        await self.intake.start_webhook(
            listen=settings.webhook_listen,
            port=settings.webhook_port,
            path=urlsplit(settings.webhook_url).path or "/",
            url=settings.webhook_url,
            secret=settings.webhook_secret.get_secret_value(),
            allowed_updates=ALLOWED_UPDATES,
        )

    async def maintain(self) -> None:
        """One round of the periodic work: sessions, digests, planning, check-in reminders."""
        now = self.deps.clock.now()
        async with self.deps.db.uow() as uow:
            await sessions.ensure_all_weekly(uow, now)
        await digests.send_due_digests(
            self.deps.db, self.deps.cipher, now, email="email" in self.channels
        )
        await self.planner.run()
        async with self.deps.db.uow() as uow:
            await reminders.remind_and_expire(uow, now)  # then expiry, per practice
        async with self.deps.db.uow() as uow:
            await purge_drafts(uow, now)
        await self.deps.db.optimize()
        self._wake.set()

    async def _maintain(self, _context: object) -> None:
        try:
            await self.maintain()
        except Exception:
            log.exception("periodic planning failed; it runs again at the next interval")

    def wake_dispatcher(self) -> None:
        """Send queued messages now rather than at the next idle tick."""
        self._wake.set()

    async def stop(self) -> None:
        """Stop intake, the dispatcher and health, then shut the Application down."""
        if self.health is not None:
            await self.health.stop()
            self.health = None
        if self.web is not None:
            await self.web.stop()
            self.web = None
        self._stop.set()
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.channels.aclose()
        await self.intake.stop()
        if self.window is not None:
            await self.window.aclose()
        app = self.application
        if app.running:
            await app.stop()
        await app.shutdown()
        await self._probe_bot.shutdown()
