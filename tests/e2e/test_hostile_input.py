"""Hostile input: random text, commands and button data, from strangers, from the other
partner and from the wrong therapist. No unhandled exception, a kind reply to everyone
who wrote, and not one row of clinical data changes (DESIGN.md §2, rule 8)."""

from __future__ import annotations

import asyncio
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from bot.core.clock import ManualClock
from bot.demo import offline_bot, offline_deps
from bot.services.couples import new_couple
from bot.services.practices import create_practice
from db.engine import Database
from db.models import Partner, Therapist
from fakebotapi import FakeBotAPI, FakeUser
from tests.conftest import open_database

CLINICAL_TABLES = (
    "practices",
    "therapists",
    "couples",
    "partners",
    "invites",
    "sessions",
    "checkins",
    "responses",
    "alerts",
    "deliveries",
    "audit_log",
)
THERAPIST_COMMANDS = ("newcouple", "couples", "invite", "goal", "close", "alerts", "clearhold",
                      "schedule", "session", "sessions", "digest")  # fmt: skip
NOISE = st.text(
    alphabet=st.characters(
        exclude_categories=["Cs"],
        include_characters="\u202e\u200f\u0000\u0007\ufeff",
    ),
    min_size=1,
    max_size=60,
)
LONG = st.builds(
    lambda ch, n: ch * n, st.sampled_from(["a", "é", "😀", "\u202e"]), st.integers(4097, 10_000)
)


def _text() -> st.SearchStrategy[str]:
    return st.one_of(NOISE, LONG).filter(lambda s: s.strip() != "")


ACTORS = ("stranger", "partner_a", "partner_b", "other_therapist")
update_strategy = st.one_of(
    st.tuples(st.just("text"), st.sampled_from(ACTORS), _text()),
    # Commands nobody here may use: anything from a stranger or a partner acting as a
    # therapist, and the other therapist naming a couple that is not theirs.
    st.tuples(
        st.just("command"),
        st.sampled_from(("stranger", "partner_a", "partner_b")),
        st.tuples(st.sampled_from([*THERAPIST_COMMANDS, "start", "frob"]), NOISE | st.just("c1")),
    ),
    st.tuples(
        st.just("command"),
        st.just("other_therapist"),
        st.tuples(
            st.sampled_from([c for c in THERAPIST_COMMANDS if c != "newcouple"] + ["checkin"]),
            st.sampled_from(["c1", "c1 A", "c1 2030-01-01 10:00", "c1 pause", "c1 be kind"]),
        ),
    ),
    st.tuples(
        st.just("button"),
        st.sampled_from(ACTORS),
        st.one_of(
            NOISE,
            st.sampled_from(
                [
                    "1|ob|1|consent|yes",
                    "1|ob|2|language|es",
                    "1|del|1|yes",
                    "1|close|1|yes",
                    "1|ci|1|wellbeing|5",
                    "1|sh|1|yes",
                    "1|rr|1|yes",
                    "1|pr|1|yes",
                    "1|po|1",
                    "1|cis|1",
                    "1|setv|{other}|language|es",
                    "1|stop|1|yes",
                    "1|pick|close|1",
                    "1|slot|1|A",
                    "2|ob|1|consent|yes",
                    "1|ci|99999999999999999999|x|y",
                ]
            ),
        ),
    ),
)


async def _snapshot(db: Database) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    async with db.engine.connect() as conn:
        for table in CLINICAL_TABLES:
            out[table] = sorted(
                map(repr, (await conn.execute(text(f"SELECT * FROM {table}"))).all())
            )
    return out


async def _world(db: Database, clock: ManualClock, fake: FakeBotAPI) -> dict[str, FakeUser]:
    """A practice with two therapists; therapist 1's couple c1 has joined partners A and B."""
    users = {
        "therapist": fake.add_user(10, "Tess", has_started=True),
        "other_therapist": fake.add_user(11, "Otto", has_started=True),
        "partner_a": fake.add_user(21, "Ari", has_started=True),
        "partner_b": fake.add_user(22, "Bea", language_code="es", has_started=True),
        "stranger": fake.add_user(99, "Sam", has_started=True),
    }
    now = clock.now()
    async with db.uow() as uow:
        practice = await create_practice(uow, "P", timezone="Europe/Madrid", language="en", now=now)
        therapists = []
        for user in (users["therapist"], users["other_therapist"]):
            therapists.append(
                await uow.therapists.add(
                    Therapist(
                        practice_id=practice.id,
                        display_name=user.first_name,
                        telegram_user_id=user.id,
                        chat_id=user.id,
                        timezone="Europe/Madrid",
                        created_at=now,
                        joined_at=now,
                    )
                )
            )
        await uow.commit()
        created = await new_couple(uow, therapists[0], "A & B", now=now, ttl=timedelta(days=7))
        for partner in await uow.partners.of_couple(created.couple.id):
            user = users[f"partner_{partner.slot.lower()}"]
            partner.telegram_user_id, partner.chat_id = user.id, user.id
            partner.display_name, partner.timezone, partner.window = (
                user.first_name,
                "UTC",
                "evening",
            )
            partner.onboarding_step, partner.joined_at = "done", now
        created.couple.space_ready_at = now
        await uow.commit()
    return users


async def _reply_seen(
    fake: FakeBotAPI, user: FakeUser, messages_before: int, queries_before: int
) -> bool:
    def answered() -> bool:
        queries = user.callback_queries
        return len(user.messages) > messages_before or (
            len(queries) > queries_before and queries[-1].answered
        )

    try:
        await fake.wait_for(lambda: answered() or None, 5.0)
    except AssertionError:
        return False
    return True


async def _scenario(updates: list[tuple[str, str, Any]]) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        clock = ManualClock(datetime(2026, 10, 19, 9, 0, tzinfo=UTC))
        db, _ = await open_database("sqlite", Path(scratch))  # a migrated copy
        async with FakeBotAPI(clock=clock) as fake:
            users = await _world(db, clock, fake)
            bot = offline_bot(fake, offline_deps(fake, db, clock))
            errors: list[BaseException] = []

            async def record_error(update: object, context: Any) -> None:
                errors.append(context.error)

            bot.application.add_error_handler(record_error)
            await bot.start()
            try:
                before = await _snapshot(db)
                for kind, actor, payload in updates:
                    user = users[actor]
                    counts = (len(user.messages), len(user.callback_queries))
                    if kind == "text":
                        await user.send_raw(payload, entities=[])
                    elif kind == "command":
                        name, args = payload
                        line = f"/{name} {args}".strip()
                        entity = {"type": "bot_command", "offset": 0, "length": len(name) + 1}
                        await user.send_raw(line, entities=[entity])
                    else:
                        anchor = user.messages[-1] if user.messages else None
                        if anchor is None:
                            await user.send_text("hello")
                            await _reply_seen(fake, user, *counts)
                            anchor = user.messages[-1]
                            counts = (len(user.messages), len(user.callback_queries))
                        # A settings button is a partner's own to press again; only the
                        # other partner's is foreign.
                        other = {"partner_a": 2, "partner_b": 1}.get(actor, 1)
                        await user.press_forged(anchor, payload.replace("{other}", str(other)))
                    assert await _reply_seen(fake, user, *counts), (kind, actor, repr(payload)[:80])
                await bot.dispatcher.run_until_idle()
                assert errors == [], [type(e).__name__ for e in errors]
                assert fake.internal_errors == []
                assert await _snapshot(db) == before
            finally:
                await bot.stop()
        await db.dispose()


@settings(
    max_examples=5,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.large_base_example],
)
@given(updates=st.lists(update_strategy, min_size=8, max_size=20))
def test_hostile_updates_get_kind_replies_and_change_nothing(
    updates: list[tuple[str, str, Any]],
) -> None:
    asyncio.run(_scenario(updates))


def test_the_partner_rows_exist_for_the_snapshot() -> None:
    assert Partner.__tablename__ in CLINICAL_TABLES and Therapist.__tablename__ in CLINICAL_TABLES
