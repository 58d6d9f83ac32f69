"""Each update is handled in one transaction: counted with SQLAlchemy's ``begin`` event.

Every transaction a handler opens runs while ``db.inbox.HANDLING`` holds its claim, so
the listener files each ``begin`` under the update being handled. One kind opens two, by
design: the update that sends a discreet partner their check-in's note question. The
intake's own bookkeeping (storing, claiming, finishing the update) runs outside that
context and is not counted: it is the same for every update and is measured by
``bench/updates.py``.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy import event, select

from bot.locales import t
from bot.services.outbox import enqueue
from db.inbox import HANDLING
from db.models import CheckIn, DeliveryKind
from fakebotapi import FakeMessage, FakeUser
from tests.e2e.conftest import Harness

Predicate = Callable[[FakeMessage], bool] | None


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


async def _queue(harness: Harness, user: FakeUser, kind: DeliveryKind, key: str) -> None:
    """One prompt (or a scheduled check-in) for this partner now, as the planner queues it."""
    async with harness.db.uow() as uow:
        partner = await uow.partners.by_user(user.id)
        assert partner is not None
        await enqueue(
            uow,
            partner,
            kind=kind,
            key=key,
            dedupe_key=f"test:{kind}:{key}",
            due_at=harness.clock.now(),
            couple_id=partner.couple_id,
        )
        await uow.commit()
    await harness.settle()


def _has_button(action: str) -> Callable[[FakeMessage], bool]:
    """A message with a button of this kind (``po`` an Open, ``cis`` a Start, ...)."""
    return lambda m: any((data or "").startswith(f"1|{action}|") for _, data in m.buttons)


async def _press_on(
    harness: Harness, user: FakeUser, action: str, *, after: int | None = None
) -> FakeMessage:
    """Press the button of this kind on the first message having one (from ``after``), and
    wait until it is answered; returns the message."""
    message = await user.wait_for_message(_has_button(action), after=after)
    data = next(d for _, d in message.buttons if (d or "").startswith(f"1|{action}|"))
    query = await user.press(message, data or "")
    await harness.fake.wait_for(lambda: query.answered)
    return message


async def _said(user: FakeUser, act: Awaitable[object], when: Predicate = None) -> None:
    await act
    await user.wait_for_message(when)


async def _answered(user: FakeUser, label: str) -> None:
    await user.press_button(label)
    await user.wait_for_message()


async def _queued_then_pressed(
    harness: Harness, user: FakeUser, kind: DeliveryKind, key: str, action: str
) -> FakeMessage:
    """A scheduled message goes out (not counted: no update), then its button is pressed."""
    after = len(user.messages)
    await _queue(harness, user, kind, key)
    return await _press_on(harness, user, action, after=after)


async def _opened_a_day_later(harness: Harness, user: FakeUser, action: str) -> None:
    """A day later (a reveal, a notice waits for the window), Open on the note of this kind."""
    after = len(user.messages)
    harness.clock.advance(timedelta(hours=23))
    await harness.settle()
    await _press_on(harness, user, action, after=after)


async def _replied_to_prompt(
    harness: Harness, user: FakeUser, kind: DeliveryKind, key: str
) -> None:
    """A prompt goes out (not counted), and the partner replies to it."""
    after = len(user.messages)
    await _queue(harness, user, kind, key)
    prompt = await user.wait_for_message(lambda m: "Reply here" in m.text, after=after)
    await user.reply_to(prompt, "Your patience")
    await user.wait_for_message(lambda m: bool(m.buttons))


async def test_every_partner_update_opens_one_transaction(harness: Harness) -> None:
    """Joining, check-ins, prompts, settings, crisis words, blocking: one each.

    The one exception is named: a discreet partner's note question. Its message id is
    known only once it is sent and the typed note cannot carry it (a button press carries
    its own message's id), so it is kept in a second transaction.
    """
    therapist = await harness.therapist()
    handle, token_a, token_b = await harness.new_couple(therapist)
    alex, blanca, stranger = harness.user("Alex"), harness.user("Blanca"), harness.user("Eve")
    await harness.settle()
    accept, english = t("en", "onboarding.accept"), "English"
    discreet, not_discreet = t("en", "onboarding.discreet_yes"), t("en", "onboarding.discreet_no")
    raise_no, share = t("en", "prompts.raise_no"), t("en", "prompts.share_yes")
    note_question = "check-in (discreet): choice button, the note question next"

    def has_buttons(m: FakeMessage) -> bool:
        return bool(m.buttons)

    space_note: list[FakeMessage] = []

    async def checkin_started() -> None:
        await _queued_then_pressed(harness, alex, "checkin", "checkin.invite", "cis")

    async def followup_opened() -> None:
        followup: tuple[DeliveryKind, str] = ("skill_followup", "skill_followup.soft_startup")
        await _queued_then_pressed(harness, alex, *followup, "po")

    async def space_opened() -> None:
        space: tuple[DeliveryKind, str] = ("couple_space", "couple_space.appreciation")
        space_note.append(await _queued_then_pressed(harness, alex, *space, "po"))

    steps: list[tuple[str, Callable[[], Awaitable[None]]]] = [
        # Joining: Alex types the time zone and is discreet; Blanca picks hers.
        ("/start TOKEN", lambda: _said(alex, alex.send_command("start", token_a), has_buttons)),
        ("/start half-way: the step again", lambda: _said(alex, alex.send_command("start"))),
        ("onboarding: consent button", lambda: _answered(alex, accept)),
        ("onboarding: language button", lambda: _answered(alex, english)),
        ("onboarding: typed time zone", lambda: _said(alex, alex.send_text("America/New_York"))),
        ("onboarding: window button", lambda: _answered(alex, "Evening")),
        ("onboarding: discreet button", lambda: _answered(alex, discreet)),
        ("/start TOKEN (B)", lambda: _said(blanca, blanca.send_command("start", token_b))),
        ("onboarding: consent button (B)", lambda: _answered(blanca, accept)),
        ("onboarding: language button (B)", lambda: _answered(blanca, english)),
        ("onboarding: time zone button", lambda: _answered(blanca, "Madrid")),
        ("onboarding: window button (B)", lambda: _answered(blanca, "Morning")),
        ("onboarding: discreet button (B)", lambda: _answered(blanca, not_discreet)),
        ("/start (joined)", lambda: _said(blanca, blanca.send_command("start"))),
        # Blanca's check-in from /checkin, with a note.
        ("/checkin", lambda: _said(blanca, blanca.send_command("checkin"))),
        ("check-in: item button", lambda: _answered(blanca, "7")),
        ("check-in: item button 2", lambda: _answered(blanca, "6")),
        ("check-in: item button 3", lambda: _answered(blanca, "8")),
        ("check-in: item button 4", lambda: _answered(blanca, "5")),
        ("check-in: choice button, the note question next", lambda: _answered(blanca, "Yes")),
        ("check-in: typed note", lambda: _said(blanca, blanca.send_text("We talked more"))),
        ("check-in: OK to raise button", lambda: _answered(blanca, "No")),
        ("check-in: safety question button", lambda: _answered(blanca, "No")),
        # Alex's scheduled check-in, discreet: each question leaves once answered.
        ("scheduled check-in: Start button", checkin_started),
        ("check-in (discreet): item button", lambda: _answered(alex, "4")),
        ("check-in (discreet): item button 2", lambda: _answered(alex, "5")),
        ("check-in (discreet): item button 3", lambda: _answered(alex, "6")),
        ("check-in (discreet): item button 4", lambda: _answered(alex, "7")),
        (note_question, lambda: _answered(alex, "Partly")),
        ("check-in (discreet): typed note", lambda: _said(alex, alex.send_text("A quiet week"))),
        ("check-in (discreet): OK to raise button", lambda: _answered(alex, "No")),
        ("check-in (discreet): safety question button", lambda: _answered(alex, "No")),
        # Prompts: a reply, a discreet follow-up, the couple space and its reveal, the goal.
        ("prompt reply", lambda: _replied_to_prompt(harness, blanca, "hope", "hope.small_win")),
        ("prompt: OK to raise button", lambda: _answered(blanca, raise_no)),
        ("follow-up: Open button (discreet)", followup_opened),
        ("follow-up: choice button", lambda: _answered(alex, "Partly")),
        ("follow-up words", lambda: _said(alex, alex.send_text("It went well"))),
        ("follow-up: OK to raise button", lambda: _answered(alex, raise_no)),
        ("couple space: Open button (discreet)", space_opened),
        (
            "couple space: reply (discreet)",
            lambda: _said(alex, alex.reply_to(space_note[0], "Your patience")),
        ),
        ("couple space: share button (discreet)", lambda: _answered(alex, share)),
        (
            "couple space: reply",
            lambda: _replied_to_prompt(
                harness, blanca, "couple_space", "couple_space.appreciation"
            ),
        ),
        ("couple space: share button", lambda: _answered(blanca, share)),
        ("reveal: Open button (discreet)", lambda: _opened_a_day_later(harness, alex, "ro")),
        (
            "/goal HANDLE TEXT (therapist)",
            lambda: _said(therapist, therapist.send_command("goal", f"{handle} Listen first")),
        ),
        ("goal notice: Open button (discreet)", lambda: _opened_a_day_later(harness, alex, "no")),
        # Settings and the other partner commands.
        ("/settings", lambda: _said(blanca, blanca.send_command("settings"))),
        (
            "settings: a setting's button",
            lambda: _answered(blanca, t("en", "partner.settings_window")),
        ),
        ("settings: a value's button", lambda: _answered(blanca, "Afternoon")),
        (
            "settings: time zone button",
            lambda: _answered(blanca, t("en", "partner.settings_timezone")),
        ),
        ("settings: typed time zone", lambda: _said(blanca, blanca.send_text("Europe/Lisbon"))),
        ("/pause DAYS", lambda: _said(blanca, blanca.send_command("pause", "3"))),
        ("/resume", lambda: _said(blanca, blanca.send_command("resume"))),
        ("/privacy", lambda: _said(blanca, blanca.send_command("privacy"))),
        ("/stop", lambda: _said(blanca, blanca.send_command("stop"))),
        ("stop: stay button", lambda: _answered(blanca, t("en", "partner.stop_no"))),
        # Crisis words where no question waits, text nobody waits for, blocking.
        ("crisis text (discreet)", lambda: _said(alex, alex.send_text("I want to kill myself"))),
        (
            "crisis card: read button",
            lambda: _pressed(harness, alex, t("en", "safety.crisis_done")),
        ),
        ("crisis text", lambda: _said(blanca, blanca.send_text("some days I want to die"))),
        ("stray text", lambda: _said(blanca, blanca.send_text("thank you"))),
        ("a stranger's crisis text", lambda: _said(stranger, stranger.send_text("I want to die"))),
        ("block", alex.block_bot),
        ("unblock", alex.unblock_bot),
        ("/start (reachable again)", lambda: _said(alex, alex.send_command("start"))),
    ]
    counter = TransactionsPerUpdate(harness)
    opened: dict[str, list[int]] = {}
    try:
        for name, step in steps:
            before = set(counter.counts)
            await step()
            await _idle(harness)
            opened[name] = [n for uid, n in counter.counts.items() if uid not in before]
    finally:
        counter.close()
    assert opened == {name: [2] if name == note_question else [1] for name, _ in steps}
    async with harness.db.uow() as uow:
        kept = [c.message_ids for c in await uow.session.scalars(select(CheckIn))]
    assert sorted(len(ids) for ids in kept) == [0, 1], "only the discreet note question's id"
