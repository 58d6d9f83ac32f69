"""Reading Bot API parameters the way Telegram does, and its error answers."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from fakebotapi.models import Keyboard, UploadedFile
from fakebotapi.webapps import is_web_app_url

CALLBACK_DATA_LIMIT = 64
_BUTTON_ACTIONS = (
    "callback_data",
    "url",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "web_app",
    "callback_game",
    "pay",
    "copy_text",
)


class ApiError(Exception):
    """A refusal, answered as Telegram's `{"ok": false, ...}` JSON with this HTTP status."""

    def __init__(
        self,
        status: int,
        description: str,
        retry_after: int | None = None,
        *,
        migrate_to_chat_id: int | None = None,
    ) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after
        self.migrate_to_chat_id = migrate_to_chat_id

    def body(self) -> dict[str, Any]:
        """The JSON body Telegram sends with this error."""
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        if self.migrate_to_chat_id is not None:
            body["parameters"] = {"migrate_to_chat_id": self.migrate_to_chat_id}
        return body


def bad_request(description: str) -> ApiError:
    """A 400 with Telegram's "Bad Request: " prefix."""
    return ApiError(400, f"Bad Request: {description}")


class Params:
    """Typed access to one request's parameters, whatever encoding they came in.

    Form and query values are strings (PTB sends nested objects as JSON text inside form
    fields); a JSON body gives native values. Telegram treats an empty string as absent.
    """

    def __init__(self, values: dict[str, Any], files: dict[str, UploadedFile]) -> None:
        self.values = values
        self.files = files

    def has(self, name: str) -> bool:
        """Whether the parameter was given with a non-empty value."""
        value = self.values.get(name)
        return value is not None and value != ""

    def text(self, name: str) -> str | None:
        """A string parameter, or None when absent."""
        if not self.has(name):
            return None
        value = self.values[name]
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
        raise bad_request(f'field "{name}" must be of type String')

    def integer(self, name: str, *, invalid: str | None = None) -> int | None:
        """An integer parameter, or None when absent; `invalid` is the error for junk."""
        if not self.has(name):
            return None
        value = self.values[name]
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise bad_request(invalid or f'field "{name}" must be of type Integer')

    def boolean(self, name: str) -> bool:
        """A Boolean parameter; absent means False."""
        if not self.has(name):
            return False
        value = self.values[name]
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            return value != 0
        if isinstance(value, str) and value.strip().lower() in ("true", "1", "false", "0"):
            return value.strip().lower() in ("true", "1")
        raise bad_request(f'field "{name}" must be of type Boolean')

    def json_value(self, name: str, *, invalid: str | None = None) -> Any:
        """A JSON-serialized parameter (objects and arrays), or None when absent."""
        if not self.has(name):
            return None
        value = self.values[name]
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except ValueError as exc:
            raise bad_request(invalid or f"can't parse {name} JSON object") from exc


def parse_reply_markup(params: Params, *, inline_only: bool = False) -> dict[str, Any] | None:
    """Validate `reply_markup` as Telegram does; None when absent or an empty inline keyboard."""
    markup = params.json_value(
        "reply_markup", invalid="can't parse reply keyboard markup JSON object"
    )
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in markup:
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise bad_request(
                'field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays'
            )
        for row in rows:
            for button in row:
                _check_inline_button(button)
        if sum(len(row) for row in rows) > 100:
            raise bad_request("REPLY_MARKUP_TOO_LONG")
        if not any(rows):
            return None
        return {"inline_keyboard": rows}
    if inline_only:
        raise bad_request("inline keyboard expected")
    if "keyboard" in markup:
        rows = markup["keyboard"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise bad_request(
                'field "keyboard" of the ReplyKeyboardMarkup must be an Array of Arrays'
            )
        for row in rows:
            for button in row:
                label = button.get("text") if isinstance(button, dict) else button
                if not isinstance(label, str) or not label:
                    raise bad_request(
                        'can\'t parse keyboard button: Field "text" must be of type String'
                    )
        return markup
    if markup.get("remove_keyboard") is True or markup.get("force_reply") is True:
        return markup
    raise bad_request("can't parse reply keyboard markup JSON object")


def _check_inline_button(button: object) -> None:
    if not isinstance(button, dict):
        raise bad_request(
            "can't parse inline keyboard button: InlineKeyboardButton must be an Object"
        )
    text = button.get("text")
    if not isinstance(text, str):
        raise bad_request(
            'can\'t parse inline keyboard button: Field "text" must be of type String'
        )
    if not text.strip():
        raise bad_request("BUTTON_TEXT_INVALID")
    actions = [name for name in _BUTTON_ACTIONS if name in button]
    if not actions:
        raise bad_request(
            "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
        )
    if "callback_data" in button:
        data = button["callback_data"]
        if not isinstance(data, str) or not 1 <= len(data.encode("utf-8")) <= CALLBACK_DATA_LIMIT:
            raise bad_request("BUTTON_DATA_INVALID")
    if "url" in button:
        url = button["url"]
        if not isinstance(url, str) or not _is_button_url(url):
            raise bad_request(f"inline keyboard button URL '{url}' is invalid: Wrong HTTP URL")
    if "web_app" in button:
        web_app = button["web_app"]
        if not isinstance(web_app, dict) or not is_web_app_url(web_app.get("url")):
            raise bad_request("BUTTON_TYPE_INVALID")


def _is_button_url(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme == "tg":
        return bool(parts.netloc or parts.path)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def keyboard_of(markup: dict[str, Any] | None) -> Keyboard | None:
    """The inline keyboard as rows of (text, callback_data); None without one."""
    if markup is None or "inline_keyboard" not in markup:
        return None
    return [
        [(str(button["text"]), button.get("callback_data")) for button in row]
        for row in markup["inline_keyboard"]
    ]
