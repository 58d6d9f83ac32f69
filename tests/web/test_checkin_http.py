"""The one-page check-in over HTTP, without a browser: what the server stores and refuses.

The browser tests (test_miniapp_browser.py) drive the same pages in Chromium; these pin
the server's side on both databases: stored rows equal the chat's, drafts, crisis
screening, headers, and refusals that change nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
import pytest
from sqlalchemy import func, select

from bot.locales import t
from db.models import Alert, CheckIn, Couple, WebAppDraft
from fakebotapi.webapps import user_init_data
from tests.e2e.test_checkins import _checkin as chat_checkin
from tests.web.conftest import WebHarness
from tests.web.flows import (
    ANSWERS,
    chat_text,
    checkin_id_in,
    couple,
    fragment,
    invite_to_checkin,
    page_button,
    stored_checkins,
)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def _open(
    harness: WebHarness, http: aiohttp.ClientSession, launch: str
) -> tuple[str, str, int]:
    """What the launch page's script does: post the fragment's initData. (init, page, status)"""
    params = fragment(launch)
    url = launch.split("#")[0]
    async with http.get(url) as shell:
        assert shell.status == 200
    action = f"{harness.web_url}/checkin"
    body = {"init_data": params["tgWebAppData"], "theme": params.get("tgWebAppThemeParams", "")}
    if "?d=" in url:
        body["d"] = url.rsplit("=", 1)[1]
    async with http.post(action, data=body) as response:
        return params["tgWebAppData"], await response.text(), response.status


async def _post(
    harness: WebHarness, http: aiohttp.ClientSession, path: str, data: dict[str, str]
) -> tuple[int, str]:
    async with http.post(f"{harness.web_url}{path}", data=data) as response:
        return response.status, await response.text()


async def test_the_page_stores_exactly_what_the_chat_stores(
    web_harness: WebHarness, http: aiohttp.ClientSession
) -> None:
    harness = web_harness
    _, alex, blanca, _ = await couple(harness)
    invitation = await invite_to_checkin(harness, blanca)
    launch = blanca.open_web_app(invitation, page_button("es"))
    init, page, status = await _open(harness, http, launch)
    assert status == 200 and "dishes again" not in page and '<html lang="es">' in page
    checkin = checkin_id_in(page)
    status, saved = await _post(
        harness, http, "/checkin/send", {"init_data": init, "checkin": str(checkin), **ANSWERS}
    )
    assert status == 200 and t("es", "webapp.saved_title") in saved
    # Alex gives the same answers in the chat.
    await chat_checkin(alex, note=ANSWERS["note"], ok_to_raise="No", skill="Yes", safety="No")
    await alex.wait_for_message(lambda m: m.text == t("en", "checkin.thanks"))
    await harness.settle()
    rows = await stored_checkins(harness)
    chat_row, web_row = rows.values()
    assert web_row == chat_row
    assert web_row["status"] == "complete" and web_row["note"] == ANSWERS["note"]
    # The chat holds the invitation and the chat's own "saved" note, nothing of the answers.
    assert blanca.messages[-1].text == t("es", "checkin.thanks")
    assert "dishes again" not in chat_text(blanca)
    async with harness.db.uow() as uow:
        assert await uow.session.scalar(select(func.count()).select_from(WebAppDraft)) == 0


async def test_the_invitation_is_the_same_for_both_partners(web_harness: WebHarness) -> None:
    harness = web_harness
    _, alex, blanca, _ = await couple(harness)
    for user, language in ((alex, "en"), (blanca, "es")):
        invitation = await invite_to_checkin(harness, user, salt=language)
        assert invitation.text == t(language, "checkin.intro")
        assert invitation.button_texts == [
            t(language, "webapp.button"),
            t(language, "checkin.start"),
        ]


async def test_a_draft_is_kept_on_the_server_and_comes_back(
    web_harness: WebHarness, http: aiohttp.ClientSession
) -> None:
    harness = web_harness
    _, alex, _, _ = await couple(harness)
    invitation = await invite_to_checkin(harness, alex)
    launch = alex.open_web_app(invitation, page_button("en"))
    init, page, _ = await _open(harness, http, launch)
    checkin = str(checkin_id_in(page))
    draft = {"init_data": init, "checkin": checkin, "hope": "3", "note": "half a thought 8812"}
    async with http.post(f"{harness.web_url}/checkin/draft", data=draft) as response:
        assert response.status == 200 and await response.json() == {"saved": True, "crisis": False}
    async with harness.db.uow() as uow:
        row = await uow.session.scalar(select(WebAppDraft))
        assert row is not None and row.choices == {"hope": "3"}
        assert row.text_ciphertext is not None and b"8812" not in row.text_ciphertext
        checkin_row = await uow.session.scalar(select(CheckIn))
        assert checkin_row is not None and checkin_row.answers == {}  # a draft is not an answer
    _, again, _ = await _open(harness, http, launch)
    assert 'value="3" checked' in again and "half a thought 8812</textarea>" in again


async def test_crisis_words_in_a_draft_show_resources_alert_once_and_set_the_hold(
    web_harness: WebHarness, http: aiohttp.ClientSession
) -> None:
    harness = web_harness
    therapist, alex, blanca, handle = await couple(harness)
    before_b = len(blanca.messages)
    invitation = await invite_to_checkin(harness, alex)
    init, page, _ = await _open(harness, http, alex.open_web_app(invitation, page_button("en")))
    assert 'id="crisis"' in page and 'aria-labelledby="crisis-title" hidden' in page
    checkin = str(checkin_id_in(page))
    note = "Some days I just want to kill myself."
    draft = {"init_data": init, "checkin": checkin, "note": note}
    for _ in range(2):  # saved again and again as the person types: still one alert
        async with http.post(f"{harness.web_url}/checkin/draft", data=draft) as response:
            assert (await response.json())["crisis"] is True
    status, saved = await _post(harness, http, "/checkin/send", {**draft, "ok_to_raise": "no"})
    assert status == 200 and "988" in saved and 'aria-labelledby="crisis-title">' in saved
    await harness.settle()
    alerts = [m for m in therapist.messages if "Safety alert" in m.text]
    assert len(alerts) == 1 and handle in alerts[0].text and note not in alerts[0].text
    async with harness.db.uow() as uow:
        kinds = list(await uow.session.scalars(select(Alert.kind)))
        held = await uow.session.scalar(select(Couple.safety_hold))
    assert kinds == ["suicide"] and held
    assert "988" not in chat_text(alex)  # the resources were on the page, not in the chat
    assert len(blanca.messages) == before_b


async def test_forged_stale_and_other_peoples_init_data_are_refused_and_change_nothing(
    web_harness: WebHarness, http: aiohttp.ClientSession
) -> None:
    harness = web_harness
    _, alex, blanca, _ = await couple(harness)
    invitation = await invite_to_checkin(harness, alex)
    init, page, _ = await _open(harness, http, alex.open_web_app(invitation, page_button("en")))
    checkin = str(checkin_id_in(page))
    forged = init.replace(f"%22id%22%3A{alex.id}", f"%22id%22%3A{blanca.id}")
    assert forged != init
    other_bot = user_init_data(blanca.to_api(), "42:" + "x" * 35, harness.fake.date())
    cases = {
        "forged": forged,
        "other bot": other_bot,
        "missing": "",
    }
    for name, data in cases.items():
        status, body = await _post(
            harness, http, "/checkin/send", {"init_data": data, "checkin": checkin, **ANSWERS}
        )
        assert status == 403, name
        assert t("en", "webapp.error_forged") in body.replace("&#x27;", "'"), name
    # Blanca's own, valid initData cannot answer Alex's check-in.
    blanca_init = user_init_data(blanca.to_api(), harness.fake.token, harness.fake.date())
    status, body = await _post(
        harness, http, "/checkin/send", {"init_data": blanca_init, "checkin": checkin, **ANSWERS}
    )
    assert status == 409 and t("es", "webapp.stale").split(" (")[0] in body
    # Nor open his invitation.
    alex_page = invitation.web_app_url_for(page_button("en"))
    assert alex_page is not None
    delivery = alex_page.rsplit("=", 1)[1]
    async with http.post(
        f"{harness.web_url}/checkin", data={"init_data": blanca_init, "d": delivery}
    ) as response:
        assert response.status == 409
    # An hour and a bit later, Alex's own initData has gone stale.
    harness.clock.advance(timedelta(hours=1, minutes=1))
    status, body = await _post(
        harness, http, "/checkin/send", {"init_data": init, "checkin": checkin, **ANSWERS}
    )
    assert status == 403 and "too long ago" in body
    rows = await stored_checkins(harness)
    assert [row["answers"] for row in rows.values()] == [{}]
    async with harness.db.uow() as uow:
        assert await uow.session.scalar(select(func.count()).select_from(Alert)) == 0


async def test_every_answer_is_private_and_framed_only_by_telegram(
    web_harness: WebHarness, http: aiohttp.ClientSession
) -> None:
    harness = web_harness
    _, alex, _, _ = await couple(harness)
    invitation = await invite_to_checkin(harness, alex)
    launch = alex.open_web_app(invitation, page_button("en"))
    urls = [launch.split("#")[0], f"{harness.web_url}/static/miniapp.js"]
    responses = []
    for url in urls:
        async with http.get(url) as response:
            responses.append(response.headers)
    async with http.post(f"{harness.web_url}/checkin", data={"init_data": "x"}) as response:
        assert response.status == 403
        responses.append(response.headers)
    for headers in responses:
        assert headers["Cache-Control"] == "no-store"
        assert headers["Referrer-Policy"] == "no-referrer"
        csp = headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors https://web.telegram.org" in csp
        assert "telegram.org/js" not in csp


async def test_after_close_the_page_takes_no_check_in_and_gives_the_crisis_lines(
    web_harness: WebHarness, http: aiohttp.ClientSession
) -> None:
    harness = web_harness
    _, alex, _, _ = await couple(harness)
    invitation = await invite_to_checkin(harness, alex)
    launch = alex.open_web_app(invitation, page_button("en"))
    init, page, _ = await _open(harness, http, launch)
    checkin = str(checkin_id_in(page))
    async with harness.db.uow() as uow:
        closed = await uow.session.scalar(select(Couple))
        assert closed is not None
        closed.status = "closed"
        await uow.commit()
    _, reopened, status = await _open(harness, http, launch)
    assert status == 409 and "ended" in reopened
    status, body = await _post(
        harness, http, "/checkin/send", {"init_data": init, "checkin": checkin, **ANSWERS}
    )
    assert status == 409 and "ended" in body
    stored = (await stored_checkins(harness)).values()
    assert all(row["answers"] == {} and row["status"] == "open" for row in stored)


async def test_a_partner_who_switches_to_portuguese_gets_the_page_and_brazils_lines_in_it(
    web_harness: WebHarness, http: aiohttp.ClientSession
) -> None:
    harness = web_harness
    _, _, blanca, _ = await couple(harness)
    await blanca.send_command("settings")
    await blanca.wait_for_message(lambda m: bool(m.buttons))
    await blanca.press_button(t("es", "partner.settings_language"))
    portuguese = "Português (Brasil)"  # /settings offers every locale by its own name
    await blanca.wait_for_message(lambda m: portuguese in m.button_texts)
    await blanca.press_button(portuguese)
    await blanca.wait_for_message(lambda m: m.text == t("pt", "partner.saved"))
    await blanca.send_command("settings")
    await blanca.wait_for_message(lambda m: t("pt", "partner.settings_timezone") in m.button_texts)
    await blanca.press_button(t("pt", "partner.settings_timezone"))
    await blanca.wait_for_message(lambda m: "America/Sao Paulo" in m.button_texts)
    await blanca.press_button("America/Sao Paulo")
    await blanca.wait_for_message(lambda m: m.text == t("pt", "partner.saved"))
    invitation = await invite_to_checkin(harness, blanca)
    assert invitation.text == t("pt", "checkin.intro")
    launch = blanca.open_web_app(invitation, page_button("pt"))
    init, page, status = await _open(harness, http, launch)
    assert status == 200 and '<html lang="pt">' in page and t("pt", "webapp.send") in page
    note = "às vezes penso em me matar"
    form = {"init_data": init, "checkin": str(checkin_id_in(page)), "note": note}
    status, saved = await _post(harness, http, "/checkin/send", {**form, "ok_to_raise": "no"})
    assert status == 200 and t("pt", "webapp.saved_title") in saved
    assert 'aria-labelledby="crisis-title">' in saved  # shown, not hidden
    async with harness.db.uow() as uow:
        assert list(await uow.session.scalars(select(Alert.kind))) == ["suicide"]
    for line in ("190", "CVV (Centro de Valorização da Vida)", "188", "Ligue 180", "180"):
        assert line in saved
    assert t("pt", "safety.crisis_not_monitored") in saved
