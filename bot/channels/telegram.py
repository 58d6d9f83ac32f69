"""The Telegram adapter of the Messenger port, over python-telegram-bot's ``Bot``."""

from __future__ import annotations

import warnings
from datetime import timedelta

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
    """Sends through a PTB ``Bot``; turns Telegram's errors into the port's errors."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def send(self, address: Address, message: Outgoing) -> Sent:
        try:
            if message.document is not None:
                sent = await self.bot.send_document(
                    chat_id=address,
                    document=InputFile(message.document, filename=message.filename or "dyad.json"),
                    caption=message.text or None,
                    parse_mode=ParseMode.HTML,
                    disable_notification=message.silent,
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
            await self.bot.delete_message(chat_id=address, message_id=message_id)
        except BadRequest as error:
            if "not found" not in error.message.lower():
                raise PermanentFailure(error.message) from error
        except Forbidden as error:
            raise Blocked(error.message) from error
        except (TimedOut, NetworkError) as error:
            raise TransientFailure(type(error).__name__) from error
