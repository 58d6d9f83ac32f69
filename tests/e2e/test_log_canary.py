"""No log line ever holds what a user wrote, their name, or the bot token, even at DEBUG.

Canary text goes through every flow (onboarding, settings, a check-in note with crisis
words, a prompt reply, a couple-space answer, /goal, /newcouple, an export, /deleteme, a
message too long, a handler that fails, a forged webhook, the digest) while Dyad logs at
DEBUG in JSON, as ``DYAD_LOG_LEVEL=DEBUG DYAD_LOG_FORMAT=json`` sets it up. An unfiltered
capture beside the real handler shows the canaries did reach the logging system (PTB
logs whole updates at DEBUG, httpx logs URLs with the token): none is written out.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from bot.core.clock import ManualClock
from bot.locales import t
from bot.logs import configure_logging
from bot.services import partners as partner_service
from db.engine import Database
from db.models import Delivery, Partner
from fakebotapi import FakeBotAPI, FakeMessage, FakeUser
from tests.e2e.conftest import Harness
from tests.e2e.test_checkins import _checkin
from tests.e2e.test_schedules import _answer_space, _send_prompt
from tests.e2e.test_webhook import running_bot

CANARY = "CANARY-7f3a"
TOKEN = "7012345678:AAHcanaryTOKENcanaryTOKENcanaryTOK1"
# Every flow's canary reaches the logging system (in PTB's DEBUG records of updates, in an
# exception) and must be stopped there. The failing handler's canary ("boom") is not even
# handed over: ``on_error`` logs the exception's type alone; nor is a forged webhook
# secret ("secret"): the webhook refuses it without logging what it was.
FLOWS = (
    "label", "nameA", "nameB", "tz", "settings", "note", "raise", "reply", "spaceA",
    "spaceB", "goal", "long", "render",
)  # fmt: skip
QUIETED = ("httpx", "httpcore", "apscheduler", "alembic", "aiosqlite")


class _Unfiltered(logging.Handler):
    """Everything as the libraries handed it over, before Dyad's filter saw it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        error = record.exc_info[1] if record.exc_info else None
        self.lines.append(f"{record.getMessage()} {error}")


@dataclass
class Logs:
    """What Dyad wrote, and what reached the logging system."""

    written: io.StringIO
    unfiltered: _Unfiltered
    lines: list[dict[str, object]] = field(default_factory=list)

    def parse(self) -> list[str]:
        """The written lines, each checked to be one JSON object."""
        raw = self.written.getvalue().splitlines()
        self.lines = [json.loads(line) for line in raw]
        return raw


@pytest.fixture
def logs() -> Iterator[Logs]:
    """Logging as `dyad run` configures it at DEBUG in JSON, into memory; restored after."""
    root = logging.getLogger()
    others, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in QUIETED}
    written = io.StringIO()
    handler = configure_logging("DEBUG", "json", stream=written)
    unfiltered = _Unfiltered()
    # pytest's own capture handlers stay, after Dyad's (which makes each record safe).
    root.handlers[:] = [unfiltered, handler, *others]
    # Louder than Dyad ever sets it, so that the token is in what the filter must catch.
    logging.getLogger("httpx").setLevel(logging.DEBUG)
    try:
        yield Logs(written, unfiltered)
    finally:
        root.removeHandler(unfiltered)
        root.removeHandler(handler)
        root.setLevel(level)
        for name, value in levels.items():
            logging.getLogger(name).setLevel(value)


def _button(message: FakeMessage, row: int) -> str:
    data = message.buttons[row][1]
    assert data is not None
    return data


async def _join_after_a_wrong_zone(partner: FakeUser, token: str) -> None:
    """Onboarding in English, typing a time zone Dyad does not know before a real one."""
    await partner.send_command("start", token)
    consent = await partner.wait_for_message(lambda m: bool(m.buttons))
    await partner.press(consent, _button(consent, 0))
    await partner.wait_for_message(lambda m: bool(m.buttons))
    await partner.press_button("English")
    await partner.wait_for_message(lambda m: bool(m.buttons))
    await partner.send_text(f"{CANARY}-tz")
    refusal = await partner.wait_for_message()
    assert f"{CANARY}-tz" in refusal.text  # quoted back to its writer, and only there
    await partner.send_text("America/New_York")
    await partner.wait_for_message(lambda m: bool(m.buttons))
    await partner.press_button("Evening")
    discreet = await partner.wait_for_message(lambda m: bool(m.buttons))
    await partner.press(discreet, _button(discreet, 1))
    await partner.wait_for_message(lambda m: "/help" in m.text)


async def _first_due(harness: Harness, key: str) -> datetime:
    """When the first pending delivery with this catalog key is due."""
    async with harness.db.uow() as uow:
        due = await uow.session.scalar(
            select(func.min(Delivery.due_at)).filter_by(key=key, status="pending")
        )
    assert due is not None, f"nothing pending with {key}"
    return due


async def _every_flow(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    therapist = await harness.therapist()
    handle, token_a, token_b = await harness.new_couple(therapist, label=f"{CANARY}-label")
    alex, blanca = harness.user(f"{CANARY}-nameA"), harness.user(f"{CANARY}-nameB")
    await _join_after_a_wrong_zone(alex, token_a)
    await harness.join(blanca, token_b, typed_timezone="Europe/Madrid")
    await harness.settle()

    await alex.send_command("settings")
    await alex.wait_for_message(lambda m: bool(m.buttons))
    await alex.press_button(t("en", "partner.settings_timezone"))
    await alex.wait_for_message()
    await alex.send_text(f"{CANARY}-settings")
    await alex.wait_for_message(lambda m: f"{CANARY}-settings" in m.text)
    await alex.send_text("America/Chicago")
    assert (await alex.wait_for_message()).text == t("en", "partner.saved")

    await _checkin(alex, note=f"{CANARY}-note some days I just want to kill myself")
    await alex.wait_for_message(lambda m: "saved" in m.text)
    await _checkin(blanca, note=f"{CANARY}-raise we walked on Sunday", ok_to_raise="Yes")
    await blanca.wait_for_message(lambda m: "saved" in m.text)

    async with harness.db.uow() as uow:
        people = {p.slot: p for p in await uow.session.scalars(select(Partner))}
    await _send_prompt(harness, people["A"], "hope.small_win", "hope")
    prompt = await alex.wait_for_message(lambda m: "only you and your therapist" in m.text)
    await alex.reply_to(prompt, f"{CANARY}-reply we laughed at dinner")
    await alex.wait_for_message(lambda m: bool(m.buttons))
    await alex.press_button(t("en", "prompts.raise_yes"))
    await alex.wait_for_message()
    for slot in ("A", "B"):
        await _send_prompt(harness, people[slot], "couple_space.appreciation", "couple_space")
    await _answer_space(alex, f"{CANARY}-spaceA", t("en", "prompts.share_yes"))
    await _answer_space(blanca, f"{CANARY}-spaceB", t("en", "prompts.share_yes"))
    harness.clock.advance(timedelta(hours=13))  # reveals and notices wait for the evening window
    await harness.settle()
    await alex.wait_for_message(lambda m: f"{CANARY}-spaceB" in m.text)

    async def fail_to_render(_uow: object, delivery: object) -> None:
        raise RuntimeError(f"{CANARY}-render failed on {delivery!r}")

    # The goal's notices fail to render once: the dispatcher logs the failure and retries.
    monkeypatch.setattr(harness.bot.renderer, "render", fail_to_render)
    await therapist.send_command("goal", f"{handle} {CANARY}-goal talk gently")
    await therapist.wait_for_message(lambda m: "is saved" in m.text)
    # Each notice waits for its partner's window on a day with room (theirs are full today).
    await harness.run_until(await _first_due(harness, "couple.goal_set"), plan=False)
    monkeypatch.undo()
    await harness.deliver_waiting()
    await blanca.wait_for_message(lambda m: f"{CANARY}-goal" in m.text)

    await alex.send_command("export")
    export = await alex.wait_for_message(lambda m: m.document is not None)
    assert export.document is not None and CANARY.encode() in export.document.content

    await alex.send_text(f"{CANARY}-long " + "words " * 670)
    assert (await alex.wait_for_message()).text == t("en", "common.too_long", limit=4000)

    def fail(partner: Partner) -> object:
        raise RuntimeError(f"{CANARY}-boom while showing {partner.display_name}")

    monkeypatch.setattr(partner_service, "settings_menu", fail)
    await alex.send_command("settings")
    assert (await alex.wait_for_message()).text == t("en", "common.error")
    monkeypatch.undo()

    forged = dict(harness.fake.updates[-1], update_id=9_990_001)
    status = await harness.fake.post_update_to_webhook(forged, secret=f"{CANARY}-secret")
    assert status == 403

    harness.clock.advance(timedelta(days=1))  # the digest covers whole days up to today
    await therapist.send_command("digest", handle)
    await harness.settle()
    await therapist.wait_for_message(lambda m: f"{CANARY}-raise" in m.text)

    await blanca.send_command("deleteme")
    confirm = await blanca.wait_for_message(lambda m: bool(m.buttons))
    await blanca.press(confirm, _button(confirm, 0))
    assert (await blanca.wait_for_message()).text == t("en", "data.erased")
    await harness.settle()


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
async def test_no_log_line_holds_user_text_names_or_the_token(
    logs: Logs, db: Database, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with (
        FakeBotAPI(token=TOKEN, clock=clock) as fake,
        running_bot(fake, db, clock, "webhook") as harness,
    ):
        await _every_flow(harness, monkeypatch)

    reached = "\n".join(logs.unfiltered.lines)
    for flow in FLOWS:
        assert f"{CANARY}-{flow}" in reached, f"the {flow} canary never reached the logs"
    assert TOKEN in reached

    written = logs.parse()
    assert len(written) > 100
    for line in written:
        assert CANARY not in line, line[:300]
        assert TOKEN not in line and TOKEN.split(":")[1] not in line, line[:300]
    loggers = {str(entry["logger"]) for entry in logs.lines}
    assert {"telegram.ext.Application", "httpx"} <= loggers  # DEBUG records were written
    [failure] = [entry for entry in logs.lines if entry.get("error_type") == "RuntimeError"]
    assert "settings" in str(failure["trace"])  # where it failed, but not what it said


def test_a_librarys_record_keeps_its_template_and_numbers_only(logs: Logs) -> None:
    library = logging.getLogger("telegram.ext.Application")
    library.debug("Processing update %s", {"text": f"{CANARY}-dict"})
    library.debug("Update %d from %s", 4242, f"{CANARY}-positional")
    logging.getLogger("asyncio").error(f"Task exception was never retrieved\n{CANARY}-line2")
    logging.getLogger("handlers.common").info(
        "update already handled", extra={"update_id": 7, "handle": "c3", "note": CANARY}
    )
    logs.parse()
    assert [entry["message"] for entry in logs.lines] == [
        "Processing update <redacted>",
        "Update 4242 from <redacted>",
        "Task exception was never retrieved",
        "update already handled",
    ]
    assert (logs.lines[3]["update_id"], logs.lines[3]["handle"]) == (7, "c3")
    assert logs.lines[3]["note"] == "<redacted>"  # an extra not known to hold ids only


def test_an_exception_is_logged_by_type_and_frames_never_by_message(logs: Logs) -> None:
    try:
        try:
            raise ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)")
        except OSError as refused:
            raise ValueError(f"could not store {CANARY}-exception") from refused
    except ValueError:
        logging.getLogger("schedules.dispatcher").exception("delivery %s left to its lease", 17)
    logs.parse()
    [entry] = logs.lines
    assert entry["message"] == "delivery 17 left to its lease"
    trace = str(entry["exception"])
    assert CANARY not in trace and trace.endswith("ValueError")
    assert "test_an_exception_is_logged_by_type" in trace  # the frames are all there
    assert "ConnectionRefusedError: [Errno 111] Connect call failed" in trace
