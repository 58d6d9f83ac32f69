"""Check-in instruments are data: built-ins load, answers validate, practices add their own."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.instruments import (
    TEXT_ANSWER_LIMIT,
    InstrumentError,
    InvalidAnswer,
    is_risk_answer,
    load_instrument,
    load_instruments,
    next_item,
    ok_to_raise,
    score_summary,
    should_ask,
    validate_answer,
)
from bot.locales import SUPPORTED_LANGUAGES

CHECKIN = load_instrument("dyad_checkin")
SAFETY = load_instrument("dyad_safety")


# --- built-ins ----------------------------------------------------------------------------


def test_the_builtin_checkin_asks_what_clinical_md_lists() -> None:
    roles = {item.id: (item.type, item.role) for item in CHECKIN.items}
    assert roles == {
        "wellbeing": ("scale", "wellbeing"),
        "hope": ("scale", "hope"),
        "safe_to_be_honest": ("scale", "alliance"),
        "understood": ("scale", "alliance"),
        "skill": ("choice", "skill"),
        "note": ("text", "note"),
        "ok_to_raise": ("yes_no", None),
    }
    for item in CHECKIN.items:
        if item.type == "scale":
            assert (item.min, item.max) == (0, 10)
    assert [c.id for c in CHECKIN.item("skill").choices] == ["yes", "partly", "no"]
    assert CHECKIN.item("note").optional
    assert "Not a validated instrument" in CHECKIN.citation


def test_the_safety_question_is_the_clinical_wording_and_only_yes_is_a_risk() -> None:
    (item,) = SAFETY.items
    assert item.text["en"] == (
        "Since the last session, have you felt afraid of your partner or unsafe at home?"
    )
    assert item.role == "safety"
    assert [c.id for c in item.choices] == ["yes", "no", "prefer_not"]
    assert is_risk_answer(item, "yes")
    assert not is_risk_answer(item, "no")
    assert not is_risk_answer(item, "prefer_not")
    assert not is_risk_answer(CHECKIN.item("skill"), "yes")


def test_builtins_are_all_offered() -> None:
    assert {"dyad_checkin", "dyad_safety"} <= set(load_instruments())
    with pytest.raises(KeyError):
        load_instrument("ors")
    with pytest.raises(KeyError):
        load_instrument("../dyad_checkin")


@pytest.mark.parametrize("name", sorted(load_instruments()))
@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_every_builtin_text_exists_in_every_language(name: str, language: str) -> None:
    instrument = load_instrument(name)
    assert instrument.title_in(language)
    for item in instrument.items:
        assert item.text[language].strip()
        for choice in item.choices:
            assert choice.label[language].strip()
        if item.type == "scale":
            assert item.min_label[language] and item.max_label[language]


def test_spanish_texts_are_spanish_and_not_copies() -> None:
    for item in (*CHECKIN.items, *SAFETY.items):
        assert item.text_in("es") != item.text_in("en")
    assert CHECKIN.item("skill").choice("yes").label_in("es-MX") == "Sí"


# --- answers ------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "value"), [("7", 7), (" 10 ", 10), ("0", 0), ("７", 7)])
def test_a_rating_is_a_whole_number_on_the_scale(raw: str, value: int) -> None:
    assert validate_answer(CHECKIN.item("hope"), raw) == value


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("11", "instruments.answer_out_of_range"),
        ("-1", "instruments.answer_out_of_range"),
        ("seven", "instruments.answer_not_a_number"),
        ("7.5", "instruments.answer_not_a_number"),
        ("", "instruments.answer_not_a_number"),
        ("9" * 5000, "instruments.answer_not_a_number"),
    ],
)
def test_a_bad_rating_says_what_the_scale_is(raw: str, key: str) -> None:
    with pytest.raises(InvalidAnswer) as caught:
        validate_answer(CHECKIN.item("hope"), raw)
    assert caught.value.key == key
    assert caught.value.params == {"min": 0, "max": 10}


@pytest.mark.parametrize(
    ("raw", "choice"),
    [("yes", "yes"), ("Sí", "yes"), ("si!", "yes"), ("PARTLY", "partly"), ("en parte", "partly")],
)
def test_a_choice_is_accepted_by_id_or_by_label_in_any_language(raw: str, choice: str) -> None:
    assert validate_answer(CHECKIN.item("skill"), raw) == choice


@pytest.mark.parametrize("raw", ["maybe", "", "  ", "yes no"])
def test_an_unknown_choice_is_refused(raw: str) -> None:
    with pytest.raises(InvalidAnswer) as caught:
        validate_answer(CHECKIN.item("skill"), raw)
    assert caught.value.key == "instruments.answer_unknown_choice"


def test_a_note_is_kept_as_written_less_control_characters() -> None:
    assert validate_answer(CHECKIN.item("note"), "  We argued\x00 again.\nBut\tbetter. ") == (
        "We argued again.\nBut\tbetter."
    )


def test_an_empty_or_overlong_note_is_refused() -> None:
    note = CHECKIN.item("note")
    with pytest.raises(InvalidAnswer) as empty:
        validate_answer(note, " \x00 \n")
    assert empty.value.key == "instruments.answer_empty"
    with pytest.raises(InvalidAnswer) as long:
        validate_answer(note, "a" * (TEXT_ANSWER_LIMIT + 1))
    assert (long.value.key, long.value.params) == ("instruments.answer_too_long", {"limit": 3000})


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([*CHECKIN.items, *SAFETY.items]), st.text(max_size=200))
def test_any_text_gives_an_answer_or_a_kind_refusal(item: Any, raw: str) -> None:
    try:
        value = validate_answer(item, raw)
    except InvalidAnswer as refusal:
        assert refusal.key.startswith("instruments.")
    else:
        if item.type == "scale":
            assert item.min <= value <= item.max
        elif item.choices:
            assert value in {choice.id for choice in item.choices}


def test_ok_to_raise_is_asked_only_after_a_note() -> None:
    answers: dict[str, int | str] = {"wellbeing": 6, "hope": 7, "safe_to_be_honest": 8}
    answers |= {"understood": 5, "skill": "partly"}
    item = next_item(CHECKIN, answers)
    assert item is not None and item.id == "note"
    assert next_item(CHECKIN, answers, skipped={"note"}) is None
    assert not should_ask(CHECKIN.item("ok_to_raise"), answers)
    answers["note"] = "I felt unheard on Sunday"
    item = next_item(CHECKIN, answers)
    assert item is not None and item.id == "ok_to_raise"


def test_a_note_stays_private_unless_the_partner_says_yes() -> None:
    assert not ok_to_raise(CHECKIN, {"note": "something"})
    assert not ok_to_raise(CHECKIN, {"note": "something", "ok_to_raise": "no"})
    assert ok_to_raise(CHECKIN, {"note": "something", "ok_to_raise": "yes"})


def test_score_summary_is_the_mean_per_role_over_answered_ratings() -> None:
    answers: dict[str, int | str] = {"wellbeing": 4, "safe_to_be_honest": 9, "understood": 6}
    answers |= {"skill": "yes", "note": "text"}
    assert score_summary(CHECKIN, answers) == {"wellbeing": 4.0, "alliance": 7.5}
    assert score_summary(CHECKIN, {}) == {}


# --- practice instruments -----------------------------------------------------------------

PRACTICE: dict[str, Any] = {
    "title": {"en": "Weekly pulse", "es": "Pulso semanal", "pt": "Pulso semanal"},
    "citation": "The practice's own wording.",
    "items": [
        {
            "id": "closeness",
            "type": "scale",
            "role": "wellbeing",
            "min": 1,
            "max": 5,
            "text": {
                "en": "How close did you feel?",
                "es": "¿Cuánta cercanía sentiste?",
                "pt": "Quanta proximidade você sentiu?",
            },
        },
        {
            "id": "talked",
            "type": "yes_no",
            "text": {
                "en": "Did you talk this week?",
                "es": "¿Hablasteis esta semana?",
                "pt": "Vocês conversaram esta semana?",
            },
            "choices": [
                {"id": "yes", "label": {"en": "Yes", "es": "Sí", "pt": "Sim"}},
                {"id": "no", "label": {"en": "No", "es": "No", "pt": "Não"}},
            ],
        },
    ],
}


def test_a_practice_can_add_an_instrument_with_its_own_text() -> None:
    instruments = load_instruments({"pulse": PRACTICE})
    pulse = instruments["pulse"]
    assert [item.id for item in pulse.items] == ["closeness", "talked"]
    assert pulse.item("closeness").text_in("es") == "¿Cuánta cercanía sentiste?"
    assert validate_answer(pulse.item("closeness"), "5") == 5
    with pytest.raises(InvalidAnswer):
        validate_answer(pulse.item("closeness"), "0")
    assert "dyad_checkin" in instruments


def broken(change: Any) -> dict[str, Any]:
    table = copy.deepcopy(PRACTICE)
    change(table)
    return table


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (broken(lambda t: t["items"].append(copy.deepcopy(t["items"][0]))), "used twice"),
        (broken(lambda t: t["items"][0]["text"].pop("es")), "missing text in es"),
        (broken(lambda t: t["items"][0].update(min=5, max=5)), "min < max"),
        (broken(lambda t: t["items"][0].update(max=500)), "min < max"),
        (broken(lambda t: t["items"][0].update(min=True)), "whole number"),
        (broken(lambda t: t["items"][1]["choices"].pop()), "at least two"),
        (broken(lambda t: t["items"][1]["choices"][1].update(id="nope")), "'yes' and 'no'"),
        (broken(lambda t: t["items"][0].update(optinal=True)), "unknown keys"),
        (broken(lambda t: t["items"][0].update(type="slider")), "type"),
        (broken(lambda t: t["items"][0].update(role="alliance", type="text")), "alliance item"),
        (broken(lambda t: t["items"][0].update(choices=[])), "do not apply"),
        (broken(lambda t: t["items"][1].update(risk=["maybe"])), "risk"),
        (broken(lambda t: t["items"][1].update(requires="later")), "not an earlier item"),
        (broken(lambda t: t["items"][0].update(id="Bad Id")), "lower-case"),
        (broken(lambda t: t.pop("title")), "title"),
        (broken(lambda t: t.update(items=[])), "at least one"),
        (
            broken(lambda t: t["items"][1]["choices"][1]["label"].update(es="Sí")),
            "two different choices",
        ),
    ],
)
def test_a_broken_practice_instrument_is_refused_with_a_clear_reason(
    table: dict[str, Any], message: str
) -> None:
    with pytest.raises(InstrumentError, match=message):
        load_instruments({"pulse": table})


def test_a_practice_cannot_replace_a_builtin() -> None:
    with pytest.raises(InstrumentError, match="built-in"):
        load_instruments({"dyad_safety": PRACTICE})


def test_a_practice_safety_item_alerts_on_its_risk_choices() -> None:
    table = broken(lambda t: t["items"][1].update(role="safety"))
    item = load_instruments({"pulse": table})["pulse"].item("talked")
    assert is_risk_answer(item, "yes")
    assert not is_risk_answer(item, "no")
