"""The caseload reads the whole caseload at once: the same number of SQL statements for
three couples as for thirty, and the same figures each couple's own page shows.

Couples beyond the first are written straight into the database with varied histories:
falling and steady ratings, open and seen alerts, missed check-ins, an unreachable
partner, recent answers, past and coming sessions.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import event, select

from bot.services import console
from db.models import Alert, CheckIn, Couple, Delivery, Partner, Response, TherapySession
from tests.web.conftest import WebHarness
from tests.web.flows import couple

STEADY = (7, 7, 7, 7, 7, 7)
FALLING = (8, 8, 8, 5, 4, 3)
CHECKIN_DAYS = (40, 33, 26, 19, 12, 5)  # days before now


async def _add_couples(harness: WebHarness, count: int, first: int) -> None:
    """``count`` more couples of the first couple's therapist, each with its own story."""
    cipher = harness.bot.deps.cipher
    now = harness.clock.now()
    async with harness.db.uow() as uow:
        model = await uow.session.scalar(select(Couple).order_by(Couple.id).limit(1))
        assert model is not None
        for index in range(first, first + count):
            row = Couple(
                practice_id=model.practice_id,
                therapist_id=model.therapist_id,
                handle=f"bulk{index}",
                label=f"Bulk {index}",
                created_at=now - timedelta(days=60),
                space_ready_at=now - timedelta(days=50),
                digests_sent=index % 2,
            )
            uow.session.add(row)
            await uow.flush()
            seats = {}
            for slot in "AB":
                unreachable = slot == "B" and index % 5 == 0
                partner = Partner(
                    couple_id=row.id,
                    slot=slot,
                    display_name=f"{slot}-{index}",
                    telegram_user_id=7_000_000 + 2 * index + (slot == "B"),
                    chat_id=7_000_000 + 2 * index + (slot == "B"),
                    timezone="Europe/Madrid",
                    window="evening",
                    onboarding_step="done",
                    consented_at=now - timedelta(days=55),
                    joined_at=now - timedelta(days=55),
                    reachable=not unreachable,
                    unreachable_since=now - timedelta(days=2) if unreachable else None,
                )
                uow.session.add(partner)
                await uow.flush()
                seats[slot] = partner
                wellbeing = FALLING if slot == "B" and index % 3 == 0 else STEADY
                alliance = FALLING if slot == "A" and index % 4 == 1 else STEADY
                for week, days in enumerate(CHECKIN_DAYS):
                    at = now - timedelta(days=days + index % 2)
                    last = week == len(CHECKIN_DAYS) - 1
                    uow.session.add(
                        CheckIn(
                            partner_id=partner.id,
                            couple_id=row.id,
                            instrument="dyad_checkin",
                            status="partial" if last and index % 6 == 2 else "complete",
                            answers={
                                "wellbeing": wellbeing[week],
                                "hope": 6,
                                "safe_to_be_honest": alliance[week],
                                "understood": alliance[week],
                            },
                            note_ciphertext=cipher.encrypt(f"words {index}") if last else None,
                            ok_to_raise=(slot == "A") if last else None,
                            started_at=at,
                            completed_at=at,
                        )
                    )
                if index % 4 == 0 or slot == "B":
                    # A scheduled check-in three days ago that was never answered: missed.
                    sent = now - timedelta(days=3, hours=slot == "B")
                    uow.session.add(
                        Delivery(
                            recipient=f"partner:{partner.id}",
                            couple_id=row.id,
                            partner_id=partner.id,
                            kind="checkin",
                            key="checkin",
                            dedupe_key=f"bulk:{index}:{slot}",
                            due_at=sent,
                            status="sent",
                            sent_at=sent,
                            created_at=sent,
                        )
                    )
                if slot == "A" and index % 2:
                    uow.session.add(
                        Response(
                            partner_id=partner.id,
                            couple_id=row.id,
                            prompt_key="hope.appreciation",
                            kind="hope",
                            created_at=now - timedelta(days=1, hours=index),
                        )
                    )
            if index % 3 == 0:
                uow.session.add(
                    Alert(
                        couple_id=row.id,
                        partner_id=seats["B"].id,
                        slot="B",
                        kind="safety_question" if index % 2 else "violence",
                        source="checkin",
                        created_at=now - timedelta(days=2),
                        seen_at=None if index % 2 else now - timedelta(days=1),
                    )
                )
            if index % 2:
                past = now - timedelta(days=14 + index % 3)
                uow.session.add(
                    TherapySession(couple_id=row.id, starts_at=past, digest_due_at=past)
                )
            coming = now + timedelta(days=1 + index % 6, hours=index)
            uow.session.add(
                TherapySession(
                    couple_id=row.id, starts_at=coming, digest_due_at=coming - timedelta(days=1)
                )
            )
        await uow.commit()


async def _caseload_statements(
    harness: WebHarness, telegram_user_id: int
) -> tuple[list[str], list[console.CoupleGlance]]:
    """The caseload, and every SQL statement it sent (on its own connection only)."""
    statements: list[str] = []
    async with harness.db.uow() as uow:
        me = await uow.therapists.by_user(telegram_user_id)
        assert me is not None
        mine = (await uow.session.connection()).sync_connection

        def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if conn is mine:
                statements.append(statement)

        event.listen(harness.db.engine.sync_engine, "before_cursor_execute", seen)
        try:
            rows = await console.caseload(uow, me, harness.clock.now())
        finally:
            event.remove(harness.db.engine.sync_engine, "before_cursor_execute", seen)
    return statements, rows


async def _pages(
    harness: WebHarness, telegram_user_id: int, couple_ids: list[int]
) -> dict[int, console.CoupleGlance]:
    """Each couple's line as its own page shows it (composed from its full digest)."""
    out = {}
    for couple_id in couple_ids:
        async with harness.db.uow() as uow:
            me = await uow.therapists.by_user(telegram_user_id)
            assert me is not None
            view = await console.couple_view(
                uow, me, couple_id, harness.bot.deps.cipher, harness.clock.now()
            )
        out[couple_id] = view.glance
    return out


async def test_the_caseload_reads_thirty_couples_with_as_many_statements_as_three(
    web_harness: WebHarness,
) -> None:
    therapist, _, _, _ = await couple(web_harness)
    await _add_couples(web_harness, 2, first=1)
    three, rows = await _caseload_statements(web_harness, therapist.id)
    assert len(rows) == 3
    await _add_couples(web_harness, 27, first=3)
    thirty, rows = await _caseload_statements(web_harness, therapist.id)
    assert len(rows) == 30
    assert len(thirty) == len(three), "\n".join(thirty)
    # The figures are the ones each couple's own page shows, from its full digest.
    pages = await _pages(web_harness, therapist.id, [row.couple_id for row in rows])
    for row in rows:
        assert row == pages[row.couple_id], row.handle
    # And the stories seeded above show up, all kinds of them.
    assert any(row.split for row in rows) and any(not row.split for row in rows)
    assert any(row.off_track for row in rows) and any(not row.off_track for row in rows)
    assert any(row.unseen_alerts for row in rows) and any(row.open_alerts for row in rows)
    partners = [p for row in rows for p in row.partners]
    assert any(p.missed for p in partners) and any(not p.missed for p in partners)
    assert any(p.state == "unreachable" for p in partners)
    assert {p.days_since_answer for p in partners} >= {1, 5}
    assert all(row.next_session is not None for row in rows if row.handle.startswith("bulk"))
