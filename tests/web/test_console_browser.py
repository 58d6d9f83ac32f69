"""The therapist console in real headless Chromium (Debian's), driven by Playwright.

One browser for the module, a fresh context (no cookies) per person. The console's
cookie is Secure in production; this harness serves loopback http and so turns on
``console_insecure_loopback_cookie``, which the settings allow for loopback only.
Screenshots for the README are refreshed with ``DYAD_UPDATE_SCREENSHOTS=1``.
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
from sqlalchemy import select

from bot.core.clock import ManualClock
from bot.locales import t
from db.engine import Database
from db.models import Couple
from fakebotapi import FakeBotAPI
from tests.conftest import open_database
from tests.web.conftest import WebHarness, start_web_harness
from tests.web.console_flows import (
    PRIVATE_WORDS,
    console_link,
    seed_history,
    therapist_of_practice,
)
from tests.web.flows import couple
from tests.web.test_miniapp_browser import DESKTOP, PHONE, _done, _page, browser

__all__ = ["browser"]  # the module's one Chromium, shared with the Mini App tests' fixture

DOCS = Path(__file__).parents[2] / "docs"
A4_CSS_WIDTH = 794  # 210 mm at 96 px per inch

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module")
async def harness(clock: ManualClock, tmp_path: Path) -> AsyncIterator[WebHarness]:
    """Dyad with its web layer on a SQLite file (the HTTP tests cover PostgreSQL too)."""
    db: Database
    db, _ = await open_database("sqlite", tmp_path)
    async with FakeBotAPI(clock=clock) as fake:
        web_harness, bot, web = await start_web_harness(fake, db, clock)
        deps = bot.deps
        deps.settings = deps.settings.model_copy(update={"console_insecure_loopback_cookie": True})
        try:
            yield web_harness
        finally:
            await bot.stop()
            await web.stop()
    await db.dispose()


async def _sign_in(page: Any, link: str, language: str = "en") -> None:
    await page.goto(link)
    await page.get_by_role("button", name=t(language, "console.login_button")).click()


async def _couple_id(harness: WebHarness, handle: str) -> int:
    async with harness.db.uow() as uow:
        found = await uow.session.scalar(select(Couple.id).where(Couple.handle == handle))
    assert found is not None
    return int(found)


async def test_the_login_link_works_once_expires_and_opens_only_ones_own_couples(
    browser: Any, harness: WebHarness
) -> None:
    therapist, _, _, handle = await couple(harness)
    other = await therapist_of_practice(harness, "Olga", admin=False, language="es")
    link = await console_link(therapist)
    page = await _page(browser, DESKTOP, "en-US")
    await _sign_in(page, link)
    await page.get_by_role("heading", level=1, name=t("en", "console.caseload_title")).wait_for()
    assert await page.locator("article.couple").count() == 1
    # The same link in another browser: refused, and it says what to do.
    again = await _page(browser, DESKTOP, "en-US")
    await _sign_in(again, link)
    await again.get_by_role("heading", name=t("en", "console.link_invalid_title")).wait_for()
    # A link left unused past its minutes no longer works either.
    late = await console_link(therapist)
    harness.clock.advance(timedelta(minutes=11))
    await _sign_in(again, late)
    await again.get_by_role("heading", name=t("en", "console.link_invalid_title")).wait_for()
    # Another therapist who changes the URL to this couple's page is refused.
    olga = await _page(browser, PHONE, "es-ES")
    await _sign_in(olga, await console_link(other), "es")
    await olga.get_by_role("heading", level=1, name=t("es", "console.caseload_title")).wait_for()
    couple_url = f"{harness.web_url}/console/c/{await _couple_id(harness, handle)}"
    response = await olga.goto(couple_url)
    assert response is not None and response.status == 404
    await olga.get_by_role("heading", name=t("es", "console.not_found_title")).wait_for()
    # The therapist's own browser opens it; signing out ends the session.
    response = await page.goto(couple_url)
    assert response is not None and response.status == 200
    await page.get_by_role("button", name=t("en", "console.sign_out")).click()
    await page.get_by_role("heading", name=t("en", "console.signed_out_done_title")).wait_for()
    response = await page.goto(couple_url)
    assert response is not None and response.status == 401
    for each in (page, again, olga):
        await _done(each)


async def test_charts_show_both_partners_at_phone_and_desktop_width_and_the_page_prints(
    browser: Any, harness: WebHarness, tmp_path: Path
) -> None:
    therapist, alex, blanca, handle = await couple(harness)
    await seed_history(harness, alex, blanca)
    couple_url = f"{harness.web_url}/console/c/{await _couple_id(harness, handle)}"
    link = await console_link(therapist)
    for size in (PHONE, DESKTOP):
        page = await _page(browser, size, "en-US")
        if size is PHONE:
            await _sign_in(page, link)
        else:
            await _sign_in(page, await console_link(therapist))
        await page.get_by_role(
            "heading", level=1, name=t("en", "console.caseload_title")
        ).wait_for()
        if size is DESKTOP:
            await _shoot(page, tmp_path / "caseload.png", "console-caseload.png")
        await page.goto(couple_url)
        charts = page.locator("figure.chart")
        assert await charts.count() == 3
        for index in range(3):
            chart = charts.nth(index)
            box = await chart.locator("svg").bounding_box()
            assert box is not None and box["x"] > 0 and box["x"] + box["width"] <= size["width"]
            for seat in ("A", "B"):
                series = chart.locator(f"g.series.seat-{seat} .point")
                assert await series.count() >= 6, (index, seat)
                assert await series.first.is_visible()
            # The same values for a screen reader, named by the chart's title.
            table = chart.locator("table.chart-data")
            assert await table.locator("tbody tr").count() >= 12
        wide = await page.evaluate("document.documentElement.scrollWidth")
        assert wide <= size["width"], f"the couple page scrolls sideways at {size['width']} px"
        assert PRIVATE_WORDS not in await page.content()
        if size is DESKTOP:
            await _shoot(page, tmp_path / "couple.png", "console-couple.png")
            await _prints_on_a4(page, tmp_path)
        await _done(page)


async def _shoot(page: Any, path: Path, name: str) -> None:
    shot = await page.screenshot(path=str(path), full_page=True)
    assert len(shot) > 10_000
    if os.environ.get("DYAD_UPDATE_SCREENSHOTS"):
        shutil.copyfile(path, DOCS / name)


async def _prints_on_a4(page: Any, tmp_path: Path) -> None:
    """Print media at A4 width: nothing wider than the page, charts two by two, no forms."""
    await page.set_viewport_size({"width": A4_CSS_WIDTH, "height": 1123})
    await page.emulate_media(media="print")
    wide = await page.evaluate("document.documentElement.scrollWidth")
    assert wide <= A4_CSS_WIDTH
    rights = await page.evaluate(
        "[...document.querySelectorAll('figure.chart svg, section, article')]"
        ".map(e => e.getBoundingClientRect().right)"
    )
    assert rights and max(rights) <= A4_CSS_WIDTH
    assert not await page.locator("nav.top").is_visible()
    assert not await page.locator("form").first.is_visible()
    pdf = tmp_path / "couple.pdf"
    printed = await page.pdf(path=str(pdf), format="A4", print_background=True)
    assert printed.startswith(b"%PDF")
    await page.emulate_media(media="screen")
