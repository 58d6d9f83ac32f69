"""Enrolment and onboarding, end to end: therapist, couple, both partners, and every refusal."""

from __future__ import annotations

import asyncio
import os
import re
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from bot.app import DispatchOptions, DyadBot
from bot.cli import cli
from bot.core.tokens import hash_token
from bot.locales import t
from db.models import Invite, Partner
from fakebotapi import FakeBotAPI, FakeUser
from tests.e2e.conftest import Harness, button_data, links_in


async def _couple_with_both_joined(harness: Harness) -> tuple[FakeUser, FakeUser, FakeUser, str]:
    therapist = await harness.therapist()
    handle, token_a, token_b = await harness.new_couple(therapist)
    alex = harness.user("Alex")
    blanca = harness.user("Blanca", language_code="es")
    await harness.join(alex, token_a)
    await harness.join(blanca, token_b, language="Español")
    await harness.settle()
    return therapist, alex, blanca, handle


async def test_both_partners_join_in_their_own_language_and_the_space_opens(
    harness: Harness,
) -> None:
    therapist, alex, blanca, handle = await _couple_with_both_joined(harness)
    await harness.deliver_waiting()  # the notice comes in each partner's window
    assert alex.last_message is not None and blanca.last_message is not None
    assert alex.last_message.text == t("en", "couple.space_ready")
    assert blanca.last_message.text == t("es", "couple.space_ready")
    told = await therapist.wait_for_message(lambda m: "both partners have joined" in m.text)
    assert handle in told.text
    async with harness.db.uow() as uow:
        partners = list(await uow.session.scalars(select(Partner).order_by(Partner.slot)))
    assert [(p.slot, p.language, p.onboarding_step) for p in partners] == [
        ("A", "en", "done"),
        ("B", "es", "done"),
    ]


async def test_the_welcome_names_the_therapist_and_practice_and_says_what_is_private(
    harness: Harness,
) -> None:
    therapist = await harness.therapist("Ana")
    _, token_a, _ = await harness.new_couple(therapist)
    alex = harness.user("Alex")
    await alex.send_command("start", token_a)
    welcome = await alex.wait_for_message()
    assert "Ana" in welcome.text and "North Practice" in welcome.text
    assert "Your partner never sees them" in welcome.text
    assert "not an emergency service" in welcome.text
    assert welcome.button_texts == [t("en", "onboarding.accept"), t("en", "onboarding.decline")]


async def test_declining_keeps_nothing_but_the_decline(harness: Harness) -> None:
    therapist = await harness.therapist()
    handle, token_a, _ = await harness.new_couple(therapist)
    alex = harness.user("Alex")
    await alex.send_command("start", token_a)
    await alex.wait_for_message()
    await alex.press_button(t("en", "onboarding.decline"))
    assert (await alex.wait_for_message()).text == t("en", "onboarding.declined")
    async with harness.db.uow() as uow:
        partner = await uow.session.scalar(select(Partner).where(Partner.slot == "A"))
    assert partner is not None
    assert (partner.telegram_user_id, partner.chat_id, partner.display_name) == (None, None, None)
    assert partner.onboarding_step == "declined"
    await harness.settle()
    notice = await therapist.wait_for_message(lambda m: "chose not to join" in m.text)
    assert handle in notice.text


async def test_refused_tokens_change_nothing(harness: Harness) -> None:
    therapist = await harness.therapist()
    handle, token_a, token_b = await harness.new_couple(therapist)
    alex = harness.user("Alex")
    await harness.join(alex, token_a)

    intruder = harness.user("Mallory")
    await intruder.send_command("start", token_a)
    assert (await intruder.wait_for_message()).text == t("en", "onboarding.invite_used")
    await intruder.send_command("start", "A" * 32)
    assert (await intruder.wait_for_message()).text == t("en", "onboarding.invite_unknown")
    await intruder.send_command("start", "not a token!")
    assert (await intruder.wait_for_message()).text == t("en", "onboarding.invite_unknown")

    await therapist.send_command("invite", f"{handle} B")
    fresh = links_in(await therapist.wait_for_message(lambda m: bool(links_in(m))))[0]
    await intruder.send_command("start", token_b)
    assert (await intruder.wait_for_message()).text == t("en", "onboarding.invite_revoked")

    harness.clock.advance(timedelta(days=8))
    await intruder.send_command("start", fresh)
    assert (await intruder.wait_for_message()).text == t("en", "onboarding.invite_expired")

    async with harness.db.uow() as uow:
        partner_b = await uow.session.scalar(select(Partner).where(Partner.slot == "B"))
        invite = await uow.session.scalar(
            select(Invite).where(Invite.token_hash == hash_token(fresh))
        )
    assert partner_b is not None and partner_b.telegram_user_id is None
    assert invite is not None and invite.used_at is None


async def test_tokens_are_unguessable_and_stored_only_as_hashes(harness: Harness) -> None:
    therapist = await harness.therapist()
    _, token_a, token_b = await harness.new_couple(therapist)
    for token in (token_a, token_b):
        assert re.fullmatch(r"[A-Za-z0-9_-]{32}", token)
    async with harness.db.uow() as uow:
        hashes = set(await uow.session.scalars(select(Invite.token_hash)))
    assert hash_token(token_a) in hashes and token_a not in hashes


async def test_a_therapist_acts_on_their_own_couples_only(harness: Harness) -> None:
    first = await harness.therapist("Ana")
    handle, _, _ = await harness.new_couple(first)
    second = await harness.therapist("Bea")
    for command in (f"goal {handle} Be kind", f"close {handle}", f"invite {handle} A"):
        name, _, args = command.partition(" ")
        await second.send_command(name, args)
        reply = await second.wait_for_message()
        assert reply.text == t("en", "couple.unknown_handle", handle=handle)
    await second.send_command("couples")
    assert (await second.wait_for_message()).text == t("en", "couple.list_empty")


async def test_a_partner_cannot_use_therapist_commands(harness: Harness) -> None:
    therapist = await harness.therapist()
    handle, token_a, _ = await harness.new_couple(therapist)
    alex = harness.user("Alex")
    await harness.join(alex, token_a)
    for name, args in (("newcouple", "X"), ("couples", ""), ("goal", f"{handle} mine")):
        await alex.send_command(name, args)
        assert (await alex.wait_for_message()).text == t("en", "common.not_for_you")


async def test_a_forged_or_foreign_button_changes_nothing(harness: Harness) -> None:
    therapist = await harness.therapist()
    _, token_a, token_b = await harness.new_couple(therapist)
    alex, blanca = harness.user("Alex"), harness.user("Blanca")
    await alex.send_command("start", token_a)
    await alex.wait_for_message()
    await blanca.send_command("start", token_b)
    consent_b = await blanca.wait_for_message()
    async with harness.db.uow() as uow:
        a = await uow.session.scalar(select(Partner).where(Partner.slot == "A"))
    assert a is not None
    # Blanca replays a button naming Alex's partner id, then an onboarding step out of turn.
    for data in (f"1|ob|{a.id}|consent|yes", f"1|ob|{a.id + 1}|window|morning", "2|ob|x", "junk"):
        await blanca.press_forged(consent_b, data)
        await harness.fake.wait_for(lambda: blanca.callback_queries[-1].answered or None, 5.0)
        assert blanca.callback_queries[-1].answer_text == t("en", "common.stale_button")
    async with harness.db.uow() as uow:
        steps = {p.slot: p.onboarding_step for p in await uow.session.scalars(select(Partner))}
    assert steps == {"A": "consent", "B": "consent"}


async def test_onboarding_message_counts_do_not_depend_on_choices(harness: Harness) -> None:
    therapist = await harness.therapist()
    _, token_a, token_b = await harness.new_couple(therapist)
    alex, blanca = harness.user("Alex"), harness.user("Blanca", "es")
    await harness.join(alex, token_a, timezone_index=2, window="Morning", discreet=True)
    await harness.join(
        blanca, token_b, language="Español", typed_timezone="pacific/chatham", window="Evening"
    )
    await harness.settle()
    assert len(alex.messages) == len(blanca.messages)


async def test_nothing_one_partner_enters_reaches_the_other(harness: Harness) -> None:
    therapist = await harness.therapist()
    _, token_a, token_b = await harness.new_couple(therapist)
    alex = harness.user("Zephyrine")
    blanca = harness.user("Quillon", "es")
    await harness.join(alex, token_a, typed_timezone="Pacific/Chatham", window="Morning")
    await harness.join(blanca, token_b, language="Español", typed_timezone="Asia/Kathmandu")
    await harness.settle()
    await alex.send_command("settings")
    await alex.wait_for_message(lambda m: bool(m.buttons))
    await alex.press_button("Time zone")
    await alex.wait_for_message()
    await alex.send_text("America/Argentina/Ushuaia")
    assert (await alex.wait_for_message()).text == t("en", "partner.saved")
    await alex.send_command("pause", "4")
    await alex.wait_for_message()
    await harness.settle()
    for canary in ("Zephyrine", "Chatham", "Ushuaia", "Morning", "Mañana"):
        assert not any(canary in m.text for m in blanca.messages), canary
    for canary in ("Quillon", "Kathmandu"):
        assert not any(canary in m.text for m in alex.messages), canary
    assert len(alex.messages) - 4 == len(blanca.messages)  # settings, tz, saved, paused


async def test_onboarding_survives_a_restart_half_way(harness: Harness, fake: FakeBotAPI) -> None:
    therapist = await harness.therapist()
    _, token_a, _ = await harness.new_couple(therapist)
    alex = harness.user("Alex")
    await alex.send_command("start", token_a)
    await alex.wait_for_message()
    await alex.press_button(t("en", "onboarding.accept"))
    await alex.wait_for_message()
    await alex.press_button("English")
    await alex.wait_for_message(lambda m: bool(m.buttons))

    await harness.bot.stop()
    harness.bot = DyadBot(
        harness.bot.deps,
        fake.token,
        dispatch=DispatchOptions(per_chat_interval=0.0, idle_seconds=0.05, plan_every_seconds=0),
    )
    await harness.bot.start()
    await alex.send_command("start")
    resumed = await alex.wait_for_message()
    assert resumed.text == t("en", "onboarding.timezone_question")
    await alex.press(resumed, button_data(resumed, 0))
    assert (await alex.wait_for_message()).text == t("en", "onboarding.window_question")


async def test_blocking_marks_the_partner_unreachable_and_tells_the_therapist_once(
    harness: Harness,
) -> None:
    therapist, alex, blanca, handle = await _couple_with_both_joined(harness)
    before_b = len(blanca.messages)
    await alex.block_bot()
    await harness.fake.wait_for(lambda: harness.fake.pending_updates == [] or None, 5.0)
    await therapist.wait_for_message(lambda m: "can no longer be reached" in m.text)
    await harness.settle()
    notices = [m for m in therapist.messages if "can no longer be reached" in m.text]
    assert len(notices) == 1 and handle in notices[0].text
    await alex.unblock_bot()
    await alex.send_command("start")
    await alex.wait_for_message()
    await harness.settle()
    await therapist.wait_for_message(lambda m: "can be reached again" in m.text)
    assert len(blanca.messages) == before_b


async def test_pause_resume_and_settings_change_only_that_partner(harness: Harness) -> None:
    _, alex, blanca, _ = await _couple_with_both_joined(harness)
    await alex.send_command("pause", "99")
    assert (await alex.wait_for_message()).text == t("en", "partner.pause_invalid", limit=30)
    await alex.send_command("pause", "3")
    assert "paused until" in (await alex.wait_for_message()).text
    await alex.send_command("resume")
    assert (await alex.wait_for_message()).text == t("en", "partner.resumed")
    await blanca.send_command("settings")
    await blanca.wait_for_message()
    await blanca.press_button("Idioma")
    await blanca.wait_for_message()
    await blanca.press_button("English")
    assert (await blanca.wait_for_message()).text == t("en", "partner.saved")
    async with harness.db.uow() as uow:
        partners = {p.slot: p for p in await uow.session.scalars(select(Partner))}
    assert partners["A"].paused_until == harness.clock.now() and partners["A"].language == "en"
    assert partners["B"].language == "en"


async def test_stop_asks_first_and_the_therapist_is_told(harness: Harness) -> None:
    therapist, alex, _, handle = await _couple_with_both_joined(harness)
    await alex.send_command("stop")
    await alex.wait_for_message()
    await alex.press_button(t("en", "partner.stop_no"))
    assert (await alex.wait_for_message()).text == t("en", "partner.stayed")
    await alex.send_command("stop")
    await alex.wait_for_message()
    await alex.press_button(t("en", "partner.stop_yes"))
    assert (await alex.wait_for_message()).text == t("en", "partner.stopped")
    await harness.settle()
    left = await therapist.wait_for_message(lambda m: "has left Dyad" in m.text)
    assert handle in left.text
    await alex.send_command("help")
    assert "invitation from a therapist" in (await alex.wait_for_message()).text


async def test_goal_and_close_reach_both_partners_in_the_same_words(harness: Harness) -> None:
    therapist, alex, blanca, handle = await _couple_with_both_joined(harness)
    await therapist.send_command("goal", f"{handle} Talk <gently> & often")
    await therapist.wait_for_message(lambda m: "is saved" in m.text)
    harness.clock.advance(timedelta(hours=9))  # the goal notice waits for each one's window
    await harness.settle()
    goal_a = await alex.wait_for_message(lambda m: "shared goal" in m.text)
    goal_b = await blanca.wait_for_message(lambda m: "objetivo compartido" in m.text)
    assert "Talk <gently> & often" in goal_a.text and "Talk <gently> & often" in goal_b.text
    await therapist.send_command("close")
    picker = await therapist.wait_for_message(lambda m: bool(m.buttons))
    await therapist.press(picker, button_data(picker, 0))
    await therapist.wait_for_message(lambda m: bool(m.buttons))
    await therapist.press_button(t("en", "couple.close_yes"))
    await therapist.wait_for_message(lambda m: "no longer uses Dyad" in m.text)
    await harness.settle()
    assert (await alex.wait_for_message()).text == t("en", "couple.closed")
    assert (await blanca.wait_for_message()).text == t("es", "couple.closed")


async def test_couples_lists_handles_and_partner_states(harness: Harness) -> None:
    therapist, alex, _, handle = await _couple_with_both_joined(harness)
    await alex.send_command("pause", "2")
    await alex.wait_for_message()
    await therapist.send_command("couples")
    listing = await therapist.wait_for_message(lambda m: handle in m.text)
    assert "A paused" in listing.text and "B joined" in listing.text


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
async def test_the_admin_command_line_enrols_a_therapist(
    harness: Harness, fake: FakeBotAPI, tmp_path: Path
) -> None:
    env = {
        "DYAD_DATABASE_URL": harness.db.url,
        "DYAD_BOT_TOKEN": fake.token,
        "DYAD_TELEGRAM_API_URL": fake.base_url,
    }
    runner = CliRunner()
    created = await asyncio.to_thread(
        runner.invoke,
        cli,
        ["practice", "create", "--name", "Clínica Sur", "--timezone", "Europe/Madrid"],
        env=env,
    )
    assert created.exit_code == 0, created.output
    slug = created.output.strip().splitlines()[-1]
    assert slug == "clinica-sur"
    bad = await asyncio.to_thread(
        runner.invoke, cli, ["therapist", "invite", "--practice", "nope", "--name", "X"], env=env
    )
    assert bad.exit_code != 0 and "no practice" in bad.output
    invited = await asyncio.to_thread(
        runner.invoke, cli, ["therapist", "invite", "--practice", slug, "--name", "Dr Sol"], env=env
    )
    assert invited.exit_code == 0, invited.output
    link = invited.output.strip().splitlines()[-1]
    assert link.startswith(f"https://t.me/{fake.bot_username}?start=")
    sol = harness.user("Sol")
    await sol.send_command("start", link.rsplit("=", 1)[1])
    welcome = await sol.wait_for_message()
    assert "Dr Sol" in welcome.text and "Clínica Sur" in welcome.text
    listed = await asyncio.to_thread(
        runner.invoke, cli, ["therapist", "list", "--practice", slug], env=env
    )
    assert "joined" in listed.output and "Dr Sol" in listed.output
    assert os.environ.get("DYAD_BOT_TOKEN") != fake.token
