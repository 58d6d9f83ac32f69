"""The therapist console over real HTTP, on a SQLite file and PostgreSQL.

Sign-in (one-time link, session cookie, inactivity), access (own couples only; an admin
sees the practice in counts and flags, without words), the audit log, the couple page's
digest and balance, acknowledging an alert.
"""

from __future__ import annotations

import html
import re
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from sqlalchemy import select

from bot.config import ConfigError, load_settings
from bot.core.digest import render_html_sections
from bot.locales import t
from bot.services import console
from db.models import (
    Alert,
    AuditEntry,
    ConsoleLoginLink,
    ConsoleSession,
    Couple,
    TherapySession,
)
from fakebotapi.webapps import user_init_data
from tests.web.conftest import WebHarness
from tests.web.console_flows import (
    PRIVATE_WORDS,
    SHARED_WORDS,
    Browser,
    console_link,
    seed_history,
    therapist_of_practice,
)
from tests.web.flows import couple


async def test_a_login_link_works_once_then_the_session_ends_after_inactivity(
    web_harness: WebHarness,
) -> None:
    therapist, alex, _, handle = await couple(web_harness)
    base = web_harness.web_url
    link = await console_link(therapist)
    async with aiohttp.ClientSession() as http:
        browser = Browser(http)
        # Opening the link's page (a link preview does the same) uses nothing up.
        assert (await browser.get(link))[0] == 200
        response = await browser.sign_in(link, base)
        assert response.status == 303 and response.headers["Location"] == "/app/console"
        cookie = response.headers["Set-Cookie"]
        for attribute in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/app/console"):
            assert attribute in cookie, cookie
        status, page = await browser.get(f"{base}/console")
        assert status == 200 and handle in page
        # The same link a second time: refused, nothing changes.
        second = Browser(http)
        again = await second.sign_in(link, base)
        assert again.status == 403 and not second.cookie
        # Idle for longer than the setting: signed out, and the session stays ended.
        web_harness.clock.advance(timedelta(minutes=31))
        status, page = await browser.get(f"{base}/console")
        assert status == 401 and t("en", "console.signed_out") in page
        web_harness.clock.advance(timedelta(seconds=1))
        assert (await browser.get(f"{base}/console"))[0] == 401
        # A fresh link expires unused after its minutes.
        late = await console_link(therapist)
        web_harness.clock.advance(timedelta(minutes=11))
        assert (await Browser(http).sign_in(late, base)).status == 403
        # A form posted from another site is refused before anything happens.
        fresh = await console_link(therapist)
        token = fresh.rsplit("/", 1)[1]
        foreign = await Browser(http).post(
            f"{base}/console/login", {"token": token}, cross_site=True
        )
        assert foreign.status == 403
        assert (await Browser(http).sign_in(fresh, base)).status == 303
        # From the Mini App: Telegram's signed initData names the therapist; nobody else.
        fake = web_harness.fake
        for user, status in ((therapist, 303), (alex, 403)):
            signed = user_init_data(user.to_api(), fake.token, fake.date())
            opened = await Browser(http).post(f"{base}/console/app", {"init_data": signed})
            assert opened.status == status
            assert ("dyad_console" in opened.cookies) == (status == 303)
        forged = user_init_data(therapist.to_api(), "1:not-the-token", fake.date())
        assert (
            await Browser(http).post(f"{base}/console/app", {"init_data": forged})
        ).status == 403
    async with web_harness.db.uow() as uow:
        links = list(await uow.session.scalars(select(ConsoleLoginLink)))
        sessions = list(await uow.session.scalars(select(ConsoleSession)))
    assert all(token not in link.token_hash for link in links)  # only hashes are stored
    assert [s.ended_at is not None for s in sessions] == [True, False, False]


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)  # test_console_privacy goes further
async def test_a_therapist_sees_only_their_own_couples_and_an_admin_sees_no_words(
    web_harness: WebHarness,
) -> None:
    therapist, alex, blanca, handle = await couple(web_harness)
    await seed_history(web_harness, alex, blanca)
    other = await therapist_of_practice(web_harness, "Olga", admin=False)
    admin = await therapist_of_practice(web_harness, "Ada", admin=True)
    base = web_harness.web_url
    async with web_harness.db.uow() as uow:
        own = await uow.session.scalar(select(Couple).where(Couple.handle == handle))
        ids = {
            user.id: (await uow.therapists.by_user(user.id)).id  # type: ignore[union-attr]
            for user in (therapist, other, admin)
        }
    assert own is not None
    couple_url = f"{base}/console/c/{own.id}"
    async with aiohttp.ClientSession() as http:
        olga = Browser(http)
        await olga.sign_in(await console_link(other), base)
        status, page = await olga.get(f"{base}/console")
        assert status == 200 and handle not in page
        for url in (couple_url, f"{couple_url}/notes", f"{base}/console/c/99999"):
            status, page = await olga.get(url)
            assert status == 404 and t("en", "console.not_found") in page, url
        ack = await olga.post(f"{couple_url}/alerts/1/ack")
        assert ack.status == 404

        ada = Browser(http)
        await ada.sign_in(await console_link(admin), base)
        status, caseload = await ada.get(f"{base}/console")
        assert status == 200 and handle in caseload
        status, page = await ada.get(couple_url)
        assert status == 200 and 'class="chart-svg"' in page
        assert (await ada.get(f"{couple_url}/notes"))[0] == 404
        for text in (caseload, page):
            assert PRIVATE_WORDS not in text and SHARED_WORDS not in text
            assert "canary-5521" not in text and "Valencia" not in text

        ana = Browser(http)
        await ana.sign_in(await console_link(therapist), base)
        status, page = await ana.get(couple_url)
        assert status == 200
        assert SHARED_WORDS in page  # marked OK to raise: quoted, as in the digest
        assert "canary-5521" not in page  # kept for the therapist: never on the digest page
        status, notes = await ana.get(f"{couple_url}/notes")
        assert status == 200 and PRIVATE_WORDS in notes
    async with web_harness.db.uow() as uow:
        actions = [
            (entry.actor, entry.action)
            for entry in await uow.audit.of_couple(own.id)
            if entry.action.startswith(("console.", "notes.", "digest."))
        ]
    ana_id, olga_id, ada_id = (f"therapist:{ids[u.id]}" for u in (therapist, other, admin))
    assert (ada_id, "console.caseload") in actions
    assert (ada_id, "console.couple.admin_read") in actions
    assert (ana_id, "console.couple.read") in actions and (ana_id, "notes.read") in actions
    assert not [a for a in actions if a[0] == olga_id]  # refused reads read nothing


async def test_the_couple_page_is_the_digest_with_its_balance_charts_and_alerts(
    web_harness: WebHarness,
) -> None:
    therapist, alex, blanca, _ = await couple(web_harness)
    await seed_history(web_harness, alex, blanca)
    await alex.send_text("Some days I just want to kill myself.")
    await alex.wait_for_message(lambda m: "988" in m.text)
    await web_harness.settle()
    base = web_harness.web_url
    deps = web_harness.bot.deps
    async with web_harness.db.uow() as uow:
        me = await uow.therapists.by_user(therapist.id)
        assert me is not None
        (row,) = await console.caseload(uow, me, web_harness.clock.now())
        pair = await uow.couples.get(row.couple_id)
        assert pair is not None
        digest = await console._digest(uow, pair, deps.cipher, web_harness.clock.now())
    # What needs attention, in counts and kinds: never the words.
    assert row.open_alerts == 1 and row.unseen_alerts == 1 and row.alert_kinds == ("suicide",)
    assert row.split and row.off_track
    blanca_glance = next(p for p in row.partners if p.slot == "B")
    assert blanca_glance.off_track and blanca_glance.days_since_answer == 4
    async with aiohttp.ClientSession() as http:
        ana = Browser(http)
        await ana.sign_in(await console_link(therapist), base)
        status, caseload = await ana.get(f"{base}/console")
        assert status == 200 and "kill myself" not in caseload
        assert t("en", "digest.safety.kind.suicide") in caseload
        url = f"{base}/console/c/{row.couple_id}"
        status, page = await ana.get(url)
        assert status == 200 and "kill myself" not in page
        # The digest's own sections, balance figure included, exactly as composed.
        for section in render_html_sections(digest, "en"):
            assert section in page
        shares = [round(s.share * 100) for s in digest.balance.shares]
        assert f"{shares[0]}%" in page and f"{shares[1]}%" in page
        # Three charts, each with both partners' series and a table.
        assert page.count('class="chart-svg"') == 3 and page.count('class="chart-data"') == 3
        assert page.count('<g class="series seat-A">') == 3
        assert page.count('<g class="series seat-B">') == 3
        assert page.count('class="threshold"') == 1
        (alert_id,) = [int(i) for i in re.findall(r"/alerts/(\d+)/ack", page)]
        done = await ana.post(f"{url}/alerts/{alert_id}/ack")
        assert done.status == 303 and done.headers["Location"].endswith(
            f"/c/{row.couple_id}#alerts"
        )
        status, page = await ana.get(url)
        assert "/ack" not in page and t("en", "console.alert_state.seen") in page
        # Sessions: move the coming one, then skip it, as /session does; bad input changes nothing.
        zone = ZoneInfo("Europe/Madrid")  # the practice's, so the therapist's
        coming = web_harness.clock.now() + timedelta(days=2)
        day, later = f"{coming.astimezone(zone):%Y-%m-%d}", coming + timedelta(days=1)
        bad = await ana.post(
            f"{url}/sessions/move", {"day": day, "to_day": f"{later:%Y-%m-%d}", "to_time": "25:99"}
        )
        assert bad.status == 422
        moved = await ana.post(
            f"{url}/sessions/move", {"day": day, "to_day": f"{later:%Y-%m-%d}", "to_time": "18:00"}
        )
        assert moved.status == 303
        status, page = await ana.get(url)
        assert t("en", "console.session_moved", old="").split()[0] in page
        skipped = await ana.post(f"{url}/sessions/skip", {"day": f"{later:%Y-%m-%d}"})
        assert skipped.status == 303
    async with web_harness.db.uow() as uow:
        alert = await uow.session.get(Alert, alert_id)
        audit = list(await uow.session.scalars(select(AuditEntry.action)))
        rows = list(
            await uow.session.scalars(
                select(TherapySession).where(TherapySession.starts_at > web_harness.clock.now())
            )
        )
    assert alert is not None and alert.seen_at is not None and alert.cleared_at is None
    assert "console.alert.ack" in audit
    assert "console.session.move" in audit and "console.session.skip" in audit
    local = sorted((r.starts_at.astimezone(zone).hour, r.cancelled_at is not None) for r in rows)
    assert local == [(11, True), (18, True)]


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
async def test_the_admin_page_checks_a_file_and_previews_a_couple_for_admins_only(
    web_harness: WebHarness,
) -> None:
    therapist, _, _, handle = await couple(web_harness)
    admin = await therapist_of_practice(web_harness, "Ada", admin=True)
    base = web_harness.web_url
    example = (Path(__file__).parents[2] / "docs" / "practice.example.toml").read_text()
    async with aiohttp.ClientSession() as http:
        ana, ada = Browser(http), Browser(http)
        await ana.sign_in(await console_link(therapist), base)
        await ada.sign_in(await console_link(admin), base)
        assert (await ana.get(f"{base}/console/admin"))[0] == 404
        status, page = await ada.get(f"{base}/console/admin?couple={handle}")
        assert status == 200 and html.escape(t("en", "console.admin_defaults")) in page
        # The preview's own rows, from the planner's code, in the admin's language.
        assert html.escape(t("en", "console.preview.total", days=14, counts="")) in page
        assert '<table class="preview">' in page
        assert not re.search(r"\d+ days: A \d+, B \d+ deliveries", page), "not the CLI's text"
        kinds = ("checkin", "hope", "skill", "skill_followup", "couple_space")
        assert any(t("en", f"console.preview.kind.{kind}") in page for kind in kinds)
        # A couple nobody has joined yet has nothing to preview, and the page says so.
        waiting, _, _ = await web_harness.new_couple(therapist, "N & O")
        status, page = await ada.get(f"{base}/console/admin?couple={waiting}")
        nobody = t("en", "console.preview.nobody_joined", handle=waiting)
        assert status == 200 and html.escape(nobody) in page and "<table" not in page

        async def check(name: str, text: str) -> tuple[int, str]:
            form = aiohttp.FormData()
            form.add_field("file", text.encode(), filename=name, content_type="text/plain")
            headers = {"Cookie": f"dyad_console={ada.cookie}"}
            async with http.post(f"{base}/console/admin/check", data=form, headers=headers) as r:
                return r.status, await r.text()

        status, page = await check("ours.toml", "[digest\nlead_hours = 24\n")
        assert status == 422 and "ours.toml:1:" in page
        status, page = await check("example.toml", example)
        assert (
            status == 200
            and html.escape(t("en", "console.admin_check_ok")) in page
            and "ok:" in page
        )
    # A Spanish-speaking admin reads the same preview in Spanish: dates, kinds, the total.
    eva = await therapist_of_practice(web_harness, "Eva", admin=True, language="es")
    async with aiohttp.ClientSession() as http:
        browser = Browser(http)
        await browser.sign_in(await console_link(eva), base)
        status, page = await browser.get(f"{base}/console/admin?couple={handle}")
    assert status == 200 and '<html lang="es">' in page  # es: Spain's Spanish (es-ES)
    assert html.escape(t("es-ES", "console.preview.total", days=14, counts="")) in page
    assert any(t("es-ES", f"console.preview.kind.{kind}") in page for kind in kinds)
    assert html.escape(t("es-ES", "console.preview.date")) in page
    for english in ("days:", "eliveries", ">date<", ">Date<", "Mon ", "Tue ", "Wed "):
        assert english not in page, english
    async with web_harness.db.uow() as uow:
        practice = await uow.practices.by_slug(web_harness.practice_slug)
    assert practice is not None and practice.config_toml is None  # a check stores nothing
    # Served over https, /console also offers the console as a Mini App.
    deps = web_harness.bot.deps
    public = "https://dyad.example.org/app"
    deps.settings = deps.settings.model_copy(update={"webapp_url": public})
    before = len(admin.messages)
    await admin.send_command("console")
    reply = await admin.wait_for_message(lambda m: "/console/login/" in m.text, after=before)
    assert f"{public}/console/login/" in reply.text
    button = reply.web_app_url_for(t("en", "console.link_button"))
    assert button == f"{public}/console/app"
    # Without web pages there is no console to link to, and the reply says so.
    deps.settings = deps.settings.model_copy(update={"webapp_url": None})
    await admin.send_command("console")
    await admin.wait_for_message(lambda m: m.text == t("en", "console.not_served"))


def test_a_cookie_without_secure_is_refused_unless_the_pages_are_on_loopback_http() -> None:
    for url in ("https://dyad.example.org/app", None):
        with pytest.raises(ConfigError, match="DYAD_CONSOLE_INSECURE_LOOPBACK_COOKIE"):
            load_settings(_env_file=None, webapp_url=url, console_insecure_loopback_cookie=True)
    local = load_settings(
        _env_file=None,
        webapp_url="http://127.0.0.1:8080/app",
        console_insecure_loopback_cookie=True,
    )
    assert local.console_insecure_loopback_cookie
    assert not load_settings(_env_file=None).console_insecure_loopback_cookie
