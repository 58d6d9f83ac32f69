"""The balanced digest: both partners get the same template, the same room, no culprit.

This module also holds the fixture couples and the data strategies that
``test_digest_render`` reuses.
"""

from __future__ import annotations

import json
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.core.digest import (
    SCORE_ROLES,
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
    Slot,
    compose_digest,
    cut_at_word,
)
from bot.core.digest.compose import choose_quotes, sparkline
from bot.core.digest.model import SINGLE_PARTNER_AGENDA, Practice

START = datetime(2026, 10, 5, 8, 0, tzinfo=UTC)
END = START + timedelta(days=14)
OTHER: dict[str, Slot] = {"A": "B", "B": "A"}


# --- fixture couples -----------------------------------------------------------------

NOTES: dict[str, dict[str, str]] = {
    "en": {
        "a1": "We argued about money on Sunday, and for once we stopped before it got loud.",
        "a2": "The weekend walk helped. I want to talk about how we plan money together.",
        "a3": "I'm not sure the kids noticed, but I did.",
        "b1": "Money came up again; I went quiet instead of snapping, which felt new.",
        "b2": "I'd like us to look at weekends: they fill up and we lose each other.",
        "b3": "Tired after work most evenings.",
        "reply_a": "I appreciated the coffee Sam made on Tuesday.",
        "reply_b": "Alex asked about my day and listened.",
        "private_a": "Something I am not ready to bring up yet.",
        "private_b": "A private worry I'd rather keep to myself for now.",
        "prompt": "One thing I appreciated this week",
        "answer_a": "How patient you were with the kids on Thursday.",
        "answer_b": "The dinner you cooked when I got home late.",
    },
    "es": {
        "a1": "Discutimos por el dinero el domingo, y por una vez paramos antes de gritar.",
        "a2": "El paseo del fin de semana ayudó. Quiero hablar de cómo planificamos el dinero.",
        "a3": "No sé si los niños se dieron cuenta, pero yo sí.",
        "b1": "El dinero salió otra vez; me callé en lugar de saltar, y eso fue nuevo.",
        "b2": "Me gustaría mirar los fines de semana: se llenan y nos perdemos.",
        "b3": "Cansancio después del trabajo casi todas las tardes.",
        "reply_a": "Agradecí el café que preparó Sam el martes.",
        "reply_b": "Alex me preguntó por mi día y escuchó.",
        "private_a": "Algo que todavía no estoy listo para plantear.",
        "private_b": "Una preocupación que prefiero guardar por ahora.",
        "prompt": "Algo que agradecí esta semana",
        "answer_a": "Lo paciente que fuiste con los niños el jueves.",
        "answer_b": "La cena que hiciste cuando llegué tarde.",
    },
    "pt": {
        "a1": "Discutimos por dinheiro no domingo, e pela primeira vez paramos antes de gritar.",
        "a2": "A caminhada do fim de semana ajudou. Quero falar de como planejamos o dinheiro.",
        "a3": "Não sei se as crianças perceberam, mas eu percebi.",
        "b1": "O assunto dinheiro voltou; fiquei quieto em vez de explodir, e isso foi novo.",
        "b2": "Eu queria olhar para os fins de semana: eles lotam e a gente se perde.",
        "b3": "Cansaço depois do trabalho quase todas as noites.",
        "reply_a": "Gostei do café que Sam preparou na terça.",
        "reply_b": "Alex perguntou como foi o meu dia e escutou.",
        "private_a": "Algo que ainda não me sinto pronto para trazer.",
        "private_b": "Uma preocupação que prefiro guardar por enquanto.",
        "prompt": "Algo que eu valorizei esta semana",
        "answer_a": "A paciência que você teve com as crianças na quinta.",
        "answer_b": "O jantar que você fez quando cheguei tarde.",
    },
}
THERAPIST_TZ = {
    "en": ZoneInfo("America/New_York"),
    "es": ZoneInfo("Europe/Madrid"),
    "pt": ZoneInfo("America/Sao_Paulo"),
}


def checkin(
    day: float,
    wellbeing: float,
    hope: float,
    alliance: float,
    *,
    note: str | None = None,
    ok: bool | None = None,
    skill: Practice | None = None,
    partial: bool = False,
) -> CheckinData:
    """A check-in ``day`` days into the fixture period."""
    return CheckinData(
        at=START + timedelta(days=day, hours=11),
        scores={"wellbeing": wellbeing, "hope": hope, "alliance": alliance},
        skill_practised=skill,
        note=note,
        ok_to_raise=ok,
        partial=partial,
    )


def _alex(language: str, alliance: tuple[float, float, float] = (7, 8, 8)) -> PartnerData:
    n = NOTES[language]
    return PartnerData(
        slot="A",
        display_name="Alex",
        language=language,
        checkins=(
            checkin(1, 5, 5, alliance[0], note=n["a1"], ok=True),
            checkin(4, 6, 6, alliance[1], note=n["private_a"], ok=False),
            checkin(8, 6, 7, alliance[2], note=n["a2"], ok=True, skill="yes"),
            checkin(12, 7, 7, alliance[2], note=n["a3"], ok=None),
        ),
        previous_scores={"wellbeing": 5, "hope": 5, "alliance": 7},
        prompts_delivered=6,
        prompts_answered=5,
        skill_prompts=(
            SkillPracticeData("Soft start-up", "yes"),
            SkillPracticeData("Repair attempts", "partly"),
        ),
        replies=(ReplyData(START + timedelta(days=2, hours=20), n["reply_a"], True),),
    )


def _sam(language: str, alliance: tuple[float, float, float] = (7, 7, 7.5)) -> PartnerData:
    n = NOTES[language]
    return PartnerData(
        slot="B",
        display_name="Sam",
        language=language,
        checkins=(
            checkin(2, 5, 4, alliance[0], note=n["b1"], ok=True),
            checkin(5, 5, 5, alliance[1], note=n["b3"], ok=True, partial=True),
            checkin(9, 6, 6, alliance[2], note=n["b2"], ok=True, skill="partly"),
            checkin(13, 6, 6, alliance[2], note=n["private_b"], ok=False),
        ),
        previous_scores={"wellbeing": 5, "hope": 4, "alliance": 7},
        prompts_delivered=6,
        prompts_answered=4,
        skill_prompts=(
            SkillPracticeData("Soft start-up", "partly"),
            SkillPracticeData("Repair attempts", None),
        ),
        replies=(ReplyData(START + timedelta(days=6, hours=19), n["reply_b"], True),),
    )


def _space(language: str) -> CoupleSpaceData:
    n = NOTES[language]
    return CoupleSpaceData(
        prompts_sent=2,
        both_answered=1,
        both_shared=1,
        answers=(CoupleAnswerData(n["prompt"], n["answer_a"], n["answer_b"]),),
    )


def _couple(language: str, alex: PartnerData, sam: PartnerData, **changes: Any) -> DigestInput:
    data = DigestInput(
        couple_handle="C7K2",
        couple_label="Rivera & Chen",
        therapist_language=language,
        period_start=START,
        period_end=END,
        previous_session_at=START,
        first_slot="B",
        partners=(alex, sam),
        couple_space=_space(language),
        therapist_tz=THERAPIST_TZ[language],
    )
    return replace(data, **changes)


def balanced_couple(language: str = "en") -> DigestInput:
    """An ordinary period: both partners check in, practise, and mark words OK to raise."""
    return _couple(language, _alex(language), _sam(language))


def split_alliance_couple(language: str = "en") -> DigestInput:
    """Alex rates the therapy relationship high, Sam low, and the gap has widened."""
    return _couple(
        language,
        _alex(language, alliance=(8, 8.5, 8.5)),
        replace(
            _sam(language, alliance=(5, 4, 4)),
            previous_scores={"wellbeing": 5, "hope": 4, "alliance": 6},
        ),
        first_slot="A",
    )


def safety_flag_couple(language: str = "en") -> DigestInput:
    """An open, unseen safety flag for one partner and a closed one for the other."""
    alerts = (
        AlertData("A", "safety_question", START + timedelta(days=6, hours=21), False, True),
        AlertData("B", "crisis_words", START + timedelta(days=3, hours=9), True, False),
        # Closed and from before the period: not part of this digest.
        AlertData("B", "crisis_words", START - timedelta(days=20), True, False),
    )
    return _couple(language, _alex(language), _sam(language), alerts=alerts)


def silent_partner_couple(language: str = "en") -> DigestInput:
    """Sam sent nothing this period: no check-ins, replies or skill answers."""
    sam = PartnerData(
        slot="B",
        display_name="Sam",
        language=language,
        previous_scores={"wellbeing": 5, "hope": 4, "alliance": 7},
        prompts_delivered=6,
        prompts_answered=0,
        skill_prompts=(
            SkillPracticeData("Soft start-up", None),
            SkillPracticeData("Repair attempts", None),
        ),
    )
    space = replace(_space(language), both_answered=0, both_shared=0, answers=())
    return _couple(language, _alex(language), sam, couple_space=space, first_slot="A")


FIXTURES = {
    "balanced": balanced_couple,
    "split_alliance": split_alliance_couple,
    "safety_flag": safety_flag_couple,
    "silent_partner": silent_partner_couple,
}


# --- strategies ----------------------------------------------------------------------

# Plain words (both languages), with characters that need escaping; no blame words,
# no parentheses (so slot labels like "(A)" never occur in what partners write).
VOCABULARY = (
    "money", "weekend", "weekends", "work", "kids", "dinner", "walk", "walked", "calm",
    "tired", "listening", "listened", "coffee", "plans", "holiday", "family", "evening",
    "trabajo", "dinero", "cena", "hijos", "paseo", "tiempo", "calma", "familia", "mañana",
    "niños", "café", "&", "<3", "x>y", "'quoted'", '"really"', "we", "I", "the", "and",
)  # fmt: skip
SKILLS = (
    "Soft start-up",
    "Repair attempts",
    "Stress-reducing conversation",
    "Fondness and admiration",
    "Turning toward",
    "The cycle as the shared enemy",
    "Unified detachment",
    "Speaker–listener",
)
NAMES = ("Alex", "Sam", "Maximiliana", "Jo", "Noor", "José Luis", "Wen", "Ana")
CANARY = "Zephyrcanary"

scores = st.integers(0, 20).map(lambda n: n / 2)
moments = st.integers(0, 14 * 24 * 60 - 1).map(lambda m: START + timedelta(minutes=m))
ANSWERS: tuple[Practice | None, ...] = ("yes", "partly", "no", None)
practice = st.sampled_from(ANSWERS)


def _words(seed: int, length: int) -> str:
    # Words picked from a seed Hypothesis draws: two draws per text keep generation fast.
    pick = random.Random(seed)
    text = pick.choice(VOCABULARY)
    while len(text) < length:
        text = f"{text} {pick.choice(VOCABULARY)}"
    return text[:length].rstrip() or "calm"


def paragraph(min_chars: int, max_chars: int) -> st.SearchStrategy[str]:
    """Prose of a length in the given range."""
    return st.builds(_words, st.integers(0, 2**32), st.integers(min_chars, max_chars))


prose = paragraph(1, 240)


@st.composite
def checkins(draw: st.DrawFn, *, all_roles: bool = False) -> CheckinData:
    roles = SCORE_ROLES if all_roles else draw(st.lists(st.sampled_from(SCORE_ROLES), unique=True))
    return CheckinData(
        at=draw(moments),
        scores={role: draw(scores) for role in roles},
        skill_practised=draw(practice),
        note=draw(st.none() | prose),
        ok_to_raise=draw(st.sampled_from([True, False, None])),
        partial=draw(st.booleans()),
    )


@st.composite
def partners(draw: st.DrawFn, slot: Slot) -> PartnerData:
    delivered = draw(st.integers(0, 20))
    return PartnerData(
        slot=slot,
        display_name=draw(st.sampled_from(NAMES)),
        language=draw(st.sampled_from(["en", "es"])),
        checkins=tuple(draw(st.lists(checkins(), max_size=6))),
        previous_scores={
            role: draw(scores) for role in draw(st.lists(st.sampled_from(SCORE_ROLES), unique=True))
        },
        prompts_delivered=delivered,
        prompts_answered=draw(st.integers(0, delivered)),
        skill_prompts=tuple(
            SkillPracticeData(name, tried)
            for name, tried in draw(
                st.lists(st.tuples(st.sampled_from(SKILLS), practice), max_size=5)
            )
        ),
        paused_days=draw(st.integers(0, 4)),
        unreachable_days=draw(st.sampled_from([0, 0, 0, 2])),
        replies=tuple(
            ReplyData(at, text, ok)
            for at, text, ok in draw(st.lists(st.tuples(moments, prose, st.booleans()), max_size=3))
        ),
    )


@st.composite
def full_partners(draw: st.DrawFn, slot: Slot) -> PartnerData:
    """A partner with data in every section: ratings, prompts, skills, words OK to raise."""
    notes = draw(st.lists(paragraph(200, 400), min_size=3, max_size=6))
    delivered = draw(st.integers(1, 20))
    raised = tuple(
        CheckinData(
            at=draw(moments),
            scores={role: draw(scores) for role in SCORE_ROLES},
            skill_practised=draw(practice),
            note=note,
            ok_to_raise=True,
            partial=draw(st.booleans()),
        )
        for note in notes
    )
    private = tuple(draw(st.lists(checkins(all_roles=True), max_size=4)))
    private = tuple(replace(c, ok_to_raise=False) for c in private)
    return PartnerData(
        slot=slot,
        display_name=draw(st.sampled_from(NAMES)),
        language=draw(st.sampled_from(["en", "es"])),
        checkins=raised + private,
        previous_scores={role: draw(scores) for role in SCORE_ROLES},
        prompts_delivered=delivered,
        prompts_answered=draw(st.integers(0, delivered)),
        skill_prompts=tuple(
            SkillPracticeData(name, tried)
            for name, tried in draw(
                st.lists(st.tuples(st.sampled_from(SKILLS), practice), min_size=1, max_size=4)
            )
        ),
        paused_days=draw(st.integers(0, 9)),
        unreachable_days=draw(st.integers(0, 9)),
    )


@st.composite
def couple_spaces(draw: st.DrawFn) -> CoupleSpaceData:
    answers = draw(
        st.lists(
            st.tuples(prose, st.none() | prose, st.none() | prose).map(
                lambda t: CoupleAnswerData(*t)
            ),
            max_size=3,
        )
    )
    sent = draw(st.integers(len(answers), len(answers) + 3))
    both = draw(st.integers(0, sent))
    return CoupleSpaceData(sent, both, draw(st.integers(0, both)), tuple(answers))


@st.composite
def digest_inputs(draw: st.DrawFn, *, full: bool = False) -> DigestInput:
    """Any couple's period (or, with ``full``, one where both have data in every section)."""
    make = full_partners if full else partners
    alerts = draw(
        st.lists(
            st.builds(
                AlertData,
                slot=st.sampled_from(["A", "B"]),
                kind=st.sampled_from(["safety_question", "crisis_words", "something_new"]),
                at=moments | st.just(START - timedelta(days=30)),
                acknowledged=st.booleans(),
                open=st.booleans(),
            ),
            max_size=3,
        )
    )
    return DigestInput(
        couple_handle="C1",
        couple_label=draw(st.sampled_from(["Rivera & Chen", "Los García", "<b>odd</b> label"])),
        therapist_language=draw(st.sampled_from(["en", "es"])),
        period_start=START,
        period_end=END,
        previous_session_at=draw(st.none() | st.just(START)),
        first_slot=draw(st.sampled_from(["A", "B"])),
        partners=(draw(make("A")), draw(make("B"))),
        couple_space=draw(couple_spaces()),
        alerts=tuple(alerts),
        settings=DigestSettings(
            quote_budget_chars=600 if full else draw(st.sampled_from([0, 60, 200, 600])),
            split_alliance_threshold=draw(st.sampled_from([2.0, 3.0])),
        ),
        therapist_tz=draw(st.sampled_from([UTC, ZoneInfo("Europe/Madrid")])),
    )


def swapped(data: DigestInput) -> DigestInput:
    """The same couple with the slot labels swapped (and so who comes first, too)."""
    space = data.couple_space
    return replace(
        data,
        first_slot=OTHER[data.first_slot],
        partners=(
            replace(data.partners[0], slot=OTHER[data.partners[0].slot]),
            replace(data.partners[1], slot=OTHER[data.partners[1].slot]),
        ),
        couple_space=replace(
            space,
            answers=tuple(
                CoupleAnswerData(a.prompt_title, a.answer_b, a.answer_a) for a in space.answers
            ),
        ),
        alerts=tuple(replace(a, slot=OTHER[a.slot]) for a in data.alerts),
    )


def relabelled(value: Any) -> Any:
    """A digest's ``to_dict()`` with every slot label swapped A <-> B."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key in ("slot", "first_slot"):
                out[key] = OTHER[item]
            elif key == "slots":
                out[key] = [OTHER[s] for s in item]
            else:
                out[key] = relabelled(item)
        return out
    if isinstance(value, list):
        return [relabelled(v) for v in value]
    return value


def with_private_canaries(data: DigestInput) -> DigestInput:
    """The couple with a canary word in every note and reply NOT marked OK to raise."""

    def partner(p: PartnerData) -> PartnerData:
        notes = tuple(
            c if c.ok_to_raise is True else replace(c, note=f"{c.note or ''} {CANARY} kept")
            for c in p.checkins
        )
        replies = tuple(
            r if r.ok_to_raise else replace(r, text=f"{r.text} {CANARY}") for r in p.replies
        )
        extra = CheckinData(at=START + timedelta(hours=3), note=f"{CANARY} money weekend")
        return replace(p, checkins=(*notes, extra), replies=replies)

    return replace(data, partners=(partner(data.partners[0]), partner(data.partners[1])))


FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- symmetry ------------------------------------------------------------------------


@FAST
@given(data=digest_inputs())
def test_swapping_the_partners_swaps_only_their_labels(data: DigestInput) -> None:
    original = compose_digest(data)
    mirror = compose_digest(swapped(data))
    assert mirror.to_dict() == relabelled(original.to_dict())
    # Themes, the split-alliance flag and the agenda are part of that; say so plainly.
    assert mirror.together.themes == original.together.themes
    assert mirror.together.alliance.split == original.together.alliance.split
    assert [item.key for item in mirror.agenda] == [item.key for item in original.agenda]


@FAST
@given(data=digest_inputs())
def test_who_comes_first_changes_the_order_and_nothing_else(data: DigestInput) -> None:
    one = compose_digest(data)
    other = compose_digest(replace(data, first_slot=OTHER[data.first_slot]))
    assert other.partners == one.partners[::-1]
    assert other.together.themes == one.together.themes
    assert other.together.alliance.split == one.together.alliance.split
    assert other.together.alliance.gap == one.together.alliance.gap
    assert other.agenda == one.agenda
    assert set(other.safety.alerts) == set(one.safety.alerts)
    assert other.balance.shares == one.balance.shares[::-1]


@FAST
@given(data=digest_inputs())
def test_agenda_names_one_partner_only_about_their_own_hope(data: DigestInput) -> None:
    for item in compose_digest(data).agenda:
        if len(item.slots) == 1:
            assert item.key in SINGLE_PARTNER_AGENDA
        elif item.slots:
            # Naming both: each in the role the data gives them, never the same one twice.
            assert item.key == "hope_diverging"
            assert sorted(item.slots) == ["A", "B"]


@FAST
@given(data=digest_inputs())
def test_partners_with_the_same_data_get_the_same_treatment(data: DigestInput) -> None:
    twin = replace(data.partners[0], slot=OTHER[data.partners[0].slot])
    digest = compose_digest(replace(data, partners=(data.partners[0], twin)))
    assert all(len(item.slots) != 1 for item in digest.agenda)
    first, second = digest.partners
    assert replace(first, slot="A") == replace(second, slot="A")
    assert digest.balance.shares[0].chars == digest.balance.shares[1].chars
    assert digest.together.alliance.gap in (None, 0.0)


# --- balance and the shared quote budget -----------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=digest_inputs(full=True))
def test_partner_sections_are_within_fifteen_percent_when_both_have_data(
    data: DigestInput,
) -> None:
    digest = compose_digest(data)
    a, b = (share.chars for share in digest.balance.shares)
    assert min(a, b) > 0
    assert abs(a - b) <= 0.15 * max(a, b), (a, b)
    assert digest.balance.ratio >= 0.85
    assert abs(sum(s.share for s in digest.balance.shares) - 1) < 0.001


@FAST
@given(data=digest_inputs())
def test_quotes_never_exceed_the_budget_both_partners_share(data: DigestInput) -> None:
    budget = data.settings.quote_budget_chars
    for section in compose_digest(data).partners:
        words = section.own_words
        assert words.budget_chars == budget
        assert words.quoted_chars == sum(len(q.text) for q in words.quotes) <= budget


def test_quotes_are_most_recent_first_and_the_last_is_cut_at_a_word() -> None:
    day = START + timedelta(days=1)
    items = [
        (day, "oldest words here", "note"),
        (day + timedelta(days=2), "newest words", "reply"),
        (
            day + timedelta(days=1),
            "the middle one is a rather long note about our weekends",
            "note",
        ),
    ]
    quotes, left_out = choose_quotes(items, budget=50, min_fragment=10)  # type: ignore[arg-type]
    assert [q.text for q in quotes] == ["newest words", "the middle one is a rather long note…"]
    assert [q.truncated for q in quotes] == [False, True]
    assert sum(len(q.text) for q in quotes) <= 50
    assert left_out == 1


def test_a_remainder_too_small_for_a_fragment_quotes_nothing_more() -> None:
    items = [(START, "x" * 30, "note"), (START + timedelta(hours=1), "y" * 25, "note")]
    quotes, left_out = choose_quotes(items, budget=40, min_fragment=20)  # type: ignore[arg-type]
    assert [q.text for q in quotes] == ["y" * 25]
    assert left_out == 1


def test_cutting_keeps_whole_words_and_marks_the_cut() -> None:
    assert cut_at_word("short", 10) == "short"
    assert cut_at_word("we walked to the river, and talked", 22) == "we walked to the…"
    assert cut_at_word("a" * 50, 10) == "a" * 9 + "…"
    assert len(cut_at_word("one two three four five", 12)) <= 12


# --- privacy ---------------------------------------------------------------------------


def test_only_words_marked_ok_to_raise_are_quoted_and_the_rest_are_counted() -> None:
    digest = compose_digest(balanced_couple())
    alex = digest.partner("A").own_words
    quoted = " ".join(q.text for q in alex.quotes)
    assert NOTES["en"]["a1"] in quoted and NOTES["en"]["reply_a"] in quoted
    assert NOTES["en"]["private_a"] not in quoted
    assert NOTES["en"]["a3"] not in quoted  # not answered: private by default
    assert alex.private_count == 2


@FAST
@given(data=digest_inputs())
def test_private_notes_never_shape_themes_or_the_agenda(data: DigestInput) -> None:
    plain = compose_digest(data)
    with_secrets = compose_digest(with_private_canaries(data))
    assert with_secrets.together.themes == plain.together.themes
    for before, after in zip(plain.partners, with_secrets.partners, strict=True):
        assert after.own_words.quotes == before.own_words.quotes
    assert CANARY.lower() not in json.dumps(with_secrets.to_dict()).lower()


def test_a_word_both_share_only_in_private_is_not_a_theme() -> None:
    data = balanced_couple()
    alex, sam = data.partners
    secret = CheckinData(
        at=START + timedelta(days=3), note="lighthouse lighthouse", ok_to_raise=False
    )
    raised = CheckinData(at=START + timedelta(days=3), note="lighthouse", ok_to_raise=True)
    only_private = replace(
        data,
        partners=(
            replace(alex, checkins=(*alex.checkins, secret)),
            replace(sam, checkins=(*sam.checkins, secret)),
        ),
    )
    assert "lighthouse" not in [t.word for t in compose_digest(only_private).together.themes]
    both_raised = replace(
        data,
        partners=(
            replace(alex, checkins=(*alex.checkins, raised)),
            replace(sam, checkins=(*sam.checkins, raised)),
        ),
    )
    assert "lighthouse" in [t.word for t in compose_digest(both_raised).together.themes]


# --- scores, alliance, engagement, safety, agenda --------------------------------------


def test_sparklines_use_one_fixed_scale_for_both_partners() -> None:
    assert sparkline((0.0, 10.0)) == "▁█"
    assert sparkline((2.0, 5.0, 8.0)) == sparkline((2.0, 5.0, 8.0))
    assert len(sparkline(tuple(float(i % 11) for i in range(40)))) == 28
    assert sparkline(()) == ""


def test_change_since_the_last_session_compares_period_means() -> None:
    alex = compose_digest(balanced_couple()).partner("A")
    hope = alex.role("hope")
    assert hope.values == (5, 6, 7, 7)
    assert hope.mean == 6.25 and hope.latest == 7 and hope.previous == 5
    assert hope.change == 1.25


def test_a_large_gap_in_alliance_raises_the_split_flag() -> None:
    digest = compose_digest(split_alliance_couple())
    alliance = digest.together.alliance
    assert alliance.gap == pytest.approx(8.375 - 4.25, abs=0.01)
    assert alliance.previous_gap == 1
    assert alliance.split and alliance.reasons == ("gap", "widening")
    assert digest.agenda[0].key == "split_gap"


def test_close_alliance_ratings_raise_no_flag() -> None:
    alliance = compose_digest(balanced_couple()).together.alliance
    assert alliance.gap is not None and alliance.gap < 3
    assert not alliance.split and alliance.reasons == ()


def _alliance_couple(first: tuple[float, float], second: tuple[float, float]) -> Digest:
    """A couple whose alliance means are ``first[0]``/``second[0]`` (previous: ``[1]``)."""

    def partner(slot: Slot, now: float, before: float) -> PartnerData:
        return PartnerData(
            slot=slot,
            display_name=f"P{slot}",
            checkins=(CheckinData(at=START, scores={"alliance": now}),),
            previous_scores={"alliance": before},
        )

    return compose_digest(
        DigestInput(
            couple_handle="C",
            couple_label="L",
            therapist_language="en",
            period_start=START,
            period_end=END,
            previous_session_at=START,
            first_slot="A",
            partners=(partner("A", *first), partner("B", *second)),
        )
    )


@pytest.mark.parametrize(
    ("first", "second", "reasons"),
    [
        ((8.0, 8.0), (5.0, 5.0), ("gap",)),  # exactly the threshold counts
        ((8.0, 8.0), (5.5, 5.5), ()),
        ((7.0, 7.0), (4.5, 6.5), ("widening",)),  # 0.5 -> 2.5
        ((7.0, 7.0), (5.5, 6.5), ()),  # 0.5 -> 1.5
        ((9.0, 9.0), (2.0, 2.0), ("gap",)),  # large but steady
    ],
)
def test_split_flag_is_a_large_gap_or_a_widening_one(
    first: tuple[float, float], second: tuple[float, float], reasons: tuple[str, ...]
) -> None:
    assert _alliance_couple(first, second).together.alliance.reasons == reasons
    assert _alliance_couple(second, first).together.alliance.reasons == reasons


def test_a_partner_who_sent_nothing_is_described_neutrally() -> None:
    digest = compose_digest(silent_partner_couple())
    sam = digest.partner("B")
    assert sam.engagement.checkins == 0
    assert all(s.values == () and s.mean is None for s in sam.scores)
    assert sam.own_words.quotes == ()
    assert sam.skills.no_reply == 2
    keys = [item.key for item in digest.agenda]
    assert "engagement_uneven" in keys and "skills_uneven" in keys
    assert all(not item.slots for item in digest.agenda if item.key != "hope_rising")
    assert digest.together.alliance.gap is None and not digest.together.alliance.split


def test_engagement_counts_complete_and_partial_checkins() -> None:
    sam = compose_digest(balanced_couple()).partner("B")
    assert (sam.engagement.checkins_complete, sam.engagement.checkins_partial) == (3, 1)
    assert (sam.engagement.prompts_answered, sam.engagement.prompts_delivered) == (4, 6)
    assert [c.name for c in sam.skills.partly] == ["Soft start-up"]
    assert sam.skills.no_reply == 1


def test_safety_keeps_open_and_recent_alerts_oldest_first() -> None:
    digest = compose_digest(safety_flag_couple())
    alerts = digest.safety.alerts
    assert [(a.slot, a.kind, a.open, a.acknowledged) for a in alerts] == [
        ("B", "crisis_words", False, True),
        ("A", "safety_question", True, False),
    ]
    assert digest.safety.open_count == 1
    assert digest.agenda[0].key == "safety_open"
    assert alerts[1].at.utcoffset() == THERAPIST_TZ["en"].utcoffset(
        alerts[1].at.replace(tzinfo=None)
    )


def test_hope_moving_in_opposite_directions_names_both_partners() -> None:
    data = balanced_couple()
    alex, sam = data.partners
    rising = replace(alex, previous_scores={**alex.previous_scores, "hope": 4})
    falling = replace(sam, previous_scores={**sam.previous_scores, "hope": 8})
    digest = compose_digest(replace(data, partners=(rising, falling)))
    diverging = [item for item in digest.agenda if item.key.startswith("hope")]
    assert diverging == [type(diverging[0])("hope_diverging", slots=("A", "B"))]


def test_no_pattern_gives_one_open_bullet() -> None:
    def quiet(slot: Slot) -> PartnerData:
        return PartnerData(slot=slot, display_name=slot, checkins=(CheckinData(at=START),))

    digest = compose_digest(
        replace(
            balanced_couple(), partners=(quiet("A"), quiet("B")), couple_space=CoupleSpaceData()
        )
    )
    assert [item.key for item in digest.agenda] == ["default"]


def test_the_digest_is_json_serialisable() -> None:
    digest = compose_digest(safety_flag_couple("es"))
    loaded = json.loads(json.dumps(digest.to_dict()))
    assert loaded["first_slot"] == "B"
    assert [p["slot"] for p in loaded["partners"]] == ["B", "A"]
    assert loaded["timezone"] == "Europe/Madrid"


@pytest.mark.parametrize(
    "broken",
    [
        lambda d: replace(d, partners=(d.partners[0], replace(d.partners[1], slot="A"))),
        lambda d: replace(d, period_start=START.replace(tzinfo=None)),
        lambda d: replace(
            d,
            partners=(
                replace(d.partners[0], checkins=(CheckinData(at=START, scores={"hope": 11}),)),
                d.partners[1],
            ),
        ),
    ],
)
def test_impossible_input_is_refused_loudly(broken: Any) -> None:
    with pytest.raises(ValueError):
        compose_digest(broken(balanced_couple()))
