"""A couple's linked Telegram group: /linkgroup, /unlinkgroup, the consent buttons, members.

Works with the bot's group privacy mode on: in a group the bot sees only commands addressed
to it (``/linkgroup@bot CODE``), replies to it and service messages (joins and departures).
"""

from __future__ import annotations

from telegram import ChatMember, ChatMemberUpdated, Update
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

from bot.channels.base import Outgoing, SendError
from bot.channels.group import TelegramGroupProbe
from bot.core import callbacks
from bot.locales import pick_locale
from bot.services import couples, groups
from bot.services.outbox import recipient_key
from bot.services.texts import UserError, msg
from db.models import Couple
from db.uow import UnitOfWork
from handlers._base import (
    Context,
    command_args,
    deps,
    kick_dispatcher,
    kindly,
    person_of,
    reply,
)
from handlers.partner import joined_partner

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


def register(application: Application) -> None:  # type: ignore[type-arg]
    """Attach the group handlers; call it before the catch-all handlers of handler group 0."""
    private, in_groups = filters.ChatType.PRIVATE, filters.ChatType.GROUPS
    add = application.add_handler
    add(CommandHandler("linkgroup", link_private, filters=private))
    add(CommandHandler("unlinkgroup", unlink_private, filters=private))
    add(CommandHandler("linkgroup", link_in_group, filters=in_groups))
    add(CommandHandler("unlinkgroup", unlink_in_group, filters=in_groups))
    add(CallbackQueryHandler(consent_button, pattern=r"^1\|gl\|"))
    joins_and_departures = (
        filters.StatusUpdate.NEW_CHAT_MEMBERS | filters.StatusUpdate.LEFT_CHAT_MEMBER
    )
    add(MessageHandler(in_groups & joins_and_departures, membership_message))
    add(MessageHandler(in_groups & filters.StatusUpdate.MIGRATE, migration_message))
    add(GroupChatMemberHandler(member_update, ChatMemberHandler.ANY_CHAT_MEMBER))


async def _own_couple(
    uow: UnitOfWork, user_id: int, args: list[str], usage: str
) -> tuple[Couple, str, str]:
    """The couple a private command is about, who asks, and their language."""
    therapist = await uow.therapists.by_user(user_id)
    if therapist is not None:
        if not args:
            raise UserError(usage)
        couple = await couples.own_couple(uow, therapist, args[0])
        return couple, recipient_key(therapist), therapist.language
    partner = await joined_partner(uow, user_id)
    couple_ = await uow.couples.get(partner.couple_id)
    if couple_ is None or couple_.status != "active":
        raise UserError("common.help_stranger")
    return couple_, recipient_key(partner), partner.language


@kindly
async def link_private(update: Update, context: Context) -> None:
    """``/linkgroup`` (partner) or ``/linkgroup HANDLE`` (therapist): a one-time group code."""
    d = deps(context)
    async with d.db.uow() as uow:
        couple, actor, language = await _own_couple(
            uow, person_of(update).user_id, command_args(context), "group.therapist_usage"
        )
        issued = await groups.issue_code(uow, couple, actor, d.clock.now())
    text = msg(language, "group.code", code=issued.code, bot=d.bot_username, minutes=issued.minutes)
    await reply(update, context, Outgoing(text))


@kindly
async def unlink_private(update: Update, context: Context) -> None:
    """``/unlinkgroup`` (partner) or ``/unlinkgroup HANDLE`` (therapist)."""
    d = deps(context)
    async with d.db.uow() as uow:
        couple, actor, _ = await _own_couple(
            uow, person_of(update).user_id, command_args(context), "group.unlink_usage"
        )
        await groups.unlink(uow, couple, actor, d.clock.now())
    kick_dispatcher(context)  # everyone, the asker included, hears it privately


def _group_chat(update: Update) -> groups.GroupChat:
    chat = update.effective_chat
    assert chat is not None
    return groups.GroupChat(chat.id, chat.type, chat.title or "")


@kindly
async def link_in_group(update: Update, context: Context) -> None:
    """``/linkgroup@bot CODE`` in a group: checks the code and the members, then asks both."""
    args = command_args(context)
    person = person_of(update)
    if not args:
        text = msg(pick_locale(person.language_code), "group.how_to_link")
        await reply(update, context, Outgoing(text))
        return
    d = deps(context)
    try:
        async with d.db.uow() as uow:
            answer = await groups.redeem_code(
                uow,
                TelegramGroupProbe(context.bot),
                args[0],
                person.user_id,
                _group_chat(update),
                d.clock.now(),
            )
    except SendError as error:
        raise UserError("group.try_later") from error
    finally:
        kick_dispatcher(context)  # a refusal's reason, or both partners' question, goes now
    await reply(update, context, answer)


@kindly
async def unlink_in_group(update: Update, context: Context) -> None:
    """``/unlinkgroup@bot`` in a linked group, by a partner or the therapist."""
    d = deps(context)
    async with d.db.uow() as uow:
        answer = await groups.unlink_from_group(
            uow, _group_chat(update).id, person_of(update).user_id, d.clock.now()
        )
    await reply(update, context, answer)
    kick_dispatcher(context)


@kindly
async def consent_button(update: Update, context: Context) -> None:
    """``1|gl|link|attempt|yes|no``: a partner's private answer about using the group."""
    query = update.callback_query
    assert query is not None
    data = callbacks.decode(query.data)
    d = deps(context)
    async with d.db.uow() as uow:
        partner = await joined_partner(uow, person_of(update).user_id)
        answer = await groups.answer_consent(
            uow, partner, data.int_arg(0), data.int_arg(1), data.arg(2), d.clock.now()
        )
    await query.answer()
    await reply(update, context, answer)
    kick_dispatcher(context)


async def membership_message(update: Update, context: Context) -> None:
    """A join or departure service message (these reach the bot even in privacy mode)."""
    message = update.effective_message
    if message is None:
        return
    d = deps(context)
    chat_id, bot_id, now = message.chat_id, context.bot.id, d.clock.now()
    changed = False
    async with d.db.uow() as uow:
        if message.new_chat_members:
            joined = [user.id for user in message.new_chat_members]
            changed = await groups.members_joined(uow, chat_id, joined, bot_id, now)
            if bot_id in joined and await groups.link_of_chat(uow, chat_id) is None:
                language = message.from_user.language_code if message.from_user else None
                await reply(update, context, Outgoing(msg(pick_locale(language), "group.hello")))
        if message.left_chat_member is not None:
            left = message.left_chat_member.id
            changed = await groups.member_left(uow, chat_id, left, bot_id, now) or changed
    if changed:
        kick_dispatcher(context)


async def migration_message(update: Update, context: Context) -> None:
    """Telegram upgraded a group to a supergroup: the old one says where it went, the new one
    where it came from. Either way the link of the old chat id is suspended."""
    message = update.effective_message
    if message is None:
        return
    old_chat_id = message.migrate_from_chat_id if message.migrate_from_chat_id else message.chat_id
    d = deps(context)
    async with d.db.uow() as uow:
        changed = await groups.migrated(uow, old_chat_id, d.clock.now())
    if changed:
        kick_dispatcher(context)


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
    d = deps(context)
    user_id, bot_id, now = change.new_chat_member.user.id, context.bot.id, d.clock.now()
    async with d.db.uow() as uow:
        if is_in:
            changed = await groups.members_joined(uow, change.chat.id, [user_id], bot_id, now)
        else:
            changed = await groups.member_left(uow, change.chat.id, user_id, bot_id, now)
    if changed:
        kick_dispatcher(context)
