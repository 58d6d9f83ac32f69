"""Every message exists in every language, with the same placeholders."""

from __future__ import annotations

import pytest

from bot.locales import SUPPORTED_LANGUAGES, catalog, pick_language, placeholders, t


def test_every_language_has_the_same_keys() -> None:
    reference = set(catalog("en"))
    assert len(reference) > 20
    for language in SUPPORTED_LANGUAGES:
        keys = set(catalog(language))
        assert keys - reference == set(), f"{language} has keys English lacks"
        assert reference - keys == set(), f"{language} lacks keys English has"


@pytest.mark.parametrize("language", [lang for lang in SUPPORTED_LANGUAGES if lang != "en"])
def test_placeholders_match_english(language: str) -> None:
    english = catalog("en")
    other = catalog(language)
    mismatched = {
        key: (sorted(placeholders(english[key])), sorted(placeholders(other[key])))
        for key in english
        if key in other and placeholders(english[key]) != placeholders(other[key])
    }
    assert mismatched == {}


def test_no_message_is_empty() -> None:
    for language in SUPPORTED_LANGUAGES:
        empty = [key for key, text in catalog(language).items() if not text.strip()]
        assert empty == [], language


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("es", "es"),
        ("es-MX", "es"),
        ("ES_es", "es"),
        ("pt-BR", "pt"),
        ("pt", "pt"),
        ("en-GB", "en"),
        ("fr", "en"),
        (None, "en"),
    ],
)
def test_telegram_language_code_picks_the_closest_catalog(code: str | None, expected: str) -> None:
    assert pick_language(code) == expected


def test_t_fills_placeholders_in_the_chosen_language() -> None:
    assert "12" in t("es", "common.too_long", limit=12)
    assert t("es", "common.too_long", limit=12) != t("en", "common.too_long", limit=12)
    assert "12" in t("pt-BR", "common.too_long", limit=12)
    assert t("pt-BR", "common.too_long", limit=12) == t("pt", "common.too_long", limit=12)


def test_placeholders_parser_sees_names_only() -> None:
    assert placeholders("Hi {name}, {count} new and {{literal}}") == {"name", "count"}
