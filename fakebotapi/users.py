"""Played people: a FakeUser talks to the bot the way a Telegram client would."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

from fakebotapi.formatting import TEXT_LIMIT, utf16_length
from fakebotapi.models import FakeCallbackQuery, FakeMessage
from fakebotapi.webapps import launch_url, user_init_data

_COMMAND = re.compile(r"/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?")
_T = TypeVar("_T")


class Telegram(Protocol):
    """The Telegram a played person's app talks to: what users and groups need of the server.

    Declared here so that the server (``FakeBotAPI``) depends on the people it plays and not
    the other way round. The underscored members are the server's intake of what people do,
    for this module only.
    """

    @property
    def token(self) -> str: ...
    @property
    def bot_username(self) -> str: ...
    @property
    def bot_user(self) -> dict[str, Any]: ...
    @property
    def users(self) -> dict[int, FakeUser]: ...
    @property
    def callback_queries(self) -> list[FakeCallbackQuery]: ...
    def date(self) -> int: ...
    def sent_to(self, chat_id: int) -> list[FakeMessage]: ...
    def sent_by(self, user_id: int) -> list[FakeMessage]: ...
    def written_in(self, chat_id: int) -> list[FakeMessage]: ...
    async def wait_for(
        self,
        condition: Callable[[], _T | None],
        timeout: float = 5.0,  # noqa: ASYNC109 - as FakeBotAPI.wait_for
        *,
        on_timeout: Callable[[], str] | None = None,
    ) -> _T: ...
    def add_group(
        self,
        chat_id: int,
        title: str,
        *,
        supergroup: bool = False,
        members: tuple[FakeUser, ...] = (),
        bot_status: str = "member",
    ) -> FakeGroup: ...
    def _user_sent_text(
        self,
        user: FakeUser,
        text: str,
        entities: list[dict[str, Any]],
        reply_to: FakeMessage | None,
    ) -> FakeMessage: ...
    def _user_pressed(
        self, user: FakeUser, message: FakeMessage, callback_data: str
    ) -> FakeCallbackQuery: ...
    def _copy_into_group(self, message: FakeMessage, group: FakeGroup) -> FakeMessage: ...
    def _user_sent_group_text(
        self,
        user: FakeUser,
        group: FakeGroup,
        text: str,
        entities: list[dict[str, Any]],
        reply_to: FakeMessage | None,
    ) -> FakeMessage: ...
    def _group_service_message(
        self, group: FakeGroup, sender: FakeUser, service: dict[str, Any]
    ) -> FakeMessage: ...
    def _group_membership_changed(
        self, group: FakeGroup, member: dict[str, Any], by: FakeUser, *, joined: bool
    ) -> None: ...
    def _bot_status_changed(
        self, group: FakeGroup, by: FakeUser, *, old: str, new: str
    ) -> None: ...
    def _member_status_changed(self, user: FakeUser, *, old: str, new: str) -> None: ...


class FakeUserError(AssertionError):
    """A played user cannot do that (no such button, no reply in time...): the test fails."""


def _describe(messages: list[FakeMessage]) -> str:
    if not messages:
        return "none"
    return "; ".join(f"#{m.message_id} {(m.text or m.caption or '')[:60]!r}" for m in messages)


class FakeUser:
    """One Telegram user in a private chat with the bot (chat id == user id)."""

    def __init__(
        self,
        api: Telegram,
        user_id: int,
        first_name: str,
        *,
        language_code: str | None = "en",
        username: str | None = None,
        last_name: str | None = None,
        has_started: bool = False,
    ) -> None:
        self._api = api
        self.id = user_id
        self.first_name = first_name
        self.last_name = last_name
        self.username = username
        self.language_code = language_code
        self.blocked = False
        self.has_started = has_started
        """Telegram lets a bot write only to users who have opened the chat with it."""
        self._cursor = 0

    def __repr__(self) -> str:
        return f"FakeUser({self.id}, {self.first_name!r})"

    @property
    def chat_id(self) -> int:
        """The private chat's id, which Telegram makes equal to the user's id."""
        return self.id

    def to_api(self) -> dict[str, Any]:
        """The User object as the Bot API shows it."""
        data: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.last_name:
            data["last_name"] = self.last_name
        if self.username:
            data["username"] = self.username
        if self.language_code:
            data["language_code"] = self.language_code
        return data

    def chat_api(self) -> dict[str, Any]:
        """The private Chat object as the Bot API shows it."""
        data: dict[str, Any] = {"id": self.id, "type": "private", "first_name": self.first_name}
        if self.last_name:
            data["last_name"] = self.last_name
        if self.username:
            data["username"] = self.username
        return data

    # Read side -----------------------------------------------------------------------------

    @property
    def messages(self) -> list[FakeMessage]:
        """Every message the bot sent to this chat, in order, deleted ones included."""
        return self._api.sent_to(self.id)

    @property
    def visible_messages(self) -> list[FakeMessage]:
        """The bot's messages the user can still see."""
        return [m for m in self.messages if not m.deleted]

    @property
    def last_message(self) -> FakeMessage | None:
        """The newest bot message the user can still see."""
        visible = self.visible_messages
        return visible[-1] if visible else None

    @property
    def sent_messages(self) -> list[FakeMessage]:
        """The messages this user sent to the bot."""
        return self._api.sent_by(self.id)

    @property
    def callback_queries(self) -> list[FakeCallbackQuery]:
        """This user's button presses, with the bot's answers."""
        return [q for q in self._api.callback_queries if q.user_id == self.id]

    async def wait_for_message(
        self,
        predicate: Callable[[FakeMessage], bool] | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109 - a deadline for the whole wait, not one call
        after: int | None = None,
    ) -> FakeMessage:
        """Wait for a bot message matching `predicate` at index >= `after` in `messages`.

        `after` defaults to the number of bot messages there were when this user last acted
        (sent, pressed, blocked) or last got a message from this method, so a test can write
        `await user.send_text("hi"); reply = await user.wait_for_message()`.
        """
        start = self._cursor if after is None else after

        def found() -> FakeMessage | None:
            for message in self.messages[start:]:
                if predicate is None or predicate(message):
                    return message
            return None

        message = await self._api.wait_for(
            found, timeout, on_timeout=lambda: self._no_message(start)
        )
        self._cursor = max(self._cursor, self.messages.index(message) + 1)
        return message

    def _no_message(self, start: int) -> str:
        return (
            f"{self!r} got no matching bot message; messages from index {start}: "
            f"{_describe(self.messages[start:])}"
        )

    # Acting --------------------------------------------------------------------------------

    def _act(self) -> None:
        if self.blocked:
            raise FakeUserError(f"{self!r} has blocked the bot; call unblock_bot() first")
        self.has_started = True
        self._cursor = len(self.messages)

    async def send_text(self, text: str) -> FakeMessage:
        """Type and send `text`; a leading /command gets its bot_command entity as in Telegram."""
        entities: list[dict[str, Any]] = []
        match = _COMMAND.match(text)
        if match is not None:
            entities.append({"type": "bot_command", "offset": 0, "length": match.end()})
        return self._send(text, entities, reply_to=None)

    async def send_command(self, command: str, args: str = "") -> FakeMessage:
        """Send a command such as ("start", "TOKEN") -> "/start TOKEN"."""
        name = command if command.startswith("/") else f"/{command}"
        if _COMMAND.fullmatch(name) is None:
            raise ValueError(f"not a Telegram command: {name!r}")
        text = f"{name} {args}" if args else name
        entities = [{"type": "bot_command", "offset": 0, "length": utf16_length(name)}]
        return self._send(text, entities, reply_to=None)

    async def reply_to(self, message: FakeMessage, text: str) -> FakeMessage:
        """Reply to one of the bot's messages (Telegram's swipe-to-reply)."""
        if message.chat_id != self.id or message.deleted:
            raise FakeUserError(f"{self!r} cannot reply to message #{message.message_id}")
        return self._send(text, [], reply_to=message)

    async def send_raw(
        self, text: str, *, entities: list[dict[str, Any]] | None = None
    ) -> FakeMessage:
        """Send ``text`` past the checks Telegram's apps make: blank, or over 4096 characters.

        ``entities`` go as given; without them a leading /command gets its bot_command
        entity, as :meth:`send_text` adds it.
        """
        if entities is None:
            match = _COMMAND.match(text)
            entities = (
                [{"type": "bot_command", "offset": 0, "length": match.end()}] if match else []
            )
        self._act()
        return self._api._user_sent_text(self, text, entities, None)

    def _send(
        self, text: str, entities: list[dict[str, Any]], reply_to: FakeMessage | None
    ) -> FakeMessage:
        if not text.strip():
            raise ValueError("Telegram clients do not send empty messages")
        if len(text) > TEXT_LIMIT:
            raise ValueError("Telegram clients split messages over 4096 characters")
        self._act()
        return self._api._user_sent_text(self, text, entities, reply_to)

    async def press(self, message: FakeMessage, callback_data: str) -> FakeCallbackQuery:
        """Press the inline button carrying `callback_data` on `message`."""
        if message.chat_id != self.id or not message.from_bot:
            raise FakeUserError(f"message #{message.message_id} is not a bot message to {self!r}")
        if message.deleted:
            raise FakeUserError(f"message #{message.message_id} was deleted; nothing to press")
        if callback_data not in [data for _, data in message.buttons]:
            raise FakeUserError(
                f"message #{message.message_id} has no button with callback_data "
                f"{callback_data!r}; buttons: {message.buttons}"
            )
        self._act()
        return self._api._user_pressed(self, message, callback_data)

    async def press_forged(self, message: FakeMessage, callback_data: str) -> FakeCallbackQuery:
        """Press `message` with any `callback_data`, as a modified client could.

        The data need not be on any of the message's buttons (nor the message have any):
        what a bot must refuse kindly when someone replays or invents a button.
        """
        if message.chat_id != self.id or not message.from_bot:
            raise FakeUserError(f"message #{message.message_id} is not a bot message to {self!r}")
        self._act()
        return self._api._user_pressed(self, message, callback_data)

    async def press_copy_in_group(
        self, group: FakeGroup, message: FakeMessage, callback_data: str
    ) -> FakeCallbackQuery:
        """Press a button of one of the bot's messages to this user, on a copy in ``group``.

        Plays a user forwarding a message with its inline keyboard into a group and pressing
        it there: the callback query then comes from the group's chat, not the private one.
        """
        if message.chat_id != self.id or not message.from_bot:
            raise FakeUserError(f"message #{message.message_id} is not a bot message to {self!r}")
        if callback_data not in [data for _, data in message.buttons]:
            raise FakeUserError(f"message #{message.message_id} has no such button")
        if self.id not in group.member_ids:
            raise FakeUserError(f"{self!r} is not in {group!r}")
        self._act()
        copy = self._api._copy_into_group(message, group)
        return self._api._user_pressed(self, copy, callback_data)

    async def press_button(self, text: str) -> FakeCallbackQuery:
        """Press the button labelled `text` (or containing it) on the newest message having one."""
        for message in reversed(self.visible_messages):
            exact = [data for label, data in message.buttons if label == text]
            partial = [data for label, data in message.buttons if text in label]
            candidates = exact or partial
            if candidates:
                data = candidates[0]
                if data is None:
                    raise FakeUserError(f"button {text!r} is a URL button, not a callback button")
                return await self.press(message, data)
        labels = [m.button_texts for m in self.visible_messages if m.buttons]
        raise FakeUserError(f"{self!r} sees no button like {text!r}; buttons on screen: {labels}")

    def open_web_app(
        self, message: FakeMessage, text: str, *, theme: Mapping[str, str] | None = None
    ) -> str:
        """Open the Mini App button labelled ``text``: the URL the client loads, initData in it.

        Opening a Mini App sends the bot no update and leaves nothing in the chat.
        """
        if message.chat_id != self.id or not message.from_bot or message.deleted:
            raise FakeUserError(f"message #{message.message_id} is not on {self!r}'s screen")
        url = message.web_app_url_for(text)
        if url is None:
            raise FakeUserError(
                f"message #{message.message_id} has no Mini App button {text!r}; "
                f"buttons: {message.button_texts}"
            )
        self._act()
        init_data = user_init_data(self.to_api(), self._api.token, self._api.date())
        return launch_url(url, init_data, theme=theme)

    # In groups ----------------------------------------------------------------------------

    async def send_in_group(
        self, group: FakeGroup, text: str, *, reply_to: FakeMessage | None = None
    ) -> FakeMessage:
        """Write in a group; the bot sees it only as its privacy mode allows."""
        entities: list[dict[str, Any]] = []
        match = _COMMAND.match(text)
        if match is not None:
            entities.append({"type": "bot_command", "offset": 0, "length": match.end()})
        return self._send_in_group(group, text, entities, reply_to)

    async def command_in_group(
        self, group: FakeGroup, command: str, args: str = "", *, mention: bool = True
    ) -> FakeMessage:
        """Send ``/command@bot ARGS`` in a group (``mention=False``: without ``@bot``)."""
        name = command if command.startswith("/") else f"/{command}"
        if mention:
            name = f"{name}@{self._api.bot_username}"
        if _COMMAND.fullmatch(name) is None:
            raise ValueError(f"not a Telegram command: {name!r}")
        text = f"{name} {args}" if args else name
        entities = [{"type": "bot_command", "offset": 0, "length": utf16_length(name)}]
        return self._send_in_group(group, text, entities, None)

    def _send_in_group(
        self,
        group: FakeGroup,
        text: str,
        entities: list[dict[str, Any]],
        reply_to: FakeMessage | None,
    ) -> FakeMessage:
        if not text.strip():
            raise ValueError("Telegram clients do not send empty messages")
        if len(text) > TEXT_LIMIT:
            raise ValueError("Telegram clients split messages over 4096 characters")
        if group.migrated_to is not None:
            raise FakeUserError(f"{group!r} became supergroup {group.migrated_to}: it is read-only")
        if self.id not in group.member_ids:
            raise FakeUserError(f"{self!r} is not a member of group {group.title!r}")
        if reply_to is not None and (reply_to.chat_id != group.id or reply_to.deleted):
            raise FakeUserError(f"{self!r} cannot reply to message #{reply_to.message_id} there")
        # Writing in a group does not open the private chat: has_started stays as it is.
        group.mark_cursor()
        return self._api._user_sent_group_text(self, group, text, entities, reply_to)

    async def block_bot(self) -> None:
        """Block the bot: it gets a my_chat_member update and 403 on every send."""
        if self.blocked:
            return
        self._cursor = len(self.messages)
        self.blocked = True
        self._api._member_status_changed(self, old="member", new="kicked")

    async def unblock_bot(self) -> None:
        """Unblock the bot (Telegram's "Restart"): a my_chat_member update back to member."""
        if not self.blocked:
            return
        self.blocked = False
        self._cursor = len(self.messages)
        self._api._member_status_changed(self, old="kicked", new="member")


class FakeGroup:
    """A group chat (negative id): its played members, and the bot's place in it.

    Joins and departures produce what Telegram sends: a service message
    (``new_chat_members``, ``left_chat_member``) that reaches the bot even in privacy mode,
    a ``chat_member`` update when the bot is an administrator, and a ``my_chat_member``
    update when the bot itself is added, promoted or removed.
    """

    def __init__(
        self,
        api: Telegram,
        chat_id: int,
        title: str,
        type: str = "group",
        *,
        member_ids: list[int] | None = None,
        creator_id: int | None = None,
        bot_status: str = "member",
    ) -> None:
        self._api = api
        self.id = chat_id
        self.title = title
        self.type = type
        self.member_ids: list[int] = list(member_ids or [])
        """The played users in the group (the bot is counted apart, in ``bot_status``)."""
        self.creator_id = creator_id
        self.bot_status = bot_status
        """member | administrator | left | kicked."""
        self.migrated_to: int | None = None
        """The supergroup's id once this basic group was upgraded (it is then read-only)."""
        self._cursor = 0

    def __repr__(self) -> str:
        return f"FakeGroup({self.id}, {self.title!r})"

    def chat_api(self) -> dict[str, Any]:
        """The Chat object as the Bot API shows it."""
        return {"id": self.id, "type": self.type, "title": self.title}

    @property
    def bot_is_member(self) -> bool:
        """Whether the bot is in the group (as a member or an administrator)."""
        return self.bot_status in ("member", "administrator")

    @property
    def member_count(self) -> int:
        """What getChatMemberCount answers: every member, bots included."""
        return len(self.member_ids) + (1 if self.bot_is_member else 0)

    def status_of(self, user_id: int) -> str:
        """A played user's status in the group, as getChatMember reports it."""
        if user_id not in self.member_ids:
            return "left"
        return "creator" if user_id == self.creator_id else "member"

    # Read side -----------------------------------------------------------------------------

    @property
    def messages(self) -> list[FakeMessage]:
        """Every message the bot posted in this group, in order, deleted ones included."""
        return self._api.sent_to(self.id)

    @property
    def user_messages(self) -> list[FakeMessage]:
        """What the played users wrote in the group, seen by the bot or not."""
        return self._api.written_in(self.id)

    def mark_cursor(self) -> None:
        """Later waits look only at bot messages posted from now on."""
        self._cursor = len(self.messages)

    async def wait_for_message(
        self,
        predicate: Callable[[FakeMessage], bool] | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109 - a deadline for the whole wait, not one call
        after: int | None = None,
    ) -> FakeMessage:
        """Wait for a bot message in the group, as :meth:`FakeUser.wait_for_message` does."""
        start = self._cursor if after is None else after

        def found() -> FakeMessage | None:
            for message in self.messages[start:]:
                if predicate is None or predicate(message):
                    return message
            return None

        message = await self._api.wait_for(
            found,
            timeout,
            on_timeout=lambda: (
                f"{self!r} got no matching bot message; messages from index {start}: "
                f"{_describe(self.messages[start:])}"
            ),
        )
        self._cursor = max(self._cursor, self.messages.index(message) + 1)
        return message

    # Membership ------------------------------------------------------------------------------

    async def add_member(self, user: FakeUser, *, by: FakeUser | None = None) -> None:
        """``user`` joins (by a link when ``by`` is None, else added by ``by``)."""
        if user.id in self.member_ids:
            raise FakeUserError(f"{user!r} is already in {self!r}")
        adder = by or user
        if by is not None and by.id not in self.member_ids:
            raise FakeUserError(f"{by!r} is not in {self!r}, so cannot add anyone")
        self.mark_cursor()
        self.member_ids.append(user.id)
        self._api._group_membership_changed(self, user.to_api(), adder, joined=True)

    async def remove_member(self, user: FakeUser, *, by: FakeUser | None = None) -> None:
        """``user`` leaves (``by`` None) or is removed by ``by``."""
        if user.id not in self.member_ids:
            raise FakeUserError(f"{user!r} is not in {self!r}")
        self.mark_cursor()
        self.member_ids.remove(user.id)
        self._api._group_membership_changed(self, user.to_api(), by or user, joined=False)

    async def add_bot(self, *, by: FakeUser) -> None:
        """A member adds the bot to the group."""
        if self.bot_is_member:
            raise FakeUserError(f"the bot is already in {self!r}")
        if by.id not in self.member_ids:
            raise FakeUserError(f"{by!r} is not in {self!r}, so cannot add the bot")
        self.mark_cursor()
        old, self.bot_status = self.bot_status, "member"
        self._api._bot_status_changed(self, by, old=old, new="member")
        self._api._group_service_message(self, by, {"new_chat_members": [self._api.bot_user]})

    async def remove_bot(self, *, by: FakeUser) -> None:
        """A member removes the bot from the group."""
        if not self.bot_is_member:
            raise FakeUserError(f"the bot is not in {self!r}")
        self.mark_cursor()
        old, self.bot_status = self.bot_status, "kicked"
        self._api._bot_status_changed(self, by, old=old, new="kicked")

    async def upgrade_to_supergroup(self, new_chat_id: int, *, by: FakeUser) -> FakeGroup:
        """Telegram upgrades this basic group: a supergroup with a new id and the same members.

        As Telegram does, the old group gets a service message with ``migrate_to_chat_id``
        and the new one a message with ``migrate_from_chat_id``; afterwards every call on
        the old id is refused with 400 and ``parameters.migrate_to_chat_id``.
        """
        if self.type != "group" or self.migrated_to is not None:
            raise FakeUserError(f"{self!r} is not a basic group")
        if by.id not in self.member_ids:
            raise FakeUserError(f"{by!r} is not in {self!r}")
        members = tuple(self._api.users[i] for i in self.member_ids)
        new = self._api.add_group(
            new_chat_id, self.title, supergroup=True, members=members, bot_status=self.bot_status
        )
        new.creator_id = self.creator_id
        self.mark_cursor()
        self._api._group_service_message(self, by, {"migrate_to_chat_id": new_chat_id})
        self._api._group_service_message(new, by, {"migrate_from_chat_id": self.id})
        self.migrated_to = new_chat_id
        return new

    async def promote_bot(self, *, by: FakeUser) -> None:
        """Make the bot an administrator (it then gets ``chat_member`` updates)."""
        if self.bot_status != "member":
            raise FakeUserError(f"the bot is not a plain member of {self!r}")
        self.bot_status = "administrator"
        self._api._bot_status_changed(self, by, old="member", new="administrator")
