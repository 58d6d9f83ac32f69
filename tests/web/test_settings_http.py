"""``/settings`` (and ``/pause``) on a Mini App page, and ``/checkin``'s page button, over HTTP.

The page changes what the chat's buttons and commands change, through the same service
functions; a refusal changes nothing; a typed time zone is screened as in the chat.
"""

from __future__ import annotations

import html
from typing import Any

import aiohttp
from sqlalchemy import func, select

from bot.locales import t
from db.models import Alert, Partner
from fakebotapi import FakeUser
from fakebotapi.webapps import user_init_data
from tests.web.conftest import WebHarness
from tests.web.flows import chat_text, couple, has_page_button, launch, page_button, post


async def _settings_message(user: FakeUser) -> Any:
    await user.send_command("settings")
    return await user.wait_for_message(has_page_button)


async def _stored(harness: WebHarness) -> dict[int, dict[str, Any]]:
    async with harness.db.uow() as uow:
        rows = list(await uow.session.scalars(select(Partner).order_by(Partner.id)))
    keys = ("language", "timezone", "window", "discreet", "paused_until", "paused_since")
    return {row.id: {key: getattr(row, key) for key in keys} for row in rows}


async def test_the_settings_page_changes_what_the_chat_changes(
    web_harness: WebHarness, http: aiohttp.ClientSession
) -> None:
    harness = web_harness
    _, alex, blanca, _ = await couple(harness)
    # /settings and /checkin offer the page first, the chat's own buttons stay.
    menu_a, menu_b = await _settings_message(alex), await _settings_message(blanca)
    for menu, language in ((menu_a, "en"), (menu_b, "es")):
        assert menu.button_texts == [
            page_button(language),
            *(
                t(language, f"partner.settings_{n}")
                for n in ("language", "timezone", "window", "discreet")
            ),
        ]
    await alex.send_command("checkin")
    first = await alex.wait_for_message(has_page_button)
    assert first.button_texts[0] == page_button("en") and len(first.button_texts) > 2
    assert (first.web_app_url_for(page_button("en")) or "").endswith("/app/checkin")
    # Blanca on the page: morning, discreet, a typed time zone, a pause of 3 days.
    init, page, status = await launch(http, blanca.open_web_app(menu_b, page_button("es")))
    assert status == 200 and '<html lang="es">' in page and t("es", "webapp.settings_title") in page
    before = len(blanca.messages)
    form = {"init_data": init, "language": "es", "window": "morning", "discreet": "yes"}
    form |= {"tz_typed": "Europe/Lisbon", "pause": "pause", "days": "3"}
    status, saved = await post(http, f"{harness.web_url}/settings/send", form)
    assert status == 200 and t("es", "webapp.settings_saved") in html.unescape(saved)
    # Alex the same in the chat.
    await _settings_message(alex)
    await alex.press_button(t("en", "partner.settings_window"))
    await alex.wait_for_message(lambda m: m.text == t("en", "onboarding.window_question"))
    await alex.press_button(t("en", "onboarding.window_morning"))
    await alex.wait_for_message(lambda m: m.text == t("en", "partner.saved"))
    await _settings_message(alex)
    await alex.press_button(t("en", "partner.settings_discreet"))
    await alex.wait_for_message(lambda m: m.text == t("en", "onboarding.discreet_question"))
    await alex.press_button(t("en", "onboarding.discreet_yes"))
    await alex.wait_for_message(lambda m: m.text == t("en", "partner.saved"))
    await _settings_message(alex)
    await alex.press_button(t("en", "partner.settings_timezone"))
    await alex.wait_for_message(lambda m: m.text == t("en", "onboarding.timezone_question"))
    await alex.send_text("Europe/Lisbon")
    await alex.wait_for_message(lambda m: m.text == t("en", "partner.saved"))
    await alex.send_command("pause", "3")
    await alex.wait_for_message(lambda m: "paused until" in m.text)
    await harness.settle()
    by_alex, by_blanca = (await _stored(harness)).values()
    assert by_alex == {**by_blanca, "language": "en"}
    assert by_blanca["window"] == "morning" and by_blanca["timezone"] == "Europe/Lisbon"
    # Blanca's chat got the neutral note only.
    assert [m.text for m in blanca.messages[before:]] == [t("es", "partner.saved")]


async def test_bad_settings_and_foreign_init_data_change_nothing_crisis_words_are_screened(
    web_harness: WebHarness, http: aiohttp.ClientSession
) -> None:
    harness = web_harness
    therapist, alex, blanca, _ = await couple(harness)
    menu = await _settings_message(blanca)
    init, _, _ = await launch(http, blanca.open_web_app(menu, page_button("es")))
    send = f"{harness.web_url}/settings/send"
    stored = await _stored(harness)
    cases = [
        ({"tz_typed": "Mars/Olympus"}, t("es", "webapp.timezone_unknown", text="Mars/Olympus")),
        ({"pause": "pause", "days": "99"}, t("es", "webapp.pause_invalid", limit=30)),
        ({"window": "midnight", "pause": "pause", "days": "2"}, t("es", "webapp.settings_invalid")),
        ({"language": "fr"}, t("es", "webapp.settings_invalid")),
    ]
    for fields, said in cases:
        status, body = await post(http, send, {"init_data": init, "discreet": "yes", **fields})
        assert status == 422 and said in html.unescape(body), fields
    forged = init.replace(f"%22id%22%3A{blanca.id}", f"%22id%22%3A{alex.id}")
    status, body = await post(http, send, {"init_data": forged, "window": "morning"})
    assert status == 403
    stranger = harness.user("Casey")
    other = user_init_data(stranger.to_api(), harness.fake.token, harness.fake.date())
    status, body = await post(http, send, {"init_data": other, "window": "morning"})
    assert status == 403 and t("en", "webapp.not_a_partner") in html.unescape(body)
    assert await _stored(harness) == stored
    # Crisis words typed as a time zone: the resources on the page, an alert, no change.
    words = "no quiero vivir más"
    status, body = await post(
        http, send, {"init_data": init, "tz_typed": words, "window": "morning"}
    )
    assert status == 200 and "024" in body and 'aria-labelledby="crisis-title">' in body
    await harness.settle()
    assert await _stored(harness) == stored
    async with harness.db.uow() as uow:
        assert await uow.session.scalar(select(func.count()).select_from(Alert)) == 1
    assert any("Safety alert" in m.text for m in therapist.messages)
    assert "024" not in chat_text(blanca) and words not in chat_text(alex)
