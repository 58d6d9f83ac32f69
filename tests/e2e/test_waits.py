"""A command ends whatever typed answer the bot was waiting for from its sender.

The end is written in the first transaction of the command's handling (``db.inbox``), so it
holds whether the update was claimed when it was stored or taken over by the sweeper.
"""

from __future__ import annotations

from bot.locales import t
from tests.e2e.conftest import Harness


async def test_a_command_ends_the_goal_the_bot_was_waiting_for(harness: Harness) -> None:
    therapist = await harness.therapist()
    handle, _, _ = await harness.new_couple(therapist)

    await therapist.send_command("goal", handle)
    asked = await therapist.wait_for_message()
    assert asked.text == t("en", "couple.goal_prompt", handle=handle)

    await therapist.send_command("help")
    await therapist.wait_for_message()
    await therapist.send_text("GOAL-WORDS listen first")
    after = await therapist.wait_for_message()
    assert after.text == t("en", "common.stray_text"), "the wait ended with the command"
    await harness.settle()
    assert all("GOAL-WORDS" not in m.text for m in therapist.messages[:-1] if m.text)

    # Without a command in between, the typed text is the goal.
    await therapist.send_command("goal", handle)
    await therapist.wait_for_message()
    await therapist.send_text("listen first")
    saved = await therapist.wait_for_message()
    assert saved.text == t("en", "couple.goal_saved", handle=handle)


async def test_a_refused_command_ends_the_wait_too(harness: Harness) -> None:
    therapist = await harness.therapist()
    handle, _, _ = await harness.new_couple(therapist)
    await therapist.send_command("goal", handle)
    await therapist.wait_for_message()

    await therapist.send_command("alerts", "c999")  # refused: no such couple
    refusal = await therapist.wait_for_message()
    assert refusal.text != t("en", "couple.goal_saved", handle=handle)
    await therapist.send_text("listen first")
    after = await therapist.wait_for_message()
    assert after.text == t("en", "common.stray_text")
