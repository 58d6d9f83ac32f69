"""Each update is handled in one transaction: counted with SQLAlchemy's ``begin`` event.

Every transaction a handler opens runs while ``db.inbox.HANDLING`` holds its claim, so
the listener files each ``begin`` under the update being handled. The intake's own
bookkeeping (storing, claiming, finishing the update) runs outside that context and is
not counted: it is the same for every update and is measured by ``bench/updates.py``.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable

from sqlalchemy import event

from db.inbox import HANDLING
from fakebotapi import FakeUser
from tests.e2e.conftest import Harness


class TransactionsPerUpdate:
    """How many transactions each handled update opened."""

    def __init__(self, harness: Harness) -> None:
        self.counts: Counter[int] = Counter()
        self._engine = harness.db.engine.sync_engine
        event.listen(self._engine, "begin", self._begin)

    def _begin(self, connection: object) -> None:
        handling = HANDLING.get()
        if handling is not None:
            self.counts[handling.update_id] += 1

    def close(self) -> None:
        event.remove(self._engine, "begin", self._begin)


async def _idle(harness: Harness) -> None:
    """Until every update sent so far is handled and no handler is still running."""
    await harness.settle()
    processor = harness.bot.application.update_processor
    while processor.current_concurrent_updates:  # noqa: ASYNC110 - PTB has no event for it
        await asyncio.sleep(0.01)


async def _pressed(harness: Harness, user: FakeUser, button_text: str) -> None:
    query = await user.press_button(button_text)
    await harness.fake.wait_for(lambda: query.answered)


async def test_therapist_group_and_fallback_updates_each_open_one_transaction(
    harness: Harness,
) -> None:
    therapist = await harness.therapist()
    handle, token_a, token_b = await harness.new_couple(therapist)
    alex, blanca = harness.user("Alex"), harness.user("Blanca")
    await harness.join(alex, token_a)
    await harness.join(blanca, token_b)
    await harness.settle()
    counter = TransactionsPerUpdate(harness)

    async def said(user: FakeUser, command: str, args: str = "") -> None:
        await user.send_command(command, args)
        await user.wait_for_message()

    steps: list[tuple[str, Callable[[], Awaitable[None]]]] = [
        ("/help", lambda: said(therapist, "help")),
        ("/couples", lambda: said(therapist, "couples")),
        ("/newcouple LABEL", lambda: said(therapist, "newcouple", "M & R")),
        ("/newcouple (refused)", lambda: said(therapist, "newcouple")),
        ("/invite (picker)", lambda: said(therapist, "invite")),
        ("couple picker button", lambda: _pressed(harness, therapist, f"{handle} · A & J")),
        ("slot button", lambda: _pressed(harness, therapist, "B")),
        ("/goal HANDLE TEXT", lambda: said(therapist, "goal", f"{handle} listen first")),
        ("/goal HANDLE", lambda: said(therapist, "goal", handle)),
        (
            "/session HANDLE weekly",
            lambda: said(therapist, "session", f"{handle} weekly thu 18:00"),
        ),
        ("/sessions", lambda: said(therapist, "sessions")),
        ("/alerts HANDLE", lambda: said(therapist, "alerts", handle)),
        ("/notes HANDLE", lambda: said(therapist, "notes", handle)),
        ("/schedule HANDLE", lambda: said(therapist, "schedule", handle)),
        ("/close HANDLE", lambda: said(therapist, "close", handle)),
        ("close: keep button", lambda: _pressed(harness, therapist, "No, keep it")),
        ("/alerts cX (refused)", lambda: said(therapist, "alerts", "c999")),
        ("/linkgroup (partner)", lambda: said(alex, "linkgroup")),
        ("/linkgroup HANDLE (therapist)", lambda: said(therapist, "linkgroup", handle)),
        ("/unlinkgroup (refused)", lambda: said(blanca, "unlinkgroup")),
        ("unknown command", lambda: said(blanca, "frobnicate")),
        ("/help (partner)", lambda: said(blanca, "help")),
        ("/export", lambda: said(blanca, "export")),
        ("/deleteme", lambda: said(blanca, "deleteme")),
        ("deleteme: keep button", lambda: _pressed(harness, blanca, "No, keep my data")),
        ("/deleteme again", lambda: said(alex, "deleteme")),
        ("deleteme: erase button", lambda: _pressed(harness, alex, "Yes, erase everything")),
    ]
    opened: dict[str, list[int]] = {}
    try:
        for name, step in steps:
            before = set(counter.counts)
            await step()
            await _idle(harness)
            opened[name] = [n for uid, n in counter.counts.items() if uid not in before]
    finally:
        counter.close()
    assert opened == {name: [1] for name, _ in steps}
