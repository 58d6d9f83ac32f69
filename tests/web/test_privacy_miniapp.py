"""Privacy with the Mini App as one more way to answer (DESIGN.md §2, rules 1, 3, 4, 10).

Hypothesis draws interleavings of check-ins by either partner, in the chat or on the
one-page Mini App, and of prompt answers on their page (sometimes leaving a draft first,
sometimes with crisis words); the canary holder is drawn too. Whatever happens: nothing
the holder wrote reaches the other partner's chat or their own page, nothing of a page's
answers reaches the holder's own chat, the crisis resources reach only the one in crisis,
and no log line holds a canary. Each example runs the real Application, dispatcher and
web server on a fresh SQLite file.
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from bot.core.clock import ManualClock
from bot.locales import t
from fakebotapi import FakeBotAPI, FakeUser
from tests.conftest import open_database
from tests.e2e.test_privacy_property import _captured_logs
from tests.web.conftest import WebHarness, start_web_harness
from tests.web.flows import (
    ANSWERS,
    chat_text,
    checkin_id_in,
    couple,
    fragment,
    invite_to_checkin,
    launch,
    page_button,
    post,
    send_prompt,
)

CANARY = "CANARY-mini-7c2"
CRISIS = "and some days I want to end my life"


@dataclass(frozen=True)
class Step:
    """One check-in: by the canary holder or the other partner, in the chat or on the page."""

    by_holder: bool
    way: str
    draft_first: bool
    crisis: bool


steps = st.lists(
    st.builds(
        Step,
        by_holder=st.booleans(),
        way=st.sampled_from(["web", "chat", "prompt"]),
        draft_first=st.booleans(),
        crisis=st.booleans(),
    ),
    min_size=1,
    max_size=3,
)


async def chat_checkin(user: FakeUser, note: str, language: str) -> None:
    """A whole check-in in the chat, from /checkin to the thanks, in either language."""
    thanks = t(language, "checkin.thanks")
    await user.send_command("checkin")
    while True:
        question = await user.wait_for_message(lambda m: bool(m.buttons) or m.text == thanks)
        if question.text == thanks:
            return
        data = [d for _, d in question.buttons if d]
        item = data[0].split("|")[3]
        if item == "note":
            await user.send_text(note)
            continue
        wanted = {"ok_to_raise": "no", "skill": "partly", "afraid_or_unsafe": "no"}.get(item, "3")
        await user.press(question, next(d for d in data if d.endswith(f"|{wanted}")))


async def _open_page(harness: WebHarness, http: aiohttp.ClientSession, user: FakeUser) -> str:
    """Open the newest invitation's page as the user's client would: (init, page)."""
    language = "en" if user.language_code == "en" else "es"
    invitation = await invite_to_checkin(harness, user, salt=f"{harness.clock.now()}")
    launch = user.open_web_app(invitation, t(language, "webapp.button"))
    url, params = launch.split("#")[0], fragment(launch)
    body = {"init_data": params["tgWebAppData"], "d": url.rsplit("=", 1)[1]}
    async with http.post(f"{harness.web_url}/checkin", data=body) as response:
        assert response.status == 200
        return params["tgWebAppData"] + "\n" + await response.text()


async def _answer_prompt(
    harness: WebHarness,
    http: aiohttp.ClientSession,
    user: FakeUser,
    words: str,
    draft_first: bool,
    salt: str,
) -> None:
    """Answer a hope prompt on its page (its draft kept first, when drawn)."""
    language = "en" if user.language_code == "en" else "es"
    message = await send_prompt(harness, user, "hope", "hope.small_win", salt)
    init, page, status = await launch(http, user.open_web_app(message, page_button(language)))
    assert status == 200
    form = {"init_data": init, "d": page.split('name="d" value="')[1].split('"')[0]}
    if draft_first:
        status, _ = await post(http, f"{harness.web_url}/prompt/draft", {**form, "text": words})
        assert status == 200
    answer = {**form, "text": words, "ok_to_raise": "no"}
    status, _ = await post(http, f"{harness.web_url}/prompt/send", answer)
    assert status == 200


async def _play(harness: WebHarness, steps_: list[Step], holder_slot: str) -> None:
    _, alex, blanca, _ = await couple(harness)
    users = {"A": alex, "B": blanca}
    holder, other = users[holder_slot], users["B" if holder_slot == "A" else "A"]
    page_words: list[str] = []
    async with aiohttp.ClientSession() as http:
        for index, step in enumerate(steps_):
            user = holder if step.by_holder else other
            tag = CANARY if step.by_holder else "ordinary"
            note = f"{tag} step {index}" + (f" {CRISIS}" if step.crisis and step.by_holder else "")
            if step.way == "chat":
                await chat_checkin(user, note, "en" if user is alex else "es")
            elif step.way == "prompt":
                await _answer_prompt(harness, http, user, note, step.draft_first, str(index))
                if step.by_holder:
                    page_words.append(note)
            else:
                init, page = (await _open_page(harness, http, user)).split("\n", 1)
                form = {"init_data": init, "checkin": str(checkin_id_in(page))}
                answers = {**ANSWERS, "note": note}
                if step.draft_first:
                    async with http.post(
                        f"{harness.web_url}/checkin/draft", data={**form, "note": note}
                    ) as response:
                        assert response.status == 200
                async with http.post(
                    f"{harness.web_url}/checkin/send", data={**form, **answers}
                ) as response:
                    assert response.status == 200
                if step.by_holder:
                    page_words.append(note)
            await harness.settle()
            harness.clock.advance(timedelta(hours=13))  # past any open check-in's life
        # The other partner opens their own page: nothing of the holder's is on it.
        _, own_page = (await _open_page(harness, http, other)).split("\n", 1)
        assert CANARY not in own_page
    await harness.settle()
    seen_by_other = chat_text(other)
    assert CANARY not in seen_by_other
    assert not any(number in seen_by_other for number in ("988", "024", "016", "7233"))
    for words in page_words:
        assert words not in chat_text(holder), "a page's answer reached the chat"


async def _scenario(steps_: list[Step], holder_slot: str) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        clock = ManualClock(datetime(2026, 10, 19, 9, 0, tzinfo=UTC))
        db, _ = await open_database("sqlite", Path(scratch))  # a migrated copy
        async with FakeBotAPI(clock=clock) as fake:
            harness, bot, web = await start_web_harness(fake, db, clock)
            try:
                with _captured_logs() as logs:
                    await _play(harness, steps_, holder_slot)
                    assert len(logs.lines) > 20, "the log capture must see the run to mean anything"
                    for line in logs.lines:
                        assert CANARY not in line, f"canary in a log line: {line[:200]}"
            finally:
                await bot.stop()
                await web.stop()
        await db.dispose()


@settings(
    max_examples=4,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # each example is a whole run
    suppress_health_check=[HealthCheck.too_slow],
)
@given(steps=steps, holder_slot=st.sampled_from(["A", "B"]))
@example(  # a crisis answer to a prompt, drafted first, beside the other's page check-in
    steps=[Step(True, "prompt", True, True), Step(False, "web", False, False)], holder_slot="B"
)
def test_nothing_entered_on_a_page_or_in_the_chat_reaches_the_other_partner_or_a_log(
    steps: list[Step], holder_slot: str
) -> None:
    asyncio.run(_scenario(steps, holder_slot))
