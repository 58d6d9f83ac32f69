"""Crisis language is caught in any supported language, and the crisis numbers are right."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.safety import (
    KINDS,
    CrisisResource,
    crisis_phrases,
    crisis_resources,
    default_crisis_resources,
    fold,
    packaged_countries,
    parse_crisis_overrides,
    parse_phrase_list,
    phrase_source,
    render_crisis_message,
    screen_text,
)
from bot.locales import SUPPORTED_LANGUAGES

# --- screening ----------------------------------------------------------------------------

CAUGHT = [
    # English, suicide
    ("I want to kill myself", "suicide"),
    ("sometimes I think I should just end my life.", "suicide"),
    ("I WANT TO DIE", "suicide"),
    ("honestly i don't want to live anymore", "suicide"),
    ("I don\u2019t want to be alive", "suicide"),
    ("She'd be better off without me...", "suicide"),
    ("I've been having thoughts of suicide", "suicide"),
    ("feeling suicidal again", "suicide"),
    ("I wish I was dead", "suicide"),
    ("I'm thinking about taking all my pills", "suicide"),
    # English, self-harm
    ("I hurt myself last night", "self_harm"),
    ("I've started self-harming again", "self_harm"),
    ("self harm", "self_harm"),
    ("I keep cutting myself", "self_harm"),
    # English, violence
    ("When he drinks, he hits me.", "violence"),
    ("she hit me yesterday", "violence"),
    ("My husband has hit me twice", "violence"),
    ("I'm afraid of my partner", "violence"),
    ("I feel unsafe at home", "violence"),
    ("He threatened to kill me if I leave", "violence"),
    ("I don't feel safe at home anymore", "violence"),
    ("he choked me", "violence"),
    ("I'm scared of him", "violence"),
    # Spanish, suicide
    ("QUIERO MORIR", "suicide"),
    ("quiero morír", "suicide"),
    ("Me quiero matar", "suicide"),
    ("a veces pienso en matarme", "suicide"),
    ("He pensado en quitarme la vida.", "suicide"),
    ("no quiero vivir así", "suicide"),
    ("Estarían mejor sin mí", "suicide"),
    ("quiero acabar con todo", "suicide"),
    ("tengo ideas suicidas", "suicide"),
    # Spanish, self-harm
    ("A veces me hago daño", "self_harm"),
    ("tengo ganas de hacerme daño", "self_harm"),
    ("HACERME DANO", "self_harm"),
    ("he vuelto a autolesionarme", "self_harm"),
    ("me corto los brazos", "self_harm"),
    # Spanish, violence
    ("mi pareja me pega", "violence"),
    ("Cuando bebe, me pegó.", "violence"),
    ("tengo miedo de mi pareja", "violence"),
    ("Le tengo miedo a mi marido", "violence"),
    ("me amenazó con matarme", "violence"),
    ("no me siento segura en casa", "violence"),
    ("Me dio una bofetada delante de los niños", "violence"),
    # Portuguese (Brazil), suicide
    ("QUERO MORRER", "suicide"),
    ("às vezes penso em me matar", "suicide"),
    ("Já pensei em tirar a minha própria vida.", "suicide"),
    ("não quero mais viver assim", "suicide"),
    ("Eles ficariam melhor sem mim", "suicide"),
    ("queria dormir e não acordar mais", "suicide"),
    ("tenho pensamentos suicidas", "suicide"),
    ("tô com vontade de sumir", "suicide"),
    # Portuguese (Brazil), self-harm
    ("voltei a me cortar", "self_harm"),
    ("tenho vontade de me machucar", "self_harm"),
    ("Me machuquei de propósito ontem", "self_harm"),
    # Portuguese (Brazil), violence
    ("meu marido me bateu de novo", "violence"),
    ("Quando bebe, ele me agride.", "violence"),
    ("tenho medo do meu companheiro", "violence"),
    ("Ele ameaçou me matar se eu for embora", "violence"),
    ("não me sinto segura em casa", "violence"),
    ("Ela me deu um tapa na frente das crianças", "violence"),
    ("ele me enforcou", "violence"),
]


@pytest.mark.parametrize(("text", "kind"), CAUGHT)
def test_crisis_language_is_flagged_with_its_kind(text: str, kind: str) -> None:
    result = screen_text(text)
    assert result.flagged
    assert kind in result.kinds


@pytest.mark.parametrize(
    "text",
    [
        "¡¡Quiero morir!!",
        "quiero... morir",
        "QUIERO   MORÍR",
        "Quiero\nmorir",
        "ｑｕｉｅｒｏ ｍｏｒｉｒ",  # fullwidth letters
        "quiero mori\u0301r",  # a combining accent rather than a precomposed one
        "quiero mo\u00adrir",  # a soft hyphen inside the word
    ],
)
def test_case_accents_spacing_and_punctuation_do_not_hide_a_phrase(text: str) -> None:
    assert screen_text(text).kinds == {"suicide"}


def test_n_with_tilde_folds_the_same_way_in_text_and_list() -> None:
    assert screen_text("hacerme daño").flagged
    assert screen_text("hacerme dano").flagged
    assert fold("DAÑO") == fold("dano") == "dano"


@pytest.mark.parametrize(("text", "language"), [("I want to die", "es"), ("me pega", "en")])
def test_every_language_is_screened_whatever_the_partner_speaks(text: str, language: str) -> None:
    assert screen_text(text, language=language).flagged


def test_several_kinds_in_one_message_are_all_reported() -> None:
    result = screen_text("He hits me and some days I want to die. Me hago daño.")
    assert result.kinds == {"violence", "suicide", "self_harm"}


# Decided against flagging: whole words only, and lone verbs that are nearly always
# idioms stay out of the lists ("dying to", "killing it", "hit me up", "me muero de
# ganas"). Phrases of real intent ("want to die", "kill me") do flag, even in jest.
NOT_CAUGHT = [
    "I need to work on this skill",
    "this skillet is great",
    "a killer app",
    "We killed it at the quiz",
    "I'm dying to see the movie",
    "hit me up later",
    "It suddenly hit me that I love her",
    "You hurt me when you said that",
    "Me muero de ganas de verte",
    "vamos a matar el tiempo",
    "Me da miedo hablar de esto en la sesión",
    "Tengo que trabajar mi paciencia",
    "Morri de rir com o filme",
    "Vamos matar a saudade no fim de semana",
    "Me bateu uma saudade dele hoje",
    "Estou morta de cansaço",
    "Me dá medo falar disso na sessão",
    "Vou me jogar nesse projeto novo",
    "",
    "   \n\t ",
]


@pytest.mark.parametrize("text", NOT_CAUGHT)
def test_ordinary_words_and_idioms_are_not_flagged(text: str) -> None:
    result = screen_text(text)
    assert not result.flagged
    assert result.kinds == frozenset()


def test_the_result_never_carries_the_partners_words() -> None:
    result = screen_text("Mi marido Roberto me pega y quiero morir")
    shown = repr(result) + str(sorted(result.phrase_ids))
    for word in ("roberto", "marido", "pega", "morir", "quiero"):
        assert word not in shown.lower()


def test_a_phrase_id_leads_back_to_its_list_entry_for_the_therapist() -> None:
    (phrase_id,) = screen_text("tengo miedo de mi pareja").phrase_ids
    entry = phrase_source(phrase_id)
    assert entry is not None
    assert (entry.language, entry.kind) == ("es", "violence")
    assert "miedo" in entry.source
    assert phrase_source("es.violence.00000000") is None


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_each_language_has_a_thorough_list_of_every_kind(language: str) -> None:
    phrases = [phrase for phrase in crisis_phrases() if phrase.language == language]
    assert len(phrases) >= 40
    assert {phrase.kind for phrase in phrases} == KINDS


def test_phrase_ids_are_unique_across_languages() -> None:
    ids = [phrase.id for phrase in crisis_phrases()]
    assert len(ids) == len(set(ids))


def test_list_syntax_covers_prefixes_choices_optional_words_and_gaps() -> None:
    (phrase,) = parse_phrase_list("en", "violence: (he|she) .. (hits|hit) my (own|) face*\n")
    assert phrase.pattern.search(fold("he always hits my faces"))
    assert phrase.pattern.search(fold("she hit my own face"))
    assert not phrase.pattern.search(fold("he really very often hits my face"))  # 3 words: too far
    assert not phrase.pattern.search(fold("the hit my face"))


@pytest.mark.parametrize(
    "bad",
    [
        "suicid: want to die",  # unknown kind
        "want to die",  # no kind
        "suicide: (want|wanted to die",  # unbalanced choice
        "suicide: .. want to die",  # gap at the edge
        "suicide: (so|) want to die",  # optional first word
        "suicide: ***",  # no word
        "suicide: wa*nt to die",  # a star inside a word
        "suicide: want to die\nsuicide: Want to DIE",  # the same phrase twice
    ],
)
def test_a_malformed_list_fails_loudly(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_phrase_list("en", bad)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(codec=None, categories=None)))
def test_screening_never_raises_on_any_text(text: str) -> None:
    result = screen_text(text)
    assert result.flagged == bool(result.kinds)


@settings(max_examples=15, deadline=None)
@given(st.text(min_size=1, max_size=40))
def test_screening_takes_ten_thousand_character_messages(chunk: str) -> None:
    text = (chunk * (10_000 // len(chunk) + 1))[:10_000]
    screen_text(text)


def test_lone_surrogates_and_control_characters_are_harmless() -> None:
    assert screen_text("\ud800\x00\x07 quiero\x0bmorir \udfff").kinds == {"suicide"}


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=60), st.text(max_size=60), st.sampled_from(CAUGHT))
def test_a_phrase_is_found_whatever_surrounds_it(
    before: str, after: str, case: tuple[str, str]
) -> None:
    text, kind = case
    assert kind in screen_text(f"{before} {text} {after}").kinds


def _words_of_the_lists() -> list[str]:
    words = set()
    for phrase in crisis_phrases():
        words.update(re.findall(r"[^\s()|*.]+", fold(phrase.source.replace("*", " "))))
    return sorted(words)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([*_words_of_the_lists(), "x", "the", "me"]), max_size=12))
def test_the_quick_word_check_never_skips_a_phrase_the_full_match_finds(words: list[str]) -> None:
    text = " ".join(words)
    folded = fold(text)
    expected = {phrase.id for phrase in crisis_phrases() if phrase.pattern.search(folded)}
    assert screen_text(text).phrase_ids == expected


# --- crisis resources ---------------------------------------------------------------------


def numbers(locale: str) -> set[str]:
    return {resource.number for resource in crisis_resources(locale)}


def emergency(locale: str) -> str:
    (resource,) = [r for r in crisis_resources(locale) if r.emergency]
    return resource.number


def test_united_states_numbers() -> None:
    assert numbers("en-US") == {"911", "988", "1-800-799-7233"}
    assert emergency("en-US") == "911"
    lifeline = next(r for r in crisis_resources("en-US") if r.number == "988")
    assert "text" in lifeline.description


def test_spain_numbers() -> None:
    assert numbers("es-ES") == {"112", "024", "016"}
    assert emergency("es-ES") == "112"
    gender_violence = next(r for r in crisis_resources("es-ES") if r.number == "016")
    assert "factura" in gender_violence.description
    in_english = next(r for r in crisis_resources("en-ES") if r.number == "016")
    assert "phone bill" in in_english.description


def test_united_kingdom_numbers() -> None:
    assert numbers("en-GB") == {"999", "116 123", "0808 2000 247"}
    assert emergency("en-GB") == "999"
    assert "112" in render_crisis_message("en", crisis_resources("en-GB"))
    assert numbers("en-UK") == numbers("en_gb") == numbers("en-GB")


def test_texts_follow_the_partners_language() -> None:
    spanish = crisis_resources("es-US")
    assert {r.number for r in spanish} == {"911", "988", "1-800-799-7233"}
    assert any("Línea" in r.name for r in spanish)
    assert all(r.name != "National Domestic Violence Hotline" for r in spanish)


@pytest.mark.parametrize("locale", ["es", "en", "fr-FR", "es-VE", "pt-PT", "", "zz-419"])
def test_without_a_known_country_there_is_no_number_only_the_local_emergency_line(
    locale: str,
) -> None:
    assert crisis_resources(locale) == []
    for language in SUPPORTED_LANGUAGES:
        message = render_crisis_message(language, crisis_resources(locale))
        assert not re.search(r"\d", message)
    assert "local emergency number" in render_crisis_message("en", [])
    assert "número local de emergencias" in render_crisis_message("es", [])


@pytest.mark.parametrize("country", sorted(packaged_countries()))
@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_every_default_has_one_emergency_line_and_texts_in_each_language(
    country: str, language: str
) -> None:
    resources = default_crisis_resources(country, language)
    assert sum(r.emergency for r in resources) == 1
    assert all(r.name and r.description for r in resources)


def test_rendered_message_lists_every_number_in_the_partners_language() -> None:
    message = render_crisis_message("es", crisis_resources("es-ES"))
    assert "llama al 112" in message
    for number in ("024", "016"):
        assert number in message
    assert "Este chat no es un servicio de emergencias" in message
    english = render_crisis_message("en", crisis_resources("en-US"))
    assert "You are not alone" in english
    assert "If you are in danger now, call 911" in english
    assert "1-800-799-7233" in english
    assert len(english) < 4096


def test_practice_resources_replace_the_defaults_for_their_locale() -> None:
    overrides = {
        "es-ES": [{"name": "Línea de la clínica", "number": "900 000 000", "description": "24 h"}],
        "es": [{"name": "Centro local", "number": "555 0100"}],
    }
    assert numbers_with(overrides, "es-ES") == {"900 000 000"}
    # A bare-language table fills in where no country is known...
    assert numbers_with(overrides, "es-VE") == {"555 0100"}
    assert numbers_with(overrides, "es") == {"555 0100"}
    # ...but never hides a country's correct defaults.
    assert numbers_with({"en": overrides["es"]}, "en-GB") == {"999", "116 123", "0808 2000 247"}


def numbers_with(overrides: dict[str, list[dict[str, str]]], locale: str) -> set[str]:
    return {r.number for r in crisis_resources(locale, overrides)}


def test_override_locales_are_matched_whatever_their_spelling() -> None:
    overrides = {"EN_us": [{"name": "Practice line", "number": "+1 (555) 010-0199"}]}
    assert numbers_with(overrides, "en-US") == {"+1 (555) 010-0199"}


@pytest.mark.parametrize(
    "entry",
    [
        {"name": "No number"},
        {"name": "Letters", "number": "call-us"},
        {"name": "", "number": "024"},
        {"name": "Typo", "number": "024", "descripton": "x"},
        {"name": "Bad flag", "number": "024", "emergency": "yes"},
    ],
)
def test_a_bad_practice_resource_is_refused_with_its_place(entry: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"crisis\.es-ES\[0\]"):
        parse_crisis_overrides({"es-ES": [entry]})


def test_an_empty_practice_table_is_refused() -> None:
    with pytest.raises(ValueError, match="non-empty list"):
        parse_crisis_overrides({"es-ES": []})


def test_resource_text_is_escaped_for_telegram_html() -> None:
    resources = [
        CrisisResource("<i>Help</i> & care", "024", "Open <24h>"),
        CrisisResource("Emergencies", "112", emergency=True),
    ]
    message = render_crisis_message("en", resources)
    assert "&lt;i&gt;Help&lt;/i&gt; &amp; care" in message
    assert "Open &lt;24h&gt;" in message
    assert "<i>" not in message
    assert "call 112" in message


@pytest.mark.parametrize(
    "text",
    ["I could kill him when he leaves the dishes", "I'm afraid of her reaction", "me pega mucho"],
)
def test_ambiguous_everyday_phrases_still_flag_because_recall_comes_first(text: str) -> None:
    # A therapist clearing a false alarm costs a minute; a missed disclosure can cost a life.
    assert screen_text(text).kinds == {"violence"}


def test_errors_name_the_section_the_practice_used() -> None:
    with pytest.raises(ValueError, match=r"crisis_resources\.es-ES\[0\]"):
        parse_crisis_overrides({"es-ES": [{"name": "x"}]}, section="crisis_resources")


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Me quiero hacer daño", "self_harm"),
        ("me voy a hacer daño otra vez", "self_harm"),
        ("me quiero matar", "suicide"),
        ("a veces quiero desaparecer", "suicide"),
        ("I feel like dying most mornings", "suicide"),
        ("I want to cut myself", "self_harm"),
    ],
)
def test_everyday_phrasings_are_caught(text: str, kind: str) -> None:
    assert kind in screen_text(text).kinds
