"""Shared themes: what both partners raise, folded across case, accents and plurals, and
met across English and Spanish through the concept lexicon."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.themes import (
    THEME_LANGUAGES,
    Theme,
    concept_lexicon,
    fold,
    keywords,
    shared_themes,
    stem,
    stop_words,
    theme_key,
)

WORDS = (
    "money",
    "Money",
    "weekend",
    "weekends",
    "work",
    "working",
    "kids",
    "dinner",
    "argued",
    "arguing",
    "the",
    "and",
    "I",
    "think",
    "trabajo",
    "trabajos",
    "discusión",
    "discusiones",
    "dinero",
    "que",
    "pero",
    "niños",
    "Niños",
    "bills",
    "facturas",
    "plata",
    "fin de semana",
    "car",
    "coche",
)
texts = st.lists(st.lists(st.sampled_from(WORDS), max_size=12).map(" ".join), max_size=4)
languages = st.sampled_from(["en", "es", "es-ES", "es-419", "pt", "pt-BR"])


def words(themes: tuple[Theme, ...]) -> list[str]:
    return [theme.word for theme in themes]


def test_a_word_both_partners_use_is_a_theme() -> None:
    themes = shared_themes(
        ["We argued about money on Sunday"], "en", ["Money is tight this month"], "en"
    )
    assert words(themes) == ["money"]
    assert themes[0].mentions == 2


def test_a_word_only_one_partner_uses_is_not_a_theme() -> None:
    assert shared_themes(["The kids were sick"], "en", ["Work was long"], "en") == ()


def test_case_plurals_and_verb_endings_meet() -> None:
    themes = shared_themes(
        ["Weekends feel rushed; we keep arguing"], "en", ["The weekend, we argued again"], "en"
    )
    assert sorted(words(themes)) == ["argued", "weekend"]


def test_spanish_accents_and_plurals_meet() -> None:
    themes = shared_themes(
        ["Otra discusión por el trabajo"], "es", ["Las discusiones sobre trabajos"], "es"
    )
    assert sorted(fold(w) for w in words(themes)) == ["discusion", "trabajo"]


def test_portuguese_accents_plurals_and_the_weekend_meet() -> None:
    themes = shared_themes(
        ["Outra discussão sobre o trabalho no fim de semana"],
        "pt",
        ["As discussões sobre trabalhos; os fins de semana são corridos"],
        "pt",
    )
    assert sorted(fold(w) for w in words(themes)) == ["discussao", "fim de semana", "trabalho"]
    assert stem("cansada", "pt") == stem("cansado", "pt")
    assert stem("viagens", "pt") == stem("viagem", "pt")
    assert "voce" in stop_words("pt")


def test_stop_words_and_filler_never_become_themes() -> None:
    first = ["I think that we really need more time and I feel it"]
    second = ["I think we need time, I feel that really"]
    assert words(shared_themes(first, "en", second, "en")) == ["time"]
    assert shared_themes(["Creo que pero siempre"], "es", ["creo que siempre pero"], "es") == ()


def test_the_partners_own_names_are_not_themes() -> None:
    themes = shared_themes(
        ["Alex works late, money"], "en", ["I miss Alex at dinner, money"], "en", exclude=["Alex"]
    )
    assert words(themes) == ["money"]


def test_the_shown_form_is_the_most_used_across_both() -> None:
    themes = shared_themes(["weekends, weekends"], "en", ["weekend"], "en")
    assert words(themes) == ["weekends"]
    assert themes[0].mentions == 3


def test_limit_keeps_the_most_shared_themes() -> None:
    first = ["money money money work kids dinner"]
    second = ["money money work kids dinner"]
    themes = shared_themes(first, "en", second, "en", limit=2)
    assert words(themes) == ["money", "dinner"]


def test_folding_and_stemming_helpers() -> None:
    assert fold("Discusión NIÑOS") == "discusion ninos"
    assert stem("stopped", "en") == stem("stop", "en")
    assert stem("cansada", "es") == stem("cansado", "es")
    assert "que" in stop_words("es")
    assert "the" in stop_words("en")
    assert [s for s, _ in keywords("The kids' dinner!", "en")] == ["kid", "dinner"]


@settings(max_examples=60, deadline=None)
@given(first=texts, first_language=languages, second=texts, second_language=languages)
def test_themes_do_not_depend_on_which_partner_is_first(
    first: list[str], first_language: str, second: list[str], second_language: str
) -> None:
    assert shared_themes(first, first_language, second, second_language) == shared_themes(
        second, second_language, first, first_language
    )


@settings(max_examples=60, deadline=None)
@given(first=texts, first_language=languages, second=texts, second_language=languages)
def test_every_theme_comes_from_both_partners_words(
    first: list[str], first_language: str, second: list[str], second_language: str
) -> None:
    themes = shared_themes(first, first_language, second, second_language)

    def used(texts: list[str], language: str) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for text in texts:
            for root, surface in keywords(text, language):
                found.setdefault(theme_key(root, language), set()).add(surface)
        return found

    keys_first, keys_second = used(first, first_language), used(second, second_language)
    for theme in themes:
        parts = set(theme.word.split(" / "))
        # Some key both partners raised is shown with words one of them actually wrote.
        assert any(
            parts <= keys_first.get(key, set()) | keys_second.get(key, set())
            for key in set(keys_first) & set(keys_second)
        ), theme


# --- across languages -------------------------------------------------------------------


def test_a_concept_raised_in_two_languages_is_one_theme_with_both_words() -> None:
    themes = shared_themes(
        ["We argued about money and the kids again"], "en", ["Otra vez el dinero y los niños"], "es"
    )
    assert sorted(words(themes)) == ["kids / niños", "money / dinero"]
    assert all(theme.mentions == 2 for theme in themes)


def test_the_cross_language_theme_does_not_depend_on_who_wrote_which_language() -> None:
    english, spanish = ["Bills, bills and the weekend"], ["Las facturas y el fin de semana"]
    assert shared_themes(english, "en", spanish, "es-419") == shared_themes(
        spanish, "es-419", english, "en"
    )
    assert words(shared_themes(english, "en", spanish, "es-ES")) == [
        "bills / facturas",
        "weekend / fin de semana",
    ]


def test_portuguese_meets_english_and_spanish_through_the_lexicon() -> None:
    portuguese = ["O dinheiro das crianças", "Falta dinheiro"]
    assert words(shared_themes(["Money and the kids"], "en", portuguese, "pt-BR")) == [
        "money / dinheiro",
        "kids / crianças",
    ]
    assert words(
        shared_themes(["Otra discusión por el trabajo"], "es-ES", ["A briga no trabalho"], "pt")
    ) == [
        "discusión / briga",
        "trabajo / trabalho",
    ]


def test_plurals_and_regional_words_meet_their_concept() -> None:
    # "plata" (Latin America) and "dinero" are one concept; plurals are stemmed first.
    themes = shared_themes(["No alcanza la plata"], "es-419", ["Money worries"], "en")
    assert words(themes) == ["money / plata"]
    assert words(shared_themes(["Los gastos"], "es", ["Spending"], "en")) == ["spending / gastos"]


def test_words_outside_the_lexicon_do_not_meet_across_languages() -> None:
    assert shared_themes(["The car broke down"], "en", ["El coche se averió"], "es") == ()


def test_a_private_word_in_another_language_is_no_theme() -> None:
    # Only what each partner marked OK to raise is passed in: the other's language changes
    # nothing about that.
    assert shared_themes(["money"], "en", [], "es") == ()


def test_the_lexicon_is_bilingual_and_unambiguous() -> None:
    lexicon = concept_lexicon()  # loading refuses a stop word or a word in two concepts
    concepts = set(lexicon.values())
    assert len(concepts) >= 15
    for language in THEME_LANGUAGES:
        assert {c for (lang, _), c in lexicon.items() if lang == language} == concepts
    assert theme_key(stem("dinero", "es"), "es-419") == theme_key(stem("money", "en"), "en")
    assert theme_key(stem("coche", "es"), "es") == stem("coche", "es")
