"""The therapist console's use cases: sign-in, the caseload, a couple's page, acknowledging.

Sign-in: ``/console`` issues a one-time login link (kept only as a hash, short-lived);
redeeming it starts a browser session whose cookie is also kept only as a hash, and
which ends after the configured inactivity. A Telegram Mini App launch (validated
``initData``) starts the same kind of session.

Access: a therapist sees their own couples; an admin therapist also sees the rest of the
practice's caseload, in counts and flags only (no quotes, no kept-private words, no alert
words), and can change nothing there. Every page that shows a couple's data is recorded
in the audit log, like the chat's reads.

Balance: the couple page is the digest itself (``bot.core.digest``), composed as the next
pre-session digest will be (the same partner first), without counting as a sent digest.
The caseload's figures (split alliance, off track, missed check-ins) come from the same
composer, fed from rows read for the whole caseload at once and without any words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update

from bot.channels.base import Button, Outgoing
from bot.core.charts import Chart, chart_svg
from bot.core.digest import (
    Digest,
    DigestInput,
    PartnerData,
    ScoreRole,
    Slot,
    compose_digest,
)
from bot.core.tokens import hash_token, looks_like_token, new_token
from bot.locales import t
from bot.services import access, couples, digests, sessions
from bot.services.charts import couple_charts
from bot.services.crypto import Cipher
from bot.services.notes import PERIOD as NOTES_PERIOD
from bot.services.notes import ROOM_PER_PARTNER, PrivateNote, private_notes, within_room
from bot.services.practice_config import PracticeConfig, parse_practice_config
from bot.services.practices import AdminError
from bot.services.reminders import checkin_expiry, count_missed
from bot.services.schedule_preview import NobodyJoined, SchedulePreview, schedule_preview
from bot.services.texts import UserError, msg
from bot.services.usecase import Call, Reply
from db.models import (
    Alert,
    AuditEntry,
    CheckIn,
    ConsoleLoginLink,
    ConsoleSession,
    Couple,
    Delivery,
    Partner,
    Practice,
    Response,
    Therapist,
    TherapySession,
)
from db.repositories import insert_new
from db.uow import UnitOfWork
from schedules.check import check_practice_text, format_problems

SESSION_LIFETIME = timedelta(hours=12)  # signed out after this even when in use
SEEN_EVERY = timedelta(minutes=1)  # how often a session's last use is written
PREVIEW_DAYS = 14
OFF_TRACK_ROLES: tuple[ScoreRole, ...] = ("wellbeing", "alliance")


def actor(therapist: Therapist) -> str:
    """The audit log's name for a therapist."""
    return f"therapist:{therapist.id}"


# --- sign-in --------------------------------------------------------------------------


async def issue_login_link(
    uow: UnitOfWork, therapist: Therapist, now: datetime, ttl: timedelta
) -> str:
    """A fresh one-time login token for the therapist (the database keeps its hash);
    the caller commits."""
    token = new_token()
    uow.session.add(
        ConsoleLoginLink(
            token_hash=hash_token(token),
            therapist_id=therapist.id,
            created_at=now,
            expires_at=now + ttl,
        )
    )
    uow.audit.record(actor=actor(therapist), action="console.link", couple_id=None, at=now)
    return token


async def console_link(call: Call) -> Reply:
    """``/console``: a one-time login link for this therapist (and, when the pages are
    served over https, a button that opens the console as a Telegram Mini App)."""
    therapist = access.therapist(call.actor)
    lang = therapist.language
    url = call.deps.settings.webapp_url
    if url is None:
        return Reply.say(msg(lang, "console.not_served"))
    minutes = call.deps.settings.console_link_minutes
    token = await issue_login_link(call.uow, therapist, call.now, timedelta(minutes=minutes))
    text = msg(lang, "console.link_message", minutes=minutes, link=f"{url}/console/login/{token}")
    rows: tuple[tuple[Button, ...], ...] = ()
    if url.startswith("https://"):
        rows = ((Button(msg(lang, "console.link_button"), "", web_app_url=f"{url}/console/app"),),)
    return Reply.say(Outgoing(text, rows))


async def _start_session(uow: UnitOfWork, therapist_id: int, now: datetime) -> str:
    token = new_token()
    uow.session.add(
        ConsoleSession(
            token_hash=hash_token(token),
            therapist_id=therapist_id,
            created_at=now,
            last_seen_at=now,
            expires_at=now + SESSION_LIFETIME,
        )
    )
    uow.audit.record(
        actor=f"therapist:{therapist_id}", action="console.signin", couple_id=None, at=now
    )
    await uow.commit()
    return token


async def redeem_login_link(uow: UnitOfWork, token: str, now: datetime) -> str:
    """Use a login link (once, before it expires); returns the new session's cookie token."""
    if not looks_like_token(token):
        raise UserError("console.link_invalid")
    claimed = await uow.session.execute(
        update(ConsoleLoginLink)
        .where(
            ConsoleLoginLink.token_hash == hash_token(token),
            ConsoleLoginLink.used_at.is_(None),
            ConsoleLoginLink.expires_at > now,
        )
        .values(used_at=now)
        .returning(ConsoleLoginLink.therapist_id)
    )
    therapist_id = claimed.scalar_one_or_none()
    if therapist_id is None:
        raise UserError("console.link_invalid")
    therapist = await uow.therapists.get(therapist_id)
    if therapist is None or therapist.telegram_user_id is None:
        raise UserError("console.link_invalid")
    return await _start_session(uow, therapist_id, now)


async def start_miniapp_session(uow: UnitOfWork, telegram_user_id: int, now: datetime) -> str:
    """A session for the therapist a validated Mini App launch names."""
    therapist = await uow.therapists.by_user(telegram_user_id)
    if therapist is None:
        raise UserError("console.not_a_therapist")
    return await _start_session(uow, therapist.id, now)


async def session_therapist(
    uow: UnitOfWork, token: str, now: datetime, idle: timedelta
) -> Therapist | None:
    """The therapist a session cookie belongs to, if the session is still open; else None.

    A session unused for ``idle`` is ended here (signed out for inactivity).
    """
    if not looks_like_token(token):
        return None
    session = await uow.session.scalar(
        select(ConsoleSession).where(ConsoleSession.token_hash == hash_token(token))
    )
    if session is None or session.ended_at is not None:
        return None
    if now >= session.expires_at or now - session.last_seen_at >= idle:
        session.ended_at = now
        await uow.commit()
        return None
    if now - session.last_seen_at >= SEEN_EVERY:
        session.last_seen_at = now
        await uow.commit()
    return await uow.therapists.get(session.therapist_id)


async def end_session(uow: UnitOfWork, token: str, now: datetime) -> None:
    """Sign out: the cookie opens nothing any more."""
    if looks_like_token(token):
        await uow.session.execute(
            update(ConsoleSession)
            .where(
                ConsoleSession.token_hash == hash_token(token), ConsoleSession.ended_at.is_(None)
            )
            .values(ended_at=now)
        )
        await uow.commit()


# --- access ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Access:
    """A couple the therapist may open, and how: their own (everything) or as admin."""

    couple: Couple
    own: bool


async def couple_for(uow: UnitOfWork, therapist: Therapist, couple_id: int) -> Access:
    """The couple, if the therapist may see it; any other id reads as unknown."""
    couple = await uow.couples.get(couple_id)
    if couple is None or couple.practice_id != therapist.practice_id:
        raise UserError("console.not_found")
    if couple.therapist_id == therapist.id:
        return Access(couple, own=True)
    if therapist.is_admin and couple.status == "active":
        return Access(couple, own=False)
    raise UserError("console.not_found")


# --- the caseload ---------------------------------------------------------------------


@dataclass(frozen=True)
class PartnerGlance:
    """One partner in the caseload; both partners of a couple have exactly these fields."""

    slot: Slot
    name: str
    state: str  # invited | onboarding | joined | paused | unreachable | left
    days_since_answer: int | None
    missed: int
    off_track: bool


@dataclass(frozen=True)
class CoupleGlance:
    """One couple's line in the caseload: what needs attention, never any words."""

    couple_id: int
    handle: str
    label: str
    therapist_name: str
    own: bool
    partners: tuple[PartnerGlance, PartnerGlance]  # the digest's first partner first
    open_alerts: int
    unseen_alerts: int
    alert_kinds: tuple[str, ...]
    split: bool
    gap: float | None
    off_track: bool
    next_session: datetime | None

    @property
    def attention(self) -> tuple[int, ...]:
        """Sorts the caseload: most in need of attention first."""
        missed = sum(p.missed for p in self.partners)
        unreachable = sum(p.state == "unreachable" for p in self.partners)
        silent = max((p.days_since_answer or 0) for p in self.partners)
        return (
            -self.unseen_alerts,
            -self.open_alerts,
            -int(self.split),
            -int(self.off_track),
            -unreachable,
            -missed,
            -silent,
        )


async def _digest(uow: UnitOfWork, couple: Couple, cipher: Cipher, now: datetime) -> Digest:
    """The digest of the period up to now, as the next one will be; not audited here."""
    therapist = await uow.therapists.get(couple.therapist_id)
    assert therapist is not None
    previous = await uow.sessions.last_start_before(couple.id, now)
    data = await digests.build_input(
        uow, couple, therapist, cipher, period_end=now, previous_session_at=previous
    )
    return compose_digest(data)


@dataclass(frozen=True)
class _Facts:
    """What a couple's line shows beside its digest's figures."""

    config: PracticeConfig
    therapist: Therapist
    partners: dict[str, Partner]  # by seat
    last_answer: dict[int, datetime]  # by partner id
    open_alerts: tuple[Alert, ...]
    next_session: datetime | None


async def _facts(uow: UnitOfWork, chosen: Sequence[Couple], now: datetime) -> dict[int, _Facts]:
    """Each chosen couple's facts, read for all of them at once: the same few queries for a
    caseload of three couples or of three hundred."""
    if not chosen:
        return {}
    ids = [c.id for c in chosen]
    practices = {
        p.id: p
        for p in await uow.session.scalars(
            select(Practice).where(Practice.id.in_({c.practice_id for c in chosen}))
        )
    }
    configs = {pid: parse_practice_config(p.config_toml) for pid, p in practices.items()}
    therapists = {
        th.id: th
        for th in await uow.session.scalars(
            select(Therapist).where(Therapist.id.in_({c.therapist_id for c in chosen}))
        )
    }
    partners = await uow.partners.of_couples(ids)
    partner_ids = [p.id for seated in partners.values() for p in seated]
    last: dict[int, datetime] = {}
    answered = (
        select(CheckIn.partner_id, func.max(CheckIn.started_at))
        .where(CheckIn.partner_id.in_(partner_ids), CheckIn.status != "open")
        .group_by(CheckIn.partner_id),
        select(Response.partner_id, func.max(Response.created_at))
        .where(Response.partner_id.in_(partner_ids))
        .group_by(Response.partner_id),
    )
    for query in answered:
        for partner_id, at in await uow.session.execute(query):
            if at is not None and (partner_id not in last or at > last[partner_id]):
                last[partner_id] = at
    alerts: dict[int, list[Alert]] = {couple_id: [] for couple_id in ids}
    for alert in await uow.session.scalars(
        select(Alert).where(Alert.couple_id.in_(ids), Alert.cleared_at.is_(None))
    ):
        alerts[alert.couple_id].append(alert)
    upcoming: dict[int, datetime] = {
        couple_id: at
        for couple_id, at in await uow.session.execute(
            select(TherapySession.couple_id, func.min(TherapySession.starts_at))
            .where(
                TherapySession.couple_id.in_(ids),
                TherapySession.starts_at > now,
                TherapySession.cancelled_at.is_(None),
            )
            .group_by(TherapySession.couple_id)
        )
    }
    return {
        c.id: _Facts(
            config=configs[c.practice_id],
            therapist=therapists[c.therapist_id],
            partners={p.slot: p for p in partners[c.id]},
            last_answer=last,
            open_alerts=tuple(alerts[c.id]),
            next_session=upcoming.get(c.id),
        )
        for c in chosen
    }


async def _figures(
    uow: UnitOfWork, chosen: Sequence[Couple], facts: dict[int, _Facts], now: datetime
) -> dict[int, Digest]:
    """Each couple's digest as the next one will be, for its figures only (scores, change,
    split alliance, missed check-ins): composed from the check-ins of all the couples,
    read at once, and without reading a word (every note counts as kept private)."""
    if not chosen:
        return {}
    ids = [c.id for c in chosen]
    previous: dict[int, datetime] = {
        couple_id: at
        for couple_id, at in await uow.session.execute(
            select(TherapySession.couple_id, func.max(TherapySession.starts_at))
            .where(
                TherapySession.couple_id.in_(ids),
                TherapySession.starts_at < now,
                TherapySession.cancelled_at.is_(None),
            )
            .group_by(TherapySession.couple_id)
        )
    }
    starts = {c.id: previous.get(c.id) or now - digests.DEFAULT_PERIOD for c in chosen}
    partner_ids = [p.id for f in facts.values() for p in f.partners.values()]
    # The period and the one before it (for "change since the last session").
    earliest = min(start - (now - start) for start in starts.values())
    rows: dict[int, list[CheckIn]] = {partner_id: [] for partner_id in partner_ids}
    for row in await uow.session.scalars(
        select(CheckIn)
        .where(
            CheckIn.partner_id.in_(partner_ids),
            CheckIn.status != "open",
            CheckIn.started_at >= earliest,
            CheckIn.started_at < now,
        )
        .order_by(CheckIn.started_at)
    ):
        rows[row.partner_id].append(row)
    expiries = {c.id: checkin_expiry(facts[c.id].config) for c in chosen}
    sent: dict[int, list[tuple[int, datetime]]] = {partner_id: [] for partner_id in partner_ids}
    for partner_id, sent_at in await uow.session.execute(
        select(Delivery.partner_id, Delivery.sent_at).where(
            Delivery.couple_id.in_(ids),
            Delivery.partner_id.in_(partner_ids),
            Delivery.kind == "checkin",
            Delivery.status == "sent",
            Delivery.sent_at >= min(starts.values()),
            Delivery.sent_at <= now - min(expiries.values()),
        )
    ):
        if partner_id is not None and sent_at is not None:
            sent[partner_id].append((partner_id, sent_at))
    out: dict[int, Digest] = {}
    for couple in chosen:
        fact, start, expiry = facts[couple.id], starts[couple.id], expiries[couple.id]
        data = []
        for partner in fact.partners.values():
            mine = [r for r in rows[partner.id] if r.started_at >= start - (now - start)]
            checkins, before = digests.checkin_inputs(mine, fact.config, start, None)
            completed = {partner.id: [r.started_at for r in mine if r.status == "complete"]}
            due = [(p, at) for p, at in sent[partner.id] if start <= at <= now - expiry]
            data.append(
                PartnerData(
                    slot=partner.slot,
                    display_name=digests.partner_label(partner),
                    language=partner.language,
                    checkins=tuple(checkins),
                    previous_scores=before,
                    checkins_missed=count_missed(due, completed, expiry).get(partner.id, 0),
                )
            )
        out[couple.id] = compose_digest(
            DigestInput(
                couple_handle=couple.handle,
                couple_label=couple.label,
                therapist_language=fact.therapist.language,
                period_start=start,
                period_end=now,
                previous_session_at=previous.get(couple.id),
                first_slot="A" if couple.digests_sent % 2 == 0 else "B",
                partners=(data[0], data[1]),
                settings=digests.digest_settings(fact.config),
                therapist_tz=ZoneInfo(fact.therapist.timezone),
            )
        )
    return out


def _glance(
    couple: Couple, own: bool, digest: Digest, facts: _Facts, now: datetime
) -> CoupleGlance:
    drop = facts.config.digest.off_track_drop
    glances = []
    for section in digest.partners:
        partner = facts.partners[section.slot]
        falls = [section.role(role).change for role in OFF_TRACK_ROLES]
        last = facts.last_answer.get(partner.id)
        glances.append(
            PartnerGlance(
                slot=section.slot,
                name=section.display_name,
                state=couples.partner_state(partner, now),
                days_since_answer=None if last is None else (now - last).days,
                missed=section.engagement.checkins_missed,
                off_track=any(c is not None and c <= -drop for c in falls),
            )
        )
    alerts = facts.open_alerts
    alliance = digest.together.alliance
    return CoupleGlance(
        couple_id=couple.id,
        handle=couple.handle,
        label=couple.label,
        therapist_name=facts.therapist.display_name,
        own=own,
        partners=(glances[0], glances[1]),
        open_alerts=len(alerts),
        unseen_alerts=sum(1 for a in alerts if a.seen_at is None),
        alert_kinds=tuple(sorted({a.kind for a in alerts})),
        split=alliance.split,
        gap=alliance.gap,
        off_track=any(g.off_track for g in glances),
        next_session=facts.next_session,
    )


async def caseload(uow: UnitOfWork, therapist: Therapist, now: datetime) -> list[CoupleGlance]:
    """The therapist's couples (an admin's: the practice's), most in need of attention first.

    Read with a fixed number of queries whatever the caseload's size, and without reading
    any words (it takes no cipher: the caseload shows counts and flags only). Each
    couple shown is recorded in the audit log.
    """
    query = select(Couple).where(Couple.status == "active")
    if therapist.is_admin:
        query = query.where(Couple.practice_id == therapist.practice_id)
    else:
        query = query.where(Couple.therapist_id == therapist.id)
    shown = list(await uow.session.scalars(query.order_by(Couple.id)))
    facts = await _facts(uow, shown, now)
    figures = await _figures(uow, shown, facts, now)
    rows = [
        _glance(c, c.therapist_id == therapist.id, figures[c.id], facts[c.id], now) for c in shown
    ]
    # One multi-row INSERT for the audit log, however many couples are shown.
    entry = {"actor": actor(therapist), "action": "console.caseload", "at": now, "detail": None}
    await insert_new(uow.session, AuditEntry, [entry | {"couple_id": c.id} for c in shown])
    await uow.commit()
    return sorted(rows, key=lambda row: (not row.own, row.attention, row.couple_id))


# --- a couple's page ------------------------------------------------------------------


@dataclass(frozen=True)
class AlertLine:
    """An alert as the page lists it: kind, partner, when, state; never the words."""

    alert_id: int
    slot: Slot
    kind: str
    at: datetime
    seen: bool
    cleared: bool


@dataclass(frozen=True)
class SessionLine:
    """A coming or recent session."""

    starts_at: datetime
    cancelled: bool
    recurring: bool
    moved_from: datetime | None
    coming: bool = False


@dataclass(frozen=True)
class CoupleView:
    """Everything the couple page shows."""

    access: Access
    therapist: Therapist  # the couple's own therapist (dates are in their time zone)
    glance: CoupleGlance
    digest: Digest | None  # None for an admin who is not the couple's therapist
    charts: tuple[Chart, ...]
    alerts: tuple[AlertLine, ...]
    sessions: tuple[SessionLine, ...]


async def couple_view(
    uow: UnitOfWork, therapist: Therapist, couple_id: int, cipher: Cipher, now: datetime
) -> CoupleView:
    """The couple page's content; the read is audited. An admin who is not the couple's
    therapist gets counts, flags and charts only: no digest (its quotes), no words."""
    access = await couple_for(uow, therapist, couple_id)
    couple = access.couple
    own_therapist = await uow.therapists.get(couple.therapist_id)
    assert own_therapist is not None
    composed = await _digest(uow, couple, cipher, now)
    facts = (await _facts(uow, [couple], now))[couple.id]
    glance = _glance(couple, access.own, composed, facts, now)
    digest = composed if access.own else None
    order: tuple[Slot, Slot] = tuple(p.slot for p in glance.partners)  # type: ignore[assignment]
    names: dict[Slot, str] = {p.slot: p.name for p in glance.partners}
    specs = await couple_charts(
        uow,
        couple,
        order,
        names,
        therapist.language,
        ZoneInfo(own_therapist.timezone),
        facts.config.digest.split_alliance_threshold,
        now,
    )
    charts = tuple(chart_svg(spec) for spec in specs)
    alerts = tuple(
        AlertLine(
            a.id,
            a.slot,  # type: ignore[arg-type]
            a.kind,
            a.created_at,
            a.seen_at is not None,
            a.cleared_at is not None,
        )
        for a in await uow.session.scalars(
            select(Alert).where(Alert.couple_id == couple.id).order_by(Alert.created_at.desc())
        )
    )
    sessions = tuple(
        SessionLine(
            s.starts_at, s.cancelled_at is not None, s.recurring, s.moved_from, s.starts_at > now
        )
        for s in await uow.session.scalars(
            select(TherapySession)
            .where(
                TherapySession.couple_id == couple.id,
                TherapySession.starts_at >= now - timedelta(days=28),
            )
            .order_by(TherapySession.starts_at)
            .limit(12)
        )
    )
    action = "console.couple.read" if access.own else "console.couple.admin_read"
    uow.audit.record(actor=actor(therapist), action=action, couple_id=couple.id, at=now)
    if digest is not None:
        uow.audit.record(actor=actor(therapist), action="digest.read", couple_id=couple.id, at=now)
    await uow.commit()
    return CoupleView(access, own_therapist, glance, digest, charts, alerts, sessions)


async def acknowledge_alert(
    uow: UnitOfWork, therapist: Therapist, couple_id: int, alert_id: int, now: datetime
) -> None:
    """Mark one of the therapist's own couple's alerts seen (the digest shows it so)."""
    access = await couple_for(uow, therapist, couple_id)
    if not access.own:
        raise UserError("console.not_found")
    alert = await uow.session.get(Alert, alert_id)
    if alert is None or alert.couple_id != access.couple.id:
        raise UserError("console.not_found")
    if alert.seen_at is None:
        alert.seen_at = now
    uow.audit.record(
        actor=actor(therapist),
        action="console.alert.ack",
        couple_id=access.couple.id,
        at=now,
        detail=f"alert={alert.id}",
    )
    await uow.commit()


async def change_session(
    uow: UnitOfWork,
    therapist: Therapist,
    couple_id: int,
    action: str,
    fields: dict[str, str],
    now: datetime,
) -> str:
    """Skip or move one of the own couple's sessions, exactly as ``/session`` does.

    ``fields``: ``day`` (the session's local date), and for a move ``to_day`` and
    ``to_time``. Returns what ``/session`` would reply; a bad value is a ``UserError``.
    """
    access = await couple_for(uow, therapist, couple_id)
    if not access.own or access.couple.status != "active":
        raise UserError("console.not_found")
    day = fields.get("day", "")[:10]
    if action == "skip":
        args = ["skip", day]
    elif action == "move":
        args = ["move", day, fields.get("to_day", "")[:10], fields.get("to_time", "")[:5]]
    else:
        raise UserError("console.not_found")
    uow.audit.record(
        actor=actor(therapist), action=f"console.session.{action}", couple_id=couple_id, at=now
    )
    return await sessions.command(uow, therapist, access.couple, args, now)


@dataclass(frozen=True)
class AdminView:
    """The practice admin's page: the stored configuration, the couples to preview."""

    practice_name: str
    config_toml: str | None  # None: the shipped defaults
    handles: tuple[str, ...]
    selected: str | None = None  # the couple previewed
    preview: SchedulePreview | None = None
    problem: str | None = None  # why there is no preview: a catalog key (with the handle)


async def admin_view(
    uow: UnitOfWork, therapist: Therapist, now: datetime, handle: str | None
) -> AdminView:
    """The practice's configuration as stored and, for one couple, the fortnight preview
    (``dyad schedules preview``'s own rows: prompt keys and times, no words of anyone)."""
    if not therapist.is_admin:
        raise UserError("console.not_found")
    practice = await uow.practices.get(therapist.practice_id)
    assert practice is not None
    couples = await uow.session.scalars(
        select(Couple.handle)
        .where(Couple.practice_id == practice.id, Couple.status == "active")
        .order_by(Couple.id)
    )
    handles = tuple(couples)
    preview: SchedulePreview | None = None
    problem = None
    selected = handle if handle in handles else None
    if selected is not None:
        try:
            preview = await schedule_preview(uow, selected, practice.slug, now, PREVIEW_DAYS)
        except NobodyJoined:
            problem = "console.preview.nobody_joined"
        except AdminError:
            problem = "console.preview.unavailable"
    return AdminView(practice.name, practice.config_toml, handles, selected, preview, problem)


def check_upload(name: str, text: str) -> tuple[bool, tuple[str, ...]]:
    """``dyad schedules check`` on an uploaded file: (usable, each problem with its line)."""
    result = check_practice_text(text, name)
    if not result.ok:
        return False, tuple(format_problems(result))
    try:
        parse_practice_config(text)  # the sections beyond schedules, as configure checks
    except ValueError as error:
        return False, (f"{name}: {error}",)
    return True, (result.summary,)


@dataclass(frozen=True)
class NotesColumn:
    """One partner's kept-private words, within the same room as the other's."""

    slot: Slot
    name: str
    notes: tuple[PrivateNote, ...]
    left_out: int


async def notes_page(
    uow: UnitOfWork, therapist: Therapist, couple_id: int, cipher: Cipher, now: datetime
) -> tuple[Couple, tuple[NotesColumn, NotesColumn]]:
    """The words each partner kept for their therapist, as ``/notes``: own couples only."""
    access = await couple_for(uow, therapist, couple_id)
    if not access.own:
        raise UserError("console.not_found")
    couple = access.couple
    partners = {p.slot: p for p in await uow.partners.of_couple(couple.id)}
    order: tuple[Slot, Slot] = ("A", "B") if couple.digests_sent % 2 == 0 else ("B", "A")
    columns = []
    for slot in order:
        partner = partners[slot]
        notes = await private_notes(uow, partner, cipher, now - NOTES_PERIOD)
        shown, left_out = within_room(notes, ROOM_PER_PARTNER)
        name = partner.display_name or t(therapist.language, "console.partner_slot", slot=slot)
        columns.append(NotesColumn(slot, name, tuple(shown), left_out))
    uow.audit.record(actor=actor(therapist), action="notes.read", couple_id=couple.id, at=now)
    await uow.commit()
    return couple, (columns[0], columns[1])
