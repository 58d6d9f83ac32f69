"""Follow-ups of one rule whose skills wait different delays each get their own outbox row.

A practice adds a skill followed up after three days beside one followed up after two;
one rule rotates them on Mondays and Tuesdays, so on some Thursdays two follow-ups of
that rule arrive together. The real planner and dispatcher run a fortnight on the
manual clock against the fake Bot API: every planned follow-up reaches both partners.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.core.clock import ManualClock
from bot.services.delivery_render import DyadRenderer
from bot.services.practice_config import parse_practice_config
from bot.services.prompts import PromptRenderer
from db.engine import Database
from db.models import Couple, Delivery, Practice
from fakebotapi import FakeBotAPI
from schedules.dispatcher import Dispatcher
from schedules.planner import Planner, plan_for_partner
from tests.integration.test_dispatcher import open_clinic, telegram

PRACTICE_TOML = """
[delivery]
default_template = "garden"

[schedules.garden]
description = "A garden skill on Mondays and Tuesdays"

[[schedules.garden.rules]]
id = "practice"
kind = "skill"
days = ["mon", "tue"]
rotation = "daily"
tags = ["garden"]

[[prompts]]
key = "skill.garden_walk"
kind = "skill"
tags = ["garden", "appreciation"]
answer = "text"
followup = "skill_followup.garden_walk"
followup_after = "3d"
text.en = "Take a slow walk together, {name}."
text.es = "Dad un paseo tranquilo juntos, {name}."
text.pt = "Façam juntos uma caminhada tranquila, {name}."

[[prompts]]
key = "skill_followup.garden_walk"
kind = "skill_followup"
tags = ["garden", "appreciation"]
answer = "buttons"
choices = ["yes", "partly", "not_yet"]
text.en = "Did the walk happen?"
text.es = "¿Disteis el paseo?"
text.pt = "A caminhada aconteceu?"

[[prompts]]
key = "skill.garden_note"
kind = "skill"
tags = ["garden", "appreciation"]
answer = "text"
followup = "skill_followup.garden_note"
followup_after = "2d"
text.en = "Leave your partner a kind note, {name}."
text.es = "Deja una nota amable a tu pareja, {name}."
text.pt = "Deixe um bilhete gentil para o seu par, {name}."

[[prompts]]
key = "skill_followup.garden_note"
kind = "skill_followup"
tags = ["garden", "appreciation"]
answer = "buttons"
choices = ["yes", "partly", "not_yet"]
text.en = "Did you leave the note?"
text.es = "¿Dejaste la nota?"
text.pt = "Você deixou o bilhete?"
"""

FORTNIGHT = timedelta(days=14)


@pytest.fixture
async def fake(clock: ManualClock) -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI(clock=clock) as api:
        yield api


async def test_a_three_day_follow_up_beside_two_day_ones_is_delivered_every_time(
    db: Database, fake: FakeBotAPI, clock: ManualClock
) -> None:
    clinic = await open_clinic(db, fake, clock.now(), couples=1)
    start = clock.now()
    async with db.uow() as uow:
        practice = await uow.session.scalar(select(Practice))
        couple = await uow.session.scalar(select(Couple))
        assert practice is not None and couple is not None
        practice.config_toml = PRACTICE_TOML
        couple.schedule_template = "garden"
        couple.space_ready_at = start
        await uow.commit()
    partners = clinic.partners
    config = parse_practice_config(practice.config_toml)
    expected: Counter[tuple[int, str, str]] = Counter()
    for partner in partners:
        for planned in plan_for_partner(couple, config, partner, start, start + FORTNIGHT):
            if planned.kind == "skill_followup":
                expected[partner.id, planned.local_date.isoformat(), planned.prompt_key] += 1
    per_day = Counter((partner_id, day) for partner_id, day, _ in expected)
    assert max(per_day.values()) == 2, "some day must bring two follow-ups of the one rule"

    renderer = DyadRenderer()
    for kind in ("skill", "skill_followup"):
        renderer.kinds[kind] = PromptRenderer()
    planner = Planner(db, clock)
    async with telegram(fake) as messenger:
        worker = Dispatcher(
            db=db,
            clock=clock,
            channels={"telegram": messenger},
            renderer=renderer,
            rate_per_second=1000.0,
            per_chat_interval=0.0,
        )
        while clock.now() < start + FORTNIGHT:
            await planner.run()
            step_end = clock.now() + timedelta(hours=12)
            while True:  # every row at its own time, so none misses its window
                async with db.uow() as uow:
                    next_due = await uow.session.scalar(
                        select(func.min(Delivery.due_at)).where(Delivery.status == "pending")
                    )
                if next_due is None or next_due >= step_end:
                    break
                clock.set(max(clock.now(), next_due))
                await worker.run_until_idle()
            clock.set(step_end)

    async with db.uow() as uow:
        rows = list(
            await uow.session.scalars(select(Delivery).where(Delivery.kind == "skill_followup"))
        )
    sent = Counter(
        (d.partner_id or 0, d.local_date or "", d.key) for d in rows if d.status == "sent"
    )
    assert sent == expected
    assert {d.status for d in rows} == {"sent"}
    for partner in partners:
        assert partner.chat_id is not None
        texts = [m.text for m in fake.sent_to(partner.chat_id)]
        followups = sum(t in ("Did the walk happen?", "Did you leave the note?") for t in texts)
        assert followups == sum(n for (p, _, _), n in expected.items() if p == partner.id)
