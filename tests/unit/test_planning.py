"""Planning: both partners get the same cadence, inside their windows, across DST changes."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schedules.check import default_schedules
from schedules.library import CONFLICT_TAG, HOLD_SUBSTITUTE_TAGS, PromptLibrary, load_library
from schedules.model import (
    DAYS,
    RULE_KINDS,
    DeliverySettings,
    ScheduleTemplate,
    TimeRange,
)
from schedules.planning import (
    PartnerTiming,
    PlannedDelivery,
    includes_safety_question,
    next_allowed,
    plan_deliveries,
    substitute_for_hold,
)

LIBRARY = load_library()
DELIVERY = DeliverySettings()  # quiet 21:30-07:30, at most 3 a day, standard windows
MADRID = PartnerTiming("Europe/Madrid", "morning")
NEW_YORK = PartnerTiming("America/New_York", "evening")

# A busy template, so that caps, follow-ups, fixed windows and rotation all show up.
BUSY = ScheduleTemplate.model_validate(
    {
        "rules": [
            {"id": "checkin", "kind": "checkin", "days": ["mon", "thu"], "jitter": 30},
            {"id": "hope", "kind": "hope", "days": "daily", "jitter": 240},
            {"id": "skill", "kind": "skill", "days": ["mon", "wed"], "rotation": "weekly"},
            {"id": "space", "kind": "couple_space", "days": ["sun"], "jitter": 90},
            {
                "id": "late",
                "kind": "hope",
                "days": ["mon", "sun"],
                "window": "20:00-23:00",
                "jitter": 180,
            },
            {"id": "fixed", "kind": "hope", "days": ["sat"], "window": "09:00-10:00"},
        ]
    }
)

# A fortnight spanning the end of summer time in Europe (25 Oct 2026) and the US (1 Nov).
FORTNIGHT = (datetime(2026, 10, 19, tzinfo=UTC), datetime(2026, 11, 3, tzinfo=UTC))
FULL_DATES = [date(2026, 10, 19) + timedelta(days=n) for n in range(14)]


def plan(
    partner: PartnerTiming,
    *,
    template: ScheduleTemplate = BUSY,
    delivery: DeliverySettings = DELIVERY,
    start: datetime = FORTNIGHT[0],
    end: datetime = FORTNIGHT[1],
    seed: str = "couple-7",
    hold: bool = False,
    library: PromptLibrary = LIBRARY,
) -> list[PlannedDelivery]:
    return plan_deliveries(
        template, delivery, library, partner, start, end, couple_seed=seed, safety_hold=hold
    )


def local(delivery: PlannedDelivery, partner: PartnerTiming) -> datetime:
    return delivery.due_at_utc.astimezone(ZoneInfo(partner.timezone))


def minute_of_day(moment: datetime) -> int:
    return moment.hour * 60 + moment.minute


def window_of(
    delivery: PlannedDelivery,
    partner: PartnerTiming,
    template: ScheduleTemplate = BUSY,
    settings_: DeliverySettings = DELIVERY,
) -> TimeRange:
    rule_id = delivery.rule_id.removesuffix(".followup")
    rule = next(r for r in template.rules if r.id == rule_id)
    return settings_.resolve_window(rule.window, partner.window)


def by_date(deliveries: list[PlannedDelivery]) -> dict[date, list[PlannedDelivery]]:
    grouped: dict[date, list[PlannedDelivery]] = defaultdict(list)
    for delivery in deliveries:
        grouped[delivery.local_date].append(delivery)
    return grouped


# --- the fortnight across daylight-saving changes ---------------------------------------


@pytest.mark.parametrize("partner", [MADRID, NEW_YORK], ids=["madrid", "new_york"])
def test_every_delivery_is_inside_its_window_and_outside_quiet_hours(
    partner: PartnerTiming,
) -> None:
    deliveries = plan(partner)
    assert len(deliveries) > 30
    quiet = DELIVERY.quiet_hours
    assert quiet is not None
    for delivery in deliveries:
        moment = local(delivery, partner)
        assert moment.date() == delivery.local_date
        assert window_of(delivery, partner).contains(minute_of_day(moment)), delivery
        assert not quiet.contains(minute_of_day(moment)), delivery
        assert delivery.due_at_utc < delivery.not_after_utc
        assert FORTNIGHT[0] <= delivery.due_at_utc < FORTNIGHT[1]


@pytest.mark.parametrize("partner", [MADRID, NEW_YORK], ids=["madrid", "new_york"])
def test_no_day_has_more_than_the_maximum(partner: PartnerTiming) -> None:
    days = by_date(plan(partner))
    assert max(len(day) for day in days.values()) == DELIVERY.max_per_day, "the cap is reached"
    assert all(len(day) <= DELIVERY.max_per_day for day in days.values())


def test_both_partners_get_the_same_kinds_and_prompts_on_each_local_date() -> None:
    madrid, new_york = by_date(plan(MADRID)), by_date(plan(NEW_YORK))
    for day in FULL_DATES:
        assert Counter(d.kind for d in madrid[day]) == Counter(d.kind for d in new_york[day]), day
        assert sorted(d.prompt_key for d in madrid[day]) == sorted(
            d.prompt_key for d in new_york[day]
        ), day
    assert {d.kind for day in FULL_DATES for d in madrid[day]} == {
        "checkin",
        "hope",
        "skill",
        "skill_followup",
        "couple_space",
    }


def test_both_partners_get_the_same_offset_in_their_windows() -> None:
    madrid, new_york = by_date(plan(MADRID)), by_date(plan(NEW_YORK))
    for day in FULL_DATES:
        for ours in madrid[day]:
            theirs = next(d for d in new_york[day] if d.rule_id == ours.rule_id)
            our_offset = minute_of_day(local(ours, MADRID)) - window_of(ours, MADRID).start
            their_offset = (
                minute_of_day(local(theirs, NEW_YORK)) - window_of(theirs, NEW_YORK).start
            )
            if ours.rule_id != "late":  # quiet hours move "late" differently, see below
                assert our_offset == their_offset, (day, ours.rule_id)


def test_planning_twice_gives_the_same_answer() -> None:
    deliveries = plan(MADRID)
    assert deliveries == plan(MADRID)
    assert len({d.dedupe_key for d in deliveries}) == len(deliveries)
    assert plan(NEW_YORK, hold=True) == plan(NEW_YORK, hold=True)


def test_the_same_local_time_moves_in_utc_when_summer_time_ends() -> None:
    fixed = [d for d in plan(MADRID) + plan(NEW_YORK) if d.rule_id == "fixed"]
    times = {(d.local_date, d.due_at_utc.time()) for d in fixed}
    # 09:00 local, jitter 0: CEST +2 then CET +1; EDT -4 then EST -5.
    assert times == {
        (date(2026, 10, 24), time(7, 0)),
        (date(2026, 10, 31), time(8, 0)),
        (date(2026, 10, 24), time(13, 0)),
        (date(2026, 10, 31), time(13, 0)),
    }
    new_york_nov = plan(
        NEW_YORK, start=datetime(2026, 11, 7, tzinfo=UTC), end=datetime(2026, 11, 8, tzinfo=UTC)
    )
    assert [d.due_at_utc for d in new_york_nov if d.rule_id == "fixed"] == [
        datetime(2026, 11, 7, 14, 0, tzinfo=UTC)
    ]


def test_a_rule_runs_on_the_day_the_clocks_change() -> None:
    for partner, change in ((MADRID, date(2026, 10, 25)), (NEW_YORK, date(2026, 11, 1))):
        on_the_day = by_date(plan(partner))[change]
        assert {d.rule_id for d in on_the_day} >= {"hope", "space"}


def test_a_time_the_clock_skips_moves_to_the_first_minute_that_exists() -> None:
    template = ScheduleTemplate.model_validate(
        {"rules": [{"kind": "hope", "days": "daily", "window": "02:00-04:00"}]}
    )
    spring = plan(
        PartnerTiming("Europe/Madrid", "morning"),
        template=template,
        delivery=DeliverySettings(quiet_hours=None),
        start=datetime(2026, 3, 28, tzinfo=UTC),
        end=datetime(2026, 3, 31, tzinfo=UTC),
    )
    # 02:00 does not exist on 29 March 2026 in Madrid: 03:00 CEST (01:00 UTC) instead.
    assert [d.due_at_utc for d in spring] == [
        datetime(2026, 3, 28, 1, 0, tzinfo=UTC),
        datetime(2026, 3, 29, 1, 0, tzinfo=UTC),
        datetime(2026, 3, 30, 0, 0, tzinfo=UTC),
    ]


# --- quiet hours, caps and priorities -----------------------------------------------


def test_a_time_in_quiet_hours_moves_back_inside_the_window_rather_than_vanish() -> None:
    template = ScheduleTemplate.model_validate(
        {"rules": [{"kind": "hope", "days": "daily", "window": "20:00-23:00", "jitter": 180}]}
    )
    late = plan(MADRID, template=template)
    assert [d.local_date for d in late] == [*FULL_DATES, date(2026, 11, 2)], "none dropped"
    times = [local(d, MADRID).time() for d in late]
    assert all(time(20, 0) <= moment < time(21, 30) for moment in times)
    assert time(21, 29) in times, "a time after 21:30 moved back to the last allowed minute"


def test_a_time_before_quiet_hours_end_moves_to_their_end() -> None:
    template = ScheduleTemplate.model_validate(
        {"rules": [{"kind": "hope", "days": ["tue"], "window": "morning"}]}
    )
    delivery = DeliverySettings(quiet_hours=TimeRange(22 * 60, 9 * 60 + 15))
    (only,) = plan(
        MADRID, template=template, delivery=delivery, end=datetime(2026, 10, 26, tzinfo=UTC)
    )
    assert local(only, MADRID).time() == time(9, 15)
    assert local(only, MADRID).date() == date(2026, 10, 20)
    assert only.not_after_utc.astimezone(ZoneInfo("Europe/Madrid")).time() == time(12, 0)


def test_a_window_entirely_in_quiet_hours_delivers_nothing() -> None:
    template = ScheduleTemplate.model_validate(
        {"rules": [{"kind": "hope", "days": "daily", "window": "22:00-23:00"}]}
    )
    assert plan(MADRID, template=template) == []


def test_not_after_stops_where_quiet_hours_begin() -> None:
    template = ScheduleTemplate.model_validate(
        {"rules": [{"kind": "hope", "days": ["tue"], "window": "20:00-23:00"}]}
    )
    (only,) = plan(MADRID, template=template, start=datetime(2026, 10, 26, tzinfo=UTC))
    zone = ZoneInfo("Europe/Madrid")
    assert only.due_at_utc.astimezone(zone).time() == time(20, 0)
    assert only.not_after_utc.astimezone(zone).time() == time(21, 30)


def test_an_overfull_day_drops_hope_first_and_keeps_the_check_in() -> None:
    template = ScheduleTemplate.model_validate(
        {
            "rules": [
                {"kind": "hope", "days": ["tue"]},
                {"kind": "couple_space", "days": ["tue"]},
                {"kind": "skill", "days": ["tue"]},
                {"kind": "checkin", "days": ["tue"]},
            ]
        }
    )
    for cap, kept in [
        (1, {"checkin"}),
        (2, {"checkin", "skill"}),
        (3, {"checkin", "skill", "couple_space"}),
    ]:
        day = [
            d
            for d in plan(MADRID, template=template, delivery=DeliverySettings(max_per_day=cap))
            if d.local_date == date(2026, 10, 20)
        ]
        assert {d.kind for d in day} == kept


def test_a_follow_up_outranks_couple_space_and_hope_on_its_day() -> None:
    template = ScheduleTemplate.model_validate(
        {
            "rules": [
                {"kind": "hope", "days": ["fri"]},
                {"kind": "couple_space", "days": ["fri"]},
                {"kind": "skill", "days": ["wed"]},
            ]
        }
    )
    friday = [
        d
        for d in plan(MADRID, template=template, delivery=DeliverySettings(max_per_day=1))
        if d.local_date == date(2026, 10, 23)
    ]
    assert [d.kind for d in friday] == ["skill_followup"]


# --- follow-ups ---------------------------------------------------------------------


def test_a_skill_is_followed_up_two_days_later_in_the_same_window() -> None:
    deliveries = plan(NEW_YORK, template=default_schedules().template("standard"))
    skills = [d for d in deliveries if d.kind == "skill"]
    followups = [d for d in deliveries if d.kind == "skill_followup"]
    assert len(skills) == len(followups) == 2
    for skill, followup in zip(skills, followups, strict=True):
        assert followup.local_date == skill.local_date + timedelta(days=2)
        assert followup.followup_of == skill.prompt_key
        assert followup.prompt_key == LIBRARY.get(skill.prompt_key).followup
        assert followup.rule_id == "skill.followup"
        assert NEW_YORK.window == "evening"
        assert time(17) <= local(followup, NEW_YORK).time() < time(21)


def test_a_practice_skill_is_followed_up_after_its_own_delay() -> None:
    own_skill = {
        "key": "skill.garden_walk",
        "kind": "skill",
        "tags": ["appreciation"],
        "answer": "text",
        "followup": "skill_followup.self_care",
        "followup_after": "3d",
        "text": {
            "en": "Take a walk together.",
            "es": "Den un paseo juntos.",
            "pt": "Façam uma caminhada juntos.",
        },
    }
    template = ScheduleTemplate.model_validate(
        {"rules": [{"kind": "skill", "days": ["mon"], "prompt": "skill.garden_walk"}]}
    )
    deliveries = plan(MADRID, template=template, library=load_library([own_skill]))
    assert [(d.kind, d.local_date.isoformat()) for d in deliveries] == [
        ("skill", "2026-10-19"),
        ("skill_followup", "2026-10-22"),
        ("skill", "2026-10-26"),
        ("skill_followup", "2026-10-29"),
        ("skill", "2026-11-02"),
    ]


def test_a_skill_dropped_by_the_cap_gets_no_follow_up() -> None:
    template = ScheduleTemplate.model_validate(
        {"rules": [{"kind": "checkin", "days": ["wed"]}, {"kind": "skill", "days": ["wed"]}]}
    )
    kinds = {
        d.kind for d in plan(MADRID, template=template, delivery=DeliverySettings(max_per_day=1))
    }
    assert kinds == {"checkin"}


def test_a_follow_up_is_planned_even_when_its_skill_was_before_the_interval() -> None:
    friday = plan(
        MADRID,
        template=default_schedules().template("standard"),
        start=datetime(2026, 10, 23, tzinfo=UTC),
        end=datetime(2026, 10, 24, tzinfo=UTC),
    )
    assert [d.kind for d in friday] == ["skill_followup"]


def test_planning_in_slices_gives_the_same_as_planning_at_once() -> None:
    whole = plan(MADRID) + plan(NEW_YORK)
    sliced: list[PlannedDelivery] = []
    cursor = FORTNIGHT[0]
    while cursor < FORTNIGHT[1]:
        step = min(cursor + timedelta(hours=48), FORTNIGHT[1])
        sliced += plan(MADRID, start=cursor, end=step)
        cursor = step
    cursor = FORTNIGHT[0]
    while cursor < FORTNIGHT[1]:
        step = min(cursor + timedelta(hours=7), FORTNIGHT[1])
        sliced += plan(NEW_YORK, start=cursor, end=step)
        cursor = step
    assert sorted(sliced, key=repr) == sorted(whole, key=repr)


# --- prompt choice ------------------------------------------------------------------


def test_daily_rotation_does_not_repeat_until_every_prompt_had_its_turn() -> None:
    template = ScheduleTemplate.model_validate({"rules": [{"kind": "hope", "days": "daily"}]})
    hope_count = len(LIBRARY.by_kind("hope"))
    start = datetime(2026, 1, 1, tzinfo=UTC)
    keys = [
        d.prompt_key
        for d in plan(MADRID, template=template, start=start, end=start + timedelta(days=60))
    ]
    for first in range(len(keys) - hope_count + 1):
        assert len(set(keys[first : first + hope_count])) == hope_count


def test_weekly_rotation_keeps_the_skill_of_the_week() -> None:
    skills = [d for d in plan(MADRID) if d.kind == "skill"]
    weeks: dict[int, set[str]] = defaultdict(set)
    for skill in skills:
        weeks[skill.local_date.isocalendar().week].add(skill.prompt_key)
    assert len(weeks) >= 2
    assert all(len(keys) == 1 for keys in weeks.values())
    assert len(set.union(*weeks.values())) == len(weeks), "a new skill each week"


def test_two_rules_of_one_kind_never_send_the_same_prompt_on_one_day() -> None:
    for day in by_date(plan(MADRID)).values():
        keys = [d.prompt_key for d in day]
        assert len(keys) == len(set(keys))


def test_different_couples_get_different_sequences() -> None:
    ours = [d.prompt_key for d in plan(MADRID) if d.kind == "hope"]
    theirs = [d.prompt_key for d in plan(MADRID, seed="couple-8") if d.kind == "hope"]
    assert ours != theirs and sorted(set(ours)) != [] and len(ours) == len(theirs)


def test_tags_narrow_the_rotation() -> None:
    template = ScheduleTemplate.model_validate(
        {"rules": [{"kind": "skill", "days": "daily", "tags": ["self_care"]}]}
    )
    skills = {d.prompt_key for d in plan(MADRID, template=template) if d.kind == "skill"}
    assert skills == {"skill.calm_break", "skill.self_care"}


def test_a_fixed_prompt_is_sent_as_written() -> None:
    template = ScheduleTemplate.model_validate(
        {"rules": [{"kind": "hope", "days": ["mon"], "prompt": "hope.small_win"}]}
    )
    assert {d.prompt_key for d in plan(MADRID, template=template)} == {"hope.small_win"}


# --- safety hold --------------------------------------------------------------------


def test_a_hold_replaces_conflict_exercises_at_the_same_times() -> None:
    conflict_skill = ScheduleTemplate.model_validate(
        {
            "rules": [
                {"id": "talk", "kind": "skill", "days": ["mon", "thu"], "tags": [CONFLICT_TAG]},
                {"id": "hope", "kind": "hope", "days": ["tue"]},
            ]
        }
    )
    normal = plan(NEW_YORK, template=conflict_skill)
    held = plan(NEW_YORK, template=conflict_skill, hold=True)

    def timing(deliveries: list[PlannedDelivery]) -> list[tuple[Any, ...]]:
        return [(d.kind, d.rule_id, d.local_date, d.due_at_utc) for d in deliveries]

    assert timing(held) == timing(normal), "the cadence does not change"
    assert all(
        LIBRARY.get(d.prompt_key).is_conflict_communication
        for d in normal
        if d.kind.startswith("skill")
    )
    for delivery in held:
        prompt = LIBRARY.get(delivery.prompt_key)
        assert not prompt.is_conflict_communication
        if delivery.kind == "skill":
            assert HOLD_SUBSTITUTE_TAGS & set(prompt.tags)
        if delivery.kind == "skill_followup":
            assert LIBRARY.get(delivery.followup_of or "").followup == delivery.prompt_key
    assert [d.prompt_key for d in held if d.kind == "hope"] == [
        d.prompt_key for d in normal if d.kind == "hope"
    ]


def test_substitute_for_hold_keeps_the_kind_and_is_stable_per_seed() -> None:
    assert substitute_for_hold("hope.small_win", LIBRARY, "s") == "hope.small_win"
    first = substitute_for_hold("skill.speaker_listener", LIBRARY, "couple-1|2026-10-20")
    assert first == substitute_for_hold("skill.speaker_listener", LIBRARY, "couple-1|2026-10-20")
    assert LIBRARY.get(first).kind == "skill"
    assert HOLD_SUBSTITUTE_TAGS & set(LIBRARY.get(first).tags)
    other = substitute_for_hold(
        "skill.speaker_listener", LIBRARY, "couple-1|2026-10-20", avoid=[first]
    )
    assert other != first and not LIBRARY.get(other).is_conflict_communication
    followup = substitute_for_hold("skill_followup.repair_offer", LIBRARY, "x")
    assert LIBRARY.get(followup).kind == "skill_followup"
    assert not LIBRARY.get(followup).is_conflict_communication


# --- smaller rules ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "every", "asks"),
    [
        (1, 2, True),
        (2, 2, False),
        (3, 2, True),
        (4, 2, False),
        (1, 1, True),
        (2, 1, True),
        (4, 3, True),
        (5, 3, False),
    ],
)
def test_the_safety_question_comes_first_then_every_nth_check_in(
    number: int, every: int, asks: bool
) -> None:
    assert includes_safety_question(number, every) is asks


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        plan(MADRID, start=datetime(2026, 10, 19))


# --- properties over random zones, windows and templates ----------------------------

ZONES = sorted(available_timezones())


@st.composite
def time_ranges(draw: st.DrawFn, *, may_cross_midnight: bool) -> TimeRange:
    start = draw(st.integers(0, 24 * 60 - 1))
    if may_cross_midnight:
        end = draw(st.integers(0, 24 * 60 - 1).filter(lambda m: m != start))
    else:
        end = draw(st.integers(start + 1, 24 * 60))
    return TimeRange(start, end)


@st.composite
def templates(draw: st.DrawFn) -> ScheduleTemplate:
    rules = []
    for _ in range(draw(st.integers(1, 5))):
        window = draw(st.one_of(st.just("partner"), time_ranges(may_cross_midnight=False)))
        rules.append(
            {
                "kind": draw(st.sampled_from(RULE_KINDS)),
                "days": draw(st.lists(st.sampled_from(DAYS), min_size=1, unique=True)),
                "window": str(window),
                "jitter": draw(st.integers(0, 600)),
                "rotation": draw(st.sampled_from(["daily", "weekly"])),
            }
        )
    return ScheduleTemplate.model_validate({"rules": rules})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    template=templates(),
    zone=st.sampled_from(ZONES),
    window=time_ranges(may_cross_midnight=False),
    quiet=st.one_of(st.none(), time_ranges(may_cross_midnight=True)),
    cap=st.integers(1, 4),
    start=st.datetimes(datetime(2025, 1, 1), datetime(2027, 12, 31), timezones=st.just(UTC)),
    hours=st.integers(1, 96),
    hold=st.booleans(),
)
def test_any_plan_respects_windows_quiet_hours_and_the_cap(
    template: ScheduleTemplate,
    zone: str,
    window: TimeRange,
    quiet: TimeRange | None,
    cap: int,
    start: datetime,
    hours: int,
    hold: bool,
) -> None:
    partner = PartnerTiming(zone, str(window))
    delivery = DeliverySettings(quiet_hours=quiet, max_per_day=cap)
    end = start + timedelta(hours=hours)
    deliveries = plan(
        partner, template=template, delivery=delivery, start=start, end=end, hold=hold
    )
    per_day = Counter(d.local_date for d in deliveries)
    assert all(count <= cap for count in per_day.values())
    for planned in deliveries:
        moment = local(planned, partner)
        minute = minute_of_day(moment)
        assert moment.date() == planned.local_date
        assert window_of(planned, partner, template, delivery).contains(minute)
        assert quiet is None or not quiet.contains(minute)
        assert start <= planned.due_at_utc < end
        assert planned.due_at_utc < planned.not_after_utc
        assert not (hold and LIBRARY.get(planned.prompt_key).is_conflict_communication)
    split = start + (end - start) / 2
    halves = plan(
        partner, template=template, delivery=delivery, start=start, end=split, hold=hold
    ) + plan(partner, template=template, delivery=delivery, start=split, end=end, hold=hold)
    assert halves == deliveries


def test_a_message_outside_the_plan_waits_for_the_window_and_a_day_with_room() -> None:
    delivery = DeliverySettings()  # quiet 21:30-07:30, evening 17:00-21:00
    madrid = PartnerTiming("Europe/Madrid", "evening")
    late = datetime(2026, 10, 25, 21, 46, tzinfo=UTC)  # 22:46 in Madrid
    placed = next_allowed(delivery, madrid, late)
    assert placed is not None
    due, day, not_after = placed
    assert due == datetime(2026, 10, 26, 16, 0, tzinfo=UTC)  # 17:00 the next evening
    assert day.isoformat() == "2026-10-26" and not_after == datetime(
        2026, 10, 26, 20, 0, tzinfo=UTC
    )
    inside = datetime(2026, 10, 26, 17, 30, tzinfo=UTC)  # 18:30, inside the window
    assert next_allowed(delivery, madrid, inside) == (inside, day, not_after)
    full = next_allowed(delivery, madrid, inside, full=[day])
    assert full is not None and full[1].isoformat() == "2026-10-27"
