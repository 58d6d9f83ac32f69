"""Telegram groups as a channel: a couple's linked group, on the same Bot API as private chats.

Sending is the Telegram adapter's (a group is a chat with a negative id); what this channel
adds is its name, its limits, and a membership probe (who is in the group) so that Dyad
posts only in a group that holds nobody but the couple, their therapist and the bot.
"""

from __future__ import annotations

from telegram import Bot, ChatMember
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter, TimedOut

from bot.channels.base import (
    Blocked,
    ChannelLimits,
    Migrated,
    PermanentFailure,
    RateLimited,
    TransientFailure,
)
from bot.channels.registry import TELEGRAM

GROUP_MESSAGES_PER_MINUTE = 20
"""Telegram's limit for one group."""

GROUP_LIMITS = ChannelLimits(
    rate_per_second=30.0,  # unused: groups share the Telegram channel's overall budget
    per_address_interval=60.0 / GROUP_MESSAGES_PER_MINUTE,
    pace_with=TELEGRAM,
)
"""Evenly spaced, 3 s apart, so that no 60 s window ever holds more than 20 posts."""

_PRESENT = frozenset({ChatMember.OWNER, ChatMember.ADMINISTRATOR, ChatMember.MEMBER})


class TelegramGroupProbe:
    """Who is in a group, asked of the Bot API (getChatMemberCount, getChatMember).

    ``reader`` is the Bot that asks, when it is not ``bot`` itself: Telegram's 20 posts a
    minute per group are about messages, while a rate limiter on ``bot`` would count these
    reads against them too, and every post is preceded by three or four of them.
    """

    def __init__(self, bot: Bot, reader: Bot | None = None) -> None:
        self.bot = bot
        self.reader = reader or bot

    @property
    def bot_id(self) -> int:
        """The bot's own user id (it counts among a group's members)."""
        return self.bot.id

    async def member_count(self, chat_id: int) -> int:
        """Everyone in the group, bots included."""
        try:
            return await self.reader.get_chat_member_count(chat_id)
        except Exception as error:
            raise _port_error(error) from error

    async def is_member(self, chat_id: int, user_id: int) -> bool:
        """Whether ``user_id`` is in the group now."""
        try:
            member = await self.reader.get_chat_member(chat_id, user_id)
        except BadRequest as error:
            if "user not found" in error.message.lower():
                return False
            raise _port_error(error) from error
        except Exception as error:
            raise _port_error(error) from error
        if member.status == ChatMember.RESTRICTED:
            return bool(getattr(member, "is_member", False))
        return member.status in _PRESENT


def _port_error(error: Exception) -> Exception:
    """Telegram's errors as the Messenger port's: removed from the group, wait, or retry."""
    if isinstance(error, ChatMigrated):
        return Migrated("migrated")
    if isinstance(error, Forbidden):
        return Blocked(error.message)
    if isinstance(error, BadRequest):  # before NetworkError, its base class
        if "chat not found" in error.message.lower():
            return Blocked(error.message)
        return PermanentFailure(error.message)
    if isinstance(error, RetryAfter):
        retry = error.retry_after
        return RateLimited(retry if isinstance(retry, int | float) else retry.total_seconds())
    if isinstance(error, TimedOut | NetworkError):
        return TransientFailure(type(error).__name__)
    return error
