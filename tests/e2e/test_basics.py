"""The bot answers everyone kindly: /start without an invitation, /help, unknown input."""

from __future__ import annotations

from bot.locales import t
from tests.e2e.conftest import Harness


async def test_start_without_invite_explains_dyad_and_asks_for_a_link(harness: Harness) -> None:
    stranger = harness.user("Sam")
    await stranger.send_command("start")
    reply = await stranger.wait_for_message()
    assert "Dyad" in reply.text
    assert "invite link from your therapist" in reply.text


async def test_start_speaks_the_users_telegram_language(harness: Harness) -> None:
    stranger = harness.user("Lucía", language_code="es-ES")
    await stranger.send_command("start")
    reply = await stranger.wait_for_message()
    assert "enlace de invitación" in reply.text


async def test_help_lists_the_commands_for_the_role(harness: Harness) -> None:
    stranger = harness.user("Sam")
    await stranger.send_command("help")
    assert "invitation from a therapist" in (await stranger.wait_for_message()).text
    therapist = await harness.therapist()
    await therapist.send_command("help")
    assert "/newcouple" in (await therapist.wait_for_message()).text


async def test_unknown_command_and_stray_text_get_a_helpful_reply(harness: Harness) -> None:
    user = harness.user("Sam")
    await user.send_command("frobnicate")
    assert (await user.wait_for_message()).text == t("en", "common.unknown_command")
    await user.send_text("hello there")
    assert (await user.wait_for_message()).text == t("en", "common.stray_text")


async def test_a_forged_button_is_refused_kindly(harness: Harness) -> None:
    user = harness.user("Sam")
    await user.send_command("start")
    message = await user.wait_for_message()
    # Forge a press on a message that never had buttons (a modified client can).
    await user.press_forged(message, "1|ob|1|consent|yes")
    await harness.fake.wait_for(lambda: user.callback_queries[-1].answered or None, 5.0)
    query = user.callback_queries[-1]
    assert query.answer_text == t("en", "common.stale_button")


async def test_the_command_menu_is_registered_in_both_languages(harness: Harness) -> None:
    calls = harness.fake.calls_of("setMyCommands")
    languages = {call.params.get("language_code") for call in calls}
    assert {None, "es"} <= languages
