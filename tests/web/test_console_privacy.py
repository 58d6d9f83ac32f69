"""Privacy on the console's pages (DESIGN.md §2): every kind of words, in either seat.

Each kind of stored words (a check-in note or a prompt's reply, marked OK to raise or
not, or not answered, with or without crisis words) is written by partner A of one
couple and partner B of the next, so every kind is tried in both seats. Then the couple's
own therapist, another therapist and the practice's admin open every console page. The
property: words kept for the therapist are on no page but their own therapist's notes
view; words marked OK to raise are only on their own therapist's couple page (the
digest quotes them, as in session); words that raised a safety flag are on no page.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import aiohttp
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.clock import ManualClock
from bot.services.couples import new_couple
from bot.services.crypto import Cipher
from db.engine import Database
from db.models import CheckIn, Partner, Response
from fakebotapi import FakeBotAPI
from tests.web.conftest import WebHarness, start_web_harness
from tests.web.console_flows import Browser, console_link, therapist_of_practice


@dataclass(frozen=True)
class Kind:
    """One kind of words and the pages it may appear on."""

    name: str
    source: str  # note | reply
    ok_to_raise: bool | None
    risk: bool
    shown_on: frozenset[str]  # of: couple (own therapist's couple page), notes


KINDS = (
    Kind("raisable-note", "note", True, False, frozenset({"couple"})),
    Kind("private-note", "note", False, False, frozenset({"notes"})),
    Kind("unanswered-note", "note", None, False, frozenset({"notes"})),
    Kind("flagged-note", "note", True, True, frozenset()),
    Kind("raisable-reply", "reply", True, False, frozenset({"couple"})),
    Kind("private-reply", "reply", False, False, frozenset({"notes"})),
)


def words(kind: Kind, slot: str) -> str:
    """A canary unique to the kind and the seat."""
    return f"canary {kind.name} seat {slot} zq{KINDS.index(kind)}{slot}"


@pytest.fixture
async def harness(
    fake: FakeBotAPI, sqlite_db: Database, clock: ManualClock
) -> AsyncIterator[WebHarness]:
    """Dyad with its web layer on a SQLite file (the rules do not depend on the database)."""
    web_harness, bot, web = await start_web_harness(fake, sqlite_db, clock)
    try:
        yield web_harness
    finally:
        await bot.stop()
        await web.stop()


async def _couples(harness: WebHarness, therapist_user_id: int) -> list[tuple[int, Kind, Kind]]:
    """One couple per kind: A writes that kind, B the next one; both joined."""
    cipher = harness.bot.deps.cipher
    now = harness.clock.now()
    made = []
    async with harness.db.uow() as uow:
        therapist = await uow.therapists.by_user(therapist_user_id)
        assert therapist is not None
        for index, kind_a in enumerate(KINDS):
            kind_b = KINDS[(index + 1) % len(KINDS)]
            created = await new_couple(uow, therapist, f"Couple {index}", now=now, ttl=timedelta(1))
            for partner in await uow.partners.of_couple(created.couple.id):
                kind = kind_a if partner.slot == "A" else kind_b
                _join(partner, 5000 + index * 2 + (partner.slot == "B"), now - timedelta(30))
                _write(uow.session, partner, kind, words(kind, partner.slot), cipher, now)
            made.append((created.couple.id, kind_a, kind_b))
        await uow.commit()
    return made


def _join(partner: Partner, user_id: int, at: datetime) -> None:
    partner.telegram_user_id = partner.chat_id = user_id
    partner.display_name = f"Person{user_id}"
    partner.onboarding_step = "done"
    partner.timezone, partner.window = "Europe/Madrid", "evening"
    partner.consented_at = partner.joined_at = at


def _write(
    session: AsyncSession, partner: Partner, kind: Kind, text: str, cipher: Cipher, now: datetime
) -> None:
    at = now - timedelta(days=2)
    sealed = cipher.encrypt(text)
    row: CheckIn | Response
    if kind.source == "note":
        row = CheckIn(
            partner_id=partner.id,
            couple_id=partner.couple_id,
            instrument="dyad_checkin",
            status="complete",
            answers={"wellbeing": 6, "understood": 5},
            note_ciphertext=sealed,
            ok_to_raise=kind.ok_to_raise,
            risk=kind.risk,
            started_at=at,
            completed_at=at,
        )
    else:
        row = Response(
            partner_id=partner.id,
            couple_id=partner.couple_id,
            prompt_key="hope_small_moment",
            kind="hope",
            text_ciphertext=sealed,
            ok_to_raise=bool(kind.ok_to_raise),
            risk=kind.risk,
            created_at=at,
        )
    session.add(row)


async def test_no_words_appear_on_a_console_page_they_do_not_belong_on(
    harness: WebHarness,
) -> None:
    therapist = await harness.therapist()
    other = await therapist_of_practice(harness, "Olga", admin=False)
    admin = await therapist_of_practice(harness, "Ada", admin=True)
    made = await _couples(harness, therapist.id)
    base = harness.web_url
    async with aiohttp.ClientSession() as http:
        viewers = {}
        for name, user in (("own", therapist), ("other", other), ("admin", admin)):
            viewers[name] = Browser(http)
            assert (await viewers[name].sign_in(await console_link(user), base)).status == 303
        seen: dict[tuple[str, str], str] = {}
        for name, browser in viewers.items():
            seen[(name, "caseload")] = (await browser.get(f"{base}/console"))[1]
            for couple_id, _, _ in made:
                for page, path in (("couple", ""), ("notes", "/notes")):
                    status, text = await browser.get(f"{base}/console/c/{couple_id}{path}")
                    seen[(name, page)] = seen.get((name, page), "") + text
                    refused = name == "other" or (name == "admin" and page == "notes")
                    assert (status == 404) == refused, (name, page, couple_id, status)
    for _, kind_a, kind_b in made:
        for kind, slot in ((kind_a, "A"), (kind_b, "B")):
            canary = words(kind, slot)
            where = {key for key, text in seen.items() if canary in text}
            assert where == {("own", page) for page in kind.shown_on}, (kind.name, slot, where)
