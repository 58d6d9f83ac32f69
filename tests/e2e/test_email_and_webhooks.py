"""More than one channel: digests by email to a real SMTP server, signed webhooks to a real
HTTP receiver, both through the outbox, and nothing private on either.

The SMTP server (aiosmtpd) and the webhook receiver (aiohttp) listen on loopback, on
random ports. The running Dyad gets the channels as the composition root builds them
(``build_channels``) and the webhook renderer; its Telegram side is the usual fake.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from io import BytesIO
from typing import Any, cast
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from click.testing import CliRunner
from PIL import Image
from sqlalchemy import select

from bot.channels.base import (
    ChannelLimits,
    Outgoing,
    PermanentFailure,
    TransientFailure,
)
from bot.channels.email import EmailMessenger, SmtpConfig
from bot.channels.registry import EMAIL, WEBHOOK, ChannelRegistry, build_channels
from bot.channels.webhook import verify_signature
from bot.cli.channels import set_therapist_email, therapist_email
from bot.config import ConfigError, load_settings
from bot.core.chart_png import SCALE
from bot.core.charts import PLOT_HEIGHT, STYLES, TOP, WIDTH, Frame
from bot.core.clock import ManualClock
from bot.services import couples, digests
from bot.services.charts import couple_charts
from bot.services.delivery_render import DyadRenderer
from bot.services.events import EventRenderer
from bot.services.outbox import enqueue
from db.engine import Database
from db.models import AuditEntry, CheckIn, Couple, Delivery, Partner, Practice, Therapist
from fakebotapi import FakeUser
from schedules.dispatcher import Dispatcher
from tests.e2e.conftest import Harness
from tests.e2e.test_checkins import _checkin
from tests.e2e.test_digest import _couple

SECRET = "whsec-" + "q" * 40
THERAPIST_EMAIL = "ana@north.example"
SENDER = "dyad@north.example"
CANARY_A = "canary-private-8812"
CRISIS_NOTE = "I want to end my life canary-crisis-3301"


# A real SMTP server on loopback --------------------------------------------------------------


@dataclass
class Mailbox:
    """An aiosmtpd handler that keeps what it accepts; it can refuse the first few."""

    refuse: list[str] = field(default_factory=list)
    accepted: list[tuple[list[str], bytes]] = field(default_factory=list)
    refused: int = 0
    port: int = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.refuse:
            self.refused += 1
            return self.refuse.pop(0)
        assert isinstance(envelope.content, bytes)
        self.accepted.append((list(envelope.rcpt_tos), envelope.content))
        return "250 OK"

    @property
    def messages(self) -> list[EmailMessage]:
        """The accepted messages, parsed."""
        return [message_from_bytes(raw, policy=policy.default) for _, raw in self.accepted]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


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


# A real webhook receiver on loopback --------------------------------------------------------


@dataclass
class Request:
    """One request the receiver got: its path, headers and raw body."""

    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        """The JSON body."""
        return cast(dict[str, Any], json.loads(self.body))

    def verifies(self, now: Any, body: bytes | None = None) -> bool:
        """Whether the signature checks out at ``now`` (for ``body``, else the one received)."""
        return verify_signature(
            SECRET,
            self.headers["Dyad-Timestamp"],
            self.body if body is None else body,
            self.headers["Dyad-Signature"],
            now,
        )


@dataclass
class Receiver:
    """A practice's system: answers each path from a script, then 200."""

    answers: dict[str, list[int]] = field(default_factory=dict)
    received: list[Request] = field(default_factory=list)
    base: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.received.append(Request(request.path, dict(request.headers), body))
        script = self.answers.get(request.path, [])
        return web.Response(status=script.pop(0) if script else 200)

    def of_type(self, kind: str) -> list[Request]:
        """The requests carrying one event type."""
        return [r for r in self.received if r.event["type"] == kind]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """An HTTP server on 127.0.0.1, on a random port."""
    target = Receiver()
    app = web.Application()
    app.router.add_post("/{tail:.*}", target.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    target.base = f"http://{host}:{port}"
    try:
        yield target
    finally:
        await runner.cleanup()


# Dyad with the email and webhook channels -----------------------------------------------------


@pytest.fixture
async def channels(harness: Harness, mailbox: Mailbox) -> AsyncIterator[ChannelRegistry]:
    """The running Dyad's channels as the composition root builds them, SMTP on loopback."""
    settings = load_settings(
        _env_file=None,
        database_url=harness.db.url,
        smtp_host="127.0.0.1",
        smtp_port=mailbox.port,
        smtp_sender=SENDER,
        smtp_starttls=False,
    )
    registry = build_channels(settings, harness.bot.channels["telegram"], clock=harness.clock)
    harness.bot.dispatcher.channels = registry
    harness.bot.renderer.channels[WEBHOOK] = EventRenderer(harness.bot.deps.cipher)
    try:
        yield registry
    finally:
        await registry.aclose()


async def _configure_webhooks(harness: Harness, *hooks: tuple[str, list[str]]) -> None:
    """Store a practice.toml listing these (url, events) endpoints, all with SECRET."""
    if not harness.practice_slug:
        await harness.practice()
    toml = "".join(
        f'[[webhooks]]\nurl = "{url}"\nsecret = "{SECRET}"\nevents = {json.dumps(events)}\n'
        for url, events in hooks
    )
    async with harness.db.uow() as uow:
        practice = await uow.session.scalar(select(Practice))
        assert practice is not None
        practice.config_toml = toml
        await uow.commit()


async def _therapist_row(harness: Harness) -> Therapist:
    async with harness.db.uow() as uow:
        therapist: Therapist | None = await uow.session.scalar(select(Therapist))
    assert therapist is not None
    return therapist


async def _give_email(harness: Harness) -> None:
    therapist = await _therapist_row(harness)
    async with harness.db.uow() as uow:
        await set_therapist_email(
            uow, harness.practice_slug, therapist.id, THERAPIST_EMAIL, harness.clock.now()
        )
        await uow.commit()


async def _pre_session_digest(harness: Harness, therapist: FakeUser, handle: str) -> None:
    """Book a session in three days and move to its digest time; the digest is queued."""
    start = harness.clock.now() + timedelta(days=3)
    await therapist.send_command("session", f"{handle} {start:%Y-%m-%d} 18:00")
    await therapist.wait_for_message(lambda m: "digest reaches you" in m.text)
    harness.clock.advance(timedelta(days=2, hours=12))
    queued = await digests.send_due_digests(
        harness.db, harness.bot.deps.cipher, harness.clock.now(), email=True
    )
    assert queued == 1


async def _rows(harness: Harness, channel: str) -> list[Delivery]:
    async with harness.db.uow() as uow:
        return list(
            await uow.session.scalars(
                select(Delivery).where(Delivery.channel == channel).order_by(Delivery.id)
            )
        )


def _parts(mail: EmailMessage) -> dict[str, str]:
    """The text parts (plain and HTML), wherever they sit in the MIME tree."""
    return {
        part.get_content_type(): part.get_content()
        for part in mail.walk()
        if part.get_content_maintype() == "text"
    }


def _pictures(mail: EmailMessage) -> dict[str, EmailMessage]:
    """The image parts, by Content-ID (without its angle brackets)."""
    return {
        str(part["Content-ID"]).strip("<>"): part
        for part in mail.walk()
        if part.get_content_maintype() == "image"
    }


# The tests ------------------------------------------------------------------------------------


async def test_the_pre_session_digest_arrives_by_email_and_by_a_signed_webhook(
    harness: Harness, channels: ChannelRegistry, mailbox: Mailbox, receiver: Receiver
) -> None:
    await _configure_webhooks(harness, (f"{receiver.base}/dyad", ["digest.ready"]))
    therapist, alex, blanca, handle = await _couple(harness)
    await _give_email(harness)
    await _checkin(alex, note=f"{CANARY_A} I felt unheard", ok_to_raise="No")
    await alex.wait_for_message(lambda m: "saved" in m.text)
    await _checkin(blanca, note="We had a lovely walk on Sunday", ok_to_raise="Yes")
    await blanca.wait_for_message(lambda m: "saved" in m.text)
    await _pre_session_digest(harness, therapist, handle)
    await harness.settle()

    # By Telegram, as before.
    await therapist.wait_for_message(lambda m: "lovely walk" in m.text, after=0)
    # By email: one message to the therapist, neutral subject, text and HTML parts.
    assert [rcpt for rcpt, _ in mailbox.accepted] == [[THERAPIST_EMAIL]]
    (mail,) = mailbox.messages
    assert mail["Subject"] == f"Dyad: pre-session digest for {handle}"
    assert mail["To"] == THERAPIST_EMAIL and SENDER in mail["From"]
    assert mail["Message-ID"] and mail.get_content_type() == "multipart/alternative"
    # The plain text, then the HTML with the charts it shows (both partners have ratings).
    plain, related = mail.iter_parts()
    assert plain.get_content_type() == "text/plain"
    assert related.get_content_type() == "multipart/related"
    page, *pictures = related.iter_parts()
    assert page.get_content_type() == "text/html" and pictures
    assert all(p.get_content_type() == "image/png" for p in pictures)
    parts = _parts(mail)
    assert set(parts) == {"text/plain", "text/html"}
    assert "lovely walk" in parts["text/plain"] and "Alex" in parts["text/plain"]
    assert "<html" in parts["text/html"] and "lovely walk" in parts["text/html"]
    for text in (*parts.values(), mail["Subject"], mailbox.accepted[0][1].decode()):
        assert CANARY_A not in text
    # By webhook: one digest.ready, signed; a changed body no longer verifies.
    (request,) = receiver.received
    event = request.event
    assert event["type"] == "digest.ready" and request.path == "/dyad"
    assert request.headers["Dyad-Event-Id"] == event["id"]
    assert event["data"]["couple"] == handle
    assert event["data"]["digest"]["couple_handle"] == handle
    assert "lovely walk" in request.body.decode() and CANARY_A not in request.body.decode()
    assert request.verifies(harness.clock.now())
    tampered = request.body.replace(b"lovely walk", b"lovely talk")
    assert tampered != request.body and not request.verifies(harness.clock.now(), tampered)
    later = harness.clock.now() + timedelta(minutes=6)
    assert not request.verifies(later), "a replay after the window must fail"
    # Both stayed encrypted in the outbox.
    for row in (*await _rows(harness, EMAIL), *await _rows(harness, WEBHOOK)):
        assert row.status == "sent"
        assert "lovely walk" not in json.dumps(row.params)


async def test_refused_sends_are_retried_through_the_outbox_and_end_sent(
    harness: Harness, channels: ChannelRegistry, mailbox: Mailbox, receiver: Receiver
) -> None:
    mailbox.refuse.append("451 4.3.0 Try again later")
    receiver.answers = {"/flaky": [503], "/gone": [410]}
    await _configure_webhooks(
        harness,
        (f"{receiver.base}/flaky", ["digest.ready"]),
        (f"{receiver.base}/gone", ["digest.ready"]),
    )
    therapist, _, _, handle = await _couple(harness)
    await _give_email(harness)
    await _pre_session_digest(harness, therapist, handle)
    await harness.settle()

    (email_row,) = await _rows(harness, EMAIL)
    assert email_row.status == "pending" and "SMTP 451" in (email_row.last_error or "")
    assert mailbox.refused == 1 and mailbox.accepted == []
    flaky, gone = await _rows(harness, WEBHOOK)
    assert flaky.status == "pending" and "503" in (flaky.last_error or "")
    assert gone.status == "failed" and "410" in (gone.last_error or "")

    harness.clock.advance(timedelta(seconds=10))
    await harness.settle()
    (email_row,) = await _rows(harness, EMAIL)
    assert email_row.status == "sent" and email_row.attempts == 2
    assert len(mailbox.accepted) == 1
    flaky, gone = await _rows(harness, WEBHOOK)
    assert flaky.status == "sent" and gone.status == "failed"
    tries = [r for r in receiver.received if r.path == "/flaky"]
    assert len(tries) == 2 and len([r for r in receiver.received if r.path == "/gone"]) == 1
    first, second = tries
    assert first.event["id"] == second.event["id"], "the event id is stable across retries"
    assert first.headers["Dyad-Timestamp"] != second.headers["Dyad-Timestamp"]
    assert second.verifies(harness.clock.now())


async def test_no_private_word_reaches_email_or_webhooks_not_even_an_alerts_words(
    harness: Harness, channels: ChannelRegistry, mailbox: Mailbox, receiver: Receiver
) -> None:
    everything = ["alert.raised", "partner.unreachable", "couple.closed", "digest.ready"]
    await _configure_webhooks(harness, (f"{receiver.base}/ehr", everything))
    therapist, alex, blanca, handle = await _couple(harness)
    await _give_email(harness)
    await _checkin(alex, note=CRISIS_NOTE, ok_to_raise="No")
    await alex.wait_for_message(lambda m: "saved" in m.text)
    await _pre_session_digest(harness, therapist, handle)
    # A forged row: something on the email channel addressed to a partner.
    async with harness.db.uow() as uow:
        partner = await uow.session.scalar(select(Partner).where(Partner.slot == "A"))
        assert partner is not None
        await enqueue(
            uow,
            partner,
            kind="notice",
            key="couple.closed",
            dedupe_key="forged-email",
            due_at=harness.clock.now(),
            couple_id=partner.couple_id,
            channel=EMAIL,
        )
        await uow.commit()
    await harness.settle()
    await therapist.wait_for_message(lambda m: "Safety alert" in m.text, after=0)
    secrets = ("canary-crisis-3301", "end my life")

    # Email: the digest only, to the therapist only, and none of the private words.
    assert [rcpt for rcpt, _ in mailbox.accepted] == [[THERAPIST_EMAIL]]
    (mail,) = mailbox.messages
    seen = " ".join([mail["Subject"], *_parts(mail).values()]).lower()
    assert "balance" in seen and "suicide" in seen, "the digest and its safety flag arrived"
    assert not [secret for secret in secrets if secret.lower() in seen]
    forged = [row for row in await _rows(harness, EMAIL) if row.partner_id is not None]
    assert [row.status for row in forged] == ["skipped"]

    # Webhooks: the alert says who (slot), what kind and when; never the words.
    (alert,) = receiver.of_type("alert.raised")
    data = alert.event["data"]
    assert data["couple"] == handle and data["partner"] == "A" and data["kind"] == "suicide"
    assert set(data) == {"practice", "couple", "partner", "kind", "raised_at"}
    (digest,) = receiver.of_type("digest.ready")
    for request in (alert, digest):
        body = request.body.decode().lower()
        assert not [secret for secret in secrets if secret.lower() in body]
    assert "want" not in alert.body.decode().lower()

    # The couple closes while partner A's chat is gone: the practice hears both.
    harness.fake.inject("sendMessage", chat_id=alex.id, kind="403")
    async with harness.db.uow() as uow:
        couple = await uow.session.scalar(select(Couple))
        assert couple is not None
        owner = await uow.therapists.get(couple.therapist_id)
        assert owner is not None
        await couples.close_couple(uow, owner, couple, harness.clock.now())
    await harness.settle()
    (closed,) = receiver.of_type("couple.closed")
    (gone,) = receiver.of_type("partner.unreachable")
    assert closed.event["data"]["couple"] == handle
    assert gone.event["data"]["partner"] == "A"
    ids = [r.event["id"] for r in receiver.received]
    assert len(set(ids)) == len(ids) == 4
    # Each was signed when it was sent (the alert before the clock moved to the digest).
    assert all(r.verifies(int(r.headers["Dyad-Timestamp"])) for r in receiver.received)
    assert not any("Safety alert" in m.text or "Balance" in m.text for m in blanca.messages)


# All a chart holds: a role's title, both partners' names and ratings, dates, its language.
CHART_FIELDS = frozenset(
    ("chart_id", "title", "series", "start", "end", "sessions", "language", "tz", "gap_threshold")
)
# Days before the digest's week (the check-in's age) and the rating, far apart per partner.
A_RATINGS = ((12, 8), (5, 9))
B_RATINGS = ((11, 3), (4, 2))


async def _seed_ratings(harness: Harness, alex: FakeUser, blanca: FakeUser) -> None:
    """Two check-ins each, straight into the database (every role the same rating); Alex's
    last one carries words kept for the therapist only."""
    cipher = harness.bot.deps.cipher
    now = harness.clock.now()
    async with harness.db.uow() as uow:
        for user, ratings in ((alex, A_RATINGS), (blanca, B_RATINGS)):
            partner = await uow.partners.by_user(user.id)
            assert partner is not None
            for index, (days, value) in enumerate(ratings):
                at = now - timedelta(days=days)
                words = user is alex and index == len(ratings) - 1
                uow.session.add(
                    CheckIn(
                        partner_id=partner.id,
                        couple_id=partner.couple_id,
                        instrument="dyad_checkin",
                        status="complete",
                        answers={
                            "wellbeing": value,
                            "hope": value,
                            "safe_to_be_honest": value,
                            "understood": value,
                        },
                        note_ciphertext=cipher.encrypt(f"{CANARY_A} for you only")
                        if words
                        else None,
                        ok_to_raise=False if words else None,
                        started_at=at,
                        completed_at=at,
                    )
                )
        await uow.commit()


def _rgb(colour: str) -> tuple[int, int, int]:
    value = colour.lstrip("#")
    return (int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16))


async def test_the_emailed_digest_shows_the_consoles_charts_as_pictures_with_words_and_tables(
    harness: Harness, channels: ChannelRegistry, mailbox: Mailbox
) -> None:
    therapist, alex, blanca, handle = await _couple(harness)
    await _give_email(harness)
    await _seed_ratings(harness, alex, blanca)
    await _pre_session_digest(harness, therapist, handle)
    await harness.settle()

    (mail,) = mailbox.messages
    page = _parts(mail)["text/html"]
    pictures = _pictures(mail)
    # Once sent, the outbox keeps none of it.
    (row,) = await _rows(harness, EMAIL)
    assert row.status == "sent" and "email" not in row.params
    # The charts the couple page draws at the same moment: ratings, names and dates only.
    async with harness.db.uow() as uow:
        couple = await uow.session.scalar(select(Couple))
        owner = await uow.session.scalar(select(Therapist))
        assert couple is not None and owner is not None
        specs = await couple_charts(
            uow,
            couple,
            ("A", "B"),
            {"A": "Alex", "B": "Blanca"},
            owner.language,
            ZoneInfo(owner.timezone),
            3.0,
            harness.clock.now(),
        )
    assert [spec.chart_id for spec in specs] == ["chart-wellbeing", "chart-hope", "chart-alliance"]
    for item in (spec.to_dict() for spec in specs):
        assert set(item) == CHART_FIELDS
        lines = item["series"]
        assert isinstance(lines, list)
        assert all(set(series) == {"slot", "name", "points"} for series in lines)
    # One picture per chart of the couple page, each shown by the HTML through its cid.
    assert len(pictures) == len(specs)
    for spec, (cid, part) in zip(specs, pictures.items(), strict=True):
        by_slot = {series.slot: [value for _, value in series.points] for series in spec.series}
        assert by_slot == {"A": [8.0, 9.0], "B": [3.0, 2.0]}
        assert cid.startswith(f"{spec.chart_id}.") and f'src="cid:{cid}"' in page
        assert part.get_content_disposition() == "inline"
        assert part.get_filename() == f"{spec.chart_id}.png"
        # Alt text: the chart in words; then the same values as a table, for screen readers.
        alt = re.search(rf'<img src="cid:{re.escape(cid)}" alt="([^"]+)"', page)
        assert alt is not None
        assert html.unescape(alt.group(1)).startswith(f"{spec.title}: ")
        assert "Alex" in alt.group(1) and "Blanca" in alt.group(1)
        assert f'<table class="chart-data" id="{spec.chart_id}-table">' in page
        # The picture: both partners on the same axes, each rating in its seat's colour.
        image = Image.open(BytesIO(part.get_content())).convert("RGB")
        assert image.size == (WIDTH * SCALE, spec.height * SCALE)
        frame = Frame(spec.start, spec.end, TOP, PLOT_HEIGHT)
        for series in spec.series:
            for at, value in series.points:
                spot = (round(frame.x(at) * SCALE), round(frame.y(value) * SCALE))
                assert image.getpixel(spot) == _rgb(STYLES[series.slot].colour), series.slot
    assert CANARY_A not in mailbox.accepted[0][1].decode()


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
@pytest.mark.parametrize("without", ["ratings", "charts"])
async def test_the_digest_email_keeps_working_without_ratings_or_with_charts_off(
    harness: Harness, channels: ChannelRegistry, mailbox: Mailbox, without: str
) -> None:
    therapist, alex, blanca, handle = await _couple(harness)
    await _give_email(harness)
    if without == "charts":
        await _seed_ratings(harness, alex, blanca)
        async with harness.db.uow() as uow:
            practice = await uow.session.scalar(select(Practice))
            assert practice is not None
            practice.config_toml = "[digest]\nemail_charts = false\n"
            await uow.commit()
    await _pre_session_digest(harness, therapist, handle)
    await harness.settle()
    (mail,) = mailbox.messages
    assert [part.get_content_type() for part in mail.iter_parts()] == ["text/plain", "text/html"]
    parts = _parts(mail)
    assert _pictures(mail) == {} and "cid:" not in parts["text/html"]
    assert "Alex" in parts["text/plain"] and "Blanca" in parts["text/html"]
    assert (await _rows(harness, EMAIL))[0].status == "sent"


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
async def test_without_an_address_or_endpoints_the_digest_stays_on_telegram(
    harness: Harness, channels: ChannelRegistry, mailbox: Mailbox
) -> None:
    therapist, _, _, handle = await _couple(harness)
    await _pre_session_digest(harness, therapist, handle)  # the therapist gave no address
    await harness.settle()
    assert await _rows(harness, EMAIL) == [] and mailbox.accepted == []
    assert await _rows(harness, WEBHOOK) == [], "no endpoints: no events"
    assert any("Balance" in m.text for m in therapist.messages)
    bare = build_channels(load_settings(_env_file=None), channels["telegram"], clock=harness.clock)
    assert sorted(bare) == ["telegram", "webhook"], "no SMTP relay: no email channel"
    await bare.aclose()


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
async def test_the_admin_sets_and_clears_a_therapists_email(harness: Harness) -> None:
    await harness.therapist()
    therapist = await _therapist_row(harness)
    env = {"DYAD_DATABASE_URL": harness.db.url}
    runner = CliRunner()

    async def run(*args: str) -> Any:
        return await asyncio.to_thread(runner.invoke, therapist_email, list(args), env=env)

    base = ["--practice", harness.practice_slug, "--therapist", str(therapist.id)]
    done = await run(*base, "--email", f" {THERAPIST_EMAIL} ")
    assert done.exit_code == 0, done.output
    assert THERAPIST_EMAIL in done.output and "DYAD_SMTP_HOST is not set" in done.output
    assert (await _therapist_row(harness)).email == THERAPIST_EMAIL
    for bad in (["--email", "not an address"], ["--email", "a@b", "--clear"], []):
        refused = await run(*base, *bad)
        assert refused.exit_code == 2, refused.output
    unknown = await run("--practice", harness.practice_slug, "--therapist", "999", "--clear")
    assert unknown.exit_code == 1 and "no therapist 999" in unknown.output
    cleared = await run(*base, "--clear")
    assert cleared.exit_code == 0 and "no longer emailed" in cleared.output
    assert (await _therapist_row(harness)).email is None
    async with harness.db.uow() as uow:
        actions = list(await uow.session.scalars(select(AuditEntry.action)))
    assert actions.count("therapist.email_set") == 1
    assert actions.count("therapist.email_clear") == 1


# The channels on their own --------------------------------------------------------------------


def _smtp(port: int, *, starttls: bool = False) -> EmailMessenger:
    config = SmtpConfig(host="127.0.0.1", port=port, sender=SENDER, starttls=starttls, timeout=5)
    return EmailMessenger(config, ManualClock(_NOW))


_NOW = datetime(2026, 10, 19, 9, 0, tzinfo=UTC)
_MAIL = Outgoing("plain words", subject="Dyad", html="<p>words</p>", idempotency_key="k1")


async def test_smtp_answers_map_to_retry_or_refusal(mailbox: Mailbox) -> None:
    mailbox.refuse.append("550 5.7.1 Message rejected")
    with pytest.raises(PermanentFailure, match="SMTP 550"):
        await _smtp(mailbox.port).send(THERAPIST_EMAIL, _MAIL)
    mailbox.refuse.append("452 4.3.1 Insufficient storage")
    with pytest.raises(TransientFailure, match="SMTP 452"):
        await _smtp(mailbox.port).send(THERAPIST_EMAIL, _MAIL)
    with pytest.raises(TransientFailure, match="SMTP unavailable"):
        await _smtp(_free_port()).send(THERAPIST_EMAIL, _MAIL)  # nobody listens there
    with pytest.raises(TransientFailure):
        await _smtp(mailbox.port, starttls=True).send(THERAPIST_EMAIL, _MAIL)  # no TLS offered
    with pytest.raises(PermanentFailure, match="not an email address"):
        await _smtp(mailbox.port).send(12345, _MAIL)
    assert mailbox.accepted == []
    await _smtp(mailbox.port).send(THERAPIST_EMAIL, _MAIL)
    assert len(mailbox.accepted) == 1


@pytest.mark.parametrize(
    ("settings", "complaint"),
    [
        ({"smtp_host": "smtp.north.example"}, "DYAD_SMTP_SENDER"),
        (
            {"smtp_host": "smtp.north.example", "smtp_sender": SENDER, "smtp_starttls": False},
            "DYAD_SMTP_STARTTLS",
        ),
        ({"smtp_host": "127.0.0.1", "smtp_sender": "nobody"}, "DYAD_SMTP_SENDER"),
        ({"smtp_host": "127.0.0.1", "smtp_sender": SENDER, "smtp_user": "u"}, "DYAD_SMTP_USER"),
    ],
)
def test_smtp_settings_refuse_clear_text_to_another_host(
    settings: dict[str, object], complaint: str
) -> None:
    with pytest.raises(ConfigError, match=complaint):
        load_settings(_env_file=None, **settings)


def test_smtp_settings_default_to_starttls_and_allow_loopback_without() -> None:
    relay = load_settings(_env_file=None, smtp_host="smtp.north.example", smtp_sender=SENDER)
    assert relay.smtp_starttls and relay.smtp_port == 587 and relay.smtp_enabled
    local = load_settings(
        _env_file=None, smtp_host="localhost", smtp_sender=SENDER, smtp_starttls=False
    )
    assert not local.smtp_starttls
    assert not load_settings(_env_file=None).smtp_enabled


async def test_each_channel_is_paced_on_its_own(sqlite_db: Database) -> None:
    telegram, email = object(), object()
    registry = ChannelRegistry()
    registry.register("telegram", telegram)  # type: ignore[arg-type]
    registry.register(EMAIL, email, ChannelLimits(2.0, 1.0))  # type: ignore[arg-type]
    registry.register(
        "telegram_group",
        telegram,  # type: ignore[arg-type]
        ChannelLimits(1.0, 3.0, pace_with="telegram"),
    )
    dispatcher = Dispatcher(
        db=sqlite_db,
        clock=ManualClock(_NOW),
        channels=registry,
        renderer=DyadRenderer(),
        rate_per_second=30.0,
        per_chat_interval=1.0,
    )
    own, default_interval = dispatcher.pacer_for("telegram")
    mail, mail_interval = dispatcher.pacer_for(EMAIL)
    group, group_interval = dispatcher.pacer_for("telegram_group")
    assert own is dispatcher.pacer and default_interval is None
    assert mail is not own and mail is dispatcher.pacer_for(EMAIL)[0]
    assert (mail.interval, mail_interval) == (0.5, 1.0)
    assert group is own and group_interval == 3.0, "groups share the Bot API's budget"
    # A 429 from one address (a webhook endpoint) holds back that address only.
    mail.pause(60.0, "a@north.example")
    waiting = asyncio.ensure_future(mail.wait_turn("a@north.example"))
    await mail.wait_turn("b@north.example")
    assert not waiting.done()
    waiting.cancel()
