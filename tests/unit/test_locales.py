"""Every message exists in every locale, with the same placeholders; plurals follow the
locale's rule; the Telegram language code and the time zone choose the locale."""

from __future__ import annotations

import pytest

from bot.core.safety import crisis_resources
from bot.core.timezones import locale_for
from bot.locales import (
    LOCALES,
    SUPPORTED_LANGUAGES,
    catalog,
    display_name,
    follow_zone,
    load,
    localized,
    pick_language,
    pick_locale,
    placeholders,
    plural_catalog,
    resolve,
    stored,
    t,
    tn,
)

OTHER_LOCALES = [locale for locale in LOCALES if locale != "en"]


def test_the_shipped_locales() -> None:
    assert {"en", "es-ES", "es-419"} <= set(LOCALES)
    assert LOCALES[0] == "en"
    assert {"en", "es"} <= set(SUPPORTED_LANGUAGES)


@pytest.mark.parametrize("locale", LOCALES)
def test_every_locale_has_the_same_keys(locale: str) -> None:
    reference, reference_plural = set(catalog("en")), set(plural_catalog("en"))
    assert len(reference) > 20
    keys, plural = set(catalog(locale)), set(plural_catalog(locale))
    assert keys - reference == set(), f"{locale} has keys English lacks"
    assert reference - keys == set(), f"{locale} lacks keys English has"
    assert plural == reference_plural, f"{locale}'s plural keys differ from English"


@pytest.mark.parametrize("locale", OTHER_LOCALES)
def test_placeholders_match_english(locale: str) -> None:
    english, other = catalog("en"), catalog(locale)
    mismatched = {
        key: (sorted(placeholders(english[key])), sorted(placeholders(other[key])))
        for key in english
        if key in other and placeholders(english[key]) != placeholders(other[key])
    }
    assert mismatched == {}


@pytest.mark.parametrize("locale", OTHER_LOCALES)
def test_plural_forms_use_the_english_placeholders(locale: str) -> None:
    def used(forms: tuple[str, ...]) -> frozenset[str]:
        return frozenset().union(*(placeholders(form) for form in forms)) | {"count"}

    english, other = plural_catalog("en"), plural_catalog(locale)
    mismatched = {key: key for key in english if used(english[key]) != used(other[key])}
    assert mismatched == {}


@pytest.mark.parametrize("locale", LOCALES)
def test_no_message_or_plural_form_is_empty(locale: str) -> None:
    entry = load(locale)
    empty = [key for key, text in entry.messages.items() if not text.strip()]
    empty += [key for key, forms in entry.plurals.items() if not all(f.strip() for f in forms)]
    assert empty == []
    # One form per plural category of the locale (English 2, Spanish 3: one, many, other).
    assert {key: len(f) for key, f in entry.plurals.items() if len(f) != entry.num_plurals} == {}


@pytest.mark.parametrize(
    ("code", "expected"),
    [("es", "es"), ("es-MX", "es"), ("ES_es", "es"), ("es-419", "es"), ("pt-BR", "pt"),
     ("pt", "pt"), ("en-GB", "en"), ("fr", "en"), (None, "en")],
)  # fmt: skip
def test_the_bare_language_of_a_code(code: str | None, expected: str) -> None:
    assert pick_language(code) == expected


@pytest.mark.parametrize(
    ("code", "zone", "expected"),
    [
        ("es", None, "es-ES"),
        ("es", "Europe/Madrid", "es-ES"),
        ("es-ES", "America/Bogota", "es-ES"),
        ("es", "America/Mexico_City", "es-419"),
        ("es", "America/Argentina/Buenos_Aires", "es-419"),
        ("es", "America/Bogota", "es-419"),
        ("es-MX", None, "es-419"),
        ("es-AR", "Europe/Madrid", "es-419"),
        ("es-419", None, "es-419"),
        ("es_us", "America/New_York", "es-419"),
        ("es", "America/New_York", "es-ES"),
        ("en-GB", "America/Bogota", "en"),
        ("de", "Europe/Berlin", "en"),
        (None, None, "en"),
    ],
)
def test_the_language_code_and_time_zone_choose_the_locale(
    code: str | None, zone: str | None, expected: str
) -> None:
    assert pick_locale(code, zone) == expected


@pytest.mark.parametrize(
    ("stored", "expected"),
    [("en", "en"), ("es", "es-ES"), ("es-ES", "es-ES"), ("es-419", "es-419"), ("xx", "en")],
)
def test_stored_languages_keep_working(stored: str, expected: str) -> None:
    assert resolve(stored) == expected
    assert catalog(stored) is catalog(expected)


def test_t_fills_placeholders_in_the_chosen_locale() -> None:
    assert "12" in t("es", "common.too_long", limit=12)
    assert t("es", "common.too_long", limit=12) != t("en", "common.too_long", limit=12)
    assert t("es", "common.too_long", limit=12) == t("es-ES", "common.too_long", limit=12)
    assert "12" in t("pt-BR", "common.too_long", limit=12)
    assert t("pt-BR", "common.too_long", limit=12) == t("pt", "common.too_long", limit=12)


def test_placeholders_parser_sees_names_only() -> None:
    assert placeholders("Hi {name}, {count} new and {{literal}}") == {"name", "count"}


@pytest.mark.parametrize(
    ("locale", "count", "expected"),
    [
        ("en", 1, "…and 1 earlier note,"),
        ("en", 3, "…and 3 earlier notes,"),
        ("es-ES", 1, "…y 1 anterior, que no cabe"),
        ("es-ES", 0, "…y 0 anteriores, que no caben"),
        ("es-419", 2, "…y 2 anteriores, que no caben"),
    ],
)
def test_a_plural_message_takes_the_form_of_its_count(
    locale: str, count: int, expected: str
) -> None:
    assert tn(locale, "notes.more", count).startswith(expected)


def test_plural_and_singular_keys_are_not_mixed_up() -> None:
    with pytest.raises(KeyError):
        t("en", "notes.more")
    with pytest.raises(KeyError):
        tn("en", "common.too_long", 2)


@pytest.mark.parametrize(
    ("language", "zone", "expected"),
    [
        ("es-ES", "America/Lima", "es-419"),
        ("es", "America/Santiago", "es-419"),
        ("es-419", "Europe/Madrid", "es-ES"),
        ("es-419", "America/New_York", "es-419"),
        ("es-ES", "Europe/London", "es-ES"),
        ("en", "America/Bogota", "en"),
    ],
)
def test_the_time_zone_a_spanish_speaker_chooses_sets_the_variant(
    language: str, zone: str, expected: str
) -> None:
    assert follow_zone(language, zone) == expected


def test_locales_are_named_in_themselves() -> None:
    assert [display_name(c) for c in ("en", "es", "es-ES", "es-419")] == [
        "English",
        "Español",
        "Español (España)",
        "Español (Latinoamérica)",
    ]


@pytest.mark.parametrize("language", ["es", "es-ES", "es-419"])
def test_the_crisis_lines_follow_the_time_zone_never_the_spanish_variant(language: str) -> None:
    # Spain's Spanish read in Bogotá still gets Colombia's lines (123), never Spain's 112.
    numbers = {r.number for r in crisis_resources(locale_for(language, "America/Bogota"))}
    assert "123" in numbers and "112" not in numbers
    assert locale_for(language, "Europe/Madrid") == "es-ES"


def test_prompts_and_instruments_fall_back_from_the_variant_to_the_language() -> None:
    table = {"en": "Hi", "es": "Hola", "es-419": "Hola a ustedes"}
    assert localized(table, "es-419") == "Hola a ustedes"
    assert localized(table, "es-ES") == localized(table, "es") == "Hola"
    assert localized({"en": "Hi"}, "es-419") == "Hi"


@pytest.mark.parametrize(
    ("locale", "kept"), [("en", "en"), ("es-ES", "es"), ("es", "es"), ("es-419", "es-419")]
)
def test_a_default_variant_is_stored_as_its_bare_language(locale: str, kept: str) -> None:
    assert stored(locale) == kept and resolve(kept) == resolve(locale)
