"""Mini Apps as Telegram's clients open them: the launch URL with signed ``initData``.

A client opening a ``web_app`` button loads the button's URL with the launch parameters
in its fragment (``#tgWebAppData=...&tgWebAppVersion=...&tgWebAppThemeParams=...``);
``tgWebAppData`` is the ``initData`` query string, signed with the bot's token as
https://core.telegram.org/bots/webapps#validating-data-received-via-the-mini-app
describes. This is Telegram's side of that exchange, written apart from Dyad's validator.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

WEB_APP_VERSION = "8.0"
LIGHT_THEME: Mapping[str, str] = {
    "bg_color": "#ffffff",
    "text_color": "#000000",
    "hint_color": "#707579",
    "link_color": "#3390ec",
    "button_color": "#3390ec",
    "button_text_color": "#ffffff",
    "secondary_bg_color": "#f4f4f5",
}


def sign_init_data(fields: Mapping[str, str], token: str) -> str:
    """``fields`` as an initData query string, with the ``hash`` Telegram would add."""
    secret = hmac.new(b"WebAppData", token.encode("utf-8"), hashlib.sha256).digest()
    check = "\n".join(f"{key}={fields[key]}" for key in sorted(fields))
    digest = hmac.new(secret, check.encode("utf-8"), hashlib.sha256).hexdigest()
    return urlencode({**fields, "hash": digest}, quote_via=quote)


def user_init_data(user: Mapping[str, Any], token: str, auth_date: int) -> str:
    """The initData a client sends for ``user`` (a Bot API User object) opened at auth_date."""
    fields = {
        "user": json.dumps(user, ensure_ascii=False, separators=(",", ":")),
        "chat_instance": "-1",
        "chat_type": "sender",
        "auth_date": str(auth_date),
    }
    return sign_init_data(fields, token)


def launch_url(
    url: str,
    init_data: str,
    *,
    theme: Mapping[str, str] | None = None,
    platform: str = "weba",
) -> str:
    """The URL a client loads: the page, and the launch parameters in its fragment."""
    params = {
        "tgWebAppData": init_data,
        "tgWebAppVersion": WEB_APP_VERSION,
        "tgWebAppPlatform": platform,
        "tgWebAppThemeParams": json.dumps(dict(theme or LIGHT_THEME), separators=(",", ":")),
    }
    return f"{url.split('#', 1)[0]}#{urlencode(params, quote_via=quote)}"


def is_web_app_url(url: object) -> bool:
    """Telegram opens only https Mini Apps; its test environment also takes plain http."""
    if not isinstance(url, str):
        return False
    parts = urlsplit(url)
    if parts.scheme == "http":
        return parts.hostname in ("127.0.0.1", "localhost", "::1")
    return parts.scheme == "https" and bool(parts.hostname)
