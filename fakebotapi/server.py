"""A strict fake of the Telegram Bot API over real HTTP, for tests and the offline demo.

It speaks the wire protocol PTB speaks (`{base_url}{token}/{method}`, form, multipart or
JSON parameters, `{"ok": ..., "result": ...}` answers), refuses what Telegram refuses with
Telegram's own descriptions, and lets a test play users, enforce flood limits and inject
faults. Everything runs in the caller's event loop on 127.0.0.1 and a free port.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import re
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from ipaddress import ip_address
from types import TracebackType
from typing import Any, Final, Protocol, TypeVar
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from fakebotapi.faults import Fault, FaultKind, Faults
from fakebotapi.formatting import (
    CAPTION_LIMIT,
    TEXT_LIMIT,
    EntityParseError,
    parse_html,
    trim,
)
from fakebotapi.models import (
    ApiCall,
    FakeCallbackQuery,
    FakeDocument,
    FakeMessage,
    UploadedFile,
    WebhookDelivery,
)
from fakebotapi.params import (
    ApiError,
    Params,
    bad_request,
    keyboard_of,
    parse_reply_markup,
)
from fakebotapi.ratelimits import (
    RATE_LIMITED_METHODS,
    RateLimiter,
    RateLimits,
    RateLimitViolations,
)
from fakebotapi.users import FakeGroup, FakeUser

logger = logging.getLogger(__name__)

DEFAULT_TOKEN: Final = "123456:TEST-TOKEN"
NOT_MODIFIED: Final = (
    "message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
QUERY_INVALID: Final = "query is too old and response timeout expired or query ID is invalid"
# Without allowed_updates Telegram sends everything except these.
_OPT_IN_UPDATES: Final = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
_CHAT_ACTIONS: Final = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
_SCOPE_TYPES: Final = frozenset(
    {
        "default",
        "all_private_chats",
        "all_group_chats",
        "all_chat_administrators",
        "chat",
        "chat_administrators",
        "chat_member",
    }
)
_COMMAND_NAME = re.compile(r"[a-z0-9_]{1,32}")
_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
_TOKEN = re.compile(r"\d+:[A-Za-z0-9_-]+")

_T = TypeVar("_T")
Handler = Callable[[Params], Awaitable[Any]]
Chat = FakeUser | FakeGroup


class Clock(Protocol):
    """Where the fake reads the time for the dates it stamps (any of Dyad's clocks fits)."""

    def now(self) -> datetime:
        """The current time, timezone-aware."""
        ...


class _Configured:
    """Sentinel: use the secret the bot configured with setWebhook."""


CONFIGURED_SECRET: Final = _Configured()


@dataclass(frozen=True)
class _Described:
    """A result Telegram sends with a description (setWebhook, deleteWebhook)."""

    result: Any
    description: str


@dataclass
class _Webhook:
    url: str
    secret_token: str | None
    max_connections: int
    last_error_date: int | None = None
    last_error_message: str | None = None


class _Signal:
    """Wakes every waiter whenever the fake's state changes (updates, messages, answers)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def fire(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, seconds: float | None) -> None:
        event = self._event
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), seconds)


class FakeBotAPI:
    """The fake Bot API server; start it, point PTB's base_url at it, play users."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        bot_username: str = "dyad_test_bot",
        *,
        limits: RateLimits | None = None,
        seed: int = 0,
        clock: Clock | None = None,
        bot_first_name: str = "Dyad Test Bot",
        timeout_delay: float = 3.0,
        webhook_retries: int = 3,
        webhook_retry_delay: float = 0.05,
        privacy_mode: bool = True,
        round_trip: float = 0.0,
    ) -> None:
        if _TOKEN.fullmatch(token) is None:
            raise ValueError(f"not a Telegram bot token: {token!r}")
        self._token = token
        self.bot_id = int(token.split(":", 1)[0])
        self.bot_username = bot_username
        self.bot_first_name = bot_first_name
        self.limits = limits
        self.timeout_delay = timeout_delay
        """How long a "timeout" fault holds its answer, in seconds."""
        self.webhook_retries = webhook_retries
        """How many times a failed webhook POST is tried again before the update is dropped."""
        self.webhook_retry_delay = webhook_retry_delay
        self.privacy_mode = privacy_mode
        self.round_trip = round_trip
        """A network's round trip, in seconds: each request arrives half of it after it was
        made and its answer leaves the other half later (long polls only on the way back)."""
        """Telegram's default for bots: in groups, only commands to it, replies to it and
        service messages reach the bot (unless it is an administrator)."""
        self.faults = Faults(seed)
        self._clock = clock

        self.calls: list[ApiCall] = []
        """Every request the bot made, in arrival order."""
        self.updates: list[dict[str, Any]] = []
        """Every update the played users produced, delivered or not."""
        self.callback_queries: list[FakeCallbackQuery] = []
        self.webhook_deliveries: list[WebhookDelivery] = []
        self.webhook_dropped: list[dict[str, Any]] = []
        """Updates the webhook refused on every try (Telegram gives up too, eventually)."""
        self.internal_errors: list[Exception] = []
        """Bugs in the fake itself (answered as 500); a test may assert this stays empty."""
        self.users: dict[int, FakeUser] = {}
        self.groups: dict[int, FakeGroup] = {}

        self._limiter: RateLimiter | None = (
            RateLimiter(limits, lambda: asyncio.get_running_loop().time()) if limits else None
        )
        self._messages: dict[tuple[int, int], FakeMessage] = {}
        self._bot_messages: dict[int, list[FakeMessage]] = {}
        self._user_messages: dict[int, list[FakeMessage]] = {}
        self._group_messages: dict[int, list[FakeMessage]] = {}
        self._last_message_id: dict[int, int] = {}
        self._documents: dict[str, FakeDocument] = {}
        self._file_paths: dict[str, FakeDocument] = {}
        self._queries: dict[str, FakeCallbackQuery] = {}
        self._commands: dict[tuple[str, str], list[dict[str, str]]] = {}
        self._descriptions: dict[tuple[str, str], str] = {}
        self._pending: list[dict[str, Any]] = []
        self._allowed_updates: frozenset[str] | None = None
        self._webhook: _Webhook | None = None
        self._next_update_id = 100_000
        self._next_query = 0
        self._next_file = 0
        self._poll_generation = 0

        self._signal = _Signal()
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._session: aiohttp.ClientSession | None = None
        self._webhook_task: asyncio.Task[None] | None = None
        self._handlers: dict[str, tuple[str, Handler]] = {
            name.lower(): (name, handler)
            for name, handler in {
                "getMe": self._get_me,
                "getUpdates": self._get_updates,
                "sendMessage": self._send_message,
                "editMessageText": self._edit_message_text,
                "editMessageReplyMarkup": self._edit_message_reply_markup,
                "deleteMessage": self._delete_message,
                "deleteMessages": self._delete_messages,
                "answerCallbackQuery": self._answer_callback_query,
                "sendDocument": self._send_document,
                "sendChatAction": self._send_chat_action,
                "getFile": self._get_file,
                "setMyCommands": self._set_my_commands,
                "getMyCommands": self._get_my_commands,
                "deleteMyCommands": self._delete_my_commands,
                "setMyDescription": self._set_my_description,
                "getMyDescription": self._get_my_description,
                "setMyShortDescription": self._set_my_short_description,
                "getMyShortDescription": self._get_my_short_description,
                "setWebhook": self._set_webhook,
                "deleteWebhook": self._delete_webhook,
                "getWebhookInfo": self._get_webhook_info,
                "getChat": self._get_chat,
                "getChatMember": self._get_chat_member,
                "getChatMemberCount": self._get_chat_member_count,
                "close": self._close,
                "logOut": self._close,
            }.items()
        }

    # Lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on 127.0.0.1 on a free port, in the running event loop."""
        if self._runner is not None:
            raise RuntimeError("FakeBotAPI is already started")
        app = web.Application(client_max_size=50 * 1024 * 1024)  # Telegram's upload limit
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_route("GET", "/file/bot{token}/{path:.+}", self._handle_file)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._port = int(sock.getsockname()[1])
        await web.SockSite(runner, sock).start()
        self._runner = runner
        self._stopping.clear()
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        self._webhook_task = asyncio.create_task(self._deliver_webhooks(), name="fake-webhook")
        logger.info("fake Bot API listening on %s", self.base_url)

    async def stop(self) -> None:
        """Answer pending long polls, stop webhook delivery and close the server."""
        if self._runner is None:
            return
        self._stopping.set()
        self._signal.fire()
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._webhook_task
            self._webhook_task = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        await self._runner.cleanup()
        self._runner = None

    async def __aenter__(self) -> FakeBotAPI:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def token(self) -> str:
        """The only token this fake accepts."""
        return self._token

    @property
    def port(self) -> int:
        """The TCP port the fake listens on."""
        if self._port is None:
            raise RuntimeError("FakeBotAPI is not started")
        return self._port

    @property
    def base_url(self) -> str:
        """What to give PTB's `base_url` (it appends the token and method)."""
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        """What to give PTB's `base_file_url`."""
        return f"http://127.0.0.1:{self.port}/file/bot"

    @property
    def bot_user(self) -> dict[str, Any]:
        """The bot's User object."""
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.bot_first_name,
            "username": self.bot_username,
        }

    # Test-side API -------------------------------------------------------------------------

    def add_user(
        self,
        user_id: int,
        first_name: str,
        language_code: str | None = "en",
        username: str | None = None,
        *,
        last_name: str | None = None,
        has_started: bool = False,
    ) -> FakeUser:
        """Create a user; the bot may write to them once they have sent anything."""
        if user_id <= 0:
            raise ValueError("Telegram user ids are positive")
        if user_id in self.users or user_id == self.bot_id:
            raise ValueError(f"user {user_id} already exists")
        user = FakeUser(
            self,
            user_id,
            first_name,
            language_code=language_code,
            username=username,
            last_name=last_name,
            has_started=has_started,
        )
        self.users[user_id] = user
        return user

    def add_group(
        self,
        chat_id: int,
        title: str,
        *,
        supergroup: bool = False,
        members: tuple[FakeUser, ...] = (),
        bot_status: str = "member",
    ) -> FakeGroup:
        """Make a group chat (negative id) known: ``members`` in it (the first created it).

        The bot is a member already (``bot_status``), without any update; to play the bot
        being added, pass ``bot_status="left"`` and call :meth:`FakeGroup.add_bot`.
        """
        if chat_id >= 0:
            raise ValueError("group chat ids are negative")
        if chat_id in self.groups:
            raise ValueError(f"group {chat_id} already exists")
        if bot_status not in ("member", "administrator", "left", "kicked"):
            raise ValueError(f"unknown bot status {bot_status!r}")
        group = FakeGroup(
            self,
            chat_id,
            title,
            "supergroup" if supergroup else "group",
            member_ids=[m.id for m in members],
            creator_id=members[0].id if members else None,
            bot_status=bot_status,
        )
        self.groups[chat_id] = group
        return group

    def inject(
        self,
        method: str | None = "sendMessage",
        chat_id: int | None = None,
        kind: FaultKind = "5xx",
        times: int = 1,
        retry_after: int = 1,
        *,
        description: str | None = None,
        timeout_applies: bool = False,
        delay: float | None = None,
    ) -> None:
        """Queue a fault for the next `times` calls of `method` (and/or to `chat_id`)."""
        self.faults.inject(
            method,
            chat_id,
            kind,
            times,
            retry_after,
            description=description,
            timeout_applies=timeout_applies,
            delay=delay,
        )

    def set_fault_rates(
        self,
        server_error: float = 0.0,
        timeout: float = 0.0,
        too_many_requests: float = 0.0,
        seed: int | None = None,
        *,
        methods: frozenset[str] | None = None,
        timeout_applies: bool = False,
    ) -> None:
        """Fail sending methods at random with these probabilities (seeded, reproducible)."""
        if methods is None:
            self.faults.set_rates(
                server_error, timeout, too_many_requests, seed=seed, timeout_applies=timeout_applies
            )
        else:
            self.faults.set_rates(
                server_error,
                timeout,
                too_many_requests,
                seed=seed,
                methods=methods,
                timeout_applies=timeout_applies,
            )

    @property
    def rate_limit_violations(self) -> RateLimitViolations:
        """Requests that went over a flood limit (all zero when limits are off)."""
        return self._limiter.violations if self._limiter else RateLimitViolations()

    def sent_to(self, chat_id: int) -> list[FakeMessage]:
        """Every message the bot sent to `chat_id`, in order, deleted ones included."""
        return list(self._bot_messages.get(chat_id, []))

    def sent_by(self, user_id: int) -> list[FakeMessage]:
        """Every message a played user sent to the bot (in groups too, seen or not)."""
        return list(self._user_messages.get(user_id, []))

    def written_in(self, chat_id: int) -> list[FakeMessage]:
        """Every message played users wrote in a group, whether the bot saw it or not."""
        return list(self._group_messages.get(chat_id, []))

    @property
    def bot_messages(self) -> list[FakeMessage]:
        """All messages the bot sent, in any chat."""
        return [m for chat in self._bot_messages.values() for m in chat]

    def calls_of(self, method: str) -> list[ApiCall]:
        """The logged calls of one method (case-insensitive, as Telegram)."""
        return [c for c in self.calls if c.method.lower() == method.lower()]

    def commands(
        self, scope: dict[str, Any] | None = None, language_code: str = ""
    ) -> list[tuple[str, str]]:
        """The bot's command list for a scope and language, as (command, description)."""
        key = (_scope_key(scope or {"type": "default"}), language_code)
        return [(c["command"], c["description"]) for c in self._commands.get(key, [])]

    @property
    def webhook_url(self) -> str | None:
        """The URL set with setWebhook, if any."""
        return self._webhook.url if self._webhook else None

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates not yet confirmed by getUpdates or delivered to the webhook."""
        return list(self._pending)

    async def wait_for(
        self,
        condition: Callable[[], _T | None],
        timeout: float = 5.0,  # noqa: ASYNC109 - a deadline for the whole wait, not one call
        *,
        on_timeout: Callable[[], str] | None = None,
    ) -> _T:
        """Wait until `condition()` returns something truthy and return it; fail after `timeout`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = condition()
            if result:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                detail = on_timeout() if on_timeout else "condition never became true"
                raise AssertionError(f"timed out after {timeout}s: {detail}")
            await self._signal.wait(remaining)

    async def post_update_to_webhook(
        self,
        update: dict[str, Any],
        *,
        secret: str | _Configured | None = CONFIGURED_SECRET,
        url: str | None = None,
    ) -> int:
        """POST one update to the webhook as Telegram would; returns the HTTP status."""
        target = url or self.webhook_url
        if target is None:
            raise RuntimeError("no webhook is set and no url was given")
        if isinstance(secret, _Configured):
            secret = self._webhook.secret_token if self._webhook else None
        session = self._require_session()
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
        async with session.post(target, json=update, headers=headers) as response:
            await response.read()
            return response.status

    def date(self) -> int:
        """Now, as Telegram dates messages and Mini App initData: Unix seconds, by the clock."""
        if self._clock is not None:
            return int(self._clock.now().timestamp())
        return int(time.time())

    # Updates produced by played users --------------------------------------------------------

    def _new_message_id(self, chat_id: int) -> int:
        # Ids count per chat, as in private chats on Telegram: two chats reuse the same ids.
        message_id = self._last_message_id.get(chat_id, 0) + 1
        self._last_message_id[chat_id] = message_id
        return message_id

    def _enqueue_update(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        self._next_update_id += 1
        update = {"update_id": self._next_update_id, kind: payload}
        self.updates.append(update)
        accepted = (
            kind not in _OPT_IN_UPDATES
            if self._allowed_updates is None
            else kind in self._allowed_updates
        )
        if accepted:
            self._pending.append(update)
        self._signal.fire()
        return update

    def _user_sent_text(
        self,
        user: FakeUser,
        text: str,
        entities: list[dict[str, Any]],
        reply_to: FakeMessage | None,
    ) -> FakeMessage:
        message = FakeMessage(
            message_id=self._new_message_id(user.id),
            chat_id=user.id,
            from_bot=False,
            date=self.date(),
            sender=user.to_api(),
            chat=user.chat_api(),
            text=text,
            raw_text=text,
            entities=entities,
            reply_to=reply_to,
        )
        self._messages[(user.id, message.message_id)] = message
        self._user_messages.setdefault(user.id, []).append(message)
        self._enqueue_update("message", message.to_api())
        return message

    def _user_pressed(
        self, user: FakeUser, message: FakeMessage, callback_data: str
    ) -> FakeCallbackQuery:
        self._next_query += 1
        query = FakeCallbackQuery(
            id=str(4_611_686_018_427_387_904 + self._next_query),
            user_id=user.id,
            chat_id=message.chat_id,
            message_id=message.message_id,
            data=callback_data,
        )
        self._queries[query.id] = query
        self.callback_queries.append(query)
        self._enqueue_update(
            "callback_query",
            {
                "id": query.id,
                "from": user.to_api(),
                "message": message.to_api(),
                "chat_instance": str(-(user.id * 7919 + self.bot_id)),
                "data": callback_data,
            },
        )
        return query

    def _copy_into_group(self, message: FakeMessage, group: FakeGroup) -> FakeMessage:
        """A bot message shown again in a group, buttons and all (as a forward shows it)."""
        copy = dataclasses.replace(
            message,
            message_id=self._new_message_id(group.id),
            chat_id=group.id,
            chat=group.chat_api(),
            date=self.date(),
        )
        self._messages[(group.id, copy.message_id)] = copy
        return copy

    def _user_sent_group_text(
        self,
        user: FakeUser,
        group: FakeGroup,
        text: str,
        entities: list[dict[str, Any]],
        reply_to: FakeMessage | None,
    ) -> FakeMessage:
        message = FakeMessage(
            message_id=self._new_message_id(group.id),
            chat_id=group.id,
            from_bot=False,
            date=self.date(),
            sender=user.to_api(),
            chat=group.chat_api(),
            text=text,
            raw_text=text,
            entities=entities,
            reply_to=reply_to,
        )
        message.seen_by_bot = self._bot_sees(group, text, entities, reply_to)
        self._messages[(group.id, message.message_id)] = message
        self._user_messages.setdefault(user.id, []).append(message)
        self._group_messages.setdefault(group.id, []).append(message)
        if message.seen_by_bot:
            self._enqueue_update("message", message.to_api())
        else:
            self._signal.fire()
        return message

    def _bot_sees(
        self,
        group: FakeGroup,
        text: str,
        entities: list[dict[str, Any]],
        reply_to: FakeMessage | None,
    ) -> bool:
        """Telegram's privacy mode: what of a group's messages reaches the bot."""
        if not group.bot_is_member:
            return False
        if not self.privacy_mode or group.bot_status == "administrator":
            return True
        if reply_to is not None and reply_to.from_bot:
            return True
        command = next(
            (e for e in entities if e["type"] == "bot_command" and e["offset"] == 0), None
        )
        if command is None:
            return False
        _, _, mention = text[: command["length"]].partition("@")
        if mention:
            return mention.lower() == self.bot_username.lower()
        # A command without @bot reaches the bot that wrote in the group last; the fake has
        # one bot, so: once it has written there.
        return bool(self._bot_messages.get(group.id))

    def _group_service_message(
        self, group: FakeGroup, sender: FakeUser, service: dict[str, Any]
    ) -> FakeMessage:
        message = FakeMessage(
            message_id=self._new_message_id(group.id),
            chat_id=group.id,
            from_bot=False,
            date=self.date(),
            sender=sender.to_api(),
            chat=group.chat_api(),
            service=service,
        )
        self._messages[(group.id, message.message_id)] = message
        if group.bot_is_member:  # service messages reach the bot even in privacy mode
            self._enqueue_update("message", message.to_api())
        return message

    def _group_membership_changed(
        self, group: FakeGroup, member: dict[str, Any], by: FakeUser, *, joined: bool
    ) -> None:
        """A played user joined or left: the service message, and chat_member for admins."""
        if joined:
            self._group_service_message(group, by, {"new_chat_members": [member]})
        else:
            self._group_service_message(group, by, {"left_chat_member": member})
        if group.bot_status != "administrator":
            return  # Telegram sends chat_member updates only to administrators
        removed = not joined and by.id != member["id"]
        old, new = ("left", "member") if joined else ("member", "kicked" if removed else "left")
        self._enqueue_update(
            "chat_member",
            {
                "chat": group.chat_api(),
                "from": by.to_api(),
                "date": self.date(),
                "old_chat_member": self._member_api(member, old),
                "new_chat_member": self._member_api(member, new),
            },
        )

    def _bot_status_changed(self, group: FakeGroup, by: FakeUser, *, old: str, new: str) -> None:
        self._enqueue_update(
            "my_chat_member",
            {
                "chat": group.chat_api(),
                "from": by.to_api(),
                "date": self.date(),
                "old_chat_member": self._member_api(self.bot_user, old),
                "new_chat_member": self._member_api(self.bot_user, new),
            },
        )

    @staticmethod
    def _member_api(user: dict[str, Any], status: str) -> dict[str, Any]:
        """A ChatMember object with the fields Telegram gives each status."""
        data: dict[str, Any] = {"user": user, "status": status}
        if status == "kicked":
            data["until_date"] = 0
        elif status == "creator":
            data["is_anonymous"] = False
        elif status == "administrator":
            data.update(
                can_be_edited=False,
                is_anonymous=False,
                can_manage_chat=True,
                can_delete_messages=True,
                can_manage_video_chats=False,
                can_restrict_members=False,
                can_promote_members=False,
                can_change_info=False,
                can_invite_users=True,
                can_post_stories=False,
                can_edit_stories=False,
                can_delete_stories=False,
            )
        return data

    def _member_status_changed(self, user: FakeUser, *, old: str, new: str) -> None:
        def member(status: str) -> dict[str, Any]:
            data: dict[str, Any] = {"user": self.bot_user, "status": status}
            if status == "kicked":
                data["until_date"] = 0
            return data

        self._enqueue_update(
            "my_chat_member",
            {
                "chat": user.chat_api(),
                "from": user.to_api(),
                "date": self.date(),
                "old_chat_member": member(old),
                "new_chat_member": member(new),
            },
        )

    # HTTP ----------------------------------------------------------------------------------

    async def _not_found(self, request: web.Request) -> web.Response:
        return web.json_response(ApiError(404, "Not Found").body(), status=404)

    async def _handle(self, request: web.Request) -> web.Response:
        loop = asyncio.get_running_loop()
        method_name = request.match_info["method"]
        if request.match_info["token"] != self._token:
            self.calls.append(ApiCall(method_name, {}, loop.time(), 401, _UNAUTHORIZED.body()))
            return web.json_response(_UNAUTHORIZED.body(), status=401)
        entry = self._handlers.get(method_name.lower())
        polling = method_name.lower() == "getupdates"
        if self.round_trip and not polling:
            await asyncio.sleep(self.round_trip / 2)  # on its way here
        call = ApiCall(entry[0] if entry else method_name, {}, loop.time())
        self.calls.append(call)
        try:
            params = await _read_params(request)
            call.params = dict(params.values)
            call.files = dict(params.files)
            if entry is None:
                raise ApiError(404, "Not Found")
            result = await self._dispatch(entry[0], entry[1], params)
            body: dict[str, Any] = {"ok": True, "result": result}
            if isinstance(result, _Described):
                body = {"ok": True, "result": result.result, "description": result.description}
            status = 200
        except ApiError as error:
            body, status = error.body(), error.status
        except Exception as exc:
            # A bug in the fake must not pass for a Telegram answer: log it and keep it.
            logger.exception("fake Bot API crashed on %s", call.method)
            self.internal_errors.append(exc)
            body = {
                "ok": False,
                "error_code": 500,
                "description": f"Internal Server Error: {exc!r}",
            }
            status = 500
        call.status, call.response = status, body
        self._signal.fire()
        if self.round_trip:
            await asyncio.sleep(self.round_trip / 2)  # the answer on its way back
        if status != 200:
            logger.debug("fake Bot API %s -> %s %s", call.method, status, body.get("description"))
        return web.json_response(body, status=status)

    async def _dispatch(self, method: str, handler: Handler, params: Params) -> Any:
        fault = self.faults.take(method, _chat_id_of(params))
        if fault is None:
            return await handler(params)
        if fault.kind == "timeout":
            delay = self.timeout_delay if fault.delay is None else fault.delay
            if fault.timeout_applies:
                # The send went through; only the answer is lost on the way back.
                outcome: Any
                try:
                    outcome = await handler(params)
                except ApiError as error:
                    outcome = error
                await self._sleep(delay)
                if isinstance(outcome, ApiError):
                    raise outcome
                return outcome
            await self._sleep(delay)
            raise ApiError(502, "Bad Gateway")
        raise _fault_error(fault)

    async def _sleep(self, delay: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), delay)

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self._token:
            return web.json_response(_UNAUTHORIZED.body(), status=401)
        document = self._file_paths.get(request.match_info["path"])
        if document is None:
            return web.json_response(ApiError(404, "Not Found").body(), status=404)
        return web.Response(
            body=document.content, content_type=document.mime_type or "application/octet-stream"
        )

    # Shared checks ---------------------------------------------------------------------------

    def _chat(self, params: Params, name: str = "chat_id") -> Chat:
        raw = params.text(name)
        if raw is None:
            raise bad_request(f"{name} is empty")
        try:
            chat_id = int(raw)
        except ValueError:
            raise bad_request("chat not found") from None
        chat = self.users.get(chat_id) or self.groups.get(chat_id)
        if chat is None:
            raise bad_request("chat not found")
        if isinstance(chat, FakeGroup) and chat.migrated_to is not None:
            # What Telegram answers for any call naming a basic group that became a
            # supergroup (a new id): the old chat is gone for the bot.
            raise ApiError(
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                migrate_to_chat_id=chat.migrated_to,
            )
        return chat

    def _check_can_write(self, chat: Chat) -> None:
        if isinstance(chat, FakeUser):
            if chat.blocked:
                raise ApiError(403, "Forbidden: bot was blocked by the user")
            if not chat.has_started:
                raise ApiError(403, "Forbidden: bot can't initiate conversation with a user")
        else:
            self._check_in_group(chat)

    @staticmethod
    def _check_in_group(group: FakeGroup) -> None:
        """A bot that was removed from a group can neither write there nor look inside."""
        if group.bot_status == "kicked":
            raise ApiError(403, f"Forbidden: bot was kicked from the {group.type} chat")
        if group.bot_status == "left":
            raise ApiError(403, f"Forbidden: bot is not a member of the {group.type} chat")

    def _admit(self, method: str, chat_id: int) -> None:
        if self._limiter is None or method not in RATE_LIMITED_METHODS:
            return
        retry_after = self._limiter.admit(chat_id)
        if retry_after is not None:
            raise ApiError(
                429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after
            )

    def _format(
        self, params: Params, text_name: str, entities_name: str
    ) -> tuple[str, str, str | None, list[dict[str, Any]]]:
        """Return (raw, visible text, parse_mode, entities) for a text or caption parameter."""
        raw = params.text(text_name) or ""
        parse_mode = params.text("parse_mode")
        if parse_mode is None:
            entities = params.json_value(entities_name) or []
            if not isinstance(entities, list) or not all(
                isinstance(e, dict) and {"type", "offset", "length"} <= e.keys() for e in entities
            ):
                raise bad_request(f"can't parse {entities_name} JSON object")
            text = raw
        elif parse_mode.lower() == "html":
            parse_mode = "HTML"
            try:
                text, entities = parse_html(raw)
            except EntityParseError as error:
                raise bad_request(f"can't parse entities: {error}") from None
        elif parse_mode.lower() in ("markdown", "markdownv2"):
            # Accepting Markdown unchecked would let broken markup pass; Dyad uses HTML.
            raise bad_request(f"parse_mode {parse_mode} is not supported by the fake Bot API")
        else:
            raise bad_request("unsupported parse_mode")
        text, entities = trim(text, entities)
        return raw, text, parse_mode, entities

    def _reply_target(self, params: Params, chat: Chat) -> FakeMessage | None:
        reply = params.json_value("reply_parameters")
        if reply is not None:
            if not isinstance(reply, dict) or not isinstance(reply.get("message_id"), int):
                raise bad_request("can't parse reply parameters JSON object")
            message_id: int | None = reply["message_id"]
            target_chat = reply.get("chat_id", chat.id)
            allow = bool(reply.get("allow_sending_without_reply", False))
        else:
            message_id = params.integer(
                "reply_to_message_id", invalid="message to be replied not found"
            )
            target_chat = chat.id
            allow = params.boolean("allow_sending_without_reply")
        if message_id is None:
            return None
        try:
            target = self._messages.get((int(target_chat), message_id))
        except (TypeError, ValueError):
            target = None
        if target is None or target.deleted:
            if allow:
                return None
            raise bad_request("message to be replied not found")
        return target

    def _find_editable(self, params: Params, missing: str) -> tuple[Chat, FakeMessage]:
        if params.has("inline_message_id"):
            raise bad_request("MESSAGE_ID_INVALID")  # the fake has no inline mode
        chat = self._chat(params)
        message_id = params.integer("message_id", invalid=missing)
        if message_id is None:
            raise bad_request("message identifier is not specified")
        message = self._messages.get((chat.id, message_id))
        if message is None or message.deleted:
            raise bad_request(missing)
        return chat, message

    def _store_bot_message(self, message: FakeMessage) -> None:
        self._messages[(message.chat_id, message.message_id)] = message
        self._bot_messages.setdefault(message.chat_id, []).append(message)
        self._signal.fire()

    def _bot_message(self, chat: Chat, **fields: Any) -> FakeMessage:
        return FakeMessage(
            message_id=self._new_message_id(chat.id),
            chat_id=chat.id,
            from_bot=True,
            date=self.date(),
            sender=self.bot_user,
            chat=chat.chat_api(),
            **fields,
        )

    def _require_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("FakeBotAPI is not started")
        return self._session

    # Methods -------------------------------------------------------------------------------

    async def _get_me(self, params: Params) -> Any:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": not self.privacy_mode,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _close(self, params: Params) -> Any:
        return True

    async def _get_updates(self, params: Params) -> Any:
        if self._webhook is not None:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = params.integer("offset") or 0
        limit = min(max(params.integer("limit") or 100, 1), 100)
        timeout = max(params.integer("timeout") or 0, 0)
        allowed = params.json_value("allowed_updates")
        if allowed is not None:
            if not isinstance(allowed, list) or not all(isinstance(a, str) for a in allowed):
                raise bad_request("can't parse allowed_updates JSON object")
            self._allowed_updates = frozenset(allowed) if allowed else None
        if offset < 0:
            self._pending = self._pending[offset:]
        elif offset > 0:
            self._pending = [u for u in self._pending if u["update_id"] >= offset]
        self._poll_generation += 1
        generation = self._poll_generation
        self._signal.fire()  # an older poll still waiting must end now
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if self._webhook is not None or self._stopping.is_set():
                return []
            if generation != self._poll_generation:
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; "
                    "make sure that only one bot instance is running",
                )
            if self._pending:
                return self._pending[:limit]
            remaining = deadline - loop.time()
            if remaining <= 0:
                return []
            await self._signal.wait(remaining)

    async def _send_message(self, params: Params) -> Any:
        chat = self._chat(params)
        if not params.has("text"):
            raise bad_request("message text is empty")
        raw, text, parse_mode, entities = self._format(params, "text", "entities")
        if not text:
            raise bad_request("message text is empty")
        if len(text) > TEXT_LIMIT:  # Telegram counts code points here, not UTF-16 units
            raise bad_request("message is too long")
        markup = parse_reply_markup(params)
        reply_to = self._reply_target(params, chat)
        preview = params.json_value("link_preview_options")
        if preview is not None and not isinstance(preview, dict):
            raise bad_request("can't parse link preview options JSON object")
        disable_notification = params.boolean("disable_notification")
        protect_content = params.boolean("protect_content")
        self._check_can_write(chat)
        self._admit("sendMessage", chat.id)
        message = self._bot_message(
            chat,
            text=text,
            raw_text=raw,
            parse_mode=parse_mode,
            entities=entities,
            reply_markup=keyboard_of(markup),
            reply_markup_raw=markup,
            reply_to=reply_to,
            disable_notification=disable_notification,
            protect_content=protect_content,
            link_preview_options=preview,
        )
        self._store_bot_message(message)
        return message.to_api()

    async def _send_document(self, params: Params) -> Any:
        chat = self._chat(params)
        upload = self._document_upload(params)
        raw, caption, parse_mode, caption_entities = self._format(
            params, "caption", "caption_entities"
        )
        if len(caption) > CAPTION_LIMIT:
            raise bad_request("message caption is too long")
        markup = parse_reply_markup(params)
        reply_to = self._reply_target(params, chat)
        disable_notification = params.boolean("disable_notification")
        protect_content = params.boolean("protect_content")
        self._check_can_write(chat)
        self._admit("sendDocument", chat.id)
        if isinstance(upload, FakeDocument):
            document = upload
        else:
            self._next_file += 1
            document = FakeDocument(
                file_id=f"BQACAgIAAxkBAAIfake{self._next_file:06d}",
                file_unique_id=f"AgADfake{self._next_file:06d}",
                file_name=params.text("file_name") or upload.filename,
                mime_type=upload.content_type,
                content=upload.content,
            )
            self._documents[document.file_id] = document
        message = self._bot_message(
            chat,
            parse_mode=parse_mode,
            raw_text=raw,
            reply_markup=keyboard_of(markup),
            reply_markup_raw=markup,
            reply_to=reply_to,
            disable_notification=disable_notification,
            protect_content=protect_content,
            document=document,
            caption=caption or None,
            caption_entities=caption_entities,
        )
        self._store_bot_message(message)
        return message.to_api()

    def _document_upload(self, params: Params) -> UploadedFile | FakeDocument:
        upload = params.files.get("document")
        if upload is None:
            reference = params.text("document")
            if reference is None:
                raise bad_request("there is no document in the request")
            if reference.startswith("attach://"):
                upload = params.files.get(reference.removeprefix("attach://"))
                if upload is None:
                    raise bad_request("there is no document in the request")
            else:
                known = self._documents.get(reference)
                if known is None:
                    raise bad_request("wrong file identifier/HTTP URL specified")
                return known
        if not upload.content:
            raise bad_request("file must be non-empty")
        return upload

    async def _edit_message_text(self, params: Params) -> Any:
        chat, message = self._find_editable(params, "message to edit not found")
        if not params.has("text"):
            raise bad_request("message text is empty")
        raw, text, parse_mode, entities = self._format(params, "text", "entities")
        if not text:
            raise bad_request("message text is empty")
        if len(text) > TEXT_LIMIT:
            raise bad_request("message is too long")
        markup = parse_reply_markup(params, inline_only=True)
        if not message.from_bot:
            raise bad_request("message can't be edited")
        if message.document is not None:
            raise bad_request("there is no text in the message to edit")
        if (
            text == message.text
            and entities == message.entities
            and (markup == message.reply_markup_raw)
        ):
            raise bad_request(NOT_MODIFIED)
        self._check_can_write(chat)
        self._admit("editMessageText", chat.id)
        message.edits.append(message.snapshot())
        message.text, message.raw_text = text, raw
        message.parse_mode, message.entities = parse_mode, entities
        # Like Telegram, an edit without reply_markup removes the inline keyboard.
        message.reply_markup_raw, message.reply_markup = markup, keyboard_of(markup)
        message.edit_date = self.date()
        self._signal.fire()
        return message.to_api()

    async def _edit_message_reply_markup(self, params: Params) -> Any:
        chat, message = self._find_editable(params, "message to edit not found")
        markup = parse_reply_markup(params, inline_only=True)
        if not message.from_bot:
            raise bad_request("message can't be edited")
        current = message.reply_markup_raw if message.reply_markup is not None else None
        if markup == current:
            raise bad_request(NOT_MODIFIED)
        self._check_can_write(chat)
        message.edits.append(message.snapshot())
        message.reply_markup_raw, message.reply_markup = markup, keyboard_of(markup)
        self._signal.fire()
        return message.to_api()

    async def _delete_message(self, params: Params) -> Any:
        chat = self._chat(params)
        message_id = params.integer("message_id", invalid="message to delete not found")
        if message_id is None:
            raise bad_request("message identifier is not specified")
        message = self._messages.get((chat.id, message_id))
        if message is None or message.deleted:
            raise bad_request("message to delete not found")
        message.deleted = True
        self._signal.fire()
        return True

    async def _delete_messages(self, params: Params) -> Any:
        chat = self._chat(params)
        ids = params.json_value("message_ids")
        if not isinstance(ids, list) or not ids or not all(isinstance(i, int) for i in ids):
            raise bad_request("message identifiers are not specified")
        if len(ids) > 100:
            raise bad_request("too many messages to delete")
        for message_id in ids:
            message = self._messages.get((chat.id, message_id))
            if message is not None:
                message.deleted = True
        self._signal.fire()
        return True

    async def _answer_callback_query(self, params: Params) -> Any:
        query_id = params.text("callback_query_id")
        if query_id is None:
            raise bad_request('parameter "callback_query_id" is required')
        query = self._queries.get(query_id)
        if query is None or query.answered:
            raise bad_request(QUERY_INVALID)
        text = params.text("text")
        if text is not None and len(text) > 200:
            raise bad_request("MESSAGE_TOO_LONG")
        query.answered = True
        query.answer_text = text
        query.show_alert = params.boolean("show_alert")
        query.answer_url = params.text("url")
        self._signal.fire()
        return True

    async def _send_chat_action(self, params: Params) -> Any:
        chat = self._chat(params)
        action = params.text("action")
        if action not in _CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        self._check_can_write(chat)
        return True

    async def _get_file(self, params: Params) -> Any:
        file_id = params.text("file_id")
        document = self._documents.get(file_id or "")
        if document is None:
            raise bad_request("invalid file_id")
        path = f"documents/{document.file_unique_id}_{document.file_name or 'file'}"
        self._file_paths[path] = document
        return {
            "file_id": document.file_id,
            "file_unique_id": document.file_unique_id,
            "file_size": document.file_size,
            "file_path": path,
        }

    def _commands_key(self, params: Params) -> tuple[str, str]:
        scope = params.json_value("scope", invalid="can't parse BotCommandScope JSON object")
        if scope is None:
            scope = {"type": "default"}
        if not isinstance(scope, dict) or scope.get("type") not in _SCOPE_TYPES:
            raise bad_request("wrong parameter scope in request")
        if scope["type"] in ("chat", "chat_administrators", "chat_member"):
            self._chat(_scope_params(scope))
        language = params.text("language_code") or ""
        if language and re.fullmatch(r"[a-z]{2}", language) is None:
            raise bad_request("invalid language code specified")
        return _scope_key(scope), language

    async def _set_my_commands(self, params: Params) -> Any:
        commands = params.json_value("commands", invalid="can't parse commands JSON object")
        if commands is None:
            raise bad_request('parameter "commands" is required')
        if not isinstance(commands, list):
            raise bad_request("can't parse commands JSON object")
        if len(commands) > 100:
            raise bad_request("BOT_COMMANDS_TOO_MUCH")
        cleaned: list[dict[str, str]] = []
        for command in commands:
            if not isinstance(command, dict):
                raise bad_request("can't parse BotCommand JSON object")
            name, description = command.get("command"), command.get("description")
            if not isinstance(name, str) or _COMMAND_NAME.fullmatch(name) is None:
                raise bad_request("BOT_COMMAND_INVALID")
            if not isinstance(description, str) or not 1 <= len(description.strip()) <= 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
            cleaned.append({"command": name, "description": description})
        key = self._commands_key(params)
        if cleaned:
            self._commands[key] = cleaned
        else:
            self._commands.pop(key, None)
        return True

    async def _get_my_commands(self, params: Params) -> Any:
        return self._commands.get(self._commands_key(params), [])

    async def _delete_my_commands(self, params: Params) -> Any:
        self._commands.pop(self._commands_key(params), None)
        return True

    async def _set_description(self, params: Params, field: str, limit: int) -> Any:
        text = params.text(field) or ""
        if len(text) > limit:
            raise bad_request(f"{field.upper()}_INVALID")
        self._descriptions[(field, params.text("language_code") or "")] = text
        return True

    async def _set_my_description(self, params: Params) -> Any:
        return await self._set_description(params, "description", 512)

    async def _set_my_short_description(self, params: Params) -> Any:
        return await self._set_description(params, "short_description", 120)

    async def _get_my_description(self, params: Params) -> Any:
        key = ("description", params.text("language_code") or "")
        return {"description": self._descriptions.get(key, "")}

    async def _get_my_short_description(self, params: Params) -> Any:
        key = ("short_description", params.text("language_code") or "")
        return {"short_description": self._descriptions.get(key, "")}

    async def _get_chat(self, params: Params) -> Any:
        chat = self._chat(params)
        if isinstance(chat, FakeGroup):
            self._check_in_group(chat)
        data = chat.chat_api()
        data.update(
            accent_color_id=0,
            max_reaction_count=11,
            accepted_gift_types={
                "unlimited_gifts": True,
                "limited_gifts": True,
                "unique_gifts": True,
                "premium_subscription": True,
                "gifts_from_channels": True,
            },
        )
        return data

    async def _get_chat_member(self, params: Params) -> Any:
        chat = self._chat(params)
        user_id = params.integer("user_id", invalid="invalid user_id specified")
        if user_id is None:
            raise bad_request("invalid user_id specified")
        if isinstance(chat, FakeGroup):
            self._check_in_group(chat)
            if user_id == self.bot_id:
                return self._member_api(self.bot_user, chat.bot_status)
        elif user_id == self.bot_id:
            if chat.blocked:
                return {"user": self.bot_user, "status": "kicked", "until_date": 0}
            return {"user": self.bot_user, "status": "member"}
        user = self.users.get(user_id)
        if user is None:
            raise bad_request("user not found")
        if isinstance(chat, FakeUser):
            return {"user": user.to_api(), "status": "member" if user.id == chat.id else "left"}
        return self._member_api(user.to_api(), chat.status_of(user.id))

    async def _get_chat_member_count(self, params: Params) -> Any:
        chat = self._chat(params)
        if isinstance(chat, FakeUser):
            return 2  # the user and the bot
        self._check_in_group(chat)
        return chat.member_count

    # Webhooks ------------------------------------------------------------------------------

    async def _set_webhook(self, params: Params) -> Any:
        url = params.text("url") or ""
        if not url:
            return await self._delete_webhook(params)
        parts = urlsplit(url)
        loopback = _is_loopback(parts.hostname)
        if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
            # The fake allows plain HTTP on loopback only, since tests cannot get a certificate.
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        if not loopback and parts.port not in (None, 80, 88, 443, 8443):
            raise bad_request(
                "bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443"
            )
        secret = params.text("secret_token")
        if secret is not None and _SECRET_TOKEN.fullmatch(secret) is None:
            raise bad_request("secret token contains unallowed characters")
        max_connections = params.integer("max_connections") or 40
        if not 1 <= max_connections <= 100:
            raise bad_request("bad webhook: max_connections must be between 1 and 100")
        allowed = params.json_value("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = frozenset(allowed) if allowed else None
        if params.boolean("drop_pending_updates"):
            self._pending.clear()
        already = self._webhook is not None and self._webhook.url == url
        self._webhook = _Webhook(url=url, secret_token=secret, max_connections=max_connections)
        self._signal.fire()
        return _Described(True, "Webhook is already set" if already else "Webhook was set")

    async def _delete_webhook(self, params: Params) -> Any:
        if params.boolean("drop_pending_updates"):
            self._pending.clear()
        note = "Webhook was deleted" if self._webhook else "Webhook is already deleted"
        self._webhook = None
        self._signal.fire()
        return _Described(True, note)

    async def _get_webhook_info(self, params: Params) -> Any:
        hook = self._webhook
        info: dict[str, Any] = {
            "url": hook.url if hook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._pending),
        }
        if hook is not None:
            info["max_connections"] = hook.max_connections
            info["ip_address"] = "127.0.0.1"
            if self._allowed_updates is not None:
                info["allowed_updates"] = sorted(self._allowed_updates)
            if hook.last_error_date is not None:
                info["last_error_date"] = hook.last_error_date
                info["last_error_message"] = hook.last_error_message
        return info

    async def _deliver_webhooks(self) -> None:
        # One update at a time, in order, as Telegram does with max_connections=1.
        while not self._stopping.is_set():
            hook = self._webhook
            if hook is None or not self._pending:
                await self._signal.wait(None)
                continue
            update = self._pending[0]
            delivered = await self._deliver(hook, update)
            if self._webhook is not hook and not delivered:
                continue  # the webhook was removed meanwhile: getUpdates takes over
            if self._pending and self._pending[0] is update:
                self._pending.pop(0)
            if not delivered:
                self.webhook_dropped.append(update)
            self._signal.fire()

    async def _deliver(self, hook: _Webhook, update: dict[str, Any]) -> bool:
        session = self._require_session()
        headers = {"Content-Type": "application/json"}
        if hook.secret_token is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = hook.secret_token
        body = json.dumps(update)
        for attempt in range(1, self.webhook_retries + 2):
            if self._webhook is not hook or self._stopping.is_set():
                return False
            status: int | None = None
            error: str | None = None
            try:
                async with session.post(hook.url, data=body, headers=headers) as response:
                    await response.read()
                    status = response.status
                    if not 200 <= status <= 299:
                        error = f"Wrong response from the webhook: {status} {response.reason}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                error = f"Connection failed: {exc.__class__.__name__}"
            self.webhook_deliveries.append(
                WebhookDelivery(update["update_id"], attempt, status, error)
            )
            if error is None:
                return True
            hook.last_error_date, hook.last_error_message = self.date(), error
            self._signal.fire()
            await self._sleep(self.webhook_retry_delay)
        return False


_UNAUTHORIZED: Final = ApiError(401, "Unauthorized")


def _fault_error(fault: Fault) -> ApiError:
    if fault.kind == "429":
        return ApiError(
            429, f"Too Many Requests: retry after {fault.retry_after}", fault.retry_after
        )
    if fault.kind == "403":
        return ApiError(403, fault.description or "Forbidden: bot was blocked by the user")
    if fault.kind == "400":
        return ApiError(400, fault.description or "Bad Request: injected fault")
    return ApiError(502, "Bad Gateway")


def _chat_id_of(params: Params) -> int | None:
    try:
        return params.integer("chat_id")
    except ApiError:
        return None


def _scope_key(scope: dict[str, Any]) -> str:
    return json.dumps(scope, sort_keys=True, separators=(",", ":"))


def _scope_params(scope: dict[str, Any]) -> Params:
    return Params({"chat_id": scope.get("chat_id")}, {})


def _is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


async def _read_params(request: web.Request) -> Params:
    """Collect parameters from the query string and a form, multipart or JSON body."""
    values: dict[str, Any] = dict(request.query)
    files: dict[str, UploadedFile] = {}
    if request.body_exists:
        if request.content_type == "application/json":
            try:
                body = json.loads(await request.text())
            except ValueError:
                raise bad_request("can't parse JSON object") from None
            if not isinstance(body, dict):
                raise bad_request("can't parse JSON object")
            values.update(body)
        elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            for name, value in form.items():
                if isinstance(value, web.FileField):
                    files[name] = UploadedFile(
                        filename=value.filename,
                        content_type=value.content_type,
                        content=value.file.read(),
                    )
                else:
                    values[name] = value
    return Params(values, files)
