"""Shared themes: what both partners raise, folded across case, accents and plurals."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.themes import Theme, fold, keywords, shared_themes, stem, stop_words

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
)
texts = st.lists(st.lists(st.sampled_from(WORDS), max_size=12).map(" ".join), max_size=4)
languages = st.sampled_from(["en", "es", "pt"])


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
@given(first=texts, second=texts, language=languages)
def test_every_theme_comes_from_both_partners_words(
    first: list[str], second: list[str], language: str
) -> None:
    themes = shared_themes(first, language, second, language)
    stems_first = {s for text in first for s, _ in keywords(text, language)}
    stems_second = {s for text in second for s, _ in keywords(text, language)}
    for theme in themes:
        root = stem(fold(theme.word), language)
        assert root in stems_first
        assert root in stems_second
