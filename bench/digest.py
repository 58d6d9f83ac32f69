"""Digest: compose (from the database) and render one couple's pre-session digest.

The database holds 1,000 couples with 90 days of history, inserted directly: weekly
sessions, check-ins twice a week with encrypted notes (some OK to raise), every
scheduled prompt sent, replies encrypted with ``bot.services.crypto.Cipher``, a few
safety alerts. Then two fresh processes, one after the other, compose
(``bot.services.digests.compose_for``) and render (``render_telegram_parts``, packed into
Telegram messages by ``telegram_messages``) the digests of the same ``--samples``
couples taken at random (100 by default), one at a time, the first one included (no
warm-up):

* **before**: the database as Dyad had it, without the indexes that lead with the
  partner or couple (migration 0007) and without table statistics;
* **Dyad**: the indexes there, and the process starts as ``dyad run`` does
  (``Database.migrate``, which collects the statistics when there are none; its time is
  ``startup_ms``).

Nothing is committed, so every couple is composed from the same state.

    python -m bench.digest [--couples 1000] [--days 90] [--samples 100]
                           [--database sqlite|postgres|both]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import random
import subprocess
import sys
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
from bot.channels.telegram_split import telegram_messages
from bot.core.digest import render_telegram_parts
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
ROOT = Path(__file__).resolve().parents[1]
NEW_INDEXES: tuple[tuple[str, str, list[str]], ...] = importlib.import_module(
    "db.migrations.versions.0007_indexes"
).INDEXES
"""The partner and couple indexes the digest's queries lead with (migration 0007)."""


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
    messages = telegram_messages(render_telegram_parts(digest, language))
    rendered = time.perf_counter()
    return composed - started, rendered - composed, len(messages), sum(map(len, messages))


async def _time_digests(
    db: Database, cipher: Cipher, chosen: Sequence[int], now: datetime
) -> dict[str, Any]:
    """Compose and render the chosen couples' digests one at a time; their figures."""
    async with db.uow() as uow:
        rows = await uow.session.execute(
            select(Couple.id, Therapist.language).join(
                Therapist, Therapist.id == Couple.therapist_id
            )
        )
        language_of = {couple_id: language for couple_id, language in rows.all()}
    compose: list[float] = []
    render: list[float] = []
    both: list[float] = []
    message_counts: list[int] = []
    characters: list[int] = []
    cpu: list[float] = []
    # One untimed digest of a couple not in the sample first: imports and the connection
    # pool warm up, but no statistics are collected by it.
    spare = next((c for c in language_of if c not in set(chosen)), chosen[0])
    await _compose_and_render(db, cipher, spare, language_of[spare], now)
    for couple_id in chosen:
        started = time.process_time()
        c, r, count, chars = await _compose_and_render(
            db, cipher, couple_id, language_of[couple_id], now
        )
        cpu.append(time.process_time() - started)
        compose.append(c)
        render.append(r)
        both.append(c + r)
        message_counts.append(count)
        characters.append(chars)
    together = latency_figures(both)
    return {
        "p50_ms": together["p50_ms"],
        "p99_ms": together["p99_ms"],
        "compose_and_render": together,
        "compose": latency_figures(compose),
        "render": latency_figures(render),
        "cpu": latency_figures(cpu),  # this process's CPU time (not the PostgreSQL server's)
        "digests": len(both),
        "messages_per_digest": round(sum(message_counts) / len(message_counts), 2),
        "characters_per_digest": round(sum(characters) / len(characters)),
    }


async def _child(args: argparse.Namespace) -> dict[str, Any]:
    """A fresh process: start as ``dyad run`` would (or as it did before), then time."""
    db = Database(args.url, search_path=args.schema)
    try:
        started = time.perf_counter()
        if args.side == "dyad":
            await db.migrate()  # at start: the statistics are collected when there are none
        startup = time.perf_counter() - started
        chosen = [int(c) for c in args.couple_ids.split(",")]
        figures = await _time_digests(db, Cipher([args.key]), chosen, args.now)
        return {**figures, "startup_ms": round(startup * 1000, 1)}
    finally:
        await db.dispose()


def _run_child(side: str, url: str, schema: str | None, **options: str) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.digest", "--side", side, "--url", url]
    if schema is not None:
        command += ["--schema", schema]
    for name, value in options.items():
        command += [f"--{name.replace('_', '-')}", value]
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"the {side} digest child failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


async def _as_before(db: Database) -> None:
    """The database as Dyad left it before: no partner or couple indexes, no statistics."""
    async with db.engine.begin() as conn:
        for name, _table, _ in NEW_INDEXES:
            await conn.execute(text(f"DROP INDEX IF EXISTS {name}"))
        if not db.is_postgres:
            await conn.execute(text("DROP TABLE IF EXISTS sqlite_stat1"))
            await conn.execute(text("DROP TABLE IF EXISTS sqlite_stat4"))


async def _as_now(db: Database) -> None:
    """Today's schema again (the indexes back), still without statistics."""
    async with db.engine.begin() as conn:
        for name, table, columns in NEW_INDEXES:
            await conn.execute(text(f"CREATE INDEX {name} ON {table} ({', '.join(columns)})"))


async def _one_database(
    kind: str,
    couples: int,
    days: int,
    samples: int,
    postgres_url: str,
    notes: list[str],
) -> dict[str, Any]:
    key = new_key()
    cipher = Cipher([key])
    now = datetime.now(UTC).replace(microsecond=0)
    with tempfile.TemporaryDirectory(prefix="dyad-bench-") as tmp:
        bench_db = await open_bench_database(kind, Path(tmp), postgres_url=postgres_url)
        assert bench_db is not None
        if bench_db.note:
            notes.append(bench_db.note)
        db = bench_db.db
        try:
            seeding = time.perf_counter()
            clinic, totals = await seed(db, cipher, couples, days, now, seed_value=11)
            seed_seconds = time.perf_counter() - seeding
            order = list(clinic.couple_ids)
            random.Random(5).shuffle(order)
            chosen = ",".join(str(order[i % len(order)]) for i in range(samples))
            options = {"key": key, "couple_ids": chosen, "now": now.isoformat()}
            await _as_before(db)
            await db.dispose()
            before = await asyncio.to_thread(
                _run_child, "before", db.url, bench_db.schema, **options
            )
            await _as_now(db)
            if not db.is_postgres:
                async with db.engine.begin() as conn:  # as after a restore: no statistics
                    await conn.execute(text("DROP TABLE IF EXISTS sqlite_stat1"))
            await db.dispose()
            after = await asyncio.to_thread(_run_child, "dyad", db.url, bench_db.schema, **options)
        finally:
            await bench_db.close()
    return {
        "database": bench_db.kind,
        "p99_ms": after["p99_ms"],
        "p50_ms": after["p50_ms"],
        "dyad": after,
        "before": before,
        "rows": totals,
        "seed_seconds": round(seed_seconds, 1),
    }


async def run(
    couples: int, days: int, samples: int, databases: Sequence[str], postgres_url: str
) -> dict[str, Any]:
    """Seed the history, then time digests in fresh processes: before and now."""
    notes: list[str] = []
    results = {
        kind: await _one_database(kind, couples, days, samples, postgres_url, notes)
        for kind in databases
    }
    lines = []
    for result in results.values():
        dyad, before = result["dyad"], result["before"]
        lines += [
            f"[{result['database']}] seeded in {result['seed_seconds']} s: {result['rows']}",
            f"  {'fresh process':<34}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}"
            f"{'CPU p99':>10}{'start ms':>10}",
            f"  {'before (no partner indexes/stats)':<34}{before['p50_ms']:>10}"
            f"{before['p99_ms']:>10}{before['compose_and_render']['max_ms']:>10}"
            f"{before['cpu']['p99_ms']:>10}{before['startup_ms']:>10}",
            f"  {'Dyad (indexes, stats at start)':<34}{dyad['p50_ms']:>10}"
            f"{dyad['p99_ms']:>10}{dyad['compose_and_render']['max_ms']:>10}"
            f"{dyad['cpu']['p99_ms']:>10}{dyad['startup_ms']:>10}",
            f"  {dyad['digests']} digests of {couples} couples, {days} days each; "
            f"{dyad['messages_per_digest']} messages, {dyad['characters_per_digest']} "
            "characters per digest",
        ]
    parameters = {
        "couples": couples,
        "days": days,
        "samples": samples,
        "databases": list(databases),
    }
    if "postgres" in results:
        notes.append("PostgreSQL 'before' keeps whatever statistics autovacuum collected")
    return emit("digest", lines, results, parameters, notes)


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
    parser.add_argument("--database", choices=("sqlite", "postgres", "both"), default="sqlite")
    parser.add_argument("--postgres-url", default=default_postgres_url())
    for hidden in ("--side", "--url", "--schema", "--key", "--couple-ids"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    parser.add_argument("--now", type=datetime.fromisoformat, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    quiet_logging()
    if args.side is not None:
        result = asyncio.run(_child(args))
        print(json.dumps(result), flush=True)
        return result
    databases = ("sqlite", "postgres") if args.database == "both" else (args.database,)
    return asyncio.run(run(args.couples, args.days, args.samples, databases, args.postgres_url))


if __name__ == "__main__":
    main()
