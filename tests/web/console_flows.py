"""What the console tests share: a couple with check-ins, the /console link, a signed-in client."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

import aiohttp

from bot.services.practices import invite_therapist
from bot.services.sessions import add_session
from db.models import CheckIn
from fakebotapi import FakeUser
from tests.e2e.test_checkins import _checkin as chat_checkin
from tests.web.conftest import WebHarness

LOGIN = re.compile(r"(http://\S+/console/login/[A-Za-z0-9_-]+)")
SHARED_WORDS = "We would like to talk about the move to Valencia calmly."
PRIVATE_WORDS = "I have not told anyone about the loan, canary-5521."


async def console_link(therapist: FakeUser) -> str:
    """Send /console and return the login link the bot replies with."""
    before = len(therapist.messages)
    await therapist.send_command("console")
    reply = await therapist.wait_for_message(lambda m: bool(LOGIN.search(m.text)), after=before)
    found = LOGIN.search(reply.text)
    assert found is not None
    return found.group(1)


# Six weeks of weekly check-ins (days before now): Alex steady, Blanca's alliance falling.
ALEX_RATINGS = ((40, 7, 7), (33, 7, 8), (26, 8, 8), (19, 7, 7), (12, 8, 8), (5, 8, 9))
BLANCA_RATINGS = ((39, 7, 7), (32, 7, 7), (25, 7, 7), (18, 6, 7), (11, 4, 4), (4, 4, 3))


async def seed_history(harness: WebHarness, alex: FakeUser, blanca: FakeUser) -> None:
    """Weeks of stored check-ins for both partners and a past session, straight into the
    database; the last ones carry words: Alex's kept for the therapist only, Blanca's OK
    to raise in session. Then Alex answers once more through the chat itself."""
    cipher = harness.bot.deps.cipher
    now = harness.clock.now()
    async with harness.db.uow() as uow:
        for user, ratings in ((alex, ALEX_RATINGS), (blanca, BLANCA_RATINGS)):
            partner = await uow.partners.by_user(user.id)
            assert partner is not None
            for index, (days, wellbeing, alliance) in enumerate(ratings):
                last = index == len(ratings) - 1
                words = PRIVATE_WORDS if user is alex else SHARED_WORDS
                at = now - timedelta(days=days)
                uow.session.add(
                    CheckIn(
                        partner_id=partner.id,
                        couple_id=partner.couple_id,
                        instrument="dyad_checkin",
                        status="complete",
                        answers={
                            "wellbeing": wellbeing,
                            "hope": 6,
                            "safe_to_be_honest": alliance,
                            "understood": alliance,
                        },
                        note_ciphertext=cipher.encrypt(words) if last else None,
                        ok_to_raise=(user is blanca) if last else None,
                        started_at=at,
                        completed_at=at,
                    )
                )
            couple_id = partner.couple_id
        couple = await uow.couples.get(couple_id)
        assert couple is not None
        await add_session(uow, couple, now - timedelta(days=14))
        await add_session(uow, couple, now + timedelta(days=2))
        await uow.commit()
    await chat_checkin(alex, note=None)
    await alex.wait_for_message(lambda m: "saved" in m.text)


@dataclass
class Browser:
    """An HTTP client that keeps the console cookie itself (it is Secure, over loopback)."""

    http: aiohttp.ClientSession
    cookie: str = ""

    async def get(self, url: str) -> tuple[int, str]:
        headers = {"Cookie": f"dyad_console={self.cookie}"} if self.cookie else {}
        async with self.http.get(url, headers=headers, allow_redirects=False) as response:
            return response.status, await response.text()

    async def post(
        self, url: str, data: dict[str, str] | None = None, *, cross_site: bool = False
    ) -> aiohttp.ClientResponse:
        headers = {"Cookie": f"dyad_console={self.cookie}"} if self.cookie else {}
        if cross_site:  # what a browser says of a form posted from another site's page
            headers.update({"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"})
        async with self.http.post(
            url, data=data or {}, headers=headers, allow_redirects=False
        ) as response:
            await response.read()
            return response

    async def sign_in(self, link: str, base: str) -> aiohttp.ClientResponse:
        """Open the link's page and press its button, as a person does."""
        status, page = await self.get(link)
        assert status == 200, page
        token = re.search(r'name="token" value="([^"]+)"', page)
        assert token is not None
        response = await self.post(f"{base}/console/login", {"token": token.group(1)})
        cookie = response.cookies.get("dyad_console")
        if response.status == 303 and cookie is not None:
            self.cookie = cookie.value
        return response


def harness_base(harness: WebHarness) -> str:
    """The web layer's base URL (``http://127.0.0.1:PORT/app``)."""
    return harness.web_url


async def therapist_of_practice(
    harness: WebHarness, first_name: str, *, admin: bool, language: str = "en"
) -> FakeUser:
    """Another therapist of the same practice, joined through their own invite link."""
    async with harness.db.uow() as uow:
        issued = await invite_therapist(
            uow,
            harness.practice_slug,
            first_name,
            is_admin=admin,
            now=harness.clock.now(),
            ttl=timedelta(days=7),
        )
        await uow.commit()
    user = harness.user(first_name, language)
    await user.send_command("start", issued.token)
    await user.wait_for_message(lambda m: "Dyad" in m.text)
    return user
