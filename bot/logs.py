"""Logging set-up: plain text or JSON lines, never with message text, personal data or secrets.

Dyad's own log calls pass ids and handles only (couple handle, partner slot, update id,
delivery id). Everything else is made safe on the way out by :class:`PrivacyFilter`, on
the root handler, whatever the level:

- other libraries' records (PTB logs whole updates and API parameters at DEBUG; asyncio
  and tornado quote objects) keep their message template and numbers only: every other
  argument becomes ``<redacted>``, and only the first line of the message is kept;
- exceptions are logged as their type and traceback frames, never their message (it may
  quote what a user wrote, or SQL parameters), except network and file errors (``OSError``);
- ``extra`` fields pass when they are numbers, or strings under a name listed in
  :data:`SAFE_TEXT_FIELDS`;
- bot tokens (anything shaped like one) and the secrets given to :func:`register_secret`
  are replaced by ``<secret>`` everywhere.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
import traceback
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import IO, Any

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
OWN_LOGGERS = ("bot", "handlers", "schedules", "db", "__main__")
"""Dyad's packages: their log calls are reviewed to pass ids only, so their arguments stay."""

SAFE_TEXT_FIELDS = frozenset(
    {
        "couple",
        "handle",
        "slot",
        "kind",
        "status",
        "mode",
        "method",
        "worker_id",
        "error_type",
        "trace",
        "exception",
    }
)
"""``extra`` names whose string values are ids, handles or code, never user text."""

REDACTED = "<redacted>"
SECRET = "<secret>"
# A bot token as BotFather issues it (digits, a colon, 35 URL-safe characters), also inside
# a Bot API URL such as /bot123:ABC.../sendMessage.
_BOT_TOKEN = re.compile(r"\d{5,}:[A-Za-z0-9_-]{30,}")
_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Never let ``value`` (a token, key or password) appear in a log line."""
    if value and len(value) >= 6:  # a very short value would redact ordinary words
        _secrets.add(value)


def redact(text: str) -> str:
    """``text`` with every bot token and registered secret replaced."""
    text = _BOT_TOKEN.sub(SECRET, text)
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, SECRET)
    return text


def is_own_logger(name: str) -> bool:
    """Whether a logger belongs to Dyad's own code."""
    return any(name == own or name.startswith(own + ".") for own in OWN_LOGGERS)


class _Redacted:
    """Stands in for an argument whose value must not be logged."""

    def __str__(self) -> str:
        return REDACTED

    __repr__ = __str__


_REDACTED_ARG = _Redacted()


def _safe_arg(value: object) -> object:
    if isinstance(value, bool | int | float) or value is None:
        return value
    return _REDACTED_ARG


def _third_party_message(record: logging.LogRecord) -> str:
    template = str(record.msg)
    args = record.args
    if args:
        safe: object
        if isinstance(args, Mapping) and "%(" in template:
            safe = {key: _safe_arg(value) for key, value in args.items()}
        elif isinstance(args, Mapping):
            safe = _REDACTED_ARG  # one dict given for one %s: its keys may be data too
        else:
            safe = tuple(_safe_arg(value) for value in args)
        # E.g. %d given a redacted value: the bare template says enough then.
        with contextlib.suppress(TypeError, ValueError, KeyError):
            template = template % safe
    return template.split("\n", 1)[0]


ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


def describe_exception(exc_info: ExcInfo) -> str:
    """An exception's traceback frames and type names, without its message."""
    parts: list[str] = []
    seen: set[int] = set()
    error: BaseException | None = exc_info[1]
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        frames = "".join(traceback.format_tb(error.__traceback__))
        summary = type(error).__qualname__
        if isinstance(error, OSError):
            # A refused connection names a host and port, which operators need; never user text.
            summary = f"{summary}: {error}"
        parts.append(f"Traceback (most recent call last):\n{frames}{summary}")
        if error.__cause__ is not None:
            error = error.__cause__
        else:
            error = None if error.__suppress_context__ else error.__context__
    # The outermost exception last, as Python prints chains.
    return "\n\nWhile handling the above:\n".join(reversed(parts))


class PrivacyFilter(logging.Filter):
    """Makes each record safe to write: no payloads, no exception messages, no secrets."""

    def filter(self, record: logging.LogRecord) -> bool:
        if is_own_logger(record.name):
            message = record.getMessage()
        else:
            message = _third_party_message(record)
        record.msg, record.args = redact(message), None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(describe_exception(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        record.exc_info = None
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for key, value in list(record.__dict__.items()):
            if key in _STANDARD or key.startswith("_"):
                continue
            if isinstance(value, bool | int | float) or value is None:
                continue
            if isinstance(value, str) and key in SAFE_TEXT_FIELDS:
                setattr(record, key, redact(value))
            else:
                setattr(record, key, REDACTED)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, extras and any exception."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                payload[key] = (
                    value if isinstance(value, (int, float, bool, type(None))) else str(value)
                )
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            payload["exception"] = record.exc_text
        if record.stack_info:
            payload["stack"] = record.stack_info
        return json.dumps(payload, ensure_ascii=False)


def configure_logging(
    level: str = "INFO",
    fmt: str = "text",
    *,
    stream: IO[str] | None = None,
    secrets: Iterable[str | None] = (),
) -> logging.Handler:
    """Send every log record, made safe, to ``stream`` (stderr) in the chosen format."""
    for secret in secrets:
        register_secret(secret)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(PrivacyFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs every request URL, and a Bot API URL contains the bot token; the filter
    # would redact it, but these lines say nothing an operator needs.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # Two lines per SQLite statement (from its worker thread) would bury everything else.
    logging.getLogger("aiosqlite").setLevel(logging.INFO)
    return handler
