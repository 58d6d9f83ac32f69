"""A couple's linked Telegram group: /linkgroup, /unlinkgroup, the consent buttons, members.

Works with the bot's group privacy mode on: in a group the bot sees only commands addressed
to it (``/linkgroup@bot CODE``), replies to it and service messages (joins and departures).
"""

from __future__ import annotations

from telegram import ChatMember, ChatMemberUpdated, Update
from telegram.ext import (
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

from bot.channels.group import TelegramGroupProbe
from bot.services import group_desk, groups
from bot.services.usecase import Caller, perform
from handlers._base import Context, caller_of, command_args, respond, run
from handlers.context import DyadApplication

_GROUP_TYPES = frozenset({"group", "supergroup"})


class GroupChatMemberHandler(ChatMemberHandler[Context, None]):
    """Member changes in groups only (private chats' are onboarding's)."""

    def check_update(self, update: object) -> bool:
        """Whether this is a member update from a group."""
        if not super().check_update(update):
            return False
        assert isinstance(update, Update)
        chat = update.effective_chat
        return chat is not None and chat.type in _GROUP_TYPES


def register(application: DyadApplication) -> None:
    """Attach the group handlers; call it before the catch-all handlers of handler group 0.

    The private-chat ``/linkgroup`` and ``/unlinkgroup`` are in :mod:`handlers.commands`.
    """
    in_groups = filters.ChatType.GROUPS
    add = application.add_handler
    add(CommandHandler("linkgroup", link_in_group, filters=in_groups))
    add(CommandHandler("unlinkgroup", unlink_in_group, filters=in_groups))
    add(CallbackQueryHandler(consent_button, pattern=r"^1\|gl\|"))
    joins_and_departures = (
        filters.StatusUpdate.NEW_CHAT_MEMBERS | filters.StatusUpdate.LEFT_CHAT_MEMBER
    )
    add(MessageHandler(in_groups & joins_and_departures, membership_message))
    add(MessageHandler(in_groups & filters.StatusUpdate.MIGRATE, migration_message))
    add(GroupChatMemberHandler(member_update, ChatMemberHandler.ANY_CHAT_MEMBER))


async def link_private(update: Update, context: Context) -> None:
    """``/linkgroup`` (partner) or ``/linkgroup HANDLE`` (therapist): a one-time group code."""
    await run(update, context, group_desk.issue_code, command_args(context))


async def unlink_private(update: Update, context: Context) -> None:
    """``/unlinkgroup`` (partner) or ``/unlinkgroup HANDLE`` (therapist)."""
    await run(update, context, group_desk.unlink, command_args(context))


def _group_chat(update: Update) -> groups.GroupChat:
    chat = update.effective_chat
    assert chat is not None
    return groups.GroupChat(chat.id, chat.type, chat.title or "")


async def link_in_group(update: Update, context: Context) -> None:
    """``/linkgroup@bot CODE`` in a group: checks the code and the members, then asks both."""
    args = command_args(context)
    if not args:
        await respond(update, context, group_desk.how_to_link(caller_of(update).language_code))
        return
    probe = TelegramGroupProbe(context.bot)
    await run(update, context, group_desk.redeem_code, probe, args[0], _group_chat(update))


async def unlink_in_group(update: Update, context: Context) -> None:
    """``/unlinkgroup@bot`` in a linked group, by a partner or the therapist."""
    await run(update, context, group_desk.unlink_in_group, _group_chat(update).id)


async def consent_button(update: Update, context: Context) -> None:
    """``1|gl|link|attempt|yes|no``: a partner's private answer about using the group."""
    query = update.callback_query
    assert query is not None
    await run(update, context, group_desk.consent, query.data)


async def membership_message(update: Update, context: Context) -> None:
    """A join or departure service message (these reach the bot even in privacy mode)."""
    message = update.effective_message
    if message is None:
        return
    joined = [user.id for user in message.new_chat_members or ()]
    left = message.left_chat_member.id if message.left_chat_member is not None else None
    chat_id, bot_id = message.chat_id, context.bot.id
    await run(update, context, group_desk.membership, chat_id, bot_id, joined, left, greet=True)


async def migration_message(update: Update, context: Context) -> None:
    """Telegram upgraded a group to a supergroup: the old one says where it went, the new one
    where it came from. Either way the link of the old chat id is suspended."""
    message = update.effective_message
    if message is None:
        return
    old_chat_id = message.migrate_from_chat_id if message.migrate_from_chat_id else message.chat_id
    await run(update, context, group_desk.migrated, old_chat_id)


def _is_in(member: ChatMember) -> bool:
    if member.status == ChatMember.RESTRICTED:
        return bool(getattr(member, "is_member", False))
    return member.status in (ChatMember.OWNER, ChatMember.ADMINISTRATOR, ChatMember.MEMBER)


async def member_update(update: Update, context: Context) -> None:
    """``chat_member`` (others, when the bot is an administrator) and ``my_chat_member``."""
    change: ChatMemberUpdated | None = update.chat_member or update.my_chat_member
    if change is None:
        return
    was_in, is_in = _is_in(change.old_chat_member), _is_in(change.new_chat_member)
    if was_in == is_in:
        return  # a promotion or a restriction: nobody came or went
    user_id = change.new_chat_member.user.id
    caller = Caller(change.from_user.id, change.chat.id)
    joined, left = ([user_id], None) if is_in else ([], user_id)
    answer = await perform(
        context.deps, caller, group_desk.membership, change.chat.id, context.bot.id, joined, left
    )
    await respond(update, context, answer)
