"""A prompt's private answer and a skill's follow-up on a Mini App page, over HTTP.

Each page stores what the chat flow stores (the same service steps), screens its words
as they arrive, and refuses forged or someone else's initData having changed nothing.
The browser tests (test_pages_browser.py) drive the same pages in Chromium.
"""

from __future__ import annotations

import html
import json
from typing import Any

import aiohttp
from sqlalchemy import func, select

from bot.locales import t
from db.models import Alert, Couple, Delivery, Response, WebAppDraft
from fakebotapi import FakeMessage, FakeUser
from fakebotapi.webapps import user_init_data
from tests.web.conftest import WebHarness
from tests.web.flows import (
    chat_text,
    couple,
    launch,
    page_button,
    post,
    send_prompt,
    stored_responses,
)

HOPE = "hope.small_win"
SPACE = "couple_space.appreciation"
FOLLOWUP = "skill_followup.soft_startup"
WORDS = "We walked by the river on Sunday and it felt easy."
TRIED = "Partly, but we did talk."


async def open_prompt_page(
    http: aiohttp.ClientSession, user: FakeUser, message: FakeMessage, language: str
) -> tuple[dict[str, str], str]:
    """Open a prompt's page from its button: (the form's signed fields, the page)."""
    assert message.button_texts[0] == page_button(language)
    init, page, status = await launch(http, user.open_web_app(message, page_button(language)))
    assert status == 200, page
    delivery = page.split('name="d" value="')[1].split('"')[0]
    return {"init_data": init, "d": delivery}, page


def _unsigned(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows with the writer's name taken off the words (the rest must be equal)."""
    return [{**r, "text": r["text"].split(": ", 1)[-1] if r["text"] else None} for r in rows]


async def test_each_page_stores_what_the_chat_stores_and_the_chat_holds_no_answer(
    web_harness: WebHarness, http: aiohttp.ClientSession
) -> None:
    harness = web_harness
    _, alex, blanca, _ = await couple(harness)
    send = f"{harness.web_url}/prompt/send"
    # A hope prompt: Blanca on the page, Alex in the chat, the same answer.
    form, page = await open_prompt_page(
        http, blanca, await send_prompt(harness, blanca, "hope", HOPE), "es"
    )
    assert '<html lang="es">' in page and t("es", "webapp.raise_question") in page
    status, saved = await post(http, send, {**form, "text": WORDS, "ok_to_raise": "yes"})
    assert status == 200 and t("es", "webapp.reply_saved_body") in saved
    prompt = await send_prompt(harness, alex, "hope", HOPE)
    await alex.reply_to(prompt, WORDS)
    await alex.wait_for_message(lambda m: m.text == t("en", "prompts.saved_raise"))
    await alex.press_button(t("en", "prompts.raise_yes"))
    await alex.wait_for_message(lambda m: m.text == t("en", "prompts.noted"))
    # A couple-space question: Alex in the chat, Blanca on the page; both share.
    space_a = await send_prompt(harness, alex, "couple_space", SPACE)
    space_b = await send_prompt(harness, blanca, "couple_space", SPACE)
    await alex.reply_to(space_a, f"Alex: {WORDS}")
    await alex.wait_for_message(lambda m: m.text == t("en", "prompts.share_question"))
    await alex.press_button(t("en", "prompts.share_yes"))
    await alex.wait_for_message(lambda m: m.text == t("en", "prompts.share_noted"))
    form, page = await open_prompt_page(http, blanca, space_b, "es")
    assert t("es", "webapp.share_question") in page and t("es", "webapp.space_private") in page
    status, saved = await post(http, send, {**form, "text": f"Blanca: {WORDS}", "share": "yes"})
    assert status == 200 and t("es", "prompts.share_noted_both") in saved
    async with harness.db.uow() as uow:  # both hear the outcome, in their own window
        reveals = list(await uow.session.scalars(select(Delivery).where(Delivery.kind == "reveal")))
    assert sorted(r.params["outcome"] for r in reveals) == ["shared", "shared"]
    # A skill's follow-up: Blanca on the page, Alex in the chat.
    form, page = await open_prompt_page(
        http, blanca, await send_prompt(harness, blanca, "skill_followup", FOLLOWUP), "es"
    )
    assert t("es", "webapp.followup_words") in page and t("es", "schedules.choice.partly") in page
    answers = {"choice": "partly", "text": TRIED, "ok_to_raise": "no"}
    status, _ = await post(http, send, {**form, **answers})
    assert status == 200
    await send_prompt(harness, alex, "skill_followup", FOLLOWUP)
    await alex.press_button(t("en", "schedules.choice.partly"))
    await alex.wait_for_message(lambda m: m.text == t("en", "schedules.optional_text"))
    await alex.send_text(TRIED)
    await alex.wait_for_message(lambda m: m.text == t("en", "prompts.saved_raise"))
    await alex.press_button(t("en", "prompts.raise_no"))
    await alex.wait_for_message(lambda m: m.text == t("en", "prompts.noted"))
    await harness.settle()
    by_alex, by_blanca = (await stored_responses(harness)).values()
    assert [r["kind"] for r in by_alex] == ["hope", "couple_space", "skill_followup"]
    assert _unsigned(by_blanca) == _unsigned(by_alex)
    # The page's answers never reached Blanca's chat: the neutral note only, once a page.
    said = chat_text(blanca).replace(f"Alex: {WORDS}", "")
    assert WORDS not in said and TRIED not in said
    assert [m.text for m in blanca.messages].count(t("es", "prompts.noted")) == 3
    async with harness.db.uow() as uow:
        assert await uow.session.scalar(select(func.count()).select_from(WebAppDraft)) == 0


async def test_crisis_words_in_a_draft_show_resources_alert_once_and_stay_with_the_reply(
    web_harness: WebHarness, http: aiohttp.ClientSession
) -> None:
    harness = web_harness
    therapist, alex, blanca, handle = await couple(harness)
    before_b = len(blanca.messages)
    form, page = await open_prompt_page(
        http, alex, await send_prompt(harness, alex, "hope", HOPE), "en"
    )
    assert 'aria-labelledby="crisis-title" hidden' in page
    words = "Honestly some days I just want to kill myself."
    for typed in (words[:40], words):  # saved again and again as the person types
        status, body = await post(http, f"{harness.web_url}/prompt/draft", {**form, "text": typed})
        assert status == 200
    assert '"crisis": true' in body
    _, reopened = await open_prompt_page(http, alex, _prompt_of(alex), "en")
    assert 'aria-labelledby="crisis-title">' in reopened and f"{words}</textarea>" in reopened
    status, saved = await post(http, f"{harness.web_url}/prompt/send", {**form, "text": words})
    assert status == 200 and "988" in saved and 'aria-labelledby="crisis-title">' in saved
    await harness.settle()
    alerts = [m for m in therapist.messages if "Safety alert" in m.text]
    assert len(alerts) == 1 and handle in alerts[0].text and "kill" not in alerts[0].text
    async with harness.db.uow() as uow:
        (alert,) = await uow.session.scalars(select(Alert))
        (reply,) = await uow.session.scalars(select(Response))  # the draft's copy is gone
        assert await uow.session.scalar(select(Couple.safety_hold))
    assert alert.source_id == reply.id and reply.risk and reply.kind == "hope"
    assert "988" not in chat_text(alex) and "kill" not in chat_text(alex)
    assert len(blanca.messages) == before_b


def _said(body: str) -> str:
    """What a refusal says, from its page or its JSON."""
    return str(json.loads(body)["error"]) if body.startswith("{") else html.unescape(body)


def _prompt_of(user: FakeUser) -> FakeMessage:
    return next(m for m in reversed(user.messages) if m.button_texts[:1] == [page_button("en")])


async def test_forged_and_other_peoples_init_data_and_bad_answers_change_nothing(
    web_harness: WebHarness, http: aiohttp.ClientSession
) -> None:
    harness = web_harness
    _, alex, blanca, _ = await couple(harness)
    form, _ = await open_prompt_page(
        http, alex, await send_prompt(harness, alex, "skill_followup", FOLLOWUP), "en"
    )
    send, draft = f"{harness.web_url}/prompt/send", f"{harness.web_url}/prompt/draft"
    answers = {"choice": "yes", "text": "CANARY went fine"}
    alex_id = f"%22id%22%3A{alex.id}"
    forged = form["init_data"].replace(alex_id, f"%22id%22%3A{blanca.id}")
    blanca_own = user_init_data(blanca.to_api(), harness.fake.token, harness.fake.date())
    for url in (send, draft, f"{harness.web_url}/prompt"):
        status, body = await post(http, url, {**form, **answers, "init_data": forged})
        assert status == 403 and t("en", "webapp.error_forged") in _said(body), url
        # Blanca's own, valid initData cannot open or answer Alex's prompt.
        status, body = await post(http, url, {**form, **answers, "init_data": blanca_own})
        assert status == 409 and t("es", "webapp.prompt_stale") in _said(body), url
    # What the person can correct comes back on the page, kindly, in their language.
    status, body = await post(http, send, {**form, "text": "went fine"})
    assert status == 422 and t("en", "webapp.choose_one") in body and "went fine</textarea>" in body
    status, body = await post(http, send, {**form, "choice": "perhaps"})
    assert status == 422 and t("en", "instruments.answer_unknown_choice") in body
    async with harness.db.uow() as uow:
        assert await uow.session.scalar(select(func.count()).select_from(Response)) == 0
        assert await uow.session.scalar(select(func.count()).select_from(WebAppDraft)) == 0
    assert "CANARY" not in chat_text(alex) + chat_text(blanca)
    # Sent once; a second send of the same page is refused and stores nothing more.
    assert (await post(http, send, {**form, **answers}))[0] == 200
    status, body = await post(http, send, {**form, **answers})
    assert status == 409 and t("en", "webapp.prompt_stale") in body
    async with harness.db.uow() as uow:
        assert await uow.session.scalar(select(func.count()).select_from(Response)) == 1
    async with http.get(f"{harness.web_url}/prompt?d={form['d']}") as shell:
        assert shell.headers["Cache-Control"] == "no-store"
        assert (
            "frame-ancestors https://web.telegram.org" in shell.headers["Content-Security-Policy"]
        )
