"""The Telegram adapter of the Messenger port, over python-telegram-bot's ``Bot``.

Every request that puts a message in a chat passes Dyad's own rate limiter
(:class:`DyadRateLimiter`), which counts it in the bot's one budget: replies to a person
take an urgent turn, ahead of bulk sends, in the same sliding window. The dispatcher's
sends are *bulk* (``direct`` messengers): their 429 comes back at once as
:class:`RateLimited` and the dispatcher puts the row back until ``retry_after``, instead
of a send sleeping inside PTB while its lease runs out.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from typing import Any, Protocol

from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    ReplyParameters,
    WebAppInfo,
)
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    NetworkError,
    RetryAfter,
    TimedOut,
)
from telegram.ext import BaseRateLimiter, ExtBot
from telegram.warnings import PTBDeprecationWarning

from bot.channels.base import (
    Address,
    Blocked,
    Outgoing,
    PermanentFailure,
    RateLimited,
    Sent,
    TransientFailure,
)
from bot.channels.budget import COUNTED_METHODS

BULK = "bulk"
"""``rate_limit_args`` of an outbox send: a bulk request, and its 429 goes to the caller."""


class Budget(Protocol):
    """The bot's one send budget (the dispatcher's ``Pacer``), as requests use it.

    ``counted_by_limiter``: bulk requests take their slot here (else in the caller's turn).
    """

    counted_by_limiter: bool

    def slot(
        self, *, urgent: bool, chat: int | str | None = None, spacing: float = 0.0
    ) -> AbstractAsyncContextManager[None]: ...

    def urgent_turn(
        self, chat: int | str | None = None, interval: float | None = None
    ) -> AbstractAsyncContextManager[None]: ...

    async def shared_pause(self, seconds: float, chat: int | str | None = None) -> None: ...


class DyadRateLimiter(BaseRateLimiter[str]):
    """Every request of the bot that puts a message in a chat takes a slot in one budget.

    Replies (requests made without ``rate_limit_args``) take an urgent turn: the chat's
    turn (its interval, ``spacing(chat)``) and a slot ahead of every bulk send. Outbox
    sends (``rate_limit_args=BULK``; the dispatcher already holds the chat's turn) take a
    bulk slot. The slot is held from the request's start until one second after its
    answer, which this sees the moment it comes back. A 429 pauses the budget for everyone
    (every worker, with a shared window) for its ``retry_after``: an outbox send's 429
    goes straight back to the dispatcher, which puts the row back; a reply waits out the
    pause in the budget and is tried again, ``max_retries`` times at most. Requests that
    put no message anywhere (answering a button, reading a member) are not counted.
    Without a ``budget`` (tests of one component), requests pass as they are.
    """

    def __init__(self, max_retries: int = 3) -> None:
        self.max_retries = max_retries
        self.budget: Budget | None = None
        self.spacing: Callable[[int | str], float] = lambda chat: 1.0

    async def initialize(self) -> None:
        """Nothing to set up: the budget belongs to the dispatcher."""

    async def shutdown(self) -> None:
        """Nothing to release."""

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: str | None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        budget = self.budget
        chat = data.get("chat_id")
        if budget is None or chat is None or endpoint.lower() not in COUNTED_METHODS:
            return await callback(*args, **kwargs)
        spacing = self.spacing(chat)
        if rate_limit_args == BULK:
            if not budget.counted_by_limiter:
                return await callback(*args, **kwargs)
            async with budget.slot(urgent=False, chat=chat, spacing=spacing):
                try:
                    return await callback(*args, **kwargs)
                except RetryAfter as error:
                    await budget.shared_pause(_retry_seconds(error))
                    raise
        for attempt in range(self.max_retries + 1):
            async with budget.urgent_turn(chat, spacing):
                try:
                    return await callback(*args, **kwargs)
                except RetryAfter as error:
                    await budget.shared_pause(_retry_seconds(error))
                    if attempt == self.max_retries:
                        raise
        raise AssertionError("unreachable")  # pragma: no cover


def _retry_seconds(error: RetryAfter) -> float:
    # PTB 22 warns that retry_after becomes a timedelta; both forms are handled here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        retry = error.retry_after
    return retry.total_seconds() if isinstance(retry, timedelta) else float(retry)


def _markup(message: Outgoing) -> InlineKeyboardMarkup | None:
    if not message.buttons:
        return None
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(b.text, web_app=WebAppInfo(b.web_app_url))
                if b.web_app_url
                else InlineKeyboardButton(b.text, callback_data=b.data)
                for b in row
            ]
            for row in message.buttons
        ]
    )


class TelegramMessenger:
    """Sends through a PTB ``Bot``; turns Telegram's errors into the port's errors.

    ``direct``: a bulk request (the dispatcher holds the chat's turn, and hears of every
    429 itself, with no retry inside PTB). ``timeout``: PTB's read, write, connect and pool timeouts
    for each request, when set.
    """

    def __init__(self, bot: Bot, *, direct: bool = False, timeout: float | None = None) -> None:
        self.bot = bot
        self.direct = direct
        self.timeout = timeout

    def _options(self) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if self.direct and isinstance(self.bot, ExtBot):
            options["rate_limit_args"] = BULK
        if self.timeout is not None:
            options.update(
                read_timeout=self.timeout,
                write_timeout=self.timeout,
                connect_timeout=self.timeout,
                pool_timeout=self.timeout,
            )
        return options

    async def send(self, address: Address, message: Outgoing) -> Sent:
        try:
            if message.document is not None:
                sent = await self.bot.send_document(
                    chat_id=address,
                    document=InputFile(message.document, filename=message.filename or "dyad.json"),
                    caption=message.text or None,
                    parse_mode=ParseMode.HTML,
                    disable_notification=message.silent,
                    **self._options(),
                )
            else:
                sent = await self.bot.send_message(
                    chat_id=address,
                    text=message.text,
                    parse_mode=ParseMode.HTML,
                    reply_markup=_markup(message),
                    disable_notification=message.silent,
                    reply_parameters=(
                        ReplyParameters(message.reply_to, allow_sending_without_reply=True)
                        if message.reply_to
                        else None
                    ),
                    **self._options(),
                )
        except RetryAfter as error:
            raise RateLimited(_retry_seconds(error)) from error
        except Forbidden as error:
            raise Blocked(error.message) from error
        except ChatMigrated as error:  # a basic group upgraded: its old id takes nothing more
            raise Blocked(error.message) from error
        except BadRequest as error:
            if "chat not found" in error.message.lower():
                raise Blocked(error.message) from error
            raise PermanentFailure(error.message) from error
        except (TimedOut, NetworkError) as error:
            raise TransientFailure(type(error).__name__) from error
        return Sent(sent.message_id)

    async def edit(self, address: Address, message_id: int, message: Outgoing) -> None:
        try:
            await self.bot.edit_message_text(
                chat_id=address,
                message_id=message_id,
                text=message.text,
                parse_mode=ParseMode.HTML,
                reply_markup=_markup(message),
                **self._options(),
            )
        except BadRequest as error:
            if "not modified" not in error.message.lower():
                raise PermanentFailure(error.message) from error
        except RetryAfter as error:
            raise RateLimited(_retry_seconds(error)) from error
        except Forbidden as error:
            raise Blocked(error.message) from error
        except (TimedOut, NetworkError) as error:
            raise TransientFailure(type(error).__name__) from error

    async def delete(self, address: Address, message_id: int) -> None:
        try:
            await self.bot.delete_message(chat_id=address, message_id=message_id, **self._options())
        except BadRequest as error:
            if "not found" not in error.message.lower():
                raise PermanentFailure(error.message) from error
        except Forbidden as error:
            raise Blocked(error.message) from error
        except (TimedOut, NetworkError) as error:
            raise TransientFailure(type(error).__name__) from error
