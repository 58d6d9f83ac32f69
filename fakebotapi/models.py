"""What the fake remembers: messages, documents, callback queries and the call log."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Button = tuple[str, str | None]
"""An inline button as (text, callback_data); callback_data is None for URL buttons."""

Keyboard = list[list[Button]]


@dataclass(frozen=True)
class MessageVersion:
    """One earlier state of an edited message."""

    text: str
    raw_text: str
    parse_mode: str | None
    entities: list[dict[str, Any]]
    reply_markup: Keyboard | None
    caption: str | None
    edit_date: int | None


@dataclass(frozen=True)
class FakeDocument:
    """A file the bot uploaded with sendDocument, bytes and all."""

    file_id: str
    file_unique_id: str
    file_name: str | None
    mime_type: str | None
    content: bytes

    @property
    def file_size(self) -> int:
        """Size in bytes."""
        return len(self.content)

    def to_api(self) -> dict[str, Any]:
        """The Document object as the Bot API shows it."""
        data: dict[str, Any] = {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": self.file_size,
        }
        if self.file_name is not None:
            data["file_name"] = self.file_name
        if self.mime_type is not None:
            data["mime_type"] = self.mime_type
        return data


@dataclass(eq=False)
class FakeMessage:
    """A message in a chat, sent by the bot (`from_bot`) or by a played user."""

    message_id: int
    chat_id: int
    from_bot: bool
    date: int
    sender: dict[str, Any]
    chat: dict[str, Any]
    text: str = ""
    """What the user sees: the text after HTML parsing and trimming ("" for documents)."""
    raw_text: str = ""
    """The text exactly as the bot sent it (HTML source under parse_mode=HTML)."""
    parse_mode: str | None = None
    entities: list[dict[str, Any]] = field(default_factory=list)
    reply_markup: Keyboard | None = None
    reply_markup_raw: dict[str, Any] | None = None
    reply_to: FakeMessage | None = None
    disable_notification: bool = False
    protect_content: bool = False
    link_preview_options: dict[str, Any] | None = None
    document: FakeDocument | None = None
    caption: str | None = None
    caption_entities: list[dict[str, Any]] = field(default_factory=list)
    deleted: bool = False
    edit_date: int | None = None
    edits: list[MessageVersion] = field(default_factory=list)
    """Earlier versions, oldest first; empty when never edited."""
    service: dict[str, Any] = field(default_factory=dict)
    """A service message's fields (``new_chat_members``, ``left_chat_member``); no text then."""
    seen_by_bot: bool = True
    """False for a group message the bot's privacy mode kept from it."""

    @property
    def reply_to_message_id(self) -> int | None:
        """The id of the message this one replies to, if any."""
        return self.reply_to.message_id if self.reply_to is not None else None

    @property
    def buttons(self) -> list[Button]:
        """All inline buttons, row by row."""
        return [button for row in self.reply_markup or [] for button in row]

    @property
    def button_texts(self) -> list[str]:
        """The labels of all inline buttons."""
        return [text for text, _ in self.buttons]

    def callback_data_for(self, text: str) -> str | None:
        """The callback data of the button labelled exactly `text`, or None."""
        for label, data in self.buttons:
            if label == text:
                return data
        return None

    def web_app_url_for(self, text: str) -> str | None:
        """The Mini App URL of the ``web_app`` button labelled exactly ``text``, or None."""
        rows = (self.reply_markup_raw or {}).get("inline_keyboard", [])
        for button in (button for row in rows for button in row):
            if button.get("text") == text and isinstance(button.get("web_app"), dict):
                return str(button["web_app"]["url"])
        return None

    def snapshot(self) -> MessageVersion:
        """The current state, kept in `edits` before an edit changes it."""
        return MessageVersion(
            text=self.text,
            raw_text=self.raw_text,
            parse_mode=self.parse_mode,
            entities=list(self.entities),
            reply_markup=self.reply_markup,
            caption=self.caption,
            edit_date=self.edit_date,
        )

    def to_api(self, *, nested: bool = False) -> dict[str, Any]:
        """The Message object as the Bot API returns it."""
        data: dict[str, Any] = {
            "message_id": self.message_id,
            "from": self.sender,
            "chat": self.chat,
            "date": self.date,
        }
        if self.edit_date is not None:
            data["edit_date"] = self.edit_date
        if self.reply_to is not None and not nested:
            # Telegram nests one level only: a reply's reply_to_message has no reply of its own.
            data["reply_to_message"] = self.reply_to.to_api(nested=True)
        if self.service:
            data.update(self.service)
        elif self.document is not None:
            data["document"] = self.document.to_api()
            if self.caption:
                data["caption"] = self.caption
                if self.caption_entities:
                    data["caption_entities"] = self.caption_entities
        else:
            data["text"] = self.text
            if self.entities:
                data["entities"] = self.entities
        if self.reply_markup_raw is not None and "inline_keyboard" in self.reply_markup_raw:
            data["reply_markup"] = self.reply_markup_raw
        return data


@dataclass(eq=False)
class FakeCallbackQuery:
    """A button press by a played user, and how the bot answered it."""

    id: str
    user_id: int
    chat_id: int
    message_id: int
    data: str
    answered: bool = False
    answer_text: str | None = None
    show_alert: bool = False
    answer_url: str | None = None


@dataclass(frozen=True)
class UploadedFile:
    """A file part of a multipart request."""

    filename: str | None
    content_type: str | None
    content: bytes


@dataclass(eq=False)
class ApiCall:
    """One request the bot made, in arrival order."""

    method: str
    params: dict[str, Any]
    time: float
    """The event loop's monotonic time when the request arrived."""
    status: int = 0
    """HTTP status of the answer; 0 while the request is still being handled."""
    response: dict[str, Any] | None = None
    files: dict[str, UploadedFile] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether Telegram would have said ok."""
        return self.status == 200

    @property
    def chat_id(self) -> int | None:
        """The chat_id parameter as an int, when there is one."""
        value = self.params.get("chat_id")
        try:
            return int(value) if value is not None else None
        except (TypeError, ValueError):
            return None

    @property
    def description(self) -> str | None:
        """The error description of a failed call."""
        if self.response is None:
            return None
        description = self.response.get("description")
        return description if isinstance(description, str) else None


@dataclass(frozen=True)
class WebhookDelivery:
    """One attempt to POST an update to the bot's webhook."""

    update_id: int
    attempt: int
    status: int | None
    """HTTP status the webhook answered, or None when the connection failed."""
    error: str | None
