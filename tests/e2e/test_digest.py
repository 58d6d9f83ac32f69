"""The pre-session digest end to end: sessions, automatic delivery once, on demand, privacy."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from bot.cli import cli
from bot.services import digests
from db.engine import Database
from db.models import AuditEntry, Couple, Delivery, TherapySession
from fakebotapi import FakeUser
from tests.conftest import PG_SKIP_REASON, postgres_url
from tests.e2e.conftest import Harness
from tests.e2e.test_checkins import _checkin


async def _couple(harness: Harness) -> tuple[FakeUser, FakeUser, FakeUser, str]:
    therapist = await harness.therapist()
    handle, token_a, token_b = await harness.new_couple(therapist)
    alex, blanca = harness.user("Alex"), harness.user("Blanca")
    await harness.join(alex, token_a, typed_timezone="America/New_York")
    await harness.join(blanca, token_b, typed_timezone="Europe/Madrid")
    await harness.settle()
    return therapist, alex, blanca, handle


async def _digest_messages(therapist: FakeUser) -> list[str]:
    return [m.text for m in therapist.messages if "Balance" in m.text or "Alex" in m.text]


async def test_the_digest_arrives_once_a_day_before_the_session(harness: Harness) -> None:
    therapist, alex, blanca, handle = await _couple(harness)
    await _checkin(alex, note="canary-private-3391 I felt unheard", ok_to_raise="No")
    await alex.wait_for_message(lambda m: "saved" in m.text)
    await _checkin(blanca, note="We had a lovely walk on Sunday", ok_to_raise="Yes")
    await blanca.wait_for_message(lambda m: "saved" in m.text)
    start = harness.clock.now() + timedelta(days=3)
    await therapist.send_command("session", f"{handle} {start:%Y-%m-%d} 18:00")
    assert "digest reaches you 24 hours before" in (await therapist.wait_for_message()).text
    await harness.bot.maintain()
    await harness.settle()
    assert await _digest_messages(therapist) == []
    harness.clock.advance(timedelta(days=2, hours=12))
    await harness.bot.maintain()
    await harness.bot.maintain()
    await harness.settle()
    digest = await therapist.wait_for_message(lambda m: "lovely walk" in m.text, after=0)
    assert "Alex" in digest.text and "Blanca" in digest.text
    assert "canary-private-3391" not in digest.text
    harness.clock.advance(timedelta(hours=1))
    await harness.bot.maintain()
    await harness.settle()
    assert len([m for m in therapist.messages if "lovely walk" in m.text]) == 1
    for partner in (alex, blanca):
        assert not any("Balance" in m.text or "lovely walk" in m.text for m in partner.messages)
    async with harness.db.uow() as uow:
        recipients = set(
            await uow.session.scalars(select(Delivery.recipient).where(Delivery.kind == "digest"))
        )
    assert recipients == {"therapist:1"}


async def test_on_demand_digest_is_audited_and_alternates_who_comes_first(
    harness: Harness,
) -> None:
    therapist, alex, _, handle = await _couple(harness)
    await _checkin(alex, note=None)
    await alex.wait_for_message(lambda m: "saved" in m.text)
    await therapist.send_command("digest", handle)
    await harness.settle()
    first = await therapist.wait_for_message(lambda m: "Alex" in m.text)
    await therapist.send_command("digest", handle)
    await harness.settle()
    second = await therapist.wait_for_message(lambda m: "Alex" in m.text)
    assert first.text.index("Alex") < first.text.index("Blanca")
    assert second.text.index("Blanca") < second.text.index("Alex")
    async with harness.db.uow() as uow:
        reads = await uow.session.scalar(
            select(func.count()).where(AuditEntry.action == "digest.read")
        )
    assert reads == 2


async def test_sessions_can_be_listed_made_weekly_and_cancelled(harness: Harness) -> None:
    therapist, _, _, handle = await _couple(harness)
    await therapist.send_command("session", f"{handle} weekly thu 17:30")
    assert "Weekly sessions" in (await therapist.wait_for_message()).text
    await therapist.send_command("sessions")
    listing = await therapist.wait_for_message()
    assert listing.text.count(handle) == 2 and "(weekly)" in listing.text
    await therapist.send_command("session", f"{handle} 2020-01-01 10:00")
    assert "already passed" in (await therapist.wait_for_message()).text
    await therapist.send_command("session", f"{handle} tomorrow 10:00")
    assert "couldn't read" in (await therapist.wait_for_message()).text
    await therapist.send_command("session", f"{handle} cancel")
    assert "weekly sessions go on" in (await therapist.wait_for_message()).text
    await therapist.send_command("session", f"{handle} end")
    assert "weekly sessions of" in (await therapist.wait_for_message()).text
    await therapist.send_command("sessions")
    assert "No upcoming sessions" in (await therapist.wait_for_message()).text


async def test_another_therapist_cannot_get_the_digest(harness: Harness) -> None:
    _, _, _, handle = await _couple(harness)
    other = await harness.therapist("Bea")
    await other.send_command("digest", handle)
    assert "can't find" in (await other.wait_for_message()).text
    await harness.settle()
    assert not any("Balance" in m.text for m in other.messages)


@pytest.mark.parametrize("db", ["postgres"], indirect=True)
async def test_two_workers_send_the_pre_session_digest_exactly_once(harness: Harness) -> None:
    url = postgres_url()
    if url is None:
        pytest.skip(PG_SKIP_REASON)
    therapist, _, _, handle = await _couple(harness)
    start = harness.clock.now() + timedelta(hours=20)
    await therapist.send_command("session", f"{handle} {start:%Y-%m-%d %H:%M}")
    await therapist.wait_for_message()
    second = Database(url, search_path=harness.db.search_path)
    try:
        now = harness.clock.now()
        results = await asyncio.gather(
            digests.send_due_digests(harness.db, harness.bot.deps.cipher, now),
            digests.send_due_digests(second, harness.bot.deps.cipher, now),
        )
    finally:
        await second.dispose()
    assert sorted(results) == [0, 1]
    async with harness.db.uow() as uow:
        rows = await uow.session.scalar(select(func.count()).where(Delivery.kind == "digest"))
        session = await uow.session.scalar(select(TherapySession))
    assert rows and session is not None and session.digest_sent_at is not None
    await harness.settle()
    assert len([m for m in therapist.messages if "Balance" in m.text]) == 1


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
async def test_the_command_line_prints_text_html_and_json(harness: Harness) -> None:
    _, alex, _, handle = await _couple(harness)
    await _checkin(alex, note="canary-cli-private", ok_to_raise="No")
    await alex.wait_for_message(lambda m: "saved" in m.text)
    env = {"DYAD_DATABASE_URL": harness.db.url, "DYAD_ENCRYPTION_KEYS": _key(harness)}
    runner = CliRunner()
    for fmt, marker in (("text", "Alex"), ("html", "<html"), ("json", '"partners"')):
        result = await asyncio.to_thread(
            runner.invoke, cli, ["digest", handle, "--format", fmt], env=env
        )
        assert result.exit_code == 0, result.output
        assert marker in result.output and "canary-cli-private" not in result.output
    parsed = json.loads(
        (
            await asyncio.to_thread(
                runner.invoke, cli, ["digest", handle, "--format", "json"], env=env
            )
        ).output
    )
    assert parsed["couple_handle"] == handle
    async with harness.db.uow() as uow:
        couple = await uow.session.scalar(select(Couple))
        actors = set(await uow.session.scalars(select(AuditEntry.actor)))
    assert couple is not None and "cli" in actors


def _key(harness: Harness) -> str:
    return harness.bot.deps.cipher.keys[0]
