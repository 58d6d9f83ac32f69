"""Played people: a FakeUser talks to the bot the way a Telegram client would."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.fakebotapi.formatting import TEXT_LIMIT, utf16_length
from bot.fakebotapi.models import FakeCallbackQuery, FakeMessage

if TYPE_CHECKING:
    from bot.fakebotapi.server import FakeBotAPI

_COMMAND = re.compile(r"/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?")


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
        api: FakeBotAPI,
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


@dataclass
class FakeGroup:
    """A group chat the bot is a member of (negative id)."""

    id: int
    title: str
    type: str = "group"
    member_ids: list[int] = field(default_factory=list)

    def chat_api(self) -> dict[str, Any]:
        """The Chat object as the Bot API shows it."""
        return {"id": self.id, "type": self.type, "title": self.title}
