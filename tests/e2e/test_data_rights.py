"""A partner's own data: /export holds only theirs; /deleteme asks, then erases and unlinks.

Assumes ``handlers/__init__.py`` registers ``/export``, ``/deleteme`` and the ``1|del|``
button (``handlers.data_rights``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from bot.cli.data import audit
from bot.locales import t
from bot.services.outbox import enqueue
from bot.services.practices import create_practice
from db.engine import Database
from db.models import Alert, AuditEntry, CheckIn, Couple, Delivery, Partner, Response, Therapist
from fakebotapi import FakeMessage, FakeUser
from tests.e2e.conftest import Harness
from tests.e2e.test_checkins import _checkin, _couple


@pytest.fixture
def cli_logging() -> Iterator[None]:
    """The command line configures the root logger for its process; put it back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


async def _partners(harness: Harness) -> tuple[Partner, Partner]:
    async with harness.db.uow() as uow:
        a, b = await uow.session.scalars(select(Partner).order_by(Partner.slot))
    return a, b


async def _answer(harness: Harness, partner: Partner, text: str, *, share: bool | None) -> None:
    """A stored prompt answer (couple-space when ``share`` is set), as the prompt flow keeps it."""
    async with harness.db.uow() as uow:
        uow.session.add(
            Response(
                partner_id=partner.id,
                couple_id=partner.couple_id,
                prompt_key="space.week_best" if share is not None else "hope.small_win",
                kind="couple_space" if share is not None else "hope",
                text_ciphertext=harness.bot.deps.cipher.encrypt(text),
                share=share,
                created_at=harness.clock.now(),
            )
        )
        await uow.commit()


async def _export(user: FakeUser) -> tuple[FakeMessage, str, dict[str, Any]]:
    await user.send_command("export")
    sent = await user.wait_for_message(lambda m: m.document is not None)
    assert sent.document is not None and sent.document.file_name == "dyad-export.json"
    raw = sent.document.content.decode("utf-8")
    return sent, raw, json.loads(raw)


async def _rows(harness: Harness, partner: Partner) -> dict[str, int]:
    """How many rows of each private kind the partner has."""
    async with harness.db.uow() as uow:
        counts = {}
        for name, model in (("checkins", CheckIn), ("responses", Response)):
            rows = await uow.session.scalars(select(model.id).filter_by(partner_id=partner.id))
            counts[name] = len(list(rows))
        pending = await uow.session.scalars(
            select(Delivery.id).filter_by(partner_id=partner.id, status="pending")
        )
        counts["pending"] = len(list(pending))
    return counts


async def test_an_export_holds_the_partners_own_data_and_nothing_of_the_others(
    harness: Harness,
) -> None:
    therapist, alex, blanca, _ = await _couple(harness)
    await _checkin(alex, note="Dinner was calm, canary-alex-note-3391.", ok_to_raise="Yes")
    await alex.wait_for_message(lambda m: "saved" in m.text)
    a, b = await _partners(harness)
    await _answer(harness, a, "canary-alex-space-1207", share=True)
    # Revealed to both partners in the couple space, yet still Blanca's to export, not Alex's.
    await _answer(harness, b, "canary-blanca-space-8812", share=True)
    await _answer(harness, b, "canary-blanca-private-5530", share=None)
    await harness.settle()
    heard = {user.id: len(user.messages) for user in (therapist, blanca)}

    sent, raw, data = await _export(alex)
    assert sent.caption == t("en", "data.export_caption")
    [checkin] = data["checkins"]
    assert checkin["note"] == "Dinner was calm, canary-alex-note-3391."
    assert checkin["ok_to_raise"] is True and checkin["status"] == "complete"
    assert checkin["answers"]["wellbeing"] == 7 and checkin["answers"]["understood"] == 5
    assert [r["text"] for r in data["responses"]] == ["canary-alex-space-1207"]
    assert data["settings"]["timezone"] == "America/New_York"
    assert data["settings"]["delivery_window"] == "evening"
    for other in ("canary-blanca", "Blanca", "Europe/Madrid"):
        assert other not in raw, other

    _, raw_b, data_b = await _export(blanca)
    assert data_b["checkins"] == []
    assert [r["text"] for r in data_b["responses"]] == [
        "canary-blanca-space-8812",
        "canary-blanca-private-5530",
    ]
    assert data_b["about"] == t("es", "data.export_about")
    for other in ("canary-alex", "Alex", "America/New_York"):
        assert other not in raw_b, other

    await harness.settle()
    assert len(therapist.messages) == heard[therapist.id]
    assert len(blanca.messages) == heard[blanca.id] + 1  # her own export only
    async with harness.db.uow() as uow:
        exports = list(await uow.session.scalars(select(AuditEntry).filter_by(action="export")))
    assert sorted(e.actor for e in exports) == sorted([f"partner:{a.id}", f"partner:{b.id}"])
    assert all(e.couple_id == a.couple_id and e.detail is None for e in exports)


async def test_deleteme_asks_first_refuses_forgeries_then_erases_and_unlinks(
    harness: Harness,
) -> None:
    therapist, alex, blanca, handle = await _couple(harness)
    await harness.deliver_waiting()  # the space-ready notices, in each partner's window
    await _checkin(alex, note="canary-erase-6620 I want to end my life")
    await alex.wait_for_message(lambda m: "saved" in m.text)
    a, b = await _partners(harness)
    await _answer(harness, a, "canary-erase-space-4410", share=True)
    await _answer(harness, b, "canary-blanca-keeps-7781", share=True)
    async with harness.db.uow() as uow:
        for partner in (a, b):
            await enqueue(
                uow,
                partner,
                kind="hope",
                key="hope.small_win",
                dedupe_key=f"hope:{partner.id}:tomorrow",
                due_at=harness.clock.now() + timedelta(days=1),
                couple_id=partner.couple_id,
            )
        await uow.commit()
    await harness.settle()
    kept = {"checkins": 1, "responses": 1, "pending": 1}
    assert await _rows(harness, a) == kept

    # Asked first; "No" changes nothing.
    await alex.send_command("deleteme")
    confirm = await alex.wait_for_message(lambda m: bool(m.buttons))
    assert confirm.text == t("en", "data.erase_confirm")
    await alex.press(confirm, f"1|del|{a.id}|no")
    assert (await alex.wait_for_message()).text == t("en", "data.kept")
    assert await _rows(harness, a) == kept

    # Blanca forges Alex's "yes" on one of her own messages: refused, nothing changes.
    for data in (f"1|del|{a.id}|yes", f"1|del|{b.id}|maybe"):
        await blanca.press_forged(blanca.messages[-1], data)
        await harness.fake.wait_for(lambda: blanca.callback_queries[-1].answered or None, 5.0)
        assert blanca.callback_queries[-1].answer_text == t("es", "common.stale_button")
    assert await _rows(harness, a) == kept
    assert await _rows(harness, b) == kept | {"checkins": 0}

    await harness.settle()
    heard = {user.id: len(user.messages) for user in (therapist, blanca)}
    await alex.send_command("deleteme")
    await alex.press(await alex.wait_for_message(lambda m: bool(m.buttons)), f"1|del|{a.id}|yes")
    assert (await alex.wait_for_message()).text == t("en", "data.erased")
    await harness.settle()

    assert await _rows(harness, a) == {"checkins": 0, "responses": 0, "pending": 0}
    assert await _rows(harness, b) == kept | {"checkins": 0}
    async with harness.db.uow() as uow:
        gone = await uow.partners.get(a.id)
        alert = await uow.session.scalar(select(Alert))
        actions = list(await uow.session.scalars(select(AuditEntry.action)))
    assert gone is not None and gone.left_at is not None and gone.telegram_user_id is None
    assert (gone.timezone, gone.window, gone.display_name, gone.paused_until) == (None,) * 4
    assert alert is not None and alert.slot == "A" and alert.kind == "suicide"
    assert alert.source_id is None and "phrases" not in alert.phrase_ids
    assert "erase" in actions

    # The therapist is told once, without content; Blanca is told nothing.
    told = therapist.messages[heard[therapist.id] :]
    assert [m.text for m in told] == [t("en", "couple.partner_erased", handle=handle, slot="A")]
    assert len(blanca.messages) == heard[blanca.id]
    await therapist.send_command("alerts", handle)
    view = await therapist.wait_for_message(lambda m: handle in m.text)
    assert "partner A" in view.text and t("en", "safety.kind.suicide") in view.text
    assert "canary-erase" not in view.text and "end my life" not in view.text

    # Alex is now a stranger to Dyad.
    await alex.send_command("help")
    assert (await alex.wait_for_message()).text == t("en", "common.help_stranger")
    await alex.send_command("export")
    assert (await alex.wait_for_message()).text == t("en", "common.help_stranger")


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
async def test_the_audit_command_prints_a_couples_log_one_line_each(
    db: Database, cli_logging: None
) -> None:
    at = datetime(2026, 10, 19, 9, 0, tzinfo=UTC)
    async with db.uow() as uow:
        for name in ("North Practice", "South Practice"):
            practice = await create_practice(uow, name, timezone="UTC", language="en", now=at)
            therapist = await uow.therapists.add(
                Therapist(practice_id=practice.id, display_name="Dr X", created_at=at)
            )
            couple = await uow.couples.add(
                Couple(
                    practice_id=practice.id,
                    therapist_id=therapist.id,
                    handle="c1",
                    label="A & J",
                    created_at=at,
                )
            )
            uow.audit.record(
                actor=f"therapist:{therapist.id}",
                action="alerts.read",
                couple_id=couple.id,
                at=at,
            )
        uow.audit.record(
            actor="partner:7", action="export", couple_id=couple.id, at=at + timedelta(hours=1)
        )
        await uow.commit()
    runner = CliRunner()
    env = {"DYAD_DATABASE_URL": db.url}

    listed = await asyncio.to_thread(
        runner.invoke, audit, ["--couple", "C1", "--practice", "south-practice"], env=env
    )
    assert listed.exit_code == 0, listed.output
    assert listed.output.splitlines() == [
        f"2026-10-19T09:00:00Z\ttherapist:{therapist.id}\talerts.read\t-",
        "2026-10-19T10:00:00Z\tpartner:7\texport\t-",
    ]
    ambiguous = await asyncio.to_thread(runner.invoke, audit, ["--couple", "c1"], env=env)
    assert ambiguous.exit_code == 1 and "--practice" in ambiguous.output
    unknown = await asyncio.to_thread(runner.invoke, audit, ["--couple", "c9"], env=env)
    assert unknown.exit_code == 1
    assert unknown.output.strip().splitlines() == ["Error: no couple with handle 'c9'"]
