"""Privacy between partners, as a property: whatever both partners and the therapist do, in
whatever order, nothing one partner entered ever reaches the other partner, a log line,
or the other partner's export (DESIGN.md §2, rules 1-3 and 7).

Hypothesis draws interleavings of check-ins (with canary notes and extreme scores),
prompt replies, couple-space answers kept private, settings changes, pauses, exports,
digests and erasure, by either partner; the canary holder is drawn too, so the property
is checked in both directions. Each example runs the real Application over real HTTP
against the fake Bot API on a fresh SQLite file.
"""

from __future__ import annotations

import asyncio
import io
import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from bot.core.clock import ManualClock
from bot.demo import offline_bot, offline_deps
from bot.locales import t
from bot.logs import configure_logging
from bot.services.outbox import enqueue
from fakebotapi import FakeBotAPI, FakeUser
from tests.conftest import open_database
from tests.e2e.conftest import Harness

if TYPE_CHECKING:
    from db.models import DeliveryKind, Partner

ACTIONS = (
    "checkin",
    "prompt_reply",
    "space_private",
    "settings_tz",
    "bad_tz",
    "pause",
    "export",
    "digest",
)


@dataclass(frozen=True)
class Step:
    """One thing someone does: which action, by the canary holder or the other partner."""

    action: str
    by_holder: bool
    ok_to_raise: bool
    score: int


steps = st.lists(
    st.builds(
        Step,
        action=st.sampled_from(ACTIONS),
        by_holder=st.booleans(),
        ok_to_raise=st.booleans(),
        score=st.sampled_from([0, 10, 3]),
    ),
    min_size=2,
    max_size=5,
)


class _Capture:
    """What Dyad's own log handler wrote, one line per record."""

    def __init__(self) -> None:
        self.buffer = io.StringIO()

    @property
    def lines(self) -> list[str]:
        return self.buffer.getvalue().splitlines()


@contextmanager
def _captured_logs() -> Iterator[_Capture]:
    """Dyad's own logging set-up at its most verbose (DEBUG, JSON), written to a buffer."""
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    capture = _Capture()
    configure_logging("DEBUG", "json", stream=capture.buffer)
    try:
        yield capture
    finally:
        root.handlers[:] = saved[1]
        root.setLevel(saved[0])


def _texts_seen_by(user: FakeUser) -> str:
    parts = []
    for message in user.messages:
        parts.append(message.text)
        parts.extend(version.text for version in message.edits)
        if message.document is not None:
            parts.append(message.document.content.decode("utf-8", "replace"))
    return "\n".join(parts)


async def _scenario(steps_: list[Step], holder_slot: str, erase_at_end: bool) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        clock = ManualClock(datetime(2026, 10, 19, 9, 0, tzinfo=UTC))
        db, _ = await open_database("sqlite", Path(scratch))  # a migrated copy
        async with FakeBotAPI(clock=clock) as fake:
            bot = offline_bot(fake, offline_deps(fake, db, clock))
            await bot.start()
            try:
                with _captured_logs() as logs:
                    await _play(Harness(bot, fake, db, clock), steps_, holder_slot, erase_at_end)
                    holder_canaries = _CANARIES
                    assert len(logs.lines) > 20, "the log capture must see the run to mean anything"
                    for line in logs.lines:
                        for canary in holder_canaries:
                            assert canary not in line, f"canary in a log line: {line[:200]}"
            finally:
                await bot.stop()
        await db.dispose()


_CANARIES = ("CANARY-note-91f", "CANARY-reply-91f", "CANARY-space-91f", "CANARY-tz-91f")


async def _play(harness: Harness, steps_: list[Step], holder_slot: str, erase: bool) -> None:
    therapist = await harness.therapist()
    handle, token_a, token_b = await harness.new_couple(therapist)
    users = {"A": harness.user("Ari"), "B": harness.user("Bea", "en")}
    await harness.join(users["A"], token_a, typed_timezone="America/New_York")
    await harness.join(users["B"], token_b, typed_timezone="Europe/Madrid")
    await harness.settle()
    other_slot = "B" if holder_slot == "A" else "A"
    async with harness.db.uow() as uow:
        partners: dict[str, Partner] = {p.slot: p for p in await uow.partners.of_couple(1)}

    for step in steps_:
        slot = holder_slot if step.by_holder else other_slot
        user = users[slot]
        tag = "91f" if step.by_holder else "ok0"
        if step.action == "checkin":
            await _checkin(user, f"CANARY-note-{tag} felt alone", step.ok_to_raise, step.score)
        elif step.action == "prompt_reply":
            count = len(user.messages)
            for each in ("A", "B"):
                await _send(harness, partners[each], "hope.small_win", "hope", len(steps_))
            reply = await user.wait_for_message(lambda m: "therapist see it" in m.text, after=count)
            await user.reply_to(reply, f"CANARY-reply-{tag} tiny win")
            await user.wait_for_message(lambda m: bool(m.buttons))
            choice = "prompts.raise_yes" if step.ok_to_raise else "prompts.raise_no"
            await user.press_button(t("en", choice))
            await user.wait_for_message()
        elif step.action == "space_private":
            count = len(user.messages)
            for each in ("A", "B"):
                await _send(harness, partners[each], "couple_space.appreciation", "couple_space", 0)
            space = await user.wait_for_message(lambda m: "choose whether" in m.text, after=count)
            await user.reply_to(space, f"CANARY-space-{tag}")
            await user.wait_for_message(lambda m: bool(m.buttons))
            await user.press_button(t("en", "prompts.share_no"))
            await user.wait_for_message()
        elif step.action == "settings_tz":
            await user.send_command("settings")
            await user.wait_for_message(lambda m: bool(m.buttons))
            await user.press_button("Time zone")
            await user.wait_for_message()
            await user.send_text("Asia/Tokyo")
            await user.wait_for_message()
        elif step.action == "bad_tz":
            await user.send_command("settings")
            await user.wait_for_message(lambda m: bool(m.buttons))
            await user.press_button("Time zone")
            await user.wait_for_message()
            await user.send_text(f"CANARY-tz-{tag}")
            await user.wait_for_message()
        elif step.action == "pause":
            await user.send_command("pause", "2")
            await user.wait_for_message()
            await user.send_command("resume")
            await user.wait_for_message()
        elif step.action == "export":
            await user.send_command("export")
            await user.wait_for_message(lambda m: m.document is not None)
        elif step.action == "digest":
            await therapist.send_command("digest", handle)
            await therapist.wait_for_message()
        await harness.settle()
        harness.clock.advance(timedelta(hours=7))

    other = users[other_slot]
    await other.send_command("export")
    await other.wait_for_message(lambda m: m.document is not None)
    if erase:
        holder = users[holder_slot]
        await holder.send_command("deleteme")
        await holder.wait_for_message(lambda m: bool(m.buttons))
        await holder.press(holder.last_message, holder.last_message.buttons[0][1])  # type: ignore[union-attr,arg-type]
        await holder.wait_for_message()
    await harness.settle()
    seen = _texts_seen_by(other)
    for canary in _CANARIES:
        assert canary not in seen, f"{canary} reached partner {other_slot}"


async def _send(harness: Harness, partner: object, key: str, kind: DeliveryKind, salt: int) -> None:
    from db.models import Partner

    assert isinstance(partner, Partner)
    async with harness.db.uow() as uow:
        fresh = await uow.partners.get(partner.id)
        assert fresh is not None
        await enqueue(
            uow,
            fresh,
            kind=kind,
            key=key,
            dedupe_key=f"prop:{key}:{harness.clock.now().isoformat()}:{salt}:{partner.id}",
            due_at=harness.clock.now(),
            couple_id=fresh.couple_id,
        )
        await uow.commit()
    await harness.settle()


async def _checkin(user: FakeUser, note: str, ok_to_raise: bool, score: int) -> None:
    await user.send_command("checkin")
    while True:
        question = await user.wait_for_message(lambda m: bool(m.buttons) or "saved" in m.text)
        if "saved" in question.text:
            return
        data = [d for _, d in question.buttons if d]
        item = data[0].split("|")[3]
        if item == "note":
            await user.send_text(note)
            continue
        wanted = {
            "ok_to_raise": "yes" if ok_to_raise else "no",
            "skill": "partly",
            "afraid_or_unsafe": "no",
        }.get(item, str(score))
        choice = next(d for d in data if d.endswith(f"|{wanted}"))
        await user.press(question, choice)


@settings(
    max_examples=4,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # each example is a whole run
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(steps=steps, holder_slot=st.sampled_from(["A", "B"]), erase=st.booleans())
def test_nothing_one_partner_enters_reaches_the_other_a_log_or_their_export(
    steps: list[Step], holder_slot: str, erase: bool
) -> None:
    asyncio.run(_scenario(steps, holder_slot, erase))
