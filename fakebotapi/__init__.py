"""A strict fake Telegram Bot API over real HTTP, for end-to-end tests and the offline demo."""

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
