"""Privacy across the whole couple lifecycle, as a hypothesis state machine (DESIGN.md §2.9).

Each example runs the real Application over real HTTP against the fake Bot API, on a fresh
database, with email to a loopback SMTP server and signed webhooks to a loopback receiver,
and Dyad logging at DEBUG. Hypothesis draws sequences of: partners joining a seat, private
check-ins (a unique canary in every note; OK to raise or "just for my therapist"; sometimes
crisis words), couple-space prompts answered and shared or kept private (a canary each), a
Telegram group linked, unlinked, joined by an outsider or upgraded to a supergroup, `/stop`,
a re-invite and a new person on the seat, `/deleteme`, key rotation, `/digest`, a
pre-session digest (email and webhooks, sometimes refused once), `/export`, `/close`, and
the clock moving on while the dispatcher sends.

After every step, every canary is readable only where it may be:

* by its author, while they hold the seat (their chat and their own export);
* by the other partner only once both, still on their seats, shared answers to the same
  couple-space prompt and the answers were revealed (never in the other partner's export);
* in the couple's group only if posted while the link was active with both partners'
  consent; after an erasure, the erased partner's posts are gone where Telegram allows it;
* in the therapist's digest, its email and webhook copies only if it is a note marked OK
  to raise or a couple-space answer revealed to both (never one with crisis words), under
  its own author's name, and never once its author erased it;
* in no log line, never in clear text in any column of any table; in no outbox row that
  was already sent, failed or skipped (even sealed); nowhere at all once erased;
* and every stored ciphertext opens with the keys the running Dyad has (after a
  rotation the old key is removed, as docs/operations.md says).

A newcomer to a seat is a new person: nothing of the previous holder reaches them. The
group link is suspended by any change of who holds a seat, an erasure, `/stop`, an
outsider or a supergroup migration, and the couple can then link a group again.

Not modelled here (each has its own end-to-end tests): discreet mode, Spanish, buttons
pressed in a group, crisis words typed outside a question. The planner sends only a
Monday check-in invitation, so that the couple-space prompts are the steps' own. The fake
Bot API has no supergroup migration of its own; ``lifecycle_helpers`` plays it.

Knobs for investigating: ``DYAD_LIFECYCLE_EXAMPLES`` (8 on SQLite, 4 on PostgreSQL) and
``DYAD_LIFECYCLE_STEPS`` (12), ``DYAD_LIFECYCLE_SHRINK=0`` to report a failing example without
shrinking it. Each
invariant is its own ``check_*`` method with its own assertion, so hypothesis reports
distinct failures apart.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select

from bot.cli.channels import set_therapist_email
from bot.core.clock import ManualClock
from bot.locales import t
from bot.services.crypto import Cipher, new_key
from bot.services.data_rights import rotate_ciphertexts
from bot.services.outbox import enqueue
from bot.services.practice_config import WEBHOOK_EVENTS
from db.models import GroupLink, Practice, Therapist
from fakebotapi import FakeGroup, FakeMessage, FakeUser
from tests.conftest import postgres_url
from tests.e2e.conftest import Harness, links_in
from tests.e2e.lifecycle_helpers import (
    GROUP_DELETE_WINDOW_SECONDS,
    HOOK_PATH,
    THERAPIST_EMAIL,
    LogCapture,
    RunningReceiver,
    Stack,
    captured_logs,
    clear_text,
    document_text,
    email_texts,
    message_texts,
    opens,
    sealed_tokens,
    start_receiver,
    start_stack,
    stored_cells,
    swap_keys,
)
from tests.e2e.test_email_and_webhooks import SECRET, Mailbox, _free_port
from tests.e2e.test_group import CODE

T = TypeVar("T")

START = datetime.fromisoformat("2026-10-19T09:00:00+00:00")
SPACE_KEYS = (
    "couple_space.appreciation",
    "couple_space.favourite_memory",
    "couple_space.hope_for_us",
    "couple_space.little_things",
    "couple_space.day_off",
    "couple_space.proud_of",
    "couple_space.early_days",
    "couple_space.thank_you",
    "couple_space.small_ritual",
    "couple_space.our_song",
)
CRISIS = "some days I want to kill myself"
# The planner sends only a Monday check-in invitation: the couple-space prompts are the
# steps' own, so that each round's answers pair up as the model expects.
PRACTICE_TOML = """\
[delivery]
default_template = "lifecycle"

[schedules.lifecycle]
description = "A check-in invitation on Mondays"

[[schedules.lifecycle.rules]]
kind = "checkin"
days = ["mon"]

[[webhooks]]
url = "{url}"
secret = "{secret}"
events = {events}
"""
FINISHED = ("sent", "failed", "skipped")
HEADING = re.compile(r"(\S+) \(([AB])\)")  # a partner's section in the digest: "Name (A)"
INLINE_NAME = re.compile(r"\s*(\S+): “")  # a couple-space answer: "Name: “…”"
INVITE_MAX_AGE = timedelta(days=5)  # links last a week; older ones are issued again
# Bounded so that a passing run takes some 30 s on SQLite on two cores. A failing run
# shrinks its example (up to a few minutes); DYAD_LIFECYCLE_SHRINK=0 reports it unshrunk.
# The model and its rules are the same on both databases: SQLite explores the most
# sequences, PostgreSQL runs fewer of the same full length (every rule stays reachable,
# the close among the last steps too) for what is its own (its types, its locking).
EXAMPLES = {
    kind: int(os.environ.get("DYAD_LIFECYCLE_EXAMPLES", default))
    for kind, default in (("sqlite", "8"), ("postgres", "4"))
}
STEPS = int(os.environ.get("DYAD_LIFECYCLE_STEPS", "12"))
SHRINK = os.environ.get("DYAD_LIFECYCLE_SHRINK", "1") != "0"
PHASES = [Phase.explicit, Phase.reuse, Phase.generate, *([Phase.shrink] if SHRINK else [])]


# The model: who holds which seat, and where each canary may be read ---------------------------


@dataclass(eq=False)
class Person:
    """One person on a partner seat (a newcomer on the same seat is another Person)."""

    user: FakeUser
    slot: str
    left_at_message: int | None = None
    """How many messages their chat held when they left the seat (None: still there)."""
    erased_at: datetime | None = None

    @property
    def holds_seat(self) -> bool:
        return self.left_at_message is None

    def __repr__(self) -> str:
        return f"{self.user.first_name}({self.slot})"


@dataclass(eq=False)
class Canary:
    """A unique word a partner wrote, and who may read it where."""

    text: str
    author: Person
    kind: str  # "note" | "space"
    ok_to_raise: bool = False
    crisis: bool = False
    revealed_to: set[int] = field(default_factory=set)
    """Telegram user ids of the partner it was revealed to (both shared, both answered)."""
    in_group: bool = False
    """Posted in the group while the link was active (both agreed, nobody else there)."""
    revealed_at: datetime | None = None

    @property
    def raisable(self) -> bool:
        """Whether the therapist's digest (and its email and webhook copies) may quote it."""
        if self.author.erased_at is not None:
            return False
        if self.kind == "note":
            return self.ok_to_raise
        # A couple-space answer: only once revealed to both, never one with crisis words.
        return bool(self.revealed_to) and not self.crisis


@dataclass(eq=False)
class Round:
    """One couple-space prompt, as sent to whoever held each seat then."""

    key: str
    prompts: dict[Person, FakeMessage] = field(default_factory=dict)
    answers: dict[Person, tuple[Canary, bool]] = field(default_factory=dict)
    concluded: bool = False


@dataclass
class Seen:
    """How far each channel has been checked (digests, email, webhooks once each)."""

    digests: set[int] = field(default_factory=set)
    mails: int = 0
    hooks: int = 0


# Driving the real application -----------------------------------------------------------------


def _is_checkin_question(message: FakeMessage) -> bool:
    return any(data and data.startswith("1|ci|") for _, data in message.buttons)


def _has_button(prefix: str) -> Any:
    return lambda m: any(data and data.startswith(prefix) for _, data in m.buttons)


async def _checkin(user: FakeUser, note: str, ok_to_raise: bool) -> bool:
    """A whole check-in from ``/checkin`` with ``note``; False if none was started."""
    thanks = t("en", "checkin.thanks")
    await user.send_command("checkin")
    first = await user.wait_for_message()
    if not _is_checkin_question(first) and first.text != thanks:
        return False
    question = first
    while True:
        if question.text == thanks:
            return True
        data = [d for _, d in question.buttons if d and d.startswith("1|ci|")]
        item = data[0].split("|")[3]
        if item == "note":
            await user.send_text(note)
        else:
            wanted = {
                "ok_to_raise": "yes" if ok_to_raise else "no",
                "skill": "partly",
                "afraid_or_unsafe": "no",
            }.get(item, "6")
            await user.press(question, next(d for d in data if d.endswith(f"|{wanted}")))
        question = await user.wait_for_message(
            lambda m: _is_checkin_question(m) or m.text == thanks
        )


async def _confirm(user: FakeUser, command: str, yes_label: str, args: str = "") -> FakeMessage:
    """A command that asks first, and the "yes" button pressed; the reply to it."""
    await user.send_command(command, args)
    asked = await user.wait_for_message(lambda m: bool(m.buttons))
    data = asked.callback_data_for(yes_label)
    assert data is not None, f"/{command} offered no {yes_label!r}: {asked.button_texts}"
    await user.press(asked, data)
    return await user.wait_for_message()


# The machine -----------------------------------------------------------------------------------


class Lifecycle(RuleBasedStateMachine):
    """A couple's whole lifecycle, with every privacy invariant checked after each step."""

    # Set by the test before hypothesis runs the machine.
    loop: asyncio.AbstractEventLoop
    kind: str
    mailbox: Mailbox
    hooks: RunningReceiver
    logs: LogCapture

    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock(START)
        self.keys = [new_key()]
        self.every_key = list(self.keys)
        self.cipher = Cipher(list(self.keys))
        self.forensic = Cipher(list(self.every_key))  # every key ever used, for the scans
        self.mailbox.accepted.clear()
        self.mailbox.refuse.clear()
        self.hooks.receiver.received.clear()
        self.hooks.receiver.answers.clear()
        self.logs.reset()
        self.stack: Stack | None = None
        self.people: list[Person] = []
        self.seats: dict[str, Person | None] = {"A": None, "B": None}
        self.tokens: dict[str, tuple[str, datetime] | None] = {"A": None, "B": None}
        self.canaries: list[Canary] = []
        self.rounds: list[Round] = []
        self.group: FakeGroup | None = None
        self.groups: list[FakeGroup] = []
        self.link = "none"  # none | active | suspended | closed
        self.outsider: FakeUser | None = None
        self.closed = False
        self.seen = Seen()
        self.serial = 0
        self.steps = 0  # a couple is closed only in the last few steps (nothing follows it)
        self.stack = self.run(start_stack(self.kind, self.clock, self.cipher, self.mailbox.port))
        self.run(self._set_up())

    # Plumbing ------------------------------------------------------------------------------

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)

    @property
    def h(self) -> Harness:
        assert self.stack is not None
        return self.stack.harness

    def teardown(self) -> None:
        if self.stack is not None:
            self.run(self.stack.close())
            self.stack = None

    def _canary(self) -> str:
        self.serial += 1
        return f"cnry{self.serial:03d}q"

    def _new_user(self, slot: str) -> FakeUser:
        return self.h.user(f"P{len(self.people) + 1}{slot}")

    async def _set_up(self) -> None:
        h = self.h
        self.watcher = h.user("Watcher")
        self.therapist = await h.therapist()
        self.handle, token_a, token_b = await h.new_couple(self.therapist)
        now = self.clock.now()
        self.tokens = {"A": (token_a, now), "B": (token_b, now)}
        events = json.dumps(list(WEBHOOK_EVENTS))
        async with h.db.uow() as uow:
            practice = await uow.session.scalar(select(Practice))
            assert practice is not None
            practice.config_toml = PRACTICE_TOML.format(
                url=f"{self.hooks.receiver.base}{HOOK_PATH}", secret=SECRET, events=events
            )
            therapist = await uow.session.scalar(select(Therapist))
            assert therapist is not None
            await set_therapist_email(uow, practice.slug, therapist.id, THERAPIST_EMAIL, now)
            await uow.commit()
        await h.settle()

    async def sync(self) -> None:
        """Wait until Dyad handled every update so far, then until the outbox is drained.

        Updates are handled one at a time, in order: once a bystander's ``/help`` is answered,
        everything sent before it (a join in a group, a button) has been handled.
        """
        await self.watcher.send_command("help")
        await self.watcher.wait_for_message()
        await self.h.settle()

    def holders(self) -> list[Person]:
        return [p for p in self.seats.values() if p is not None]

    def _seat(self, slot: str) -> Person:
        person = self.seats[slot]
        assert person is not None
        return person

    def _draw_holder(self, data: st.DataObject) -> Person:
        slots = [p.slot for p in self.holders()]
        return self._seat(data.draw(st.sampled_from(slots), label="seat"))

    def _suspend_link(self) -> None:
        if self.link == "active":
            self.link = "suspended"

    # Rules: people on the seats ------------------------------------------------------------

    @initialize(
        b_first=st.booleans(), notes=st.booleans(), group=st.booleans(), prompt=st.booleans()
    )
    def both_join(self, b_first: bool, notes: bool, group: bool, prompt: bool) -> None:
        """The couple's two partners open their links and join, one after the other; perhaps
        each checks in at once (A's note OK to raise, B's just for the therapist), links a
        group, and a couple-space prompt is already out."""
        for slot in ("B", "A") if b_first else ("A", "B"):
            self.run(self._join(slot))
        if notes:
            for slot, ok_to_raise in (("A", True), ("B", False)):
                self._check_in(self._seat(slot), ok_to_raise, crisis=False)
        if group:
            self.link_group()
        if prompt:
            self.space_prompt()

    async def _join(self, slot: str) -> Person:
        issued = self.tokens[slot]
        assert issued is not None
        token, at = issued
        if self.clock.now() - at > INVITE_MAX_AGE:
            token = await self._invite(slot)
        user = self._new_user(slot)
        await self.h.join(user, token, typed_timezone="Europe/Madrid")
        person = Person(user, slot)
        self.people.append(person)
        self.seats[slot] = person
        self.tokens[slot] = None
        await self.sync()
        return person

    async def _invite(self, slot: str) -> str:
        await self.therapist.send_command("invite", f"{self.handle} {slot}")
        reply = await self.therapist.wait_for_message(lambda m: bool(links_in(m)))
        (token,) = links_in(reply)
        self.tokens[slot] = (token, self.clock.now())
        return token

    def _vacated(self) -> list[str]:
        return [s for s in "AB" if self.seats[s] is None]

    @precondition(lambda self: not self.closed and bool(self._vacated()))
    @rule(data=st.data())
    def newcomer(self, data: st.DataObject) -> None:
        """``/invite HANDLE A`` for a seat someone left; a new person joins it and asks for
        their export at once (it must hold nothing of the seat's previous holder)."""
        slot = data.draw(st.sampled_from(self._vacated()), label="seat")

        async def go() -> tuple[Person, str]:
            await self._invite(slot)
            person = await self._join(slot)
            return person, await self._export(person)

        person, content = self.run(go())
        self._suspend_link()  # a seat changing hands suspends the group link
        self.check_export_holds_own_notes(person, content)

    def _leave(self, person: Person, erased: bool) -> None:
        person.left_at_message = len(person.user.messages)
        if erased:
            person.erased_at = self.clock.now()
        self.seats[person.slot] = None
        self._suspend_link()

    @precondition(lambda self: not self.closed and bool(self.holders()))
    @rule(data=st.data())
    def stop(self, data: st.DataObject) -> None:
        """``/stop``: a partner leaves (their data stays for the clinical record)."""
        person = self._draw_holder(data)

        async def go() -> None:
            told = await _confirm(person.user, "stop", t("en", "partner.stop_yes"))
            assert told.text == t("en", "partner.stopped"), told.text
            await self.sync()

        self.run(go())
        self._leave(person, erased=False)

    @precondition(lambda self: bool(self.holders()))
    @rule(data=st.data())
    def deleteme(self, data: st.DataObject) -> None:
        """``/deleteme``: a partner erases their data and leaves."""
        person = self._draw_holder(data)

        async def go() -> None:
            told = await _confirm(person.user, "deleteme", t("en", "data.erase_yes"))
            assert told.text == t("en", "data.erased"), told.text
            await self.sync()

        self.run(go())
        self._leave(person, erased=True)

    # Rules: private words ------------------------------------------------------------------

    @precondition(lambda self: bool(self.holders()))
    @rule(data=st.data(), ok_to_raise=st.booleans(), crisis=st.sampled_from([False, False, True]))
    def checkin(self, data: st.DataObject, ok_to_raise: bool, crisis: bool) -> None:
        """A private check-in whose note holds a canary (OK to raise, or therapist only)."""
        self._check_in(self._draw_holder(data), ok_to_raise, crisis)

    def _check_in(self, person: Person, ok_to_raise: bool, crisis: bool) -> None:
        canary = Canary(self._canary(), person, "note", ok_to_raise=ok_to_raise, crisis=crisis)
        note = f"{canary.text} {CRISIS}" if crisis else f"{canary.text} felt unheard this week"

        async def go() -> bool:
            started = await _checkin(person.user, note, ok_to_raise)
            await self.sync()
            return started

        started = self.run(go())
        self.check_closed_couple_takes_no_checkin(started)
        if started:
            self.canaries.append(canary)

    @precondition(lambda self: not self.closed and bool(self.holders()))
    @rule()
    def space_prompt(self) -> None:
        """The next couple-space prompt, to whoever holds each seat (as the planner sends it)."""
        if len(self.rounds) >= len(SPACE_KEYS):
            return
        round_ = Round(SPACE_KEYS[len(self.rounds)])
        self.rounds.append(round_)

        async def go() -> None:
            counts = {p: len(p.user.messages) for p in self.holders()}
            async with self.h.db.uow() as uow:
                for person in self.holders():
                    partner = await uow.partners.by_user(person.user.id)
                    assert partner is not None and partner.active
                    await enqueue(
                        uow,
                        partner,
                        kind="couple_space",
                        key=round_.key,
                        dedupe_key=f"lifecycle:{round_.key}:{partner.id}",
                        due_at=self.clock.now(),
                        couple_id=partner.couple_id,
                    )
                await uow.commit()
            await self.sync()
            for person, count in counts.items():
                round_.prompts[person] = await person.user.wait_for_message(
                    lambda m: "choose whether" in m.text or "decides" in m.text, after=count
                )

        self.run(go())

    def _open_prompts(self) -> list[tuple[Round, Person]]:
        return [
            (round_, person)
            for round_ in self.rounds
            for person in round_.prompts
            if person.holds_seat and person not in round_.answers
        ]

    @precondition(lambda self: not self.closed and bool(self._open_prompts()))
    @rule(data=st.data(), share=st.booleans(), crisis=st.sampled_from([False, False, False, True]))
    def space_answer(self, data: st.DataObject, share: bool, crisis: bool) -> None:
        """A couple-space answer with a canary, shared or kept private."""
        open_ = self._open_prompts()
        choice = data.draw(
            st.sampled_from([f"{r.key.split('.')[1]} to {p.slot}" for r, p in open_]),
            label="prompt",
        )
        round_, person = next(
            (r, p) for r, p in open_ if f"{r.key.split('.')[1]} to {p.slot}" == choice
        )
        canary = Canary(self._canary(), person, "space", crisis=crisis)
        text = f"{canary.text} {CRISIS}" if crisis else f"{canary.text} your laugh at dinner"
        label = t("en", "prompts.share_yes" if share else "prompts.share_no")

        async def go() -> None:
            user = person.user
            await user.reply_to(round_.prompts[person], text)
            asked = await user.wait_for_message(_has_button("1|sh|"))
            data_ = asked.callback_data_for(label)
            assert data_ is not None, asked.button_texts
            await user.press(asked, data_)
            noted = {
                t("en", key)
                for key in (
                    "prompts.share_noted",
                    "prompts.share_noted_both",
                    "prompts.share_noted_alone",
                )
            }
            await user.wait_for_message(lambda m: m.text in noted)

        self.run(go())
        self.canaries.append(canary)
        round_.answers[person] = (canary, share)
        self._conclude(round_)
        self.run(self.sync())

    def _conclude(self, round_: Round) -> None:
        """Both recipients decided: the answers are revealed if both shared (no crisis)."""
        if round_.concluded or len(round_.prompts) < 2 or len(round_.answers) < 2:
            return
        round_.concluded = True
        (first, (one, shared_one)), (second, (two, shared_two)) = round_.answers.items()
        if not (shared_one and shared_two) or one.crisis or two.crisis:
            return
        if not (first.holds_seat and second.holds_seat):
            return  # words of someone who left reach nobody any more
        now = self.clock.now()
        for canary, reader in ((one, second), (two, first)):
            canary.revealed_to.add(reader.user.id)
            canary.revealed_at = now
            canary.in_group = self.link == "active"

    # Rules: the group ----------------------------------------------------------------------

    def _linkable(self) -> bool:
        return (
            not self.closed
            and all(self.seats[s] is not None for s in "AB")
            and self.link in ("none", "suspended")
        )

    @precondition(lambda self: self._linkable())
    @rule()
    def link_group(self) -> None:
        """Both partners in a group with the bot and nobody else; a code; both agree."""
        if self.run(self._link()):
            self.link = "active"

    async def _link(self) -> bool:
        a, b = self.seats["A"], self.seats["B"]
        assert a is not None and b is not None
        fake = self.h.fake
        group = self.group
        if group is not None and not any(uid in group.member_ids for uid in (a.user.id, b.user.id)):
            group = None  # nobody of the couple is left in it: they make a new one
        if group is None:
            group = fake.add_group(
                -5000 - len(self.groups), "Us two", members=(a.user, b.user), bot_status="left"
            )
            self.groups.append(group)
            self.group = group
            await group.add_bot(by=a.user)
            await group.wait_for_message(lambda m: "/linkgroup" in m.text)
        else:
            inside = next(u for u in (a.user, b.user) if u.id in group.member_ids)
            for user_id in list(group.member_ids):
                if user_id not in (a.user.id, b.user.id):
                    await group.remove_member(fake.users[user_id], by=inside)
            for user in (a.user, b.user):
                if user.id not in group.member_ids:
                    await group.add_member(user, by=inside)
            await self.sync()
        await a.user.send_command("linkgroup")
        reply = await a.user.wait_for_message()
        found = CODE.search(reply.text)
        self.check_a_new_link_can_start(reply.text, found is not None)
        if found is None:
            return False
        await a.user.command_in_group(group, "linkgroup", found.group(1))
        await group.wait_for_message(lambda m: "privately" in m.text)
        await self.sync()
        for user in (a.user, b.user):
            await user.wait_for_message(lambda m: bool(m.buttons) and "Telegram" in m.text)
            await user.press_button(t("en", "group.consent_yes"))
            await user.wait_for_message(lambda m: m.text == t("en", "group.consent_noted"))
        await self.sync()
        await group.wait_for_message(lambda m: "now linked" in m.text)
        return True

    @precondition(
        lambda self: (
            not self.closed and self.link in ("active", "suspended") and bool(self.holders())
        )
    )
    @rule(data=st.data())
    def unlink_group(self, data: st.DataObject) -> None:
        """``/unlinkgroup`` in a partner's private chat."""
        person = self._draw_holder(data)

        async def go() -> None:
            await person.user.send_command("unlinkgroup")
            await person.user.wait_for_message()
            await self.sync()

        self.run(go())
        self.link = "none"

    @precondition(
        lambda self: (
            self.group is not None
            and self.group.bot_is_member
            and any(uid in self.group.member_ids for uid in (p.user.id for p in self.holders()))
            and (self.outsider is None or self.outsider.id not in self.group.member_ids)
        )
    )
    @rule()
    def outsider_joins(self) -> None:
        """Someone who is not of the couple is added to the group."""
        group = self.group
        assert group is not None
        if self.outsider is None:
            self.outsider = self.h.user("Sam")
        by = next(p.user for p in self.holders() if p.user.id in group.member_ids)

        async def go() -> None:
            assert self.outsider is not None
            await group.add_member(self.outsider, by=by)
            await self.sync()

        self.run(go())
        self._suspend_link()

    @precondition(
        lambda self: (
            self.group is not None
            and self.group.type == "group"
            and self.group.bot_is_member
            and bool(self.group.member_ids)
        )
    )
    @rule()
    def supergroup_migration(self) -> None:
        """The group is upgraded to a supergroup (a new chat id)."""
        group = self.group
        assert group is not None
        by = self.h.fake.users[group.member_ids[0]]

        async def go() -> FakeGroup:
            upgraded = await group.upgrade_to_supergroup(-1_000_000_000_000 + group.id, by=by)
            await self.sync()
            return upgraded

        self.group = self.run(go())
        self.groups.append(self.group)
        self._suspend_link()

    # Rules: the therapist, keys and time ---------------------------------------------------

    @precondition(lambda self: not self.closed and bool(self.canaries))
    @rule()
    def digest(self) -> None:
        """``/digest HANDLE``: the therapist asks for the digest now."""

        async def go() -> None:
            self.clock.advance(timedelta(days=1))  # it covers whole days up to today
            await self.therapist.send_command("digest", self.handle)
            await self.sync()

        self.run(go())

    @precondition(lambda self: not self.closed and bool(self.canaries))
    @rule(refused_once=st.booleans())
    def pre_session_digest(self, refused_once: bool) -> None:
        """A session is booked; at its digest time the digest goes by Telegram, email and
        webhook (``refused_once``: the mail relay and the endpoint refuse the first try)."""

        async def go() -> None:
            start = self.clock.now() + timedelta(days=3)
            await self.therapist.send_command("session", f"{self.handle} {start:%Y-%m-%d} 18:00")
            await self.therapist.wait_for_message(lambda m: "digest reaches you" in m.text)
            if refused_once:
                self.mailbox.refuse.append("451 4.3.0 Try again later")
                self.hooks.receiver.answers[HOOK_PATH] = [503]
            self.clock.advance(timedelta(days=2, hours=12))
            await self.h.bot.maintain()
            await self.sync()

        self.run(go())

    @precondition(lambda self: bool(self.holders()))
    @rule(data=st.data())
    def export(self, data: st.DataObject) -> None:
        """``/export``: a partner's own data, and it holds their own notes."""
        person = self._draw_holder(data)
        self.check_export_holds_own_notes(person, self.run(self._export(person)))

    async def _export(self, person: Person) -> str:
        await person.user.send_command("export")
        sent = await person.user.wait_for_message(lambda m: m.document is not None)
        content = document_text(sent)
        assert content is not None
        return content

    @precondition(lambda self: bool(self.canaries) and len(self.every_key) < 3)
    @rule()
    def rotate_keys(self) -> None:
        """`dyad keys rotate` with a new key first, then the old keys removed (docs/operations)."""
        newest = new_key()

        async def go() -> None:
            report = await rotate_ciphertexts(self.h.db, [newest, *self.keys], batch=3)
            assert report.unreadable == [], report.unreadable
            swap_keys(self.cipher, [newest])
            await self.sync()

        self.run(go())
        self.keys = [newest]
        self.every_key.insert(0, newest)
        self.forensic = Cipher(list(self.every_key))

    @precondition(lambda self: not self.closed and self.steps >= STEPS - 3)
    @rule()
    def close(self) -> None:
        """``/close HANDLE``: the therapist ends the couple's use of Dyad."""

        async def go() -> None:
            done = await _confirm(self.therapist, "close", t("en", "couple.close_yes"), self.handle)
            assert done.text == t("en", "couple.close_done", handle=self.handle), done.text
            await self.sync()

        self.run(go())
        self.closed = True
        self.link = "closed"

    @rule(hours=st.sampled_from([1, 7, 30]))
    def time_passes(self, hours: int) -> None:
        """The clock moves on; the periodic work runs and the dispatcher sends what is due."""

        async def go() -> None:
            self.clock.advance(timedelta(hours=hours))
            await self.h.bot.maintain()
            await self.sync()

        self.run(go())

    # Invariants ----------------------------------------------------------------------------

    @invariant()
    def private_words_stay_where_they_belong(self) -> None:
        self.steps += 1
        if self.stack is None:
            return
        self.check_private_chats()
        self.check_groups()
        self.check_logs()
        cells = self.run(stored_cells(self.h.db))
        self.check_at_rest(cells)
        self.check_finished_outbox_rows(cells)
        self.check_erasure_left_nothing(cells)
        self.check_keys_open_everything(cells)
        self.check_queued_messages_still_open(cells)
        self.check_digests(cells)
        self.check_mail()
        self.check_webhooks()
        self.check_group_link()

    def check_a_new_link_can_start(self, reply: str, got_code: bool) -> None:
        """Once the old link was suspended (or unlinked), the couple can link a group again."""
        assert got_code, f"/linkgroup refused though Dyad's link should be {self.link}: {reply!r}"

    def check_closed_couple_takes_no_checkin(self, started: bool) -> None:
        """After /close a partner's /checkin gets a kind refusal, not a check-in."""
        assert not (self.closed and started), "a closed couple took a check-in"

    def check_export_holds_own_notes(self, person: Person, content: str) -> None:
        """An export holds its partner's own notes (the scans above would mean little
        if exports held nothing)."""
        own = [c.text for c in self.canaries if c.author is person and c.kind == "note"]
        missing = [text for text in own if text not in content]
        assert not missing, f"{person}'s export lacks their own notes {missing}"

    def _canaries_in(self, text: str) -> Iterator[Canary]:
        return (c for c in self.canaries if c.text in text)

    def check_private_chats(self) -> None:
        """A canary in a private chat: only its author's (while on the seat), or the partner
        it was revealed to (never in their export)."""
        others = [p.user for p in self.people] + [self.watcher]
        if self.outsider is not None:
            others.append(self.outsider)
        for user in others:
            for index, message in enumerate(user.messages):
                for text in message_texts(message):
                    for canary in self._canaries_in(text):
                        author = canary.author
                        if author.user is user:
                            assert (
                                author.left_at_message is None or index < author.left_at_message
                            ), (
                                f"{canary.text} of {author} reached them after they left the seat: "
                                f"{text[:160]!r}"
                            )
                            continue
                        assert user.id in canary.revealed_to, (
                            f"{canary.text} of {author} reached {user.first_name}'s private chat "
                            f"without being revealed to them: {text[:160]!r}"
                        )
                document = document_text(message)
                if document is None:
                    continue
                for canary in self._canaries_in(document):
                    assert canary.author.user is user, (
                        f"{canary.text} of {canary.author} is in {user.first_name}'s export"
                    )

    def check_groups(self) -> None:
        """A canary in a group only if posted while linked; erased ones deleted (48 h)."""
        for group in self.groups:
            for message in group.messages:
                for text in message_texts(message):
                    for canary in self._canaries_in(text):
                        assert canary.in_group, (
                            f"{canary.text} of {canary.author} was posted in group {group.id} "
                            f"though not shared there: {text[:160]!r}"
                        )
                        erased = canary.author.erased_at
                        if erased is None or message.deleted:
                            continue
                        age = erased.timestamp() - message.date
                        assert age > GROUP_DELETE_WINDOW_SECONDS, (
                            f"{canary.text} of erased {canary.author} is still posted in group "
                            f"{group.id} ({age / 3600:.0f} h old when erased)"
                        )

    def check_logs(self) -> None:
        """No canary in any log line, at DEBUG."""
        for line in self.logs.new_lines():
            leaked = [c.text for c in self._canaries_in(line)]
            assert not leaked, f"{leaked} in a log line: {line[:200]}"

    def check_at_rest(self, cells: list[Any]) -> None:
        """No canary in clear text in any column of any table."""
        for cell in cells:
            text = clear_text(cell.value)
            leaked = [c.text for c in self._canaries_in(text)]
            assert not leaked, f"{leaked} in clear text at rest in {cell.where}"

    def _sealed(self, value: Any) -> Iterator[tuple[bytes, str | None]]:
        for token in sealed_tokens(value):
            yield token, opens(self.forensic, token)

    def check_finished_outbox_rows(self, cells: list[Any]) -> None:
        """A sent, failed or skipped outbox row keeps no private word, not even sealed."""
        for cell in cells:
            if cell.table != "deliveries" or cell.column != "params":
                continue
            if cell.row["status"] not in FINISHED:
                continue
            for _, plain in self._sealed(cell.value):
                leaked = [c.text for c in self._canaries_in(plain or "")]
                assert not leaked, (
                    f"{leaked} still sealed in {cell.row['status']} outbox row {cell.where} "
                    f"({cell.row['kind']} via {cell.row['channel']})"
                )

    def check_erasure_left_nothing(self, cells: list[Any]) -> None:
        """After /deleteme nothing anywhere still opens to the erased partner's words."""
        erased = [c for c in self.canaries if c.author.erased_at is not None]
        if not erased:
            return
        for cell in cells:
            for _, plain in self._sealed(cell.value):
                leaked = [c.text for c in erased if c.text in (plain or "")]
                assert not leaked, f"erased {leaked} still stored (sealed) in {cell.where}" + (
                    f" [{cell.row.get('status')} {cell.row.get('kind')}]"
                    if cell.table == "deliveries"
                    else ""
                )

    def check_keys_open_everything(self, cells: list[Any]) -> None:
        """Every stored ciphertext opens with the keys the running Dyad has (a rotation
        re-encrypted it all before the old key was removed)."""
        for cell in cells:
            if _queued(cell):
                continue
            for token in sealed_tokens(cell.value):
                assert opens(self.cipher, token) is not None, (
                    f"{cell.where} holds a ciphertext no configured key opens"
                    + (f" [{cell.row['status']} {cell.row['kind']}]" if _delivery(cell) else "")
                )

    def check_queued_messages_still_open(self, cells: list[Any]) -> None:
        """A message still queued in the outbox opens with the running keys (else it would
        never arrive after a rotation)."""
        for cell in cells:
            if not _queued(cell):
                continue
            for token in sealed_tokens(cell.value):
                assert opens(self.cipher, token) is not None, (
                    f"queued outbox row {cell.where} ({cell.row['kind']} via "
                    f"{cell.row['channel']}) holds a ciphertext no configured key opens"
                )

    def _check_digest_text(self, where: str, text: str) -> None:
        for canary in self._canaries_in(text):
            assert canary.raisable, (
                f"{canary.text} of {canary.author} ({canary.kind}, ok_to_raise="
                f"{canary.ok_to_raise}, crisis={canary.crisis}, revealed={bool(canary.revealed_to)}"
                f", erased={canary.author.erased_at is not None}) is quoted in {where}"
            )

    def check_digests(self, cells: list[Any]) -> None:
        """The therapist's Telegram digest quotes only what may be raised in a session."""
        ids = {
            cell.row["message_id"]
            for cell in cells
            if cell.table == "deliveries"
            and cell.column == "id"
            and cell.row["kind"] == "digest"
            and cell.row["channel"] == "telegram"
            and cell.row["status"] == "sent"
            and cell.row["message_id"] is not None
        }
        for message in self.therapist.messages:
            if message.message_id in ids and message.message_id not in self.seen.digests:
                self.seen.digests.add(message.message_id)
                self.check_digest_quotes(message)
                self.check_digest_attribution(message.text)

    def check_digest_quotes(self, message: FakeMessage) -> None:
        """The digest quotes only what may be raised in a session."""
        for text in message_texts(message):
            self._check_digest_text("the therapist's digest", text)

    def check_digest_attribution(self, text: str) -> None:
        """Each partner's words appear under their own name, never another person's (a
        newcomer's section holds nothing of the seat's previous holder)."""
        names = {p.user.first_name for p in self.people}
        heading: str | None = None
        for line in text.splitlines():
            found = HEADING.fullmatch(line.strip())
            if found is not None and found.group(1) in names:
                heading = found.group(1)
                continue
            if line.strip() == t("en", "digest.section.together"):
                heading = None
            inline = INLINE_NAME.match(line)
            shown_as = (
                inline.group(1) if inline is not None and inline.group(1) in names else heading
            )
            for canary in self._canaries_in(line):
                author = canary.author.user.first_name
                assert shown_as in (None, author), (
                    f"{canary.text} of {canary.author} is shown in the digest as {shown_as}'s "
                    f"words: {line.strip()[:160]!r}"
                )

    def check_mail(self) -> None:
        """Email (the digest) quotes only what may be raised, as the Telegram digest."""
        for _, raw in self.mailbox.accepted[self.seen.mails :]:
            for text in email_texts(raw):
                self._check_digest_text("an email", text)
        self.seen.mails = len(self.mailbox.accepted)

    def check_webhooks(self) -> None:
        """Webhook bodies quote only what may be raised (and only in digest.ready)."""
        received = self.hooks.receiver.received
        for request in received[self.seen.hooks :]:
            self._check_digest_text(
                f"a webhook body ({request.event.get('type')})",
                request.body.decode("utf-8", "replace"),
            )
        self.seen.hooks = len(received)

    def check_group_link(self) -> None:
        """A link the model says is not active (a seat changed hands, someone left, erased,
        an outsider, a migration) is not active in Dyad either."""
        if self.link in ("active", "closed"):
            return
        active = self.run(self._active_links())
        assert not active, (
            f"the group link is still active in Dyad (chat {active}) though it must be {self.link}"
        )

    async def _active_links(self) -> list[int | None]:
        async with self.h.db.uow() as uow:
            rows = await uow.session.scalars(select(GroupLink).where(GroupLink.status == "active"))
            return [row.chat_id for row in rows]


def _delivery(cell: Any) -> bool:
    return bool(cell.table == "deliveries")


def _queued(cell: Any) -> bool:
    return _delivery(cell) and cell.row["status"] not in FINISHED


# The test --------------------------------------------------------------------------------------


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """The test's own event loop: hypothesis' steps are synchronous, each runs on it."""
    owned = asyncio.new_event_loop()
    try:
        yield owned
    finally:
        owned.run_until_complete(owned.shutdown_asyncgens())
        owned.close()


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_private_words_stay_private_across_the_whole_couple_lifecycle(
    kind: str, loop: asyncio.AbstractEventLoop
) -> None:
    if kind == "postgres" and postgres_url() is None:
        pytest.skip("DYAD_TEST_DATABASE_URL is not set, so the PostgreSQL variant does not run")
    from aiosmtpd.controller import Controller

    mailbox = Mailbox(port=_free_port())
    controller = Controller(mailbox, hostname="127.0.0.1", port=mailbox.port)
    controller.start()
    hooks = loop.run_until_complete(start_receiver())
    try:
        with captured_logs() as logs:
            machine = type(
                "LifecycleRun",
                (Lifecycle,),
                {"loop": loop, "kind": kind, "mailbox": mailbox, "hooks": hooks, "logs": logs},
            )
            run_state_machine_as_test(
                machine,
                settings=settings(
                    max_examples=EXAMPLES[kind],
                    stateful_step_count=STEPS,
                    deadline=None,
                    phases=PHASES,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
                ),
            )
    finally:
        loop.run_until_complete(hooks.close())
        controller.stop()
