"""What the Mini App tests share: a joined couple, a scheduled invitation, the launch."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
from sqlalchemy import select

from bot.locales import t
from bot.services.outbox import enqueue
from db.models import CheckIn, DeliveryKind, Response
from fakebotapi import FakeMessage, FakeUser
from tests.e2e.conftest import Harness

# One check-in's answers, as the page posts them (item id -> value); blank = skipped.
ANSWERS = {
    "wellbeing": "7",
    "hope": "6",
    "safe_to_be_honest": "8",
    "understood": "5",
    "skill": "yes",
    "note": "We argued about the dishes again. I would like us to talk about it calmly.",
    "ok_to_raise": "no",
    "afraid_or_unsafe": "no",
}


async def couple(harness: Harness) -> tuple[FakeUser, FakeUser, FakeUser, str]:
    """A therapist and two joined partners: Alex (English), Blanca (Spanish)."""
    therapist = await harness.therapist()
    handle, token_a, token_b = await harness.new_couple(therapist)
    alex, blanca = harness.user("Alex"), harness.user("Blanca", "es")
    await harness.join(alex, token_a, typed_timezone="America/New_York")
    await harness.join(blanca, token_b, language="Español", typed_timezone="Europe/Madrid")
    await harness.settle()
    return therapist, alex, blanca, handle


async def invite_to_checkin(harness: Harness, user: FakeUser, salt: str = "1") -> FakeMessage:
    """Queue a scheduled check-in for ``user`` and wait for the invitation in their chat."""
    before = len(user.messages)
    async with harness.db.uow() as uow:
        partner = await uow.partners.by_user(user.id)
        assert partner is not None
        await enqueue(
            uow,
            partner,
            kind="checkin",
            key="checkin",
            dedupe_key=f"test:checkin:{salt}",
            due_at=harness.clock.now(),
            couple_id=partner.couple_id,
        )
        await uow.commit()
    await harness.settle()
    return await user.wait_for_message(has_page_button, after=before)


def has_page_button(message: FakeMessage) -> bool:
    """Whether a message carries a Mini App button."""
    rows = (message.reply_markup_raw or {}).get("inline_keyboard", [])
    return any("web_app" in button for row in rows for button in row)


def page_button(language: str) -> str:
    """The Mini App button's label."""
    return t(language, "webapp.button")


def fragment(launch: str) -> dict[str, str]:
    """The launch parameters in a Mini App URL's fragment."""
    return {k: v[0] for k, v in parse_qs(urlsplit(launch).fragment).items()}


def checkin_id_in(page: str) -> int:
    """The check-in id the page's form carries."""
    found = re.search(r'name="checkin" value="(\d+)"', page)
    assert found is not None, page[:500]
    return int(found.group(1))


async def stored_checkins(harness: Harness) -> dict[int, Any]:
    """Every check-in row by partner id, as comparable values (the note decrypted)."""
    cipher = harness.bot.deps.cipher
    async with harness.db.uow() as uow:
        rows = list(await uow.session.scalars(select(CheckIn).order_by(CheckIn.id)))
    return {
        row.partner_id: {
            "instrument": row.instrument,
            "with_safety": row.with_safety,
            "status": row.status,
            "answers": row.answers,
            "skipped": sorted(row.skipped.get("items", [])),
            "ok_to_raise": row.ok_to_raise,
            "risk": row.risk,
            "note": cipher.decrypt(row.note_ciphertext) if row.note_ciphertext else None,
        }
        for row in rows
    }


def chat_text(user: FakeUser) -> str:
    """Everything in the user's chat, both directions, edits included."""
    parts = []
    for message in user.messages:
        parts.append(message.text)
        parts.extend(version.text for version in message.edits)
    return "\n".join(parts)


async def send_prompt(
    harness: Harness, user: FakeUser, kind: DeliveryKind, key: str, salt: str = ""
) -> FakeMessage:
    """Queue one prompt for ``user`` now and wait for it in their chat (with its page button)."""
    before = len(user.messages)
    async with harness.db.uow() as uow:
        partner = await uow.partners.by_user(user.id)
        assert partner is not None
        await enqueue(
            uow,
            partner,
            kind=kind,
            key=key,
            dedupe_key=f"test:{kind}:{key}:{user.id}:{salt}",
            due_at=harness.clock.now(),
            couple_id=partner.couple_id,
        )
        await uow.commit()
    await harness.settle()
    return await user.wait_for_message(has_page_button, after=before)


async def stored_responses(harness: Harness) -> dict[int, list[Any]]:
    """Every prompt answer by partner id, as comparable values (the words decrypted)."""
    cipher = harness.bot.deps.cipher
    async with harness.db.uow() as uow:
        rows = list(await uow.session.scalars(select(Response).order_by(Response.id)))
    out: dict[int, list[Any]] = {}
    for row in rows:
        out.setdefault(row.partner_id, []).append(
            {
                "kind": row.kind,
                "prompt_key": row.prompt_key,
                "choice": row.choice,
                "text": cipher.decrypt(row.text_ciphertext) if row.text_ciphertext else None,
                "ok_to_raise": row.ok_to_raise,
                "share": row.share,
                "risk": row.risk,
            }
        )
    return out


async def launch(http: aiohttp.ClientSession, url: str) -> tuple[str, str, int]:
    """What a launch page's script does: post the fragment's initData. (init, page, status)"""
    params = fragment(url)
    page_url = url.split("#")[0]
    body = {"init_data": params["tgWebAppData"], "theme": params.get("tgWebAppThemeParams", "")}
    query = parse_qs(urlsplit(page_url).query)
    if "d" in query:
        body["d"] = query["d"][0]
    async with http.post(page_url.split("?")[0], data=body) as response:
        return params["tgWebAppData"], await response.text(), response.status


async def post(http: aiohttp.ClientSession, url: str, data: dict[str, str]) -> tuple[int, str]:
    """Post a page's form; (status, body)."""
    async with http.post(url, data=data) as response:
        return response.status, await response.text()
