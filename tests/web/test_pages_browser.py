"""A prompt's answer, a skill's follow-up and /settings on their pages, in headless Chromium.

The same browser and harness as test_miniapp_browser.py (one browser for this module);
each partner in their own language at phone width, parametrised inside one test so the
module stays cheap. The HTTP tests (test_prompt_http.py, test_settings_http.py) compare
the stored rows with the chat flow's on both databases.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.locales import t
from db.models import Alert, Couple, Partner
from fakebotapi.webapps import launch_url, user_init_data
from tests.web.conftest import WebHarness
from tests.web.flows import (
    chat_text,
    couple,
    has_page_button,
    page_button,
    send_prompt,
    stored_responses,
)
from tests.web.test_miniapp_browser import PHONE, _done, _page, browser, harness

pytestmark = pytest.mark.asyncio(loop_scope="module")
__all__ = ["browser", "harness"]  # the module's fixtures, shared with the check-in's tests

WORDS = {"en": "We laughed at dinner again, like before.", "es": "Volvimos a reírnos en la cena."}
LOCALES = {"en": "en-US", "es": "es-ES"}
DOCS = Path(__file__).parents[2] / "docs"


async def _screenshot(page: Any, name: str, wanted: bool) -> None:
    """With DYAD_UPDATE_SCREENSHOTS set, the page as the README shows it."""
    if wanted and os.environ.get("DYAD_UPDATE_SCREENSHOTS"):
        await page.screenshot(path=str(DOCS / name), full_page=True)


async def _narrow(page: Any) -> None:
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], "the page scrolls sideways at 360 px"


async def test_each_partner_answers_a_prompt_on_its_page_and_the_chat_holds_no_answer(
    browser: Any, harness: WebHarness
) -> None:
    _, alex, blanca, _ = await couple(harness)
    for user, language in ((alex, "en"), (blanca, "es")):
        message = await send_prompt(harness, user, "hope", "hope.small_win")
        after = len(user.messages)
        page = await _page(browser, PHONE, LOCALES[language])
        await page.goto(user.open_web_app(message, page_button(language)))
        await page.get_by_role(
            "heading", level=1, name=t(language, "webapp.prompt_title")
        ).wait_for()
        assert await page.get_attribute("html", "lang") == language
        await page.get_by_label(t(language, "webapp.reply_label")).fill(WORDS[language])
        await page.get_by_label(t(language, "prompts.raise_yes"), exact=True).check()
        await _narrow(page)
        await _screenshot(page, "miniapp-prompt.png", language == "en")
        await page.get_by_role("button", name=t(language, "webapp.send_answer")).click()
        await page.get_by_role("heading", name=t(language, "webapp.saved_title")).wait_for()
        assert await page.locator("#crisis").is_hidden()
        await harness.settle()
        assert [m.text for m in user.messages[after:]] == [t(language, "prompts.noted")]
        assert WORDS[language] not in chat_text(user)
        await _done(page)
    rows = await stored_responses(harness)
    assert [
        [(r["kind"], r["text"], r["ok_to_raise"], r["risk"]) for r in v] for v in rows.values()
    ] == [
        [("hope", WORDS["en"], True, False)],
        [("hope", WORDS["es"], True, False)],
    ]


async def test_a_follow_up_with_crisis_words_shows_the_resources_at_once_and_alerts_once(
    browser: Any, harness: WebHarness
) -> None:
    therapist, alex, blanca, handle = await couple(harness)
    before_a = len(alex.messages)
    message = await send_prompt(harness, blanca, "skill_followup", "skill_followup.soft_startup")
    page = await _page(browser, PHONE, "es-ES")
    await page.goto(blanca.open_web_app(message, page_button("es")))
    await page.get_by_label(t("es", "schedules.choice.partly"), exact=True).check()
    card = page.locator("#crisis")
    assert await card.is_hidden()
    words = page.get_by_label(t("es", "webapp.followup_words"))
    await words.fill("Lo intenté, pero a veces quiero morirme.")
    await words.press("Tab")  # leaving the field keeps the draft
    await card.wait_for(state="visible")
    assert "024" in await card.inner_text()
    await _narrow(page)
    await page.get_by_role("button", name=t("es", "webapp.send_answer")).click()
    await page.get_by_role("heading", name=t("es", "webapp.saved_title")).wait_for()
    assert await page.locator("#crisis").is_visible()
    await harness.settle()
    alerts = [m for m in therapist.messages if "Safety alert" in m.text]
    assert len(alerts) == 1 and handle in alerts[0].text and "morir" not in alerts[0].text
    async with harness.db.uow() as uow:
        assert await uow.session.scalar(select(func.count()).select_from(Alert)) == 1
        assert await uow.session.scalar(select(Couple.safety_hold))
    (row,) = (await stored_responses(harness)).values()
    assert row[0]["choice"] == "partly" and row[0]["risk"] and "morirme" in row[0]["text"]
    assert "024" not in chat_text(blanca) and "morir" not in chat_text(blanca)
    assert len(alex.messages) == before_a
    await _done(page)


async def test_each_partner_changes_settings_on_its_page_and_foreign_init_data_is_refused(
    browser: Any, harness: WebHarness
) -> None:
    _, alex, blanca, _ = await couple(harness)
    # Blanca's own initData on Alex's prompt page, and forged data: a clear page, no change.
    message = await send_prompt(harness, alex, "hope", "hope.small_win")
    url = message.web_app_url_for(t("en", "webapp.button"))
    assert url is not None
    page = await _page(browser, PHONE, "es-ES")
    own = user_init_data(blanca.to_api(), harness.fake.token, harness.fake.date())
    await page.goto(launch_url(url, own))
    await page.get_by_role("heading", name=t("es", "webapp.error_title")).wait_for()
    assert t("es", "webapp.prompt_stale") in await page.get_by_role("alert").inner_text()
    launch = alex.open_web_app(message, t("en", "webapp.button"))
    forged = launch.replace(f"%2522id%2522%253A{alex.id}", f"%2522id%2522%253A{blanca.id}")
    assert forged != launch
    await page.goto(forged)
    await page.get_by_role("heading", name=t("es", "webapp.error_title")).wait_for()
    assert t("es", "webapp.error_forged") in await page.get_by_role("alert").inner_text()
    assert await stored_responses(harness) == {}
    await _done(page)
    # Then each partner's settings, on the page.
    for user, language in ((alex, "en"), (blanca, "es")):
        await user.send_command("settings")
        menu = await user.wait_for_message(has_page_button)
        after = len(user.messages)
        page = await _page(browser, PHONE, LOCALES[language])
        await page.goto(user.open_web_app(menu, page_button(language)))
        await page.get_by_role("heading", name=t(language, "webapp.settings_title")).wait_for()
        await page.get_by_label(t(language, "onboarding.window_morning"), exact=True).check()
        await page.get_by_label(t(language, "onboarding.discreet_yes"), exact=True).check()
        await page.get_by_label(t(language, "webapp.timezone_type")).fill("Europe/Lisbon")
        await page.get_by_label(t(language, "webapp.pause_for"), exact=True).check()
        await page.get_by_label(t(language, "webapp.pause_days")).fill("3")
        await _narrow(page)
        await page.get_by_role("button", name=t(language, "webapp.settings_save")).click()
        await page.get_by_role("heading", name=t(language, "webapp.saved_title")).wait_for()
        await harness.settle()
        assert [m.text for m in user.messages[after:]] == [t(language, "partner.saved")]
        await _done(page)
    async with harness.db.uow() as uow:
        rows = list(await uow.session.scalars(select(Partner).order_by(Partner.id)))
    assert [(p.window, p.discreet, p.timezone) for p in rows] == [
        ("morning", True, "Europe/Lisbon")
    ] * 2
    assert rows[0].paused_until == rows[1].paused_until is not None
