"""The pre-session digest: read the period from the database, compose it, deliver it.

The composition is the pure ``bot.core.digest``; this module only gathers its input.
Private words never enter it: a note or reply the partner did not mark OK to raise is
passed on as a placeholder, so the composer can count it but has nothing to leak. The
digest reaches the couple's therapist only, through the outbox, encrypted at rest, and
exactly once per session even with several workers.

A pre-session digest may also go by email (when an SMTP relay is configured and the
therapist gave an address: the plain text with the printable page as its HTML part, and
the console's charts as PNG pictures that page shows, each with its table) and
as a ``digest.ready`` event to the practice's webhooks; both are queued in the same
transaction as the Telegram messages, and both stay encrypted in the outbox.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select, update

from bot.channels.base import InlineImage, Outgoing
from bot.channels.registry import EMAIL
from bot.channels.telegram_split import telegram_messages
from bot.core.chart_png import render_png
from bot.core.charts import ChartSpec, image_figure
from bot.core.digest import (
    AlertData,
    CheckinData,
    CoupleAnswerData,
    CoupleSpaceData,
    Digest,
    DigestInput,
    DigestSettings,
    PartnerData,
    ReplyData,
    SkillPracticeData,
    compose_digest,
    render_html_page,
    render_telegram_parts,
    render_text,
)
from bot.core.digest.model import Practice as Tried
from bot.core.instruments import score_summary
from bot.locales import catalog, t
from bot.services import events
from bot.services.charts import couple_charts
from bot.services.checkins import SAFETY_INSTRUMENT
from bot.services.crypto import Cipher
from bot.services.delivery_render import KindRenderer
from bot.services.outbox import enqueue
from bot.services.practice_config import PracticeConfig, parse_practice_config
from bot.services.reminders import missed_checkins
from bot.services.safety_flow import FREE_TEXT
from db.engine import Database
from db.models import (
    Alert,
    CheckIn,
    Couple,
    Delivery,
    Partner,
    Response,
    Therapist,
    TherapySession,
)
from db.uow import UnitOfWork

DEFAULT_PERIOD = timedelta(days=14)
PRIVATE = "·"  # stands in for words the partner kept private: counted, never shown
PROMPT_KINDS = ("hope", "skill", "skill_followup", "couple_space")
_TRIED: dict[str, Tried] = {"yes": "yes", "partly": "partly", "not_yet": "no", "no": "no"}
"""A follow-up's or check-in's answer to "did you try it?", as the digest counts it."""
DIGEST_LEASE = timedelta(minutes=5)


def skill_name(config: PracticeConfig, prompt_key: str, language: str) -> str:
    """The exercise a skill prompt practises, named in the therapist's language."""
    names = catalog(language)
    tags = config.library.get(prompt_key).tags if prompt_key in config.library else ()
    tag = next((tag for tag in tags if f"skills.{tag}" in names), "other")
    return t(language, f"skills.{tag}")


def _overlap_days(start: datetime | None, end: datetime | None, lo: datetime, hi: datetime) -> int:
    if start is None:
        return 0
    span = min(end or hi, hi) - max(start, lo)
    return max(0, round(span.total_seconds() / 86400))


def partner_label(partner: Partner) -> str:
    """How the digest names a partner: their display name, else their seat."""
    return partner.display_name or f"Partner {partner.slot}"


def checkin_inputs(
    rows: Iterable[CheckIn], config: PracticeConfig, start: datetime, cipher: Cipher | None
) -> tuple[list[CheckinData], dict[str, float]]:
    """A partner's check-ins (oldest first, from the previous period's start) as the
    composer takes them: the period's, and the previous period's mean per role.

    Without a ``cipher`` no word is read: every note counts as kept private (the
    placeholder), for callers that need the figures only (the caseload).
    """
    checkins: list[CheckinData] = []
    previous: dict[str, list[float]] = {}
    safety = config.instruments.get(SAFETY_INSTRUMENT)
    safety_items = [i.id for i in safety.items if i.role == "safety"] if safety else []
    for row in rows:
        instrument = config.instruments.get(row.instrument) or config.checkin_instrument()
        scores = score_summary(instrument, row.answers)
        if row.started_at < start:
            for role, value in scores.items():
                previous.setdefault(role, []).append(value)
            continue
        note: str | None = None
        raisable = False
        if row.note_ciphertext is not None:
            # Words that raised a safety alert stay with the alert (``/alerts``), never in a
            # digest that may be shown in session with the other partner there.
            raisable = bool(row.ok_to_raise) and not row.risk and cipher is not None
            note = cipher.decrypt(row.note_ciphertext) if raisable and cipher else PRIVATE
        skill = row.answers.get("skill")
        declined = any(row.answers.get(item) == "prefer_not" for item in safety_items)
        checkins.append(
            CheckinData(
                at=row.started_at,
                scores=scores,
                skill_practised=_TRIED.get(skill) if isinstance(skill, str) else None,
                note=note,
                ok_to_raise=raisable if note is not None else None,
                partial=row.status == "partial",
                safety_declined=declined,
            )
        )
    return checkins, {role: sum(v) / len(v) for role, v in previous.items()}


def digest_settings(config: PracticeConfig) -> DigestSettings:
    """The composer's settings from the practice's ``[digest]`` section."""
    digest = config.digest
    return DigestSettings(
        quote_budget_chars=digest.quote_budget_chars,
        split_alliance_threshold=digest.split_alliance_threshold,
        split_alliance_widening=digest.split_alliance_widening,
    )


async def _partner_data(
    uow: UnitOfWork,
    partner: Partner,
    config: PracticeConfig,
    cipher: Cipher,
    start: datetime,
    end: datetime,
    language: str,
) -> PartnerData:
    rows = list(
        await uow.session.scalars(
            select(CheckIn)
            .where(
                CheckIn.partner_id == partner.id,
                CheckIn.status != "open",
                CheckIn.started_at >= start - (end - start),
                CheckIn.started_at < end,
            )
            .order_by(CheckIn.started_at)
        )
    )
    checkins, previous = checkin_inputs(rows, config, start, cipher)
    delivered = list(
        await uow.session.scalars(
            select(Delivery).where(
                Delivery.partner_id == partner.id,
                Delivery.status == "sent",
                Delivery.kind.in_(PROMPT_KINDS),
                Delivery.sent_at >= start,
                Delivery.sent_at < end,
            )
        )
    )
    responses = list(
        await uow.session.scalars(
            select(Response)
            .where(
                Response.partner_id == partner.id,
                Response.created_at >= start,
                Response.created_at < end,
            )
            .order_by(Response.created_at)
        )
    )
    replies: list[ReplyData] = []
    skills = await _skill_practice(
        uow, partner, config, rows, responses, delivered, start, end, language
    )
    for response in responses:
        # Couple-space answers have their own section; a text sent unasked (crisis words)
        # is the therapist's through /alerts, never quoted or counted as a reply.
        if response.kind in ("couple_space", FREE_TEXT) or response.text_ciphertext is None:
            continue
        raisable = response.ok_to_raise and not response.risk
        text = cipher.decrypt(response.text_ciphertext) if raisable else PRIVATE
        replies.append(ReplyData(response.created_at, text, raisable))
    return PartnerData(
        slot=partner.slot,
        display_name=partner_label(partner),
        language=partner.language,
        checkins=tuple(checkins),
        previous_scores=previous,
        prompts_delivered=len(delivered),
        prompts_answered=len({r.delivery_id for r in responses if r.delivery_id}),
        skill_prompts=tuple(skills),
        paused_days=_overlap_days(partner.paused_since, partner.paused_until, start, end),
        unreachable_days=_overlap_days(
            partner.unreachable_since if not partner.reachable else None, None, start, end
        ),
        replies=tuple(replies),
    )


def _followup_skill(config: PracticeConfig, followup_key: str) -> str | None:
    """The skill a follow-up prompt asks about."""
    return next(
        (p.key for p in config.library.by_kind("skill") if p.followup == followup_key), None
    )


async def _skill_practice(
    uow: UnitOfWork,
    partner: Partner,
    config: PracticeConfig,
    checkins: list[CheckIn],
    responses: list[Response],
    delivered: list[Delivery],
    start: datetime,
    end: datetime,
    language: str,
) -> list[SkillPracticeData]:
    """One entry per skill the partner was sent in the period, with what they said of it.

    The answer is the skill's follow-up ("Did you try it?"), else the "did you try the
    skill?" item of a check-in completed before the next skill came; an entry with neither
    counts as not answered. A follow-up or check-in answer about a skill sent before the
    period counts too, named after that skill.
    """
    skills = sorted(
        (d for d in delivered if d.kind == "skill" and d.sent_at is not None),
        key=lambda d: d.sent_at or start,
    )
    followups = [r for r in responses if r.kind == "skill_followup" and r.choice]
    answers = [
        c
        for c in checkins
        if start <= c.started_at < end and isinstance(c.answers.get("skill"), str)
    ]
    used_followups: set[int] = set()
    used_checkins: set[int] = set()
    out: list[SkillPracticeData] = []
    for index, skill in enumerate(skills):
        assert skill.sent_at is not None
        until = skills[index + 1].sent_at if index + 1 < len(skills) else end
        assert until is not None
        followup_key = (
            config.library.get(skill.key).followup if skill.key in config.library else None
        )
        tried: Tried | None = None
        for response in followups:
            if (
                response.id not in used_followups
                and response.prompt_key == followup_key
                and response.created_at >= skill.sent_at
            ):
                used_followups.add(response.id)
                tried = _TRIED.get(response.choice or "")
                break
        if tried is None:
            for checkin in answers:
                if checkin.id not in used_checkins and skill.sent_at <= checkin.started_at < until:
                    used_checkins.add(checkin.id)
                    tried = _TRIED.get(str(checkin.answers["skill"]))
                    break
        out.append(SkillPracticeData(skill_name(config, skill.key, language), tried))
    # Answers in the period about a skill sent before it.
    for response in followups:
        if response.id in used_followups:
            continue
        key = _followup_skill(config, response.prompt_key)
        name = skill_name(config, key or response.prompt_key, language)
        out.append(SkillPracticeData(name, _TRIED.get(response.choice or "")))
    leftover = [c for c in answers if c.id not in used_checkins]
    if leftover and not skills:
        earlier = await uow.session.scalar(
            select(Delivery.key)
            .where(
                Delivery.partner_id == partner.id,
                Delivery.kind == "skill",
                Delivery.status == "sent",
                Delivery.sent_at < start,
            )
            .order_by(Delivery.sent_at.desc())
            .limit(1)
        )
        if earlier is not None:
            checkin = leftover[-1]  # the latest answer says where the practice stands
            tried = _TRIED.get(str(checkin.answers["skill"]))
            out.append(SkillPracticeData(skill_name(config, earlier, language), tried))
    return out


async def _couple_space(
    uow: UnitOfWork,
    couple: Couple,
    partners: list[Partner],
    config: PracticeConfig,
    cipher: Cipher,
    start: datetime,
    end: datetime,
    language: str,
) -> CoupleSpaceData:
    """The couple-space prompts both partners received, with only what may be quoted.

    A prompt only one partner received is left out (the other would read as silent). An
    answer is quoted when it was revealed to both or its author marked it OK to raise, and
    never when it raised a safety flag; any other answer is counted as kept private.
    """
    slot_of = {p.id: p.slot for p in partners}
    sent = await uow.session.execute(
        select(Delivery.key, Delivery.partner_id).where(
            Delivery.couple_id == couple.id,
            Delivery.kind == "couple_space",
            Delivery.status == "sent",
            Delivery.sent_at >= start,
            Delivery.sent_at < end,
        )
    )
    received: dict[str, set[str]] = {}
    for key, partner_id in sent:
        slot = slot_of.get(partner_id) if partner_id is not None else None
        if slot is not None:
            received.setdefault(key, set()).add(slot)
    keys = sorted(key for key, slots in received.items() if slots == {"A", "B"})
    rows = list(
        await uow.session.scalars(
            select(Response).where(
                Response.couple_id == couple.id,
                Response.partner_id.in_(list(slot_of)),
                Response.kind == "couple_space",
                Response.created_at >= start,
                Response.created_at < end,
            )
        )
    )
    answers = []
    both_answered = both_shared = 0
    for key in keys:
        by_slot = {slot_of[r.partner_id]: r for r in rows if r.prompt_key == key}
        a, b = by_slot.get("A"), by_slot.get("B")
        revealed = False
        if a is not None and b is not None:
            both_answered += 1
            revealed = bool(a.share and b.share and not a.risk and not b.risk)
            both_shared += revealed

        quoted = [_quotable(row, revealed, cipher) for row in (a, b)]
        pairs = zip((a, b), quoted, strict=True)
        private = [row is not None and text is None for row, text in pairs]
        title = config.library.text(key, language, name="").strip()
        answers.append(CoupleAnswerData(title, quoted[0], quoted[1], private[0], private[1]))
    return CoupleSpaceData(len(keys), both_answered, both_shared, tuple(answers))


def _quotable(row: Response | None, revealed: bool, cipher: Cipher) -> str | None:
    """A couple-space answer's words when they may be quoted (revealed, or OK to raise)."""
    if row is None or row.text_ciphertext is None or row.risk:
        return None
    if not (revealed or row.ok_to_raise):
        return None
    return cipher.decrypt(row.text_ciphertext)


async def build_input(
    uow: UnitOfWork,
    couple: Couple,
    therapist: Therapist,
    cipher: Cipher,
    *,
    period_end: datetime,
    previous_session_at: datetime | None,
) -> DigestInput:
    """Everything the composer needs for one couple's period."""
    practice = await uow.practices.get(couple.practice_id)
    assert practice is not None
    config = parse_practice_config(practice.config_toml)
    start = previous_session_at or period_end - DEFAULT_PERIOD
    language = therapist.language
    partners = await uow.partners.of_couple(couple.id)
    missed = await missed_checkins(uow, couple, practice, start, period_end)
    data = [
        replace(
            await _partner_data(uow, p, config, cipher, start, period_end, language),
            checkins_missed=missed.get(p.slot, 0),
        )
        for p in partners
    ]
    alerts = [
        alert
        for alert in await uow.session.scalars(
            select(Alert).where(
                Alert.couple_id == couple.id,
                or_(Alert.cleared_at.is_(None), Alert.created_at >= start),
            )
        )
        if _about_current_holder(alert, partners)
    ]
    return DigestInput(
        couple_handle=couple.handle,
        couple_label=couple.label,
        therapist_language=language,
        period_start=start,
        period_end=period_end,
        previous_session_at=previous_session_at,
        first_slot="A" if couple.digests_sent % 2 == 0 else "B",
        partners=(data[0], data[1]),
        couple_space=await _couple_space(
            uow, couple, partners, config, cipher, start, period_end, language
        ),
        alerts=tuple(
            AlertData(a.slot, a.kind, a.created_at, a.seen_at is not None, a.cleared_at is None)  # type: ignore[arg-type]
            for a in alerts
        ),
        settings=digest_settings(config),
        therapist_tz=ZoneInfo(therapist.timezone),
    )


def _about_current_holder(alert: Alert, partners: list[Partner]) -> bool:
    """Whether an alert is about the person who holds its seat now.

    A previous holder's alerts stay in the therapist's safety record (``/alerts``), never
    in the digest of the person who took the seat after them. An alert detached by an
    erasure belongs to the seat's holder when it was raised after they consented.
    """
    holder = next((p for p in partners if p.slot == alert.slot), None)
    if holder is None:
        return False
    if alert.partner_id is not None:
        return alert.partner_id == holder.id
    return holder.consented_at is not None and holder.consented_at <= alert.created_at


async def compose_for(
    uow: UnitOfWork, couple: Couple, cipher: Cipher, now: datetime, *, actor: str
) -> Digest:
    """The digest of the period up to now (since the last session, else 14 days); audited."""
    therapist = await uow.therapists.get(couple.therapist_id)
    assert therapist is not None
    previous = await uow.sessions.last_start_before(couple.id, now)
    data = await build_input(
        uow, couple, therapist, cipher, period_end=now, previous_session_at=previous
    )
    couple.digests_sent += 1
    uow.audit.record(actor=actor, action="digest.read", couple_id=couple.id, at=now)
    return compose_digest(data)


def _sealed(cipher: Cipher, text: str) -> str:
    return base64.b64encode(cipher.encrypt(text)).decode("ascii")


async def _email_charts(
    uow: UnitOfWork, couple: Couple, therapist: Therapist, digest: Digest, now: datetime
) -> list[dict[str, object]]:
    """The console's charts for the e-mail, as values (ratings only): each chart with at
    least one rating, none when the practice turned them off (``[digest] email_charts``)."""
    practice = await uow.practices.get(couple.practice_id)
    assert practice is not None
    settings = parse_practice_config(practice.config_toml).digest
    if not settings.email_charts:
        return []
    specs = await couple_charts(
        uow,
        couple,
        (digest.partners[0].slot, digest.partners[1].slot),
        {section.slot: section.display_name for section in digest.partners},
        therapist.language,
        ZoneInfo(therapist.timezone),
        settings.split_alliance_threshold,
        now,
    )
    return [spec.to_dict() for spec in specs if spec.has_ratings]


async def queue_digest(
    uow: UnitOfWork,
    couple: Couple,
    cipher: Cipher,
    now: datetime,
    *,
    key: str | None,
    actor: str,
    email: bool = False,
    announce: bool = False,
    telegram: bool = True,
) -> int:
    """Compose and queue the digest for the therapist (encrypted in the outbox); chunk count.

    ``key`` makes the queueing idempotent (one per session); None queues a fresh digest.
    ``email``: also email it, when the therapist gave an address; ``announce``: also queue
    the ``digest.ready`` event for the practice's webhooks; ``telegram``: in their chat.
    """
    therapist = await uow.therapists.get(couple.therapist_id)
    assert therapist is not None
    digest = await compose_for(uow, couple, cipher, now, actor=actor)
    key = key or f"digest:demand:{couple.id}:{couple.digests_sent}"
    parts = render_telegram_parts(digest, therapist.language) if telegram else ()
    chunks = telegram_messages(parts)
    for index, chunk in enumerate(chunks):
        await enqueue(
            uow,
            therapist,
            kind="digest",
            key="digest",
            dedupe_key=f"{key}:{index}",
            due_at=now,
            couple_id=couple.id,
            params={"text": _sealed(cipher, chunk)},
        )
    if email and therapist.email:
        language = therapist.language
        bodies: dict[str, object] = {
            "text": render_text(digest, language),
            "html": render_html_page(digest, language),
            "charts": await _email_charts(uow, couple, therapist, digest, now),
        }
        await enqueue(
            uow,
            therapist,
            kind="digest",
            key="digest",
            dedupe_key=f"{key}:email",
            due_at=now,
            couple_id=couple.id,
            params={"email": _sealed(cipher, json.dumps(bodies, ensure_ascii=False))},
            channel=EMAIL,
        )
    if announce:
        await events.digest_ready(uow, couple, digest, cipher, now, key)
    return len(chunks)


async def recompose_pending(uow: UnitOfWork, couple: Couple, cipher: Cipher, now: datetime) -> int:
    """Compose again, from what is stored now, every digest of the couple still waiting.

    After an erasure a digest composed earlier may hold the erased words (in Telegram
    chunks, the e-mail and the ``digest.ready`` event alike): those rows are replaced by
    one digest composed now, on the same channels, with the same partner first. Rows a
    dispatcher has claimed are in flight and left to it. Returns how many rows went.
    """
    waiting = list(
        await uow.session.scalars(
            select(Delivery).where(
                Delivery.couple_id == couple.id,
                Delivery.status == "pending",
                or_(
                    Delivery.kind == "digest",
                    and_(Delivery.kind == events.EVENT_KIND, Delivery.key == "digest.ready"),
                ),
            )
        )
    )
    if not waiting:
        return 0
    telegram = any(r.kind == "digest" and r.channel != EMAIL for r in waiting)
    email = any(r.kind == "digest" and r.channel == EMAIL for r in waiting)
    announce = any(r.kind == events.EVENT_KIND for r in waiting)
    for row in waiting:
        await uow.session.delete(row)
    await uow.flush()
    couple.digests_sent = max(0, couple.digests_sent - 1)  # the same digest: the same order
    await queue_digest(
        uow,
        couple,
        cipher,
        now,
        key=f"digest:again:{couple.id}:{now.isoformat()}",
        actor="system",
        email=email,
        announce=announce,
        telegram=telegram,
    )
    return len(waiting)


class DigestRenderer(KindRenderer):
    """A digest message: decrypted at send time, to the couple's therapist only."""

    def __init__(self, cipher: Cipher) -> None:
        self.cipher = cipher

    async def render(
        self, uow: UnitOfWork, delivery: Delivery, person: Partner | Therapist
    ) -> Outgoing | None:
        if not isinstance(person, Therapist):
            return None
        couple = await uow.couples.get(delivery.couple_id or 0)
        if couple is None or couple.therapist_id != person.id:
            return None
        if delivery.channel == EMAIL:
            return self._email(delivery, person, couple)
        token = base64.b64decode(str(delivery.params["text"]))
        return Outgoing(self.cipher.decrypt(token))

    def _email(self, delivery: Delivery, therapist: Therapist, couple: Couple) -> Outgoing:
        """The digest as an email: a neutral subject (the handle, never a name), a plain and
        an HTML part, and the pictures of the charts that the HTML part shows."""
        token = base64.b64decode(str(delivery.params["email"]))
        bodies = json.loads(self.cipher.decrypt(token))
        language = therapist.language
        footer = t(language, "email.digest_footer", handle=couple.handle)
        # The same on every retry, and unique to this row: a Message-ID mail systems can dedupe.
        digest_id = hashlib.sha256(f"{delivery.recipient}/{delivery.dedupe_key}".encode())
        unique = digest_id.hexdigest()[:16]
        specs = [ChartSpec.from_dict(item) for item in bodies.get("charts", [])]
        images = tuple(
            InlineImage(f"{spec.chart_id}.{unique}@dyad", render_png(spec), f"{spec.chart_id}.png")
            for spec in specs
        )
        page = str(bodies["html"])
        if specs:
            figures = "".join(
                image_figure(spec, f"cid:{image.cid}")
                for spec, image in zip(specs, images, strict=True)
            )
            title = html.escape(t(language, "console.charts_title"))
            page = _before(
                page, "</main>", f'<section class="charts"><h2>{title}</h2>{figures}</section>\n'
            )
        page = _before(page, "</body>", f"<p><small>{html.escape(footer)}</small></p>\n")
        return Outgoing(
            f"{bodies['text']}\n\n-- \n{footer}\n",
            subject=t(language, "email.digest_subject", handle=couple.handle),
            html=page,
            images=images,
            idempotency_key=f"dyad-digest-{delivery.id}-{unique}",
        )


def _before(page: str, closing: str, insert: str) -> str:
    """``insert`` just before the page's last ``closing`` tag (at the end when it has none)."""
    at = page.rfind(closing)
    return f"{page[:at]}{insert}{page[at:]}" if at >= 0 else page + insert


async def send_due_digests(
    db: Database, cipher: Cipher, now: datetime, *, email: bool = False
) -> int:
    """Queue the digest of every session whose lead time has come, once per session.

    ``email``: the process can send email (an SMTP relay is configured), so therapists who
    gave an address also get the digest by email. The practice's webhooks always hear of it.
    """
    due = (
        (TherapySession.digest_due_at <= now)
        & (TherapySession.starts_at > now - timedelta(hours=12))
        & TherapySession.digest_sent_at.is_(None)
        & TherapySession.cancelled_at.is_(None)
        & or_(
            TherapySession.digest_lease_until.is_(None),
            TherapySession.digest_lease_until < now,
        )
    )
    candidates = select(TherapySession.id).where(due).limit(50)
    if db.is_postgres:
        candidates = candidates.with_for_update(skip_locked=True)
    claim = (
        update(TherapySession)
        .where(TherapySession.id.in_(candidates.scalar_subquery()), due)
        .values(digest_lease_until=now + DIGEST_LEASE)
        .returning(TherapySession.id)
        .execution_options(synchronize_session=False)
    )
    async with db.uow() as uow:
        claimed = list((await uow.session.scalars(claim)).all())
        await uow.commit()
    sent = 0
    for session_id in claimed:
        async with db.uow() as uow:
            session = await uow.sessions.get(session_id)
            assert session is not None
            couple = await uow.couples.get(session.couple_id)
            if couple is None or couple.status != "active":
                session.digest_sent_at = now
                await uow.commit()
                continue
            await queue_digest(
                uow,
                couple,
                cipher,
                now,
                key=f"digest:session:{session.id}",
                actor="system",
                email=email,
                announce=True,
            )
            session.digest_sent_at = now
            await uow.commit()
            sent += 1
    return sent
