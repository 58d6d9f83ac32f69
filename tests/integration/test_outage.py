"""A Bot API outage longer than any count of retries: nothing is given up that is still timely.

The fake Bot API answers every sendMessage with a server error or a timeout for six
minutes of the manual clock (the old dispatcher gave up after eight tries, about four
minutes). The safety alert reaches the therapist by email during the outage (aiosmtpd on
loopback); once Telegram is back, every row whose window is still open is delivered,
each once, and the channel's outage never used up a row's tries.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from bot.channels.email import EmailMessenger, SmtpConfig
from bot.channels.registry import EMAIL, EMAIL_LIMITS, TELEGRAM, ChannelRegistry
from bot.core.clock import ManualClock
from bot.health import HealthServer
from bot.locales import t
from bot.services.delivery_render import DyadRenderer
from bot.services.safety_flow import raise_alert
from db.engine import Database
from db.models import Delivery, Therapist
from fakebotapi import FakeBotAPI
from schedules.dispatcher import Dispatcher
from tests.e2e.test_email_and_webhooks import Mailbox, _free_port
from tests.integration.test_dispatcher import (
    THERAPIST_CHAT,
    notes_received,
    open_clinic,
    queue_notes,
    rows,
    telegram,
)

THERAPIST_EMAIL = "ana@north.example"
OUTAGE = timedelta(minutes=6)
STEP = timedelta(seconds=15)


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    """An SMTP server on 127.0.0.1 (no TLS: loopback), on a random free port."""
    box = Mailbox(port=_free_port())
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


async def test_a_six_minute_telegram_outage_loses_nothing_timely_and_the_alert_goes_by_email(
    db: Database, clock: ManualClock, mailbox: Mailbox
) -> None:
    async with FakeBotAPI(clock=clock, timeout_delay=0.05) as fake:
        clinic = await open_clinic(db, fake, clock.now(), couples=3)
        async with db.uow() as uow:
            therapist = await uow.session.get(Therapist, clinic.therapist.id)
            assert therapist is not None
            therapist.email = THERAPIST_EMAIL
            await uow.commit()
        start = clock.now()
        notices = await queue_notes(db, clinic.partners, 2, start)
        timely = await queue_notes(db, clinic.partners, 1, start, not_after=start + 2 * OUTAGE)
        too_late = await queue_notes(db, clinic.partners[:2], 1, start, not_after=start + STEP)
        async with db.uow() as uow:
            partner = await uow.partners.get(clinic.partners[0].id)
            assert partner is not None
            await raise_alert(
                uow,
                partner,
                kinds=frozenset({"self_harm"}),
                source="checkin",
                source_id=None,
                phrase_ids=frozenset(),
                now=start,
            )
            await uow.commit()
        fake.set_fault_rates(
            server_error=0.7, timeout=0.3, seed=19, methods=frozenset({"sendMessage"})
        )

        smtp = SmtpConfig(
            host="127.0.0.1", port=mailbox.port, sender="dyad@north.example", starttls=False
        )
        async with telegram(fake, read_timeout=2.0) as messenger:
            registry = ChannelRegistry()
            registry.register(TELEGRAM, messenger)
            registry.register(EMAIL, EmailMessenger(smtp, clock), EMAIL_LIMITS)
            worker = Dispatcher(
                db=db,
                clock=clock,
                channels=registry,
                renderer=DyadRenderer(),
                rate_per_second=1000.0,
                per_chat_interval=0.0,
            )
            health = HealthServer(db=db, clock=clock, dispatcher=worker, idle_seconds=2.0)
            emailed_at = None
            while clock.now() - start < OUTAGE:
                await worker.run_until_idle()
                if emailed_at is None and mailbox.accepted:
                    emailed_at = clock.now() - start
                clock.advance(STEP)
            during = len(fake.calls_of("sendMessage"))
            assert worker.outages().keys() == {TELEGRAM}
            healthy, parts = await health.check()
            assert healthy and parts["channels"] == "down: telegram"
            assert not [d for d in (await rows(db)).values() if d.status == "failed"]

            fake.faults.clear()
            for _ in range(40):
                await worker.run_until_idle()
                current = (await rows(db)).values()
                if not [d for d in current if d.status in ("pending", "claimed")]:
                    break
                clock.advance(STEP)
            assert worker.outages() == {}
            assert (await health.check())[1]["channels"] == "ok"

    # The alert reached the therapist by email within minutes, once.
    assert emailed_at is not None and emailed_at <= timedelta(minutes=4)
    [(recipients, _)] = mailbox.accepted
    [mail] = mailbox.messages
    assert recipients == [THERAPIST_EMAIL]
    assert mail["Subject"] == t("en", "email.notice_subject", handle="c1")
    plain = mail.get_body(("plain",))
    assert plain is not None
    assert "Safety alert · c1 · partner A" in plain.get_content()
    # Probes, not every row on every round: the outage did not hammer Telegram.
    assert during < 60

    outbox = await rows(db)
    received = notes_received(fake)
    for row_id in notices + timely:
        assert outbox[row_id].status == "sent"
        assert received[outbox[row_id].dedupe_key] == 1
    for row_id in too_late:
        assert outbox[row_id].status == "skipped"
    assert {d.status for d in outbox.values()} <= {"sent", "skipped"}
    alert_rows = [d for d in outbox.values() if d.key == "alerts.notice"]
    assert sorted((d.channel, d.status) for d in alert_rows) == [
        (EMAIL, "sent"),
        (TELEGRAM, "sent"),
    ]
    alerts_on_telegram = [m for m in fake.sent_to(THERAPIST_CHAT) if "Safety alert" in m.text]
    assert len(alerts_on_telegram) == 1
    # The outage did not use up anyone's tries: a handful each, however long it lasted.
    assert max(d.attempts for d in outbox.values()) <= 8


async def test_a_channel_is_down_only_when_many_addresses_fail(
    db: Database, clock: ManualClock
) -> None:
    async with FakeBotAPI(clock=clock) as fake:
        clinic = await open_clinic(db, fake, clock.now(), couples=3)
        await queue_notes(db, clinic.partners, 1, clock.now())
        for partner in clinic.partners[:2]:
            fake.inject("sendMessage", chat_id=partner.chat_id, kind="5xx", times=10)
        async with telegram(fake) as messenger:
            worker = Dispatcher(
                db=db,
                clock=clock,
                channels={TELEGRAM: messenger},
                renderer=DyadRenderer(),
                rate_per_second=1000.0,
                per_chat_interval=0.0,
            )
            for _ in range(4):
                await worker.run_until_idle()
                clock.advance(timedelta(minutes=1))
            assert worker.outages() == {}
        async with db.uow() as uow:
            statuses = list(await uow.session.scalars(select(Delivery.status)))
    assert statuses.count("sent") == 4 and statuses.count("pending") == 2
