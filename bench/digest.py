"""Digest: compose (from the database) and render one couple's pre-session digest.

The database holds 1,000 couples with 90 days of history, inserted directly: weekly
sessions, check-ins twice a week with encrypted notes (some OK to raise), every
scheduled prompt sent, replies encrypted with ``bot.services.crypto.Cipher``, a few
safety alerts. Then, for ``--samples`` couples taken at random (100 by default), one at
a time, ``bot.services.digests.compose_for`` reads the period since the last session and
composes the digest (timed: "compose"), and ``render_telegram_html`` turns it into
Telegram messages (timed: "render"). Nothing is committed, so every couple is composed
from the same state.

    python -m bench.digest [--couples 1000] [--days 90] [--samples 100]
                           [--database sqlite|postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, text

from bench._common import (
    Clinic,
    SeededPartner,
    default_postgres_url,
    emit,
    insert_rows,
    latency_figures,
    open_bench_database,
    quiet_logging,
    seed_clinic,
)
from bot.core.digest_render import render_telegram_html
from bot.services.crypto import Cipher, new_key
from bot.services.digests import compose_for
from bot.services.practice_config import parse_practice_config
from db.engine import Database
from db.models import Alert, CheckIn, Couple, Delivery, Response, Therapist, TherapySession

# Days of the week (Monday 0) each kind of prompt goes out, as in the standard template.
SCHEDULE = {
    "checkin": (0, 3),
    "hope": (1, 5),
    "skill": (2,),
    "skill_followup": (4,),
    "couple_space": (6,),
}
_PHRASES = (
    "We argued about the holidays again and I shut down.",
    "I tried the soft start-up on Tuesday and it helped a little.",
    "I feel more hopeful than last week; we laughed together on Saturday.",
    "Money keeps coming up and I do not know how to talk about it without blaming.",
    "I noticed that I interrupt when I am anxious.",
    "We had a quiet evening and it felt close.",
    "The kids were ill so we barely saw each other.",
    "When my partner asked about my day I felt seen.",
    "I would like more help with how we decide things together.",
    "Work stress spilled over into the weekend.",
    "We used the pause signal twice and it worked once.",
    "I wrote down three things I appreciate, which was harder than I thought.",
)
BATCH_COUPLES = 100  # couples whose history is built and inserted together


def _text(rng: random.Random) -> str:
    return " ".join(rng.sample(_PHRASES, rng.randint(1, 3)))


def _keys_by_kind() -> dict[str, list[str]]:
    library = parse_practice_config(None).library
    return {kind: [p.key for p in library.by_kind(kind)] for kind in SCHEDULE}


async def _insert_history(
    db: Database,
    cipher: Cipher,
    partners: Sequence[SeededPartner],
    now: datetime,
    days: int,
    rng: random.Random,
) -> dict[str, int]:
    """Insert ``days`` of check-ins, sent prompts, replies and alerts for these partners."""
    keys = _keys_by_kind()
    first_day = (now - timedelta(days=days)).date()
    checkins: list[dict[str, Any]] = []
    deliveries: list[dict[str, Any]] = []
    for partner in partners:
        engagement = rng.uniform(0.5, 0.95)  # partners differ in how much they answer
        level = rng.uniform(3, 8)
        for offset in range(days):
            day = first_day + timedelta(days=offset)
            evening = datetime(day.year, day.month, day.day, 18, tzinfo=UTC)
            sent_at = evening + timedelta(minutes=rng.randint(0, 120))
            for kind, weekdays in SCHEDULE.items():
                if day.weekday() not in weekdays:
                    continue
                key = keys[kind][(offset // 7 + partner.couple_id) % len(keys[kind])]
                deliveries.append(
                    {
                        "recipient": f"partner:{partner.id}",
                        "couple_id": partner.couple_id,
                        "partner_id": partner.id,
                        "channel": "telegram",
                        "kind": kind,
                        "key": key,
                        "params": {"rule": kind},
                        "dedupe_key": f"plan:{kind}:{day.isoformat()}",
                        "local_date": day.isoformat(),
                        "due_at": sent_at,
                        "not_after": sent_at + timedelta(hours=3),
                        "status": "sent",
                        "attempts": 1,
                        "sent_at": sent_at,
                        "message_id": offset * 10 + len(deliveries) % 10,
                        "created_at": sent_at - timedelta(days=1),
                    }
                )
                if kind != "checkin" or rng.random() > engagement:
                    continue
                level = min(10.0, max(0.0, level + rng.uniform(-1, 1)))
                with_note = rng.random() < 0.6
                ok = rng.random() < 0.5
                answers: dict[str, Any] = {
                    "wellbeing": round(level),
                    "hope": min(10, max(0, round(level + rng.uniform(-2, 2)))),
                    "safe_to_be_honest": rng.randint(4, 10),
                    "understood": rng.randint(3, 10),
                    "skill": rng.choice(("yes", "partly", "no")),
                }
                if with_note:
                    answers["note"] = "written"
                    answers["ok_to_raise"] = "yes" if ok else "no"
                with_safety = len(checkins) % 2 == 0
                if with_safety:
                    answers["afraid_or_unsafe"] = "no"
                partial = rng.random() < 0.05
                checkins.append(
                    {
                        "partner_id": partner.id,
                        "couple_id": partner.couple_id,
                        "instrument": "dyad_checkin",
                        "with_safety": with_safety,
                        "status": "partial" if partial else "complete",
                        "answers": answers,
                        "skipped": {"items": []},
                        "note_ciphertext": cipher.encrypt(_text(rng)) if with_note else None,
                        "ok_to_raise": ok if with_note else False,
                        "risk": False,
                        "message_ids": {},
                        "started_at": sent_at + timedelta(minutes=20),
                        "completed_at": sent_at + timedelta(minutes=26),
                    }
                )
    delivery_ids = await insert_rows(db, Delivery, deliveries)
    await insert_rows(db, CheckIn, checkins)

    responses: list[dict[str, Any]] = []
    answered = {p.id: rng.uniform(0.4, 0.9) for p in partners}
    for delivery_id, row in zip(delivery_ids, deliveries, strict=True):
        kind = row["kind"]
        if kind == "checkin" or rng.random() > answered[row["partner_id"]]:
            continue
        followup = kind == "skill_followup"
        responses.append(
            {
                "delivery_id": delivery_id,
                "partner_id": row["partner_id"],
                "couple_id": row["couple_id"],
                "prompt_key": row["key"],
                "kind": kind,
                "choice": rng.choice(("yes", "partly", "not_yet")) if followup else None,
                "text_ciphertext": (
                    None if followup and rng.random() < 0.5 else cipher.encrypt(_text(rng))
                ),
                "share": rng.random() < 0.7 if kind == "couple_space" else None,
                "ok_to_raise": rng.random() < 0.5,
                "risk": False,
                "created_at": row["sent_at"] + timedelta(hours=1),
            }
        )
    await insert_rows(db, Response, responses)

    alerts: list[dict[str, Any]] = [
        {
            "couple_id": partner.couple_id,
            "partner_id": partner.id,
            "slot": partner.slot,
            "kind": "safety_question",
            "source": "checkin",
            "phrase_ids": {},
            "created_at": now - timedelta(days=rng.randint(1, days)),
            "seen_at": None,
            "cleared_at": None if rng.random() < 0.5 else now - timedelta(hours=1),
        }
        for partner in partners
        if partner.slot == "A" and rng.random() < 0.03
    ]
    if alerts:
        await insert_rows(db, Alert, alerts)
    return {
        "deliveries": len(deliveries),
        "checkins": len(checkins),
        "responses": len(responses),
        "alerts": len(alerts),
    }


async def _insert_sessions(
    db: Database, couple_ids: Sequence[int], now: datetime, days: int
) -> int:
    """Weekly sessions over the period; the next one starts an hour from ``now``."""
    next_session = now + timedelta(hours=1)
    rows = [
        {
            "couple_id": couple_id,
            "starts_at": next_session - timedelta(weeks=week),
            "digest_due_at": next_session - timedelta(weeks=week, hours=2),
            "digest_sent_at": next_session - timedelta(weeks=week, hours=2),
            "recurring": True,
        }
        for couple_id in couple_ids
        for week in range(1, days // 7 + 1)
    ]
    await insert_rows(db, TherapySession, rows)
    return len(rows)


async def seed(
    db: Database, cipher: Cipher, couples: int, days: int, now: datetime, seed_value: int
) -> tuple[Clinic, dict[str, int]]:
    """The clinic and its history; returns it with row counts."""
    rng = random.Random(seed_value)
    clinic = await seed_clinic(db, couples, now - timedelta(days=days + 1), seed=seed_value)
    totals = {"sessions": await _insert_sessions(db, clinic.couple_ids, now, days)}
    per_couple = 2
    for start in range(0, len(clinic.partners), BATCH_COUPLES * per_couple):
        batch = clinic.partners[start : start + BATCH_COUPLES * per_couple]
        counts = await _insert_history(db, cipher, batch, now, days, rng)
        for name, value in counts.items():
            totals[name] = totals.get(name, 0) + value
    return clinic, totals


async def _compose_and_render(
    db: Database, cipher: Cipher, couple_id: int, language: str, now: datetime
) -> tuple[float, float, int, int]:
    """(compose seconds, render seconds, messages, characters) for one couple."""
    started = time.perf_counter()
    async with db.uow() as uow:
        couple = await uow.couples.get(couple_id)
        assert couple is not None
        digest = await compose_for(uow, couple, cipher, now, actor="bench")
        # Not committed: the audit entry and digest counter roll back, the state stays.
    composed = time.perf_counter()
    messages = render_telegram_html(digest, language)
    rendered = time.perf_counter()
    return composed - started, rendered - composed, len(messages), sum(map(len, messages))


async def run(
    couples: int,
    days: int,
    samples: int,
    database: str,
    postgres_url: str,
    analyze: bool = False,
) -> dict[str, Any]:
    """Seed the history, then compose and render digests one couple at a time."""
    notes: list[str] = []
    cipher = Cipher([new_key()])
    now = datetime.now(UTC).replace(microsecond=0)
    with tempfile.TemporaryDirectory(prefix="dyad-bench-") as tmp:
        bench_db = await open_bench_database(database, Path(tmp), postgres_url=postgres_url)
        assert bench_db is not None
        if bench_db.note:
            notes.append(bench_db.note)
        db = bench_db.db
        try:
            seeding = time.perf_counter()
            clinic, totals = await seed(db, cipher, couples, days, now, seed_value=11)
            seed_seconds = time.perf_counter() - seeding
            if analyze:
                # Table statistics let SQLite's planner pick the partner and couple indexes.
                async with db.engine.begin() as conn:
                    await conn.execute(text("ANALYZE"))
            async with db.uow() as uow:
                rows = await uow.session.execute(
                    select(Couple.id, Therapist.language).join(
                        Therapist, Therapist.id == Couple.therapist_id
                    )
                )
                language_of = {couple_id: language for couple_id, language in rows.all()}
            order = list(clinic.couple_ids)
            random.Random(5).shuffle(order)
            chosen = [order[i % len(order)] for i in range(samples)]
            # One untimed digest first: imports, caches and the connection pool warm up.
            await _compose_and_render(db, cipher, chosen[0], language_of[chosen[0]], now)
            compose: list[float] = []
            render: list[float] = []
            both: list[float] = []
            message_counts: list[int] = []
            characters: list[int] = []
            for couple_id in chosen:
                c, r, count, chars = await _compose_and_render(
                    db, cipher, couple_id, language_of[couple_id], now
                )
                compose.append(c)
                render.append(r)
                both.append(c + r)
                message_counts.append(count)
                characters.append(chars)
        finally:
            await bench_db.close()

    together = latency_figures(both)
    composing, rendering = latency_figures(compose), latency_figures(render)
    per_digest = round(sum(message_counts) / len(message_counts), 2)
    size = round(sum(characters) / len(characters))
    figures = {
        "p50_ms": together["p50_ms"],
        "p99_ms": together["p99_ms"],
        "compose_and_render": together,
        "compose": composing,
        "render": rendering,
        "digests": len(both),
        "messages_per_digest": per_digest,
        "characters_per_digest": size,
        "rows": totals,
        "seed_seconds": round(seed_seconds, 1),
        "database": bench_db.kind,
    }
    lines = [
        f"database        {bench_db.kind}; seeded in {seed_seconds:.1f} s: {totals}",
        f"digests         {len(both)} (of {couples} couples, {days} days of history each)",
        f"compose+render  p50 {together['p50_ms']} ms, p99 {together['p99_ms']} ms",
        f"compose         p50 {composing['p50_ms']} ms, p99 {composing['p99_ms']} ms",
        f"render          p50 {rendering['p50_ms']} ms, p99 {rendering['p99_ms']} ms",
        f"size            {per_digest} Telegram messages, {size} characters per digest",
    ]
    parameters = {
        "couples": couples,
        "days": days,
        "samples": samples,
        "database": database,
        "analyze": analyze,
    }
    return emit("digest", lines, figures, parameters, notes)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parse the options, run the benchmark, print its figures (JSON last)."""
    parser = argparse.ArgumentParser(prog="python -m bench.digest", description=__doc__)
    parser.add_argument("--couples", type=int, default=1000)
    parser.add_argument("--days", type=int, default=90, help="days of history per couple")
    parser.add_argument(
        "--samples",
        type=int,
        default=100,
        help="digests to time, from couples taken at random (at most one each, then again)",
    )
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--postgres-url", default=default_postgres_url())
    parser.add_argument(
        "--analyze",
        action="store_true",
        help="run ANALYZE after seeding (Dyad itself never does; see docs/benchmarks.md)",
    )
    args = parser.parse_args(argv)
    quiet_logging()
    return asyncio.run(
        run(
            args.couples,
            args.days,
            args.samples,
            args.database,
            args.postgres_url,
            args.analyze,
        )
    )


if __name__ == "__main__":
    main()
