"""The one-page check-in in real headless Chromium, driven by Playwright.

Chromium is Debian's (/usr/bin/chromium); Playwright never downloads a browser of its
own. Locally, a machine without it skips these tests with one line saying how to install
it; in CI (CI=true) a missing browser fails them. One browser serves the whole module;
each test opens a fresh context (no cookies, no storage carried over).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import func, select

from bot.core.clock import ManualClock
from bot.locales import t
from db.engine import Database
from db.models import Alert, Couple
from fakebotapi import FakeBotAPI, FakeUser
from fakebotapi.webapps import launch_url, user_init_data
from tests.conftest import open_database
from tests.e2e.test_checkins import _checkin as chat_checkin
from tests.web.conftest import WebHarness, start_web_harness
from tests.web.flows import ANSWERS, chat_text, couple, invite_to_checkin, stored_checkins

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
INSTALL_HINT = "install it with `apt-get install chromium` (Debian) or run `make test`"
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 800}
SCREENSHOT = Path(__file__).parents[2] / "docs" / "miniapp-checkin.png"

pytestmark = pytest.mark.asyncio(loop_scope="module")


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"browser tests must run in CI: {reason}")
    pytest.skip(f"{reason}: {INSTALL_HINT}")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Any]:
    """One headless Chromium for the module."""
    if not os.path.exists(CHROMIUM):  # noqa: ASYNC240 - once per module, before any I/O
        _unavailable(f"no Chromium at {CHROMIUM}")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        _unavailable("the playwright Python package is missing")
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=LAUNCH_ARGS, headless=True
        )
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest_asyncio.fixture(loop_scope="module")
async def harness(clock: ManualClock, tmp_path: Path) -> AsyncIterator[WebHarness]:
    """Dyad with its Mini App on a SQLite file (the HTTP tests cover PostgreSQL too)."""
    db: Database
    db, _ = await open_database("sqlite", tmp_path)
    async with FakeBotAPI(clock=clock) as fake:
        web_harness, bot, web = await start_web_harness(fake, db, clock)
        try:
            yield web_harness
        finally:
            await bot.stop()
            await web.stop()
    await db.dispose()


_PROBLEMS: dict[int, list[str]] = {}


async def _page(browser: Any, viewport: dict[str, int], locale: str) -> Any:
    """A fresh browser context and page, noting any script error or CSP violation."""
    context = await browser.new_context(viewport=viewport, locale=locale)
    page = await context.new_page()
    problems = _PROBLEMS.setdefault(id(page), [])

    def console(message: Any) -> None:
        # A refusal's 403 is logged as a failed load: expected, not a problem of the page.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            problems.append(message.text)

    page.on("console", console)
    page.on("pageerror", lambda error: problems.append(str(error)))
    return page


async def _done(page: Any) -> None:
    """Close the page's context; the page must have run without script or CSP errors."""
    problems = _PROBLEMS.pop(id(page), [])
    await page.context.close()
    assert not problems, problems


async def _fill(page: Any, language: str, answers: dict[str, str]) -> None:
    """Answer as a person does: tap the numbers and choices, type the note."""
    labels = {
        "en": {"yes": "Yes", "no": "No", "ok_no": "No, just for my therapist"},
        "es": {"yes": "Sí", "no": "No", "ok_no": "No, solo para mi terapeuta"},
    }[language]
    form = page.locator("form#checkin")
    for item in ("wellbeing", "hope", "safe_to_be_honest", "understood"):
        group = form.locator(f"#item-{item}")
        await group.get_by_label(answers[item], exact=True).check()
    await form.locator("#item-skill").get_by_label(labels["yes"], exact=True).check()
    await form.get_by_role("textbox").fill(answers["note"])
    await form.locator("#item-ok_to_raise").get_by_label(labels["ok_no"], exact=True).check()
    await form.locator("#item-afraid_or_unsafe").get_by_label(labels["no"], exact=True).check()


async def _open_from_chat(page: Any, user: FakeUser, harness: WebHarness, language: str) -> None:
    invitation = await invite_to_checkin(harness, user, salt=f"{user.id}")
    await page.goto(user.open_web_app(invitation, t(language, "webapp.button")))
    await page.locator("form#checkin").wait_for()


@pytest.mark.parametrize(("alex_size", "blanca_size"), [(PHONE, DESKTOP), (DESKTOP, PHONE)])
async def test_each_partner_checks_in_on_one_page_and_the_chat_holds_nothing_of_it(
    browser: Any,
    harness: WebHarness,
    alex_size: dict[str, int],
    blanca_size: dict[str, int],
    tmp_path: Path,
) -> None:
    therapist, alex, blanca, _ = await couple(harness)
    for user, language, size, locale in (
        (alex, "en", alex_size, "en-US"),
        (blanca, "es", blanca_size, "es-ES"),
    ):
        page = await _page(browser, size, locale)
        await _open_from_chat(page, user, harness, language)
        after_invitation = len(user.messages)
        assert await page.get_attribute("html", "lang") == language
        title = t(language, "webapp.checkin_title")
        await page.get_by_role("heading", level=1, name=title).wait_for()
        # Every item on one screen, each a labelled question.
        assert await page.locator("form#checkin .item").count() == 8
        await _fill(page, language, ANSWERS)
        if size == PHONE:
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], "the page scrolls sideways at 360 px"
            if language == "en":
                shot = tmp_path / "checkin.png"
                await page.screenshot(path=str(shot), full_page=True)
                if os.environ.get("DYAD_UPDATE_SCREENSHOTS"):
                    shutil.copyfile(shot, SCREENSHOT)
        await page.get_by_role("button", name=t(language, "webapp.send")).click()
        await page.get_by_role("heading", name=t(language, "webapp.saved_title")).wait_for()
        assert await page.locator("#crisis").is_hidden()
        await harness.settle()
        # The chat got the chat's own neutral note, and nothing else.
        thanks = t(language, "checkin.thanks")
        assert [m.text for m in user.messages[after_invitation:]] == [thanks]
        assert "dishes again" not in chat_text(user)
        await _done(page)
    rows = list((await stored_checkins(harness)).values())
    assert rows[0] == rows[1]
    assert rows[0]["answers"]["wellbeing"] == 7 and rows[0]["note"] == ANSWERS["note"]
    assert not [m for m in therapist.messages if "Safety alert" in m.text]


async def test_the_page_stores_what_the_chat_flow_stores(browser: Any, harness: WebHarness) -> None:
    _, alex, blanca, _ = await couple(harness)
    page = await _page(browser, PHONE, "es-ES")
    await _open_from_chat(page, blanca, harness, "es")
    await _fill(page, "es", ANSWERS)
    await page.get_by_role("button", name=t("es", "webapp.send")).click()
    await page.get_by_role("heading", name=t("es", "webapp.saved_title")).wait_for()
    await chat_checkin(alex, note=ANSWERS["note"], ok_to_raise="No", skill="Yes", safety="No")
    await alex.wait_for_message(lambda m: m.text == t("en", "checkin.thanks"))
    chat_row, page_row = (await stored_checkins(harness)).values()
    assert page_row == chat_row
    await _done(page)


async def test_a_crisis_note_shows_the_resources_at_once_and_alerts_the_therapist(
    browser: Any, harness: WebHarness
) -> None:
    therapist, alex, blanca, handle = await couple(harness)
    before_b = len(blanca.messages)
    page = await _page(browser, PHONE, "en-US")
    await _open_from_chat(page, alex, harness, "en")
    card = page.locator("#crisis")
    assert await card.is_hidden()
    await page.locator("textarea").fill("Some days I just want to kill myself.")
    await page.locator("textarea").press("Tab")  # leaving the field keeps the draft
    await card.wait_for(state="visible")
    assert "988" in await card.inner_text() and await page.get_by_role("alert").count() >= 1
    assert await page.locator('#crisis a[href="tel:988"]').count() == 1
    await harness.settle()
    alerts = [m for m in therapist.messages if "Safety alert" in m.text]
    assert len(alerts) == 1 and handle in alerts[0].text and "kill" not in alerts[0].text
    await page.get_by_role("button", name=t("en", "webapp.send")).click()
    await page.get_by_role("heading", name=t("en", "webapp.saved_title")).wait_for()
    assert await page.locator("#crisis").is_visible()
    await harness.settle()
    assert len([m for m in therapist.messages if "Safety alert" in m.text]) == 1
    async with harness.db.uow() as uow:
        assert await uow.session.scalar(select(Couple.safety_hold))
        assert await uow.session.scalar(select(func.count()).select_from(Alert)) == 1
    assert "988" not in chat_text(alex) and "kill" not in chat_text(alex)
    assert len(blanca.messages) == before_b
    await _done(page)


async def test_the_check_in_works_with_a_keyboard_alone(browser: Any, harness: WebHarness) -> None:
    _, alex, _, _ = await couple(harness)
    page = await _page(browser, DESKTOP, "en-US")
    await _open_from_chat(page, alex, harness, "en")
    await page.locator("body").focus()
    await page.keyboard.press("Tab")  # into the first question, on its "Skip" (checked)
    focused = await page.evaluate("document.activeElement.name")
    assert focused == "wellbeing"
    await page.keyboard.press("ArrowRight")  # wraps to 0
    for _ in range(7):
        await page.keyboard.press("ArrowRight")
    assert await page.locator("#wellbeing-7").is_checked()
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.name") == "hope"
    # Straight to the button: every other question left as it is (skipped).
    await page.locator("button[type=submit]").focus()
    await page.keyboard.press("Enter")
    await page.get_by_role("heading", name=t("en", "webapp.saved_title")).wait_for()
    (row,) = (await stored_checkins(harness)).values()
    assert row["answers"] == {"wellbeing": 7} and row["status"] == "complete"
    await _done(page)


async def test_forged_stale_and_other_users_init_data_get_a_clear_page_and_change_nothing(
    browser: Any, harness: WebHarness
) -> None:
    _, alex, blanca, _ = await couple(harness)
    invitation = await invite_to_checkin(harness, alex)
    launch = alex.open_web_app(invitation, t("en", "webapp.button"))
    page_url = invitation.web_app_url_for(t("en", "webapp.button"))
    assert page_url is not None
    page = await _page(browser, PHONE, "es-ES")
    # Forged: Blanca's id put into Alex's signed data.
    forged = launch.replace(f"%2522id%2522%253A{alex.id}", f"%2522id%2522%253A{blanca.id}")
    assert forged != launch
    await page.goto(forged)
    await page.get_by_role("heading", name=t("es", "webapp.error_title")).wait_for()
    assert t("es", "webapp.error_forged") in await page.get_by_role("alert").inner_text()
    # Another user's: Blanca's own, genuine initData on Alex's invitation.
    own = user_init_data(blanca.to_api(), harness.fake.token, harness.fake.date())
    await page.goto(launch_url(page_url, own))
    await page.get_by_role("heading", name=t("es", "webapp.error_title")).wait_for()
    assert t("es", "webapp.stale") in await page.get_by_role("alert").inner_text()
    # Stale: Alex's launch, more than an hour later.
    harness.clock.advance(timedelta(hours=1, minutes=1))
    english = await _page(browser, PHONE, "en-US")
    await english.goto(launch)
    await english.get_by_role("heading", name=t("en", "webapp.error_title")).wait_for()
    assert t("en", "webapp.error_stale") in await english.get_by_role("alert").inner_text()
    # Opened outside Telegram: no initData at all.
    await english.goto(page_url)
    await english.get_by_text(t("en", "webapp.open_from_telegram")).wait_for()
    rows = await stored_checkins(harness)
    assert all(row["answers"] == {} for row in rows.values())
    async with harness.db.uow() as uow:
        assert await uow.session.scalar(select(func.count()).select_from(Alert)) == 0
    await _done(page)
    await _done(english)
