"""Privacy across the transitions between flows: seats changing hands, erasure, groups, close.

Each test is named for the behaviour a partner or therapist would notice, and each failed
before the change that made it hold.
"""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import timedelta

from sqlalchemy import select

from bot.locales import t
from bot.metrics import METRICS
from bot.services import digests
from bot.services.outbox import enqueue
from db.models import Alert, CheckIn, Couple, Delivery, DeliveryKind, GroupLink, Partner, Response
from fakebotapi import FakeUser
from tests.e2e.conftest import Harness
from tests.e2e.test_checkins import _checkin, _couple
from tests.e2e.test_group import _answer, _link, _new_group, _seeded_couple, _space_prompt


async def _leave(user: FakeUser) -> None:
    await user.send_command("stop")
    await user.wait_for_message(lambda m: bool(m.buttons))
    await user.press_button(t("en", "partner.stop_yes"))
    await user.wait_for_message(lambda m: not m.buttons and m.text != "")


async def _erase(user: FakeUser, language: str = "en") -> None:
    await user.send_command("deleteme")
    await user.wait_for_message(lambda m: bool(m.buttons))
    await user.press_button(t(language, "data.erase_yes"))
    await user.wait_for_message(lambda m: m.text == t(language, "data.erased"))


async def _reinvite(therapist: FakeUser, handle: str, slot: str) -> str:
    await therapist.send_command("invite", f"{handle} {slot}")
    reply = await therapist.wait_for_message(lambda m: "?start=" in m.text)
    return reply.text.split("?start=")[1].split()[0].strip()


async def _export_text(user: FakeUser) -> str:
    await user.send_command("export")
    sent = await user.wait_for_message(lambda m: m.document is not None)
    assert sent.document is not None
    return sent.document.content.decode("utf-8")


async def _digest_text(harness: Harness, therapist: FakeUser, handle: str) -> str:
    """``/digest HANDLE`` and every chunk of it, as the therapist received it."""
    harness.clock.advance(timedelta(minutes=5))  # the period ends now: what came before
    start = len(therapist.messages)
    await therapist.send_command("digest", handle)
    await therapist.wait_for_message(lambda m: "digest" in m.text.lower(), timeout=10)
    await harness.settle()
    return "\n".join(m.text for m in therapist.messages[start:])


async def _queue(harness: Harness, user: FakeUser, kind: DeliveryKind, key: str) -> None:
    """Queue one prompt for this partner now, as the planner would, and let it go out."""
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


def _everything_seen_by(user: FakeUser) -> str:
    return "\n".join(m.raw_text or m.text for m in user.messages)


async def test_a_newcomer_to_seat_a_sees_nothing_of_the_previous_holder(harness: Harness) -> None:
    therapist, alex, blanca, handle = await _couple(harness)
    await _checkin(alex, note="CANARY-previous-holder tired of it all", ok_to_raise="Yes")
    await alex.wait_for_message(lambda m: "saved" in m.text)
    await _leave(alex)
    token = await _reinvite(therapist, handle, "A")

    newcomer = harness.user("Casey")
    await harness.join(newcomer, token, typed_timezone="Europe/London")
    await harness.settle()
    exported = json.loads(await _export_text(newcomer))
    assert exported["checkins"] == [] and exported["responses"] == []
    assert exported["safety_alerts"] == []

    digest = await _digest_text(harness, therapist, handle)
    assert "CANARY-previous-holder" not in digest
    assert "Casey" in digest and "Alex" not in digest
    assert "CANARY" not in _everything_seen_by(newcomer)
    async with harness.db.uow() as uow:
        seats = list(await uow.session.scalars(select(Partner).where(Partner.slot == "A")))
        assert len(seats) == 2 and sum(p.retired_at is None for p in seats) == 1
        kept = await uow.session.scalar(select(CheckIn).where(CheckIn.partner_id == seats[0].id))
        assert kept is not None, "the previous holder's record stays with their own, retired id"
    del blanca


async def test_a_seat_changing_hands_suspends_the_group_and_tells_both_in_the_same_words(
    harness: Harness,
) -> None:
    therapist, alex, blanca, handle = await _seeded_couple(harness)
    group = await _new_group(harness, -2001, alex, blanca)
    await _link(harness, alex, blanca, group)
    await _leave(alex)
    await harness.deliver_waiting()  # Blanca is told in her window
    told = t("en", "group.suspended_seat_changed")
    await blanca.wait_for_message(lambda m: m.text == told)
    async with harness.db.uow() as uow:
        link = await uow.session.scalar(select(GroupLink))
        assert link is not None and link.status == "suspended"
    posts = len(group.messages)
    await _space_prompt(harness, "couple_space.appreciation")
    assert len(group.messages) == posts, "nothing more is posted in the group"
    del therapist, handle


async def test_every_group_post_checks_each_partner_is_still_in_the_group(
    harness: Harness,
) -> None:
    """One partner left and an outsider joined unseen: the count is the same, and no post."""
    _, alex, blanca, _ = await _seeded_couple(harness)
    group = await _new_group(harness, -2002, alex, blanca)
    await _link(harness, alex, blanca, group)
    outsider = harness.user("Eve")
    group.member_ids.remove(blanca.id)  # no service message reached the bot for either
    group.member_ids.append(outsider.id)
    posts = len(group.messages)
    await _space_prompt(harness, "couple_space.appreciation")
    await harness.settle()
    assert len(group.messages) == posts
    async with harness.db.uow() as uow:
        link = await uow.session.scalar(select(GroupLink))
        assert link is not None and link.status == "suspended"


async def test_a_group_upgraded_to_a_supergroup_is_suspended_and_can_be_linked_again(
    harness: Harness,
) -> None:
    therapist, alex, blanca, handle = await _seeded_couple(harness)
    group = await _new_group(harness, -2003, alex, blanca)
    await _link(harness, alex, blanca, group)
    supergroup = await group.upgrade_to_supergroup(-1002003, by=alex)
    await therapist.wait_for_message(lambda m: "suspended" in m.text and handle in m.text)
    await harness.deliver_waiting()  # both partners are told in their window
    told = t("en", "group.suspended_migrated")
    await alex.wait_for_message(lambda m: m.text == told)
    await blanca.wait_for_message(lambda m: m.text == told)
    async with harness.db.uow() as uow:
        link = await uow.session.scalar(select(GroupLink))
        assert link is not None and link.status == "suspended" and link.chat_id is None
    await _link(harness, alex, blanca, supergroup)
    async with harness.db.uow() as uow:
        link = await uow.session.scalar(select(GroupLink))
        assert link is not None and (link.status, link.chat_id) == ("active", -1002003)


async def test_the_digest_quotes_only_revealed_or_raisable_couple_space_answers(
    harness: Harness,
) -> None:
    therapist, alex, blanca, handle = await _seeded_couple(harness)
    await _space_prompt(harness, "couple_space.appreciation")
    await _answer(alex, "SHARED-alex-walk", share=True)
    await _answer(blanca, "SHARED-blanca-tea", share=True)
    await _space_prompt(harness, "couple_space.favourite_memory")
    await _answer(alex, "CANARY-kept-alex", share=False)
    await _answer(blanca, "CANARY-undecided-blanca", share=True)
    await harness.settle()
    async with harness.db.uow() as uow:
        kept = await uow.session.scalar(
            select(Response).where(Response.share.is_(False), Response.kind == "couple_space")
        )
        assert kept is not None and kept.ok_to_raise is False, "keeping it private raises nothing"
        # A prompt only Alex received: never shown, nor Blanca as silent about it.
        a = await uow.partners.by_user(alex.id)
        assert a is not None
        await enqueue(
            uow,
            a,
            kind="couple_space",
            key="couple_space.our_song",
            dedupe_key="test:one-sided",
            due_at=harness.clock.now(),
            couple_id=a.couple_id,
        )
        await uow.commit()
    await harness.settle()
    text = await _digest_text(harness, therapist, handle)
    assert "SHARED-alex-walk" in text and "SHARED-blanca-tea" in text
    assert "CANARY" not in text
    assert text.count(t("en", "digest.couple.kept_private", name="Alex")) == 1
    assert "song" not in text.lower() and "canción" not in text.lower()


async def test_erasure_recomposes_a_queued_digest_without_the_erased_words(
    harness: Harness,
) -> None:
    therapist, alex, blanca, handle = await _couple(harness)
    await _checkin(alex, note="CANARY-erased raise this please", ok_to_raise="Yes")
    await alex.wait_for_message(lambda m: "saved" in m.text)
    later = harness.clock.now() + timedelta(hours=3)  # queued, not yet due
    async with harness.db.uow() as uow:
        couple = await uow.session.scalar(select(Couple).where(Couple.handle == handle))
        assert couple is not None
        await digests.queue_digest(uow, couple, harness.bot.deps.cipher, later, key=None, actor="t")
        await uow.commit()

    async def sealed_texts() -> str:
        cipher = harness.bot.deps.cipher
        async with harness.db.uow() as uow:
            rows = await uow.session.scalars(select(Delivery).where(Delivery.kind == "digest"))
            return "\n".join(
                cipher.decrypt(base64.b64decode(row.params["text"]))
                for row in rows
                if "text" in row.params
            )

    assert "CANARY-erased" in await sealed_texts()
    await _erase(alex)
    remaining = await sealed_texts()
    assert remaining and "CANARY-erased" not in remaining, "a digest still comes, without them"
    async with harness.db.uow() as uow:
        sent = await uow.session.scalars(
            select(Delivery).where(Delivery.partner_id.is_not(None), Delivery.status == "sent")
        )
        a = await uow.session.scalar(select(Partner).where(Partner.slot == "A"))
        assert a is not None
        assert all(row.params == {} for row in sent if row.partner_id == a.id)
    del blanca, therapist


async def test_erasure_deletes_the_group_posts_that_showed_the_erased_answer(
    harness: Harness,
) -> None:
    _, alex, blanca, _ = await _seeded_couple(harness)
    group = await _new_group(harness, -2004, alex, blanca)
    await _link(harness, alex, blanca, group)
    await _space_prompt(harness, "couple_space.appreciation")
    await _answer(alex, "CANARY-group-alex", share=True)
    await _answer(blanca, "Tu paciencia", share=True)
    await harness.settle()
    post = await group.wait_for_message(lambda m: "CANARY-group-alex" in m.text)
    await _erase(alex)
    await harness.settle()
    assert post.deleted
    async with harness.db.uow() as uow:
        link = await uow.session.scalar(select(GroupLink))
        assert link is not None and link.status == "unlinked" and link.chat_id is None
        alerts = list(await uow.session.scalars(select(Alert)))
        assert all(a.partner_id is None for a in alerts if a.slot == "A")


async def test_a_partner_button_pressed_in_a_group_does_nothing_and_nothing_goes_there(
    harness: Harness,
) -> None:
    _, alex, blanca, _ = await _seeded_couple(harness)
    group = await _new_group(harness, -2005, alex, blanca)
    await alex.send_command("checkin")
    question = await alex.wait_for_message(lambda m: bool(m.buttons))
    posts = len(group.messages)
    query = await alex.press_copy_in_group(group, question, question.buttons[0][1] or "")
    await harness.fake.wait_for(lambda: query.answered)
    assert query.answer_text == t("en", "common.private_button")
    await harness.settle()
    assert len(group.messages) == posts
    async with harness.db.uow() as uow:
        checkin = await uow.session.scalar(select(CheckIn))
        assert checkin is not None and checkin.answers == {}


FALLBACKS = "dyad_crisis_lines_fallbacks_total"


async def test_a_practice_file_that_cannot_be_used_never_withholds_the_crisis_lines(
    harness: Harness,
) -> None:
    therapist, alex, blanca, handle = await _couple(harness)
    async with harness.db.uow() as uow:
        practice = await uow.practices.get(1)
        assert practice is not None
        practice.config_toml = "[delivery\nquiet_hours = "  # stored by hand: cannot be parsed
        await uow.commit()
    fallbacks = METRICS.get_sample_value(FALLBACKS) or 0.0
    await blanca.send_text("ya no puedo más, quiero morirme")
    card = await blanca.wait_for_message(lambda m: "024" in m.text)
    assert "112" in card.text  # Spain's shipped lines, for her language and time zone
    await harness.settle()
    await therapist.wait_for_message(lambda m: "alert" in m.text.lower() and handle in m.text)
    assert (METRICS.get_sample_value(FALLBACKS) or 0.0) > fallbacks
    assert [m for m in alex.messages if "024" in m.text] == []  # her card is hers alone
    async with harness.db.uow() as uow:
        assert len(list(await uow.session.scalars(select(Alert)))) == 1


async def test_crisis_words_typed_when_nothing_is_asked_get_resources_and_alert(
    harness: Harness,
) -> None:
    therapist, alex, blanca, handle = await _couple(harness)
    before_b = len(blanca.messages)
    await blanca.send_text("ya no puedo más, quiero morirme")
    card = await blanca.wait_for_message(lambda m: "024" in m.text)
    assert "112" in card.text
    await harness.settle()
    await therapist.wait_for_message(lambda m: "alert" in m.text.lower() and handle in m.text)
    await alex.send_text("I want to kill myself")
    await alex.wait_for_message(lambda m: "988" in m.text)
    await harness.settle()
    assert [m for m in blanca.messages[before_b:] if "988" in m.text] == []
    async with harness.db.uow() as uow:
        assert len(list(await uow.session.scalars(select(Alert)))) == 2
        couple = await uow.session.scalar(select(Couple))
        assert couple is not None and couple.safety_hold
    stranger = harness.user("Sam")
    await stranger.send_text("I want to kill myself")
    guidance = await stranger.wait_for_message()
    assert "call your local emergency number" in guidance.text


async def test_after_close_a_partner_cannot_check_in_and_alerts_stay_readable(
    harness: Harness,
) -> None:
    therapist, alex, _, handle = await _couple(harness)
    await alex.send_text("I want to kill myself")
    await alex.wait_for_message(lambda m: "988" in m.text)
    await therapist.send_command("close", handle)
    await therapist.wait_for_message(lambda m: bool(m.buttons))
    await therapist.press_button(t("en", "couple.close_yes"))
    await harness.settle()
    await alex.send_command("checkin")
    ended = await alex.wait_for_message(lambda m: "988" in m.text)
    assert "ended" in ended.text
    async with harness.db.uow() as uow:
        assert list(await uow.session.scalars(select(CheckIn))) == []
    await therapist.send_command("alerts", handle)
    view = await therapist.wait_for_message(lambda m: "kill myself" in m.text)
    assert handle in view.text


async def test_words_kept_for_the_therapist_are_readable_in_notes_only(harness: Harness) -> None:
    therapist = await harness.therapist()
    handle, token_a, token_b = await harness.new_couple(therapist)
    alex, blanca = harness.user("Alex"), harness.user("Blanca")
    await harness.join(alex, token_a, typed_timezone="America/New_York")
    await harness.join(blanca, token_b, typed_timezone="Europe/London")
    await harness.settle()
    await _checkin(alex, note="NOTE-for-you-only about money", ok_to_raise="No")
    await alex.wait_for_message(lambda m: "saved" in m.text)
    await _checkin(blanca, note="NOTE-blanca-private", ok_to_raise="No", safety=None)
    await harness.settle()
    assert "NOTE-" not in await _digest_text(harness, therapist, handle)
    await therapist.send_command("notes", handle)
    view = await therapist.wait_for_message(lambda m: "NOTE-for-you-only" in m.text)
    assert "NOTE-blanca-private" in view.text
    assert "NOTE-" not in _everything_seen_by(blanca).replace("NOTE-blanca-private", "")
    async with harness.db.uow() as uow:
        from db.models import AuditEntry

        actions = [e.action for e in await uow.session.scalars(select(AuditEntry))]
    assert "notes.read" in actions


async def test_prefer_not_to_say_shows_in_the_digest_safety_section(harness: Harness) -> None:
    therapist, alex, _, handle = await _couple(harness)
    await _checkin(alex, note=None, safety="Prefer not to say")
    await alex.wait_for_message(lambda m: "saved" in m.text)
    text = await _digest_text(harness, therapist, handle)
    assert "Prefer not to say" in text and "Alex" in text


async def test_odd_digits_in_numbers_get_the_kind_refusal(harness: Harness) -> None:
    _, alex, _, _ = await _couple(harness)
    await alex.send_command("pause", "²")
    refusal = await alex.wait_for_message(lambda m: "1" in m.text and "30" in m.text)
    assert refusal.text == t("en", "partner.pause_invalid", limit=30)


async def test_a_sent_digest_keeps_no_ciphertext_in_the_outbox(harness: Harness) -> None:
    therapist, alex, _, handle = await _couple(harness)
    await _checkin(alex, note="CANARY-sent raise it", ok_to_raise="Yes")
    await alex.wait_for_message(lambda m: "saved" in m.text)
    text = await _digest_text(harness, therapist, handle)
    assert "CANARY-sent" in text
    await harness.bot.maintain()
    async with harness.db.uow() as uow:
        rows = list(await uow.session.scalars(select(Delivery).where(Delivery.kind == "digest")))
    assert rows and all(row.status == "sent" for row in rows)
    assert all(not {"text", "email"} & set(row.params) for row in rows)


async def test_a_new_prompt_ends_a_time_zone_answer_left_pending_in_settings(
    harness: Harness,
) -> None:
    """A mistyped time zone in /settings, then a prompt: the reply is the prompt's answer."""
    _, alex, _, _ = await _couple(harness)
    await alex.send_command("settings")
    await alex.wait_for_message(lambda m: bool(m.buttons))
    await alex.press_button(t("en", "partner.settings_timezone"))
    await alex.wait_for_message(lambda m: bool(m.buttons))
    await alex.send_text("Nowhere/Land")
    await alex.wait_for_message(lambda m: "Nowhere/Land" in m.text)
    await _queue(harness, alex, "hope", "hope.small_win")
    prompt = await alex.wait_for_message(lambda m: "small" in m.text.lower() or bool(m.text))
    await alex.reply_to(prompt, "We laughed at dinner")
    await alex.wait_for_message(lambda m: m.text == t("en", "prompts.saved_raise"))
    async with harness.db.uow() as uow:
        assert await uow.session.scalar(select(Response).where(Response.kind == "hope"))


# Discreet mode covers every flow that shows words ------------------------------------------


async def _open_note(user: FakeUser) -> str:
    """Press Open on the newest neutral note; the message then shows what it holds."""
    note = await user.wait_for_message(lambda m: m.text == t("en", "prompts.discreet_ready"))
    assert note.disable_notification, "a discreet note arrives silently"
    await user.press(note, note.buttons[0][1] or "")
    await harness_wait(user, note)
    return note.text


async def harness_wait(user: FakeUser, note: object) -> None:
    for _ in range(200):
        if getattr(note, "edits", None):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the note was never opened")


async def test_a_discreet_partner_gets_the_revealed_answer_behind_a_neutral_note(
    harness: Harness,
) -> None:
    therapist = await harness.therapist()
    handle, token_a, token_b = await harness.new_couple(therapist)
    alex, blanca = harness.user("Alex"), harness.user("Blanca")
    await harness.join(alex, token_a, typed_timezone="Europe/London", discreet=True)
    await harness.join(blanca, token_b, typed_timezone="Europe/London")
    await harness.settle()
    await _space_prompt(harness, "couple_space.appreciation")
    question = await _open_note(alex)
    assert "appreciated" in question
    prompt = alex.messages[-1]
    await alex.reply_to(prompt, "Your patience")
    await alex.wait_for_message(lambda m: bool(m.buttons) and "share" in m.text.lower())
    await alex.press_button(t("en", "prompts.share_yes"))
    await _answer(blanca, "SHARED-blanca-tea", share=True)
    harness.clock.advance(timedelta(hours=23))  # a reveal waits for each partner's window
    await harness.settle()
    assert not any("SHARED-blanca-tea" in m.text for m in alex.messages if not m.edits)
    revealed = await _open_note(alex)
    assert "SHARED-blanca-tea" in revealed
    del handle


async def test_a_discreet_partner_gets_the_goal_behind_a_neutral_note(harness: Harness) -> None:
    therapist, alex, blanca, handle = await _couple(harness, discreet_a=True)
    await therapist.send_command("goal", f"{handle} GOAL-talk kindly")
    await therapist.wait_for_message(lambda m: "saved" in m.text)
    harness.clock.advance(timedelta(hours=23))  # goal notices wait for each partner's window
    await harness.settle()
    await blanca.wait_for_message(lambda m: "GOAL-talk kindly" in m.text)
    assert not any("GOAL-talk" in m.text for m in alex.messages)
    assert "GOAL-talk kindly" in await _open_note(alex)


async def test_a_discreet_partners_crisis_card_stays_until_read_then_goes(
    harness: Harness,
) -> None:
    _, alex, _, _ = await _couple(harness, discreet_a=True)
    await alex.send_text("I want to kill myself")
    card = await alex.wait_for_message(lambda m: "988" in m.text)
    assert card.buttons and not card.deleted
    await alex.press_button(t("en", "safety.crisis_done"))
    for _ in range(200):
        if card.deleted:
            break
        await asyncio.sleep(0.02)
    assert card.deleted


async def test_a_partner_who_left_can_still_have_their_data_erased_by_the_admin(
    harness: Harness,
) -> None:
    from bot.services.data_rights import erase_seat

    therapist, alex, _, handle = await _couple(harness)
    await _checkin(alex, note="CANARY-left-then-erased", ok_to_raise="No")
    await alex.wait_for_message(lambda m: "saved" in m.text)
    await _leave(alex)
    async with harness.db.uow() as uow:
        await erase_seat(uow, handle, "A", harness.bot.deps.cipher, harness.clock.now())
        await uow.commit()
    async with harness.db.uow() as uow:
        assert list(await uow.session.scalars(select(CheckIn))) == []
        from db.models import AuditEntry

        erased = await uow.session.scalar(select(AuditEntry).where(AuditEntry.action == "erase"))
        assert erased is not None and erased.actor == "cli"
    del therapist


async def test_words_that_raised_an_alert_are_never_quoted_in_the_digest(harness: Harness) -> None:
    """Even marked OK to raise: they stay with the alert, which only the therapist reads."""
    therapist, alex, _, handle = await _couple(harness)
    await _checkin(alex, note="CANARY-risk I want to kill myself", ok_to_raise="Yes")
    await alex.wait_for_message(lambda m: "saved" in m.text)
    assert any("988" in m.text for m in alex.messages)
    text = await _digest_text(harness, therapist, handle)
    assert "CANARY-risk" not in text and "Notes kept private: 1" in text
    await therapist.send_command("alerts", handle)
    await therapist.wait_for_message(lambda m: "CANARY-risk" in m.text)


async def test_crisis_words_replying_to_an_old_prompt_are_its_answer_and_get_the_resources(
    harness: Harness,
) -> None:
    """A reply to a prompt older than the reply window still answers it (and is screened)."""
    _, alex, blanca, _ = await _seeded_couple(harness)
    await _space_prompt(harness, "couple_space.appreciation")
    prompt = await alex.wait_for_message(lambda m: "appreciated" in m.text)
    harness.clock.advance(timedelta(days=4))  # past the 72-hour reply window
    await alex.reply_to(prompt, "some days I want to kill myself")
    await alex.wait_for_message(lambda m: bool(m.buttons) and "1|sh|" in (m.buttons[0][1] or ""))
    assert any("024" in m.text for m in alex.messages)  # Madrid: Spain's lines
    async with harness.db.uow() as uow:
        answer = await uow.session.scalar(select(Response).where(Response.kind == "couple_space"))
        assert answer is not None and answer.risk
    del blanca


async def test_a_discreet_partners_follow_up_and_typed_words_leave_the_chat_once_stored(
    harness: Harness,
) -> None:
    _, alex, _, _ = await _couple(harness, discreet_a=True)
    await _queue(harness, alex, "skill_followup", "skill_followup.soft_startup")
    await _open_note(alex)
    question = alex.messages[-1]
    assert question.buttons
    await alex.press(question, question.buttons[0][1] or "")
    await alex.wait_for_message(lambda m: m.text == t("en", "schedules.optional_text"))
    words = await alex.send_text("CANARY-followup it went well")
    await alex.wait_for_message(lambda m: m.text == t("en", "prompts.saved_raise"))
    assert question.deleted and words.deleted
    async with harness.db.uow() as uow:
        answer = await uow.session.scalar(select(Response).where(Response.kind == "skill_followup"))
        assert answer is not None and answer.text_ciphertext is not None
