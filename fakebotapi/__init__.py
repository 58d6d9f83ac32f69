"""A strict fake Telegram Bot API over real HTTP, for end-to-end tests and the offline demo.

The simulation API is what the fake shows without a leading underscore; the tests, the
benchmarks and the demo use nothing else (``tests/unit/test_fake_bot_api_use.py`` checks):

- ``FakeBotAPI``: ``start``/``stop`` (or ``async with``), ``base_url`` and ``token`` for
  the bot, ``add_user``/``add_group`` to make people and groups, ``date()`` (now, as
  Telegram dates things), what the bot did (``calls``, ``sent_to``, ``bot_messages``,
  ``commands``, ``pending_updates``...), ``wait_for``, ``inject``/``set_fault_rates`` and
  ``RateLimits`` for faults and flood limits, ``post_update_to_webhook``.
- ``FakeUser``: what a person does in the app (``send_text``, ``send_command``,
  ``reply_to``, ``press``, ``press_button``, ``open_web_app``, ``block_bot``, group
  writes) and what a modified client could (``send_raw``, ``press_forged``), with
  ``messages`` and ``wait_for_message`` to read the chat.
- ``FakeGroup``: members joining and leaving, the bot added, promoted or removed, an
  upgrade to a supergroup, and the group's messages.
- ``webapps.user_init_data`` and ``webapps.launch_url``: signed Mini App launch data,
  forged ones too (another token, another user).
"""

from fakebotapi.faults import DEFAULT_FAULTY_METHODS, FaultKind, Faults, FiredFault
from fakebotapi.formatting import EntityParseError, parse_html, utf16_length
from fakebotapi.models import (
    ApiCall,
    Button,
    FakeCallbackQuery,
    FakeDocument,
    FakeMessage,
    Keyboard,
    MessageVersion,
    UploadedFile,
    WebhookDelivery,
)
from fakebotapi.ratelimits import RATE_LIMITED_METHODS, RateLimits, RateLimitViolations
from fakebotapi.server import CONFIGURED_SECRET, DEFAULT_TOKEN, FakeBotAPI
from fakebotapi.users import FakeGroup, FakeUser, FakeUserError

__all__ = [
    "CONFIGURED_SECRET",
    "DEFAULT_FAULTY_METHODS",
    "DEFAULT_TOKEN",
    "RATE_LIMITED_METHODS",
    "ApiCall",
    "Button",
    "EntityParseError",
    "FakeBotAPI",
    "FakeCallbackQuery",
    "FakeDocument",
    "FakeGroup",
    "FakeMessage",
    "FakeUser",
    "FakeUserError",
    "FaultKind",
    "Faults",
    "FiredFault",
    "Keyboard",
    "MessageVersion",
    "RateLimitViolations",
    "RateLimits",
    "UploadedFile",
    "WebhookDelivery",
    "parse_html",
    "utf16_length",
]
