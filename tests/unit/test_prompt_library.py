"""The prompt library: complete, bilingual, kind in tone, and safe under a safety hold."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from bot.locales import SUPPORTED_LANGUAGES, catalog, placeholders
from schedules.library import (
    CHOICES,
    CONFLICT_TAG,
    HOLD_SUBSTITUTE_TAGS,
    LibraryError,
    Prompt,
    PromptLibrary,
    UnknownPromptError,
    hold_substitutes,
    load_library,
)

LIBRARY = load_library()

# CLINICAL.md, "Skill-practice prompts": the tag each exercise's skills carry.
CLINICAL_EXERCISES = {
    "soft_startup": "Soft start-up (Gottman)",
    "repair": "Repair attempts (Gottman)",
    "stress_reducing": "Stress-reducing conversation (Gottman)",
    "fondness_admiration": "Fondness and admiration",
    "turning_toward": "Turning toward bids",
    "shared_cycle": "The cycle as the shared enemy (EFT)",
    "are_accessible": "Are you there for me? accessible",
    "are_responsive": "Are you there for me? responsive",
    "are_engaged": "Are you there for me? engaged",
    "unified_detachment": "Unified detachment (IBCT)",
    "speaker_listener": "Speaker-listener (PREP)",
    "daily_appreciation": "Hope-focused daily appreciation",
}
PAUSED_UNDER_HOLD = {
    "soft_startup",
    "repair",
    "speaker_listener",
    "shared_cycle",
    "unified_detachment",
}


def _prompt(**overrides: object) -> dict[str, object]:
    table: dict[str, object] = {
        "key": "hope.practice_own",
        "kind": "hope",
        "answer": "text",
        "text": {
            "en": "What went well, {name}?",
            "es": "¿Qué salió bien, {name}?",
            "pt": "O que deu certo, {name}?",
        },
    }
    table.update(overrides)
    return table


def test_the_library_ships_enough_prompts_of_each_kind() -> None:
    assert len(LIBRARY.by_kind("hope")) >= 20
    assert len(LIBRARY.by_kind("skill")) >= 16
    assert len(LIBRARY.by_kind("couple_space")) >= 8
    assert [p.key for p in LIBRARY.by_kind("checkin")] == ["checkin.invite"]


@pytest.mark.parametrize("exercise", sorted(CLINICAL_EXERCISES))
def test_every_clinical_exercise_has_a_skill_prompt(exercise: str) -> None:
    skills = [p for p in LIBRARY.by_kind("skill") if exercise in p.tags]
    assert skills, f"no skill prompt for {CLINICAL_EXERCISES[exercise]}"


def test_every_skill_has_its_own_follow_up_asking_whether_it_was_tried() -> None:
    followups = []
    for skill in LIBRARY.by_kind("skill"):
        followup = LIBRARY.followup_for(skill.key)
        assert followup is not None and followup.kind == "skill_followup", skill.key
        assert followup.answer == "buttons"
        assert followup.choices == ("yes", "partly", "not_yet")
        assert followup.optional_text, "after the button, a few words are invited"
        assert skill.followup_days == 2
        followups.append(followup.key)
    assert len(set(followups)) == len(followups), "two skills share a follow-up"
    assert set(followups) == {p.key for p in LIBRARY.by_kind("skill_followup")}


def test_conflict_exercises_and_their_follow_ups_are_paused_by_a_hold() -> None:
    for prompt in LIBRARY:
        if prompt.kind in {"skill", "skill_followup"} and PAUSED_UNDER_HOLD & set(prompt.tags):
            assert CONFLICT_TAG in prompt.tags, prompt.key


def test_appreciation_self_care_hope_and_couple_space_prompts_continue_under_a_hold() -> None:
    for prompt in LIBRARY:
        if prompt.kind in {"hope", "couple_space", "checkin"} or (
            HOLD_SUBSTITUTE_TAGS & set(prompt.tags)
        ):
            assert not prompt.is_conflict_communication, prompt.key
    for kind in ("skill", "skill_followup"):
        substitutes = hold_substitutes(LIBRARY, kind)
        assert len(substitutes) >= 4
        assert {"appreciation", "self_care"} <= {tag for p in substitutes for tag in p.tags}


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_every_prompt_is_written_in_every_language_briefly(language: str) -> None:
    for prompt in LIBRARY:
        text = prompt.text[language]
        assert 10 < len(text) < 400, prompt.key
        assert placeholders(text) <= {"name"}, prompt.key
        assert placeholders(text) == placeholders(prompt.text["en"]), prompt.key
    assert all(p.text["es"] != p.text["en"] for p in LIBRARY)


def test_wording_never_blames_and_spanish_uses_tu() -> None:
    blaming = re.compile(r"\b(you always|you never|your fault|tu culpa|culpa tuya)\b", re.I)
    formal_or_regional = re.compile(r"\b(usted|vosotros|vosotras|vuestra|vuestro|os)\b", re.I)
    for prompt in LIBRARY:
        assert not blaming.search(prompt.text["en"] + prompt.text["es"]), prompt.key
        assert not formal_or_regional.search(prompt.text["es"]), prompt.key


def test_portuguese_uses_voce_never_blames_and_differs_from_english() -> None:
    blaming = re.compile(r"\b(culpa sua|sua culpa|voc[eê] sempre|voc[eê] nunca)\b", re.I)
    formal_or_tu = re.compile(r"\b(o senhor|a senhora|tu|vós|vosso|vossa)\b", re.I)
    for prompt in LIBRARY:
        assert prompt.text["pt"] != prompt.text["en"], prompt.key
        assert not blaming.search(prompt.text["pt"]), prompt.key
        assert not formal_or_tu.search(prompt.text["pt"]), prompt.key


def test_every_button_has_a_label_in_every_language() -> None:
    used = {choice for prompt in LIBRARY for choice in prompt.choices}
    assert used <= set(CHOICES)
    for language in SUPPORTED_LANGUAGES:
        for choice in CHOICES:
            assert catalog(language)[f"schedules.choice.{choice}"].strip()


def test_text_fills_in_the_partners_own_name_in_their_language() -> None:
    assert LIBRARY.text("hope.small_win", "es-MX", name="Lucía").startswith("Hola, Lucía.")
    assert LIBRARY.text("hope.small_win", "en", name="Sam").startswith("Hi Sam.")
    assert LIBRARY.text("hope.small_win", "fr", name="Sam") == LIBRARY.text(
        "hope.small_win", "en", name="Sam"
    )


def test_an_unknown_key_is_a_clear_error() -> None:
    with pytest.raises(UnknownPromptError):
        LIBRARY.get("hope.does_not_exist")
    assert "hope.does_not_exist" not in LIBRARY


def test_with_tags_narrows_a_kind_and_no_tags_means_the_whole_kind() -> None:
    appreciation = LIBRARY.with_tags("skill", ["appreciation"])
    assert appreciation and all("appreciation" in p.tags for p in appreciation)
    assert LIBRARY.with_tags("hope", []) == LIBRARY.by_kind("hope")


def test_a_practice_adds_prompts_and_replaces_shipped_ones_by_key() -> None:
    replacement = _prompt(
        key="hope.small_win",
        text={"en": "Ours, {name}", "es": "Nuestro, {name}", "pt": "Nosso, {name}"},
    )
    library = load_library([_prompt(), replacement])
    assert len(library) == len(LIBRARY) + 1
    assert library.text("hope.small_win", "en", name="Ana") == "Ours, Ana"
    assert library.get("hope.practice_own").kind == "hope"
    assert LIBRARY.text("hope.small_win", "en", name="Ana") != "Ours, Ana", "shipped left alone"


def test_a_practice_cannot_change_a_shipped_prompts_kind() -> None:
    with pytest.raises(LibraryError, match="replaces a shipped hope prompt"):
        load_library([_prompt(key="hope.small_win", kind="couple_space")])


def test_a_practice_skill_needs_a_follow_up_that_exists() -> None:
    with pytest.raises(ValidationError, match="needs its follow-up"):
        Prompt.model_validate(_prompt(key="skill.ours", kind="skill"))
    broken = _prompt(
        key="skill.ours", kind="skill", followup="skill_followup.missing", followup_after="2d"
    )
    with pytest.raises(
        LibraryError, match=re.escape("unknown prompt key 'skill_followup.missing'")
    ):
        load_library([broken])
    reused = _prompt(
        key="skill.ours",
        kind="skill",
        tags=["appreciation"],
        followup="skill_followup.fondness_specific",
        followup_after="3d",
    )
    assert load_library([reused]).get("skill.ours").followup_days == 3


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"text": {"en": "Hi {name}", "pt": "Oi {name}"}}, "no Spanish"),
        ({"text": {"en": "Hi {name}", "es": "Hola {name}", "pt": " "}}, "text.pt is empty"),
        ({"text": {"es": "Hola", "pt": "Oi"}}, "no English"),
        (
            {"text": {"en": "Hi {partner}", "es": "Hola {partner}", "pt": "Oi {partner}"}},
            "unknown placeholder",
        ),
        ({"text": {"en": "Hi {name}", "es": "Hola", "pt": "Oi"}}, "different placeholders"),
        ({"text": {"en": "Hi {", "es": "Hola", "pt": "Oi"}}, "single '{'"),
        ({"text": {"en": "x" * 700, "es": "y", "pt": "z"}}, "characters long"),
        (
            {"text": {"en": "Hi", "es": "Hola", "pt": "Oi", "fr": "Salut"}},
            "unsupported language 'fr'",
        ),
        ({"key": "Hope Small"}, "wrong shape"),
        ({"answer": "buttons"}, "buttons prompt"),
        ({"answer": "buttons", "choices": ["maybe"]}, "buttons prompt"),
        ({"followup": "skill_followup.self_care"}, "only for skill prompts"),
        ({"followup_after": "2h", "kind": "skill", "followup": "x.y"}, "whole days"),
        ({"colour": "blue"}, "Extra inputs"),
    ],
)
def test_a_malformed_prompt_is_refused(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        Prompt.model_validate(_prompt(**overrides))


def test_a_library_reports_a_paused_kind_with_nothing_to_stand_in() -> None:
    only_conflict = [p for p in LIBRARY if p.kind != "skill" or p.is_conflict_communication]
    issues = PromptLibrary(only_conflict).issues()
    assert [(i.field, "stand in" in i.message) for i in issues] == [("tags", True)]
