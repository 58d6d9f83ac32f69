"""The Telegram adapter of the Messenger port, over python-telegram-bot's ``Bot``.

Replies to a person go through PTB's rate limiter (:class:`DyadRateLimiter`, which waits
out a 429 and tries again) and, when it shares the dispatcher's budget, take an urgent
turn there: ahead of bulk sends, in the same sliding window. The dispatcher's sends are
*direct*: they skip the limiter, so a 429 comes back at once as :class:`RateLimited` and
the dispatcher puts the row back until ``retry_after``, instead of a send sleeping inside
PTB while its lease runs out.
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
from telegram.ext import AIORateLimiter, ExtBot
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

DIRECT = -1
"""``rate_limit_args`` of a request that skips the rate limiter (the caller paces it)."""


class Budget(Protocol):
    """The bot's one send budget (the dispatcher's ``Pacer``), as replies use it."""

    def urgent_turn(self) -> AbstractAsyncContextManager[None]: ...

    def pause(self, seconds: float, chat: int | str | None = None) -> None: ...


class DyadRateLimiter(AIORateLimiter):
    """PTB's rate limiter, except for direct requests (the dispatcher's), which it passes on.

    With a ``budget`` (the dispatcher's pacer), a request to a chat takes an urgent turn in
    it, and a 429 pauses it for everyone; build the limiter with ``overall_max_rate=0``
    then, so that the budget is the only overall limit.
    """

    budget: Budget | None = None

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        if rate_limit_args == DIRECT:
            return await callback(*args, **kwargs)
        budget = self.budget
        if budget is None or data.get("chat_id") is None:
            return await super().process_request(
                callback, args, kwargs, endpoint, data, rate_limit_args
            )

        async def paced(
            *call_args: Any, **call_kwargs: Any
        ) -> bool | dict[str, Any] | list[dict[str, Any]]:
            async with budget.urgent_turn():
                try:
                    return await callback(*call_args, **call_kwargs)
                except RetryAfter as error:
                    budget.pause(_retry_seconds(error))
                    raise

        return await super().process_request(paced, args, kwargs, endpoint, data, rate_limit_args)


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

    ``direct``: skip the bot's rate limiter and its retries (the dispatcher paces, and
    hears of every 429 itself). ``timeout``: PTB's read, write, connect and pool timeouts
    for each request, when set.
    """

    def __init__(self, bot: Bot, *, direct: bool = False, timeout: float | None = None) -> None:
        self.bot = bot
        self.direct = direct
        self.timeout = timeout

    def _options(self) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if self.direct and isinstance(self.bot, ExtBot):
            options["rate_limit_args"] = DIRECT
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
