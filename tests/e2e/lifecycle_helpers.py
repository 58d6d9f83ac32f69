"""What the lifecycle state machine needs around Dyad: the whole running stack of one example,
and readers of every place a private word could end up (chats, groups, mail, webhooks,
exports, logs, the database).

Everything here runs on the event loop the test owns; nothing mocks Dyad's own code.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import logging
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy import select

from bot.channels.registry import GROUP_CHANNEL
from bot.core.clock import ManualClock
from bot.demo import offline_bot, offline_deps
from bot.logs import configure_logging
from bot.services.crypto import Cipher
from db.engine import Database
from db.models import Base
from fakebotapi import FakeBotAPI, FakeMessage
from tests.conftest import open_database, release_schema
from tests.e2e.conftest import Harness
from tests.e2e.test_email_and_webhooks import Receiver
from tests.e2e.test_group import _UNPACED as UNPACED

SENDER = "dyad@north.example"
THERAPIST_EMAIL = "ana@north.example"
HOOK_PATH = "/hook"
FERNET_PREFIX = "gAAAAA"
# Telegram lets a bot delete its own messages in groups for 48 hours.
GROUP_DELETE_WINDOW_SECONDS = 48 * 3600


# The running stack of one example -----------------------------------------------------------


@dataclass
class Stack:
    """One example's Dyad: a fresh database, the fake Bot API, the bot, and its clock."""

    harness: Harness
    fake: FakeBotAPI
    db: Database
    schema: str | None
    scratch: Path

    async def close(self) -> None:
        """Stop everything this example started, in reverse order."""
        try:
            await self.harness.bot.stop()
        finally:
            await self.fake.stop()
            await self.db.dispose()
            if self.schema is not None:
                await release_schema(self.schema)
            shutil.rmtree(self.scratch, ignore_errors=True)


async def start_stack(kind: str, clock: ManualClock, cipher: Cipher, smtp_port: int) -> Stack:
    """A migrated database of ``kind``, the fake on loopback, and Dyad with every channel."""
    scratch = Path(tempfile.mkdtemp(prefix="dyad-lifecycle-"))
    db, schema = await open_database(kind, scratch)
    fake = FakeBotAPI(clock=clock)
    await fake.start()
    deps = offline_deps(
        fake,
        db,
        clock,
        cipher=cipher,
        smtp_host="127.0.0.1",
        smtp_port=smtp_port,
        smtp_sender=SENDER,
        smtp_starttls=False,
    )
    bot = offline_bot(fake, deps)
    # Posts in a group are paced apart in production (20 a minute); here they go at once,
    # as private messages do in every end-to-end test.
    bot.dispatcher.limits = {**(bot.dispatcher.limits or {}), GROUP_CHANNEL: UNPACED}
    await bot.start()
    return Stack(Harness(bot, fake, db, clock), fake, db, schema, scratch)


# A webhook receiver on loopback, on the test's own loop ---------------------------------------


@dataclass
class RunningReceiver:
    """The receiver and the aiohttp runner serving it."""

    receiver: Receiver
    runner: web.AppRunner

    async def close(self) -> None:
        """Stop serving."""
        await self.runner.cleanup()


async def start_receiver() -> RunningReceiver:
    """A practice's webhook endpoint on 127.0.0.1, on a random port."""
    target = Receiver()
    app = web.Application()
    app.router.add_post("/{tail:.*}", target.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    target.base = f"http://{host}:{port}"
    return RunningReceiver(target, runner)


# Logs ----------------------------------------------------------------------------------------


@dataclass
class LogCapture:
    """What Dyad's own log handler wrote (DEBUG, JSON), one line per record."""

    buffer: io.StringIO = field(default_factory=io.StringIO)
    seen: int = 0

    def new_lines(self) -> list[str]:
        """The lines written since the last call."""
        lines = self.buffer.getvalue().splitlines()
        fresh, self.seen = lines[self.seen :], len(lines)
        return fresh

    def reset(self) -> None:
        """Forget everything written so far (a new example starts)."""
        self.buffer.seek(0)
        self.buffer.truncate()
        self.seen = 0


@contextmanager
def captured_logs() -> Iterator[LogCapture]:
    """Logging as ``DYAD_LOG_LEVEL=DEBUG DYAD_LOG_FORMAT=json`` sets it up, into memory."""
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    capture = LogCapture()
    configure_logging("DEBUG", "json", stream=capture.buffer)
    try:
        yield capture
    finally:
        root.handlers[:] = saved[1]
        root.setLevel(saved[0])


# Reading what each place holds -----------------------------------------------------------


def message_texts(message: FakeMessage) -> list[str]:
    """Everything a person can read of a message: text, caption, earlier versions."""
    texts = [message.text, message.raw_text]
    if message.caption:
        texts.append(message.caption)
    texts.extend(version.text for version in message.edits)
    return [text for text in texts if text]


def document_text(message: FakeMessage) -> str | None:
    """A document's content as text, or None for a message without one."""
    if message.document is None:
        return None
    return message.document.content.decode("utf-8", "replace")


def email_texts(raw: bytes) -> list[str]:
    """An accepted email as its reader sees it: subject and every decoded part."""
    mail: EmailMessage = message_from_bytes(raw, policy=policy.default)
    texts = [str(mail["Subject"] or ""), raw.decode("utf-8", "replace")]
    for part in mail.walk():
        if part.get_content_maintype() == "text":
            texts.append(str(part.get_content()))
    return texts


@dataclass(frozen=True)
class Cell:
    """One stored value: where it is and what it holds."""

    table: str
    row: dict[str, Any]
    column: str
    value: Any

    @property
    def where(self) -> str:
        """``table#id.column`` for messages."""
        return f"{self.table}#{self.row.get('id', '?')}.{self.column}"


async def stored_cells(db: Database) -> list[Cell]:
    """Every value of every column of every table Dyad's models know."""
    cells: list[Cell] = []
    async with db.uow() as uow:
        for table in Base.metadata.sorted_tables:
            rows = (await uow.session.execute(select(table))).mappings().all()
            for row in rows:
                plain = dict(row)
                for column, value in plain.items():
                    if value is not None:
                        cells.append(Cell(table.name, plain, column, value))
    return cells


def clear_text(value: Any) -> str:
    """A value as text, the way someone reading the database would see it."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def sealed_tokens(value: Any) -> Iterator[bytes]:
    """Every Fernet token in a value: raw bytes, text, base64 of a token, inside JSON too."""
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        if raw.startswith(FERNET_PREFIX.encode()):
            yield raw
        return
    if isinstance(value, dict):
        for item in value.values():
            yield from sealed_tokens(item)
        return
    if isinstance(value, list | tuple):
        for item in value:
            yield from sealed_tokens(item)
        return
    if not isinstance(value, str):
        return
    if value.startswith(FERNET_PREFIX):
        yield value.encode()
        return
    if value[:1] in "{[":
        try:
            parsed = json.loads(value)
        except ValueError:
            return
        yield from sealed_tokens(parsed)
        return
    if len(value) >= 60:
        try:
            decoded = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return
        if decoded.startswith(FERNET_PREFIX.encode()):
            yield decoded


def opens(cipher: Cipher, token: bytes) -> str | None:
    """The plain text of a token, or None when the cipher's keys do not open it."""
    try:
        return cipher.decrypt(token)
    except ValueError:
        return None


def swap_keys(cipher: Cipher, keys: list[str]) -> None:
    """Give the running Dyad a new key list, as a restart with new settings would.

    Every part of the running bot holds the same Cipher object, so it changes in place.
    """
    cipher.__dict__.update(Cipher(keys).__dict__)
