"""A couple's linked Telegram group, end to end through the fake Bot API (privacy mode on).

Only what both partners chose to share ever reaches the group: the shared goal,
couple-space questions, and both shared answers together. Check-ins, notes, private
replies, safety answers and alerts never do, and anyone else joining stops the posts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from telegram import Bot
from telegram.ext import CommandHandler

from bot.app import DyadBot
from bot.channels.base import Blocked, ChannelLimits
from bot.channels.group import GROUP_LIMITS, TelegramGroupProbe
from bot.channels.registry import GROUP_CHANNEL, TELEGRAM, ChannelRegistry
from bot.core.clock import ManualClock
from bot.locales import t
from bot.services.crypto import Cipher, new_key
from bot.services.groups import (
    CONSENT_KIND,
    GROUP_KINDS,
    GroupConsentRenderer,
    GroupRenderer,
    post_shared_answers,
)
from bot.services.outbox import enqueue
from bot.services.practices import create_practice
from db.engine import Database
from db.models import (
    Couple,
    Delivery,
    GroupLink,
    GroupLinkCode,
    Partner,
    Response,
    Therapist,
)
from fakebotapi import FakeBotAPI, FakeGroup, FakeMessage, FakeUser
from handlers import group as group_handlers
from schedules.dispatcher import Pacer
from tests.e2e.conftest import Harness

CODE = re.compile(r"/linkgroup@\w+ ([A-Za-z0-9_-]{16,64})")
# The group channel's own pace is tested apart (below); end-to-end runs send at once, as the
# harness does for private chats.
_UNPACED = ChannelLimits(rate_per_second=30.0, per_address_interval=0.0, pace_with=TELEGRAM)


def wire_groups(bot: DyadBot) -> None:
    """Register the group channel, renderers and handlers, unless the app already does."""
    app = bot.application
    in_first = list(app.handlers.get(0, []))
    if not any(isinstance(h, CommandHandler) and "linkgroup" in h.commands for h in in_first):
        # The group handlers go before the catch-alls (unknown command, stale button).
        for handler in in_first:
            app.remove_handler(handler, 0)
        group_handlers.register(app)
        for handler in in_first:
            app.add_handler(handler, 0)
    channels = bot.dispatcher.channels
    if GROUP_CHANNEL not in channels:
        messenger = app.bot_data.messenger
        assert messenger is not None
        if isinstance(channels, ChannelRegistry):
            channels.register(GROUP_CHANNEL, messenger, GROUP_LIMITS)
        else:
            assert isinstance(channels, dict)
            channels[GROUP_CHANNEL] = messenger
    bot.dispatcher.limits = {**(bot.dispatcher.limits or {}), GROUP_CHANNEL: _UNPACED}
    if GROUP_CHANNEL not in bot.renderer.channels:
        probe = TelegramGroupProbe(app.bot)
        renderer = GroupRenderer(bot.deps.cipher, probe, bot.deps.clock)
        bot.renderer.channels[GROUP_CHANNEL] = renderer
    bot.renderer.kinds.setdefault(CONSENT_KIND, GroupConsentRenderer())


# Helpers -------------------------------------------------------------------------------------


async def _seeded_couple(
    harness: Harness,
    names: tuple[str, str] = ("Alex", "Blanca"),
    languages: tuple[str, str] = ("en", "en"),
    therapist: FakeUser | None = None,
) -> tuple[FakeUser, FakeUser, FakeUser, str]:
    """A therapist and a couple whose partners have both joined (onboarding is tested apart)."""
    wire_groups(harness.bot)
    therapist = therapist or await harness.therapist()
    handle, _, _ = await harness.new_couple(therapist, " & ".join(names))
    users = [harness.user(name, lang) for name, lang in zip(names, languages, strict=True)]
    now = harness.clock.now()
    async with harness.db.uow() as uow:
        couple = await uow.session.scalar(select(Couple).where(Couple.handle == handle))
        assert couple is not None
        for partner, user in zip(await uow.partners.of_couple(couple.id), users, strict=True):
            partner.telegram_user_id = partner.chat_id = user.id
            partner.display_name = user.first_name
            partner.language = user.language_code or "en"
            partner.timezone, partner.window = "Europe/Madrid", "evening"
            partner.onboarding_step = "done"
            partner.consented_at = partner.joined_at = now
            user.has_started = True
        couple.space_ready_at = now
        await uow.commit()
    return therapist, users[0], users[1], handle


async def _code(user: FakeUser, args: str = "") -> str:
    await user.send_command("linkgroup", args)
    reply = await user.wait_for_message(lambda m: "/linkgroup@" in m.text)
    found = CODE.search(reply.text)
    assert found is not None
    return found.group(1)


async def _agree(user: FakeUser, language: str = "en") -> None:
    await user.wait_for_message(lambda m: bool(m.buttons) and "Telegram" in m.text)
    await user.press_button(t(language, "group.consent_yes"))
    await user.wait_for_message(lambda m: m.text == t(language, "group.consent_noted"))


async def _link(
    harness: Harness,
    asker: FakeUser,
    other: FakeUser,
    group: FakeGroup,
    languages: tuple[str, str] = ("en", "en"),
    code_args: str = "",
    code_from: FakeUser | None = None,
) -> None:
    """Ask for a code, send it in the group, and both partners agree privately."""
    code = await _code(code_from or asker, code_args)
    await asker.command_in_group(group, "linkgroup", code)
    await group.wait_for_message(lambda m: "privately" in m.text or "en privado" in m.text)
    await harness.settle()
    await _agree(asker, languages[0])
    await _agree(other, languages[1])
    await harness.settle()
    await group.wait_for_message(lambda m: "now linked" in m.text or "ya está vinculado" in m.text)


async def _new_group(
    harness: Harness, chat_id: int, *members: FakeUser, title: str = "Us two"
) -> FakeGroup:
    """A group the first member makes and adds the bot to (the bot says how to link it)."""
    group = harness.fake.add_group(chat_id, title, members=members, bot_status="left")
    await group.add_bot(by=members[0])
    await group.wait_for_message(lambda m: "/linkgroup" in m.text)
    return group


async def _space_prompt(harness: Harness, key: str) -> None:
    """The week's couple-space question, to both partners (as the planner queues it)."""
    async with harness.db.uow() as uow:
        for partner in await uow.session.scalars(select(Partner)):
            if partner.active:
                await enqueue(
                    uow,
                    partner,
                    kind="couple_space",
                    key=key,
                    dedupe_key=f"test:{key}",
                    due_at=harness.clock.now(),
                    couple_id=partner.couple_id,
                )
        await uow.commit()
    await harness.settle()


async def _answer(user: FakeUser, text: str, share: bool, language: str = "en") -> None:
    prompt = await user.wait_for_message(
        lambda m: "choose whether" in m.text or "decides" in m.text
    )
    await user.reply_to(prompt, text)
    await user.wait_for_message(lambda m: bool(m.buttons))
    await user.press_button(t(language, "prompts.share_yes" if share else "prompts.share_no"))
    await user.wait_for_message()


async def _hope_reply(harness: Harness, user: FakeUser, text: str) -> None:
    async with harness.db.uow() as uow:
        partner = await uow.partners.by_user(user.id)
        assert partner is not None
        await enqueue(
            uow,
            partner,
            kind="hope",
            key="hope.small_win",
            dedupe_key=f"test:hope:{text}",
            due_at=harness.clock.now(),
            couple_id=partner.couple_id,
        )
        await uow.commit()
    await harness.settle()
    prompt = await user.wait_for_message()  # the prompt just queued
    await user.reply_to(prompt, text)
    await user.wait_for_message(lambda m: bool(m.buttons) or "988" in m.text)


async def _checkin(user: FakeUser, note: str, *, unsafe: bool, language: str = "en") -> None:
    """A whole private check-in with a note; ``unsafe`` answers yes to the safety question."""
    thanks = t(language, "checkin.thanks")
    await user.send_command("checkin")
    while True:
        question = await user.wait_for_message(lambda m: bool(m.buttons) or m.text == thanks)
        if question.text == thanks:
            return
        data = [d for _, d in question.buttons if d]
        item = data[0].split("|")[3]
        if item == "note":
            await user.send_text(note)
            continue
        wanted = {"ok_to_raise": "no", "skill": "partly", "afraid_or_unsafe": "no"}.get(item, "5")
        if item == "afraid_or_unsafe" and unsafe:
            wanted = "yes"
        await user.press(question, next(d for d in data if d.endswith(f"|{wanted}")))


async def _group_deliveries(harness: Harness) -> list[Delivery]:
    async with harness.db.uow() as uow:
        query = select(Delivery).where(Delivery.channel == GROUP_CHANNEL)
        return list(await uow.session.scalars(query))


def _texts(message: FakeMessage) -> list[str]:
    return [message.text, *(version.text for version in message.edits)]


def _group_texts(group: FakeGroup) -> list[str]:
    return [text for message in group.messages for text in _texts(message)]


def _assert_private_stays_private(
    group: FakeGroup, canaries: tuple[str, ...], therapist: FakeUser, partners: list[FakeUser]
) -> None:
    """No canary in the group; nor any alert or digest, crisis help, question or thanks."""
    seen = _group_texts(group)
    for canary in canaries:
        assert not any(canary in text for text in seen), f"{canary} reached the group"
    private = [text for message in therapist.messages for text in _texts(message)]
    for partner in partners:
        for message in partner.messages:
            crisis = any(number in message.text for number in ("988", "024", "112"))
            if (
                message.buttons
                or crisis
                or "registro" in message.text
                or "check-in" in message.text
            ):
                private.extend(_texts(message))
    assert any("Safety alert" in text for text in private), "the scenario raised no alert"
    for text in private:
        assert text not in seen, f"a private message reached the group: {text[:80]!r}"
        assert not any(text in shown for shown in seen if len(text) > 20), text[:80]


# The link, and what it carries -----------------------------------------------------------------


async def test_a_linked_group_gets_only_what_both_partners_chose_to_share(
    harness: Harness,
) -> None:
    therapist, alex, blanca, handle = await _seeded_couple(harness, languages=("en", "es"))
    group = await _new_group(harness, -5001, blanca, alex, therapist)  # the therapist may be in
    await _link(harness, alex, blanca, group, languages=("en", "es"))
    welcome = group.messages[-1]
    await harness.deliver_waiting()  # the first to agree hears it in their window
    # One post for both, in both partners' languages, the same fixed order for everyone.
    assert "now linked" in welcome.text and "ya está vinculado" in welcome.text
    assert [m.text for m in alex.messages].count(t("en", "group.linked")) == 1
    assert [m.text for m in blanca.messages].count(t("es", "group.linked")) == 1

    # Private things, while the group is linked.
    await _checkin(blanca, "CANARY-note-b1 nota privada", unsafe=True, language="es")
    await _hope_reply(harness, alex, "CANARY-crisis-a2 some days I want to kill myself")
    await harness.settle()
    assert any("Safety alert" in m.text for m in therapist.messages)

    # A couple-space question: asked in the group too; answered privately; shared by both.
    await _space_prompt(harness, "couple_space.appreciation")
    asked = await group.wait_for_message(lambda m: "couple-space question" in m.text)
    assert "appreciated about your partner" in asked.text and "apreciaste" in asked.text
    await _answer(alex, "Your patience on Tuesday", share=True)
    assert t("en", "group.share_question") in [m.text for m in alex.messages]  # says so
    posts_before = len(group.messages)
    await harness.settle()
    assert len(group.messages) == posts_before, "nothing is posted before both answered"
    await _answer(blanca, "Tu paciencia el martes", share=True, language="es")
    await harness.settle()
    together = await group.wait_for_message(lambda m: "Your patience" in m.text)
    assert "Tu paciencia el martes" in together.text  # both answers, one message
    assert "<b>Alex</b>" in together.raw_text and "<b>Blanca</b>" in together.raw_text
    # The private reveal still happens, as without a group (in each partner's own window).
    harness.clock.advance(timedelta(hours=13))
    await harness.settle()
    await alex.wait_for_message(lambda m: "Tu paciencia" in m.text)

    # Another question, where one keeps the answer private: nothing of it in the group.
    await _space_prompt(harness, "couple_space.favourite_memory")
    await _answer(alex, "CANARY-space-a3 the lake", share=True)
    await _answer(blanca, "CANARY-space-b3 la playa", share=False, language="es")
    await harness.settle()

    await therapist.send_command("goal", f"{handle} Talk through hard moments kindly")
    await therapist.wait_for_message(lambda m: "saved" in m.text)
    await harness.settle()
    await group.wait_for_message(lambda m: "Talk through hard moments kindly" in m.text)

    assert {d.kind for d in await _group_deliveries(harness)} == {
        "group_notice",
        "group_prompt",
        "group_reveal",
        "group_goal",
    }
    _assert_private_stays_private(
        group, ("CANARY-note", "CANARY-crisis", "CANARY-space"), therapist, [alex, blanca]
    )


async def test_anyone_else_joining_or_a_partner_leaving_stops_the_posts_until_linked_again(
    harness: Harness,
) -> None:
    therapist, alex, blanca, handle = await _seeded_couple(harness)
    group = await _new_group(harness, -5002, alex, blanca)
    await _link(harness, alex, blanca, group, code_args=handle, code_from=therapist)
    posts = len(group.messages)
    stranger = harness.user("Sam")
    await group.add_member(stranger, by=blanca)
    await therapist.wait_for_message(lambda m: "suspended" in m.text and handle in m.text)
    await harness.deliver_waiting()  # both partners are told in their window
    told_a = await alex.wait_for_message(lambda m: "stopped posting" in m.text)
    told_b = await blanca.wait_for_message(lambda m: "stopped posting" in m.text)
    assert told_a.text == told_b.text == t("en", "group.suspended_outsider")
    # Nothing more goes to the group, and nothing was said there about why.
    await therapist.send_command("goal", f"{handle} Listen first")
    await therapist.wait_for_message(lambda m: "saved" in m.text)
    await harness.settle()
    assert len(group.messages) == posts

    # Once the stranger is gone, linking again (new code, both agree) starts the posts again.
    await group.remove_member(stranger, by=blanca)
    await _link(harness, blanca, alex, group)
    assert len(group.messages) == posts + 2  # "asked each partner", then the welcome
    # As an administrator the bot also gets chat_member updates: one departure, one notice.
    await group.promote_bot(by=alex)
    await group.remove_member(blanca)
    await therapist.wait_for_message(lambda m: "suspended" in m.text and handle in m.text)
    await harness.deliver_waiting()  # both partners are told in their window
    for user in (alex, blanca):
        told = await user.wait_for_message(lambda m: "no longer holds both" in m.text)
        assert told.text == t("en", "group.suspended_partner_left")
        assert [m.text for m in user.messages].count(told.text) == 1

    # Either partner (or the therapist) unlinks it from a private chat; both hear it alike.
    await alex.send_command("unlinkgroup")
    # Alex's own command is answered at once; Blanca, who did nothing, hears in her window.
    told_a = await alex.wait_for_message(lambda m: "no longer linked" in m.text)
    await harness.deliver_waiting()
    told_b = await blanca.wait_for_message(lambda m: "no longer linked" in m.text)
    assert told_a.text == told_b.text == t("en", "group.unlinked")
    await alex.send_command("unlinkgroup")
    assert (await alex.wait_for_message()).text == t("en", "group.not_linked")
    async with harness.db.uow() as uow:
        link = await uow.session.scalar(select(GroupLink))
    assert link is not None and (link.status, link.chat_id, link.attempt) == ("unlinked", None, 2)


async def test_a_group_is_linked_only_with_a_fresh_code_of_its_own_couple_and_nobody_else_in_it(
    harness: Harness,
) -> None:
    therapist, alex, blanca, _ = await _seeded_couple(harness)
    _, carol, _, _ = await _seeded_couple(harness, ("Carol", "Dan"), therapist=therapist)

    stranger = harness.user("Sam")
    crowded = await _new_group(harness, -5005, alex, blanca, stranger)
    code = await _code(alex)
    await alex.command_in_group(crowded, "linkgroup", code)
    # Whoever else is there learns nothing; the asker hears why, privately.
    assert (await crowded.wait_for_message()).text == t("en", "group.refused")
    assert (await alex.wait_for_message()).text == t("en", "group.has_others")
    await stranger.command_in_group(crowded, "linkgroup", code)
    assert (await crowded.wait_for_message()).text == t("en", "group.code_unknown")
    for text in [m.text for m in crowded.messages]:
        assert not any(word in text.lower() for word in ("couple", "partner", "therap")), text

    alone = await _new_group(harness, -5006, alex)
    await alex.command_in_group(alone, "linkgroup", code)
    assert (await alone.wait_for_message()).text == t("en", "group.refused")
    assert (await alex.wait_for_message()).text == t("en", "group.partners_missing")

    theirs = await _code(carol)
    ours = await _new_group(harness, -5007, alex, blanca)
    await alex.command_in_group(ours, "linkgroup", theirs)  # another couple's code
    assert (await ours.wait_for_message()).text == t("en", "group.code_unknown")
    await alex.command_in_group(ours, "linkgroup", "not-a-code")
    assert (await ours.wait_for_message()).text == t("en", "group.code_unknown")

    harness.clock.advance(timedelta(minutes=16))
    await alex.command_in_group(ours, "linkgroup", code)  # refused above, now expired
    assert (await ours.wait_for_message()).text == t("en", "group.code_unknown")

    fresh = await _code(blanca)
    await blanca.command_in_group(ours, "linkgroup", fresh)
    await ours.wait_for_message(lambda m: "privately" in m.text)
    await alex.command_in_group(ours, "linkgroup", fresh)  # used once already
    assert (await ours.wait_for_message()).text == t("en", "group.code_unknown")
    # Privacy mode: chatter, and commands for other bots, never reach Dyad.
    await alex.send_in_group(ours, "see you at dinner")
    await alex.send_in_group(ours, f"/linkgroup@other_bot {fresh}")
    assert [m.seen_by_bot for m in ours.user_messages[-2:]] == [False, False]
    async with harness.db.uow() as uow:
        links = list(await uow.session.scalars(select(GroupLink)))
        codes = list(await uow.session.scalars(select(GroupLinkCode)))
    assert [(link.chat_id, link.status) for link in links] == [(ours.id, "pending")]
    assert all(fresh not in c.code_hash and code not in c.code_hash for c in codes)
    assert sum(c.used_at is not None for c in codes) == 1
    assert not await _group_deliveries(harness)

    # One "no" is enough: both hear, in the same words, that nothing will be posted.
    await harness.settle()
    await alex.wait_for_message(lambda m: bool(m.buttons) and "group chat" in m.text)
    await alex.press_button(t("en", "group.consent_no"))
    # Alex's own answer settles it: told at once; Blanca hears in her window.
    told_a = await alex.wait_for_message(lambda m: "was not linked" in m.text)
    await harness.deliver_waiting()
    told_b = await blanca.wait_for_message(lambda m: "was not linked" in m.text)
    assert told_a.text == told_b.text == t("en", "group.declined")
    await blanca.wait_for_message(lambda m: bool(m.buttons) and "group chat" in m.text, after=0)
    late = await blanca.press_button(t("en", "group.consent_yes"))  # the link is gone
    await harness.fake.wait_for(lambda: late.answered or None)
    assert late.answer_text == t("en", "common.stale_button")

    # Unlinked from inside the group (while waiting for both to agree).
    await stranger.command_in_group(crowded, "unlinkgroup")
    assert (await crowded.wait_for_message()).text == t("en", "group.not_linked_here")
    await alex.command_in_group(ours, "linkgroup", await _code(alex))
    await ours.wait_for_message(lambda m: "privately" in m.text)
    await blanca.command_in_group(ours, "unlinkgroup")
    assert (await ours.wait_for_message()).text == t("en", "group.unlinked_here")
    async with harness.db.uow() as uow:
        link = await uow.session.scalar(select(GroupLink))
    assert link is not None and (link.status, link.chat_id) == ("unlinked", None)
    # Removing the bot ends a link too (here one still waiting for both to agree).
    await alex.command_in_group(ours, "linkgroup", await _code(alex))
    await ours.wait_for_message(lambda m: "privately" in m.text)
    await ours.remove_bot(by=blanca)
    await harness.settle()
    for user in (alex, blanca):
        told = await user.wait_for_message(lambda m: "I was removed" in m.text)
        assert told.text == t("en", "group.suspended_bot_removed")
    async with harness.db.uow() as uow:
        link = await uow.session.scalar(select(GroupLink))
    assert link is not None and (link.status, link.suspended_reason) == ("suspended", "bot_removed")


# The fake's groups, seen through the channel's membership probe ---------------------------------


async def test_the_probe_sees_who_is_in_a_group_and_when_the_bot_was_removed(
    fake: FakeBotAPI,
) -> None:
    ana, ben, cy = fake.add_user(71, "Ana"), fake.add_user(72, "Ben"), fake.add_user(73, "Cy")
    group = fake.add_group(-7001, "Us", members=(ana, ben))
    async with Bot(fake.token, base_url=fake.base_url) as bot:
        probe = TelegramGroupProbe(bot)
        assert probe.bot_id == fake.bot_id
        assert await probe.member_count(group.id) == 3  # the bot counts
        assert [await probe.is_member(group.id, u.id) for u in (ana, ben, cy)] == [
            True,
            True,
            False,
        ]
        assert not await probe.is_member(group.id, 99)  # nobody Telegram knows
        await group.add_member(cy, by=ana)
        assert await probe.member_count(group.id) == 4
        await group.promote_bot(by=ana)
        assert (await bot.get_chat_member(group.id, fake.bot_id)).status == "administrator"
        await group.remove_member(cy)
        await group.remove_bot(by=ben)
        with pytest.raises(Blocked, match="kicked"):
            await probe.member_count(group.id)
    updates = [next(k for k in u if k != "update_id") for u in fake.updates]
    # Joins and departures always come as service messages; chat_member updates only once
    # the bot is an administrator; the bot's own changes as my_chat_member.
    assert updates == ["message", "my_chat_member", "message", "chat_member", "my_chat_member"]


# The group's gate, as a property -------------------------------------------------------------

_ALL_KINDS = (
    "notice",
    "checkin",
    "hope",
    "skill",
    "couple_space",
    "reveal",
    "digest",
    CONSENT_KIND,
    *sorted(GROUP_KINDS),
)
_KEYS = (
    "group.welcome",
    "group.goal",
    "group.code",
    "checkin.thanks",
    "prompts.revealed",
    "alerts.notice",
    "couple_space.appreciation",
    "hope.small_win",
)
_PARAMS = ("none", "ours", "ours_reversed", "ours_twice", "theirs", "mixed", "hope", "words")


class _OnlyTheCouple:
    """A group that holds exactly the couple and the bot, whoever asks."""

    bot_id = 1

    async def member_count(self, chat_id: int) -> int:
        return 3

    async def is_member(self, chat_id: int, user_id: int) -> bool:
        return True


@dataclass(frozen=True)
class _Forged:
    """A delivery for the couple's group, as a bug elsewhere might queue it."""

    kind: str
    channel: str
    key: str
    params: str


@dataclass
class _Gate:
    db: Database
    cipher: Cipher
    renderer: GroupRenderer
    ours: int
    theirs: int
    chat: int
    partners: dict[str, int]
    their_partner: int
    rows: int = 0


@pytest.fixture
async def gate(sqlite_db: Database, clock: ManualClock) -> _Gate:
    """Two couples, each with an active group, and the group renderer (no Telegram needed)."""
    cipher = Cipher([new_key()])
    now = clock.now()
    async with sqlite_db.uow() as uow:
        practice = await create_practice(uow, "P", timezone="UTC", language="en", now=now)
        therapist = await uow.therapists.add(
            Therapist(
                practice_id=practice.id, display_name="T", telegram_user_id=10, created_at=now
            )
        )
        ids: list[int] = []
        partners: dict[str, int] = {}
        their_partner = 0
        for n, chat in ((1, -9001), (2, -9002)):
            couple = await uow.couples.add(
                Couple(
                    practice_id=practice.id,
                    therapist_id=therapist.id,
                    handle=f"c{n}",
                    label="x",
                    shared_goal="Kind words first",
                    space_ready_at=now,
                    created_at=now,
                )
            )
            for slot, language in (("A", "en"), ("B", "es")):
                partner = await uow.partners.add(
                    Partner(
                        couple_id=couple.id,
                        slot=slot,
                        display_name=f"{slot}{n}",
                        telegram_user_id=100 * n + ord(slot),
                        chat_id=100 * n + ord(slot),
                        language=language,
                        onboarding_step="done",
                    )
                )
                if n == 1:
                    partners[slot] = partner.id
                else:
                    their_partner = partner.id
            uow.session.add(
                GroupLink(
                    couple_id=couple.id,
                    chat_id=chat,
                    status="active",
                    linked_by="therapist:1",
                    members_seen=3,
                    created_at=now,
                )
            )
            ids.append(couple.id)
        await uow.commit()
    renderer = GroupRenderer(cipher, _OnlyTheCouple(), clock)
    return _Gate(sqlite_db, cipher, renderer, ids[0], ids[1], -9001, partners, their_partner)


def _response(
    gate: _Gate,
    partner: int,
    couple: int,
    kind: str,
    text: str,
    share: bool | None,
    risk: bool = False,
) -> Response:
    return Response(
        partner_id=partner,
        couple_id=couple,
        prompt_key="couple_space.appreciation" if kind == "couple_space" else "hope.small_win",
        kind=kind,
        text_ciphertext=gate.cipher.encrypt(text),
        share=share,
        risk=risk,
        created_at=datetime(2026, 10, 19, tzinfo=UTC),
    )


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    share_a=st.sampled_from([True, False, None]),
    share_b=st.sampled_from([True, False, None]),
    risk=st.booleans(),
    forged=st.lists(
        st.one_of(
            st.builds(
                _Forged,
                kind=st.sampled_from(_ALL_KINDS),
                channel=st.sampled_from((TELEGRAM, GROUP_CHANNEL)),
                key=st.sampled_from(_KEYS),
                params=st.sampled_from(_PARAMS),
            ),
            # The likeliest harm: a post of answers that point at the wrong ones.
            st.builds(
                _Forged,
                kind=st.just("group_reveal"),
                channel=st.just(GROUP_CHANNEL),
                key=st.just("couple_space.appreciation"),
                params=st.sampled_from(_PARAMS),
            ),
        ),
        min_size=1,
        max_size=6,
    ),
)
async def test_no_private_word_ever_renders_for_a_group(
    gate: _Gate, share_a: bool | None, share_b: bool | None, risk: bool, forged: list[_Forged]
) -> None:
    """Whatever is queued for a group, only both shared couple-space answers ever show there."""
    now = datetime(2026, 10, 19, 9, tzinfo=UTC)
    async with gate.db.uow() as uow:
        a = _response(gate, gate.partners["A"], gate.ours, "couple_space", "WORDS-A", share_a, risk)
        b = _response(gate, gate.partners["B"], gate.ours, "couple_space", "WORDS-B", share_b)
        hope = _response(gate, gate.partners["A"], gate.ours, "hope", "WORDS-HOPE", None)
        other = _response(
            gate, gate.their_partner, gate.theirs, "couple_space", "WORDS-THEIRS", True
        )
        uow.session.add_all([a, b, hope, other])
        await uow.flush()
        ids = {
            "none": {},
            "ours": {"response_ids": [a.id, b.id]},
            "ours_reversed": {"response_ids": [b.id, a.id], "first_slot": "B"},
            "theirs": {"response_ids": [a.id, other.id]},
            "mixed": {"response_ids": [hope.id, b.id]},
            "hope": {"response_ids": [hope.id, hope.id]},
            "ours_twice": {"response_ids": [a.id, a.id]},
            "words": {"goal": "WORDS-GOAL", "title": "WORDS-GOAL", "answer": "WORDS-GOAL"},
        }
        for forgery in forged:
            gate.rows += 1
            uow.session.add(
                Delivery(
                    recipient=f"forged:{gate.rows}",
                    couple_id=gate.ours,
                    channel=forgery.channel,
                    kind=forgery.kind,
                    key=forgery.key,
                    params=ids[forgery.params],
                    dedupe_key="forged",
                    due_at=now,
                    created_at=now,
                )
            )
        # And what the real hook queues when both have decided.
        await post_shared_answers(uow, a, b, now)
        await uow.commit()
    revealable = share_a is True and share_b is True and not risk
    async with gate.db.uow() as uow:
        queued = await uow.session.scalars(
            select(Delivery).where(Delivery.couple_id == gate.ours, Delivery.status == "pending")
        )
        for delivery in list(queued):
            rendered = await gate.renderer.render(uow, delivery)
            delivery.status = "sent"
            if rendered is None:
                continue
            text = rendered.message.text
            assert delivery.channel == GROUP_CHANNEL and delivery.kind in GROUP_KINDS
            assert rendered.address == gate.chat
            for private in ("WORDS-HOPE", "WORDS-THEIRS", "WORDS-GOAL"):
                assert private not in text
            if not revealable:
                assert "WORDS-A" not in text and "WORDS-B" not in text
            assert ("WORDS-A" in text) == ("WORDS-B" in text), "both answers, or neither"
        await uow.commit()


# Telegram's limit for groups ---------------------------------------------------------------


async def test_group_posts_keep_under_twenty_a_minute_in_each_group() -> None:
    clock = [0.0]

    async def sleep(seconds: float) -> None:
        clock[0] += seconds

    pacer = Pacer(30.0, 0.0, monotonic=lambda: clock[0], sleep=sleep)
    sent: list[float] = []
    for _ in range(45):
        async with pacer.turn(-5001, GROUP_LIMITS.per_address_interval):
            sent.append(clock[0])
    busiest = max(sum(1 for at in sent if start <= at < start + 60.0) for start in sent)
    assert busiest == 20
    assert GROUP_LIMITS.pace_with == TELEGRAM  # and the bot's overall budget, shared
