"""Dyad's Spanish comes in two variants, each consistent throughout.

es-ES (Spain): tú to each person, vosotros to the two partners. es-419 (Latin America):
tú to each person, ustedes to the two partners. Neither ever uses usted with one person
(partners and therapists alike), and both name each concept one way: the check-in is a
"registro", an alert an "alerta". The evening window (17–21 h) is "tarde" in es-ES and
"noche" in es-419. The checks are small lists of forms that cannot be right in a
variant, chosen so that the third person plural ("los dos mantienen el mismo ritmo",
said to a therapist about a couple) is not mistaken for ustedes.

es-419 users read a prompt's or instrument's ``es-419`` text where there is one, else its
``es`` text (:func:`bot.locales.localized`): the es-419 check reads exactly that, so an
``es`` text in vosotros without an ``es-419`` beside it fails here.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.locales import catalog, localized, plural_catalog

ROOT = Path(__file__).parents[2]
# Files whose Spanish texts sit under an `es` key (text.es, name = { es = ... }, ...).
MULTILINGUAL_DATA = (
    *sorted((ROOT / "schedules" / "library").glob("*.toml")),
    *sorted((ROOT / "bot" / "core" / "data").rglob("*.toml")),
    ROOT / "schedules" / "default_practice.toml",
    ROOT / "docs" / "practice.example.toml",
)
# Every text in these speaks to a partner, even one without a "tú" in it.
ADDRESSED = (ROOT / "schedules" / "library", ROOT / "bot" / "core" / "data" / "instruments")

# Never Dyad's register, whoever reads the text (ustedes is es-419's plural, never es-ES's).
_USTED_PRONOUNS = re.compile(r"\b(ustedes|usted)\b", re.IGNORECASE)
_USTED_SINGULAR = re.compile(r"\busted\b", re.IGNORECASE)
# Vosotros, never es-419's: pronouns, possessives, the -áis/-éis present and future, a few
# -ís presents and the imperatives Dyad's texts use.
_VOSOTROS_FORMS = re.compile(
    r"\b(vosotros|vosotras|vuestro|vuestra|vuestros|vuestras|os|sois|decidís|recibís|"
    r"compartís|escribís|cread|enviad|añadid|añadidme|vinculadlo|aseguraos|elegid|hablad)\b"
    r"|\w(áis|éis)\b",
    re.IGNORECASE,
)
# Usted imperatives of verbs Dyad uses with tú ("Escribe", "no la reenvíes"), at the start
# of a sentence or after "no" and its pronouns. Elsewhere the same form is often a third
# person subjunctive ("cuando te lo pida"), so only these places count.
_USTED_IMPERATIVE = re.compile(
    r"(?:^|[.:;!?¿¡]\s+|\bpor favor,\s+|\bno\s+(?:(?:me|te|se|le|lo|la|los|las|nos)\s+)*)"
    r"(envíe|reenvíe|escriba|indique|elija|toque|añada|llame|responda|comparta|piense|"
    r"recuerde|imagine|busque|pruebe|describa|dedique|consulte|pulse|abra|guarde)\b",
    re.IGNORECASE,
)
# A text that speaks to someone (tú or vosotros)...
_SECOND_PERSON = re.compile(
    r"\b(tú|tu|tus|te|ti|contigo|os|vosotros|vosotras|vuestro|vuestra|vuestros|vuestras)\b"
    r"|\w(áis|éis)\b",
    re.IGNORECASE,
)
# ...never addresses the two partners, or itself, with these ustedes forms. ("Están" and
# "estaban" alone are left out: "tus mensajes están en pausa" is right.)
_USTEDES_FORMS = re.compile(
    r"\b(pueden|podrán|ven|verán|leen|tienen|reciben|deciden|decidieron|hacen|formaban|"
    r"quieren|prefieren|turnarse|(?:están|estaban) (?:haciendo|juntos)|su terapeuta)\b",
    re.IGNORECASE,
)
# One term per concept: the check-in is a "registro" ("seguimiento" only names a skill's
# follow-up question) and an alert an "alerta" (never the noun "aviso").
_CHECKIN_SYNONYM = re.compile(r"\bseguimientos?\b", re.IGNORECASE)
_ALERT_SYNONYM = re.compile(r"\bavisos?\b", re.IGNORECASE)


def register_problems(
    text: str, addressed: bool | None = None, variant: str = "es-ES"
) -> list[str]:
    """What in one Spanish text breaks its variant's register or the terms (empty if fine).

    ``addressed`` says the text speaks to a partner (every prompt and check-in item does);
    left out, a text counts as addressed when it uses tú or vosotros anywhere.
    """
    if variant == "es-ES":
        problems = [f"usted/ustedes: {m[0]!r}" for m in _USTED_PRONOUNS.finditer(text)]
        if addressed or (addressed is None and _SECOND_PERSON.search(text)):
            problems += [f"ustedes form: {m[0]!r}" for m in _USTEDES_FORMS.finditer(text)]
    else:
        problems = [f"usted: {m[0]!r}" for m in _USTED_SINGULAR.finditer(text)]
        problems += [f"vosotros form: {m[0]!r}" for m in _VOSOTROS_FORMS.finditer(text)]
    problems += [f"usted imperative: {m[1]!r}" for m in _USTED_IMPERATIVE.finditer(text)]
    for match in _CHECKIN_SYNONYM.finditer(text):
        if not re.search(r"preguntas? de $", text[: match.start()], re.IGNORECASE):
            problems.append(f"check-in called {match[0]!r}, not 'registro'")
    problems += [f"alert called {m[0]!r}, not 'alerta'" for m in _ALERT_SYNONYM.finditer(text)]
    return problems


def _spanish_values(node: Any, where: str, variant: str) -> Iterator[tuple[str, str]]:
    """The Spanish texts of a data file as ``variant`` readers get them."""
    if isinstance(node, dict):
        if isinstance(node.get("es"), str):
            yield f"{where}.{variant}", localized(node, variant)
        for key, value in node.items():
            if not isinstance(value, str):
                yield from _spanish_values(value, f"{where}.{key}", variant)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _spanish_values(value, f"{where}[{index}]", variant)


def spanish_texts(variant: str = "es-ES") -> list[tuple[str, str, bool | None]]:
    """Every Spanish text Dyad ships in a variant (catalog, prompts, instruments, crisis
    lines), with whether it is known to speak to a partner."""
    texts: list[tuple[str, str, bool | None]] = [
        (f"catalog {key}", text, None) for key, text in sorted(catalog(variant).items())
    ]
    texts += [
        (f"catalog {key}[{i}]", form, None)
        for key, forms in sorted(plural_catalog(variant).items())
        for i, form in enumerate(forms)
    ]
    for path in MULTILINGUAL_DATA:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        addressed = True if any(path.is_relative_to(folder) for folder in ADDRESSED) else None
        where = str(path.relative_to(ROOT))
        texts += [(key, text, addressed) for key, text in _spanish_values(data, where, variant)]
    return texts


@pytest.mark.parametrize("variant", ["es-ES", "es-419"])
def test_every_spanish_text_keeps_its_variants_register_and_terms(variant: str) -> None:
    texts = spanish_texts(variant)
    assert len(texts) > 300  # the catalog, the prompt library and the instruments all count
    problems = [
        f"{where}: {problem}"
        for where, text, addressed in texts
        for problem in register_problems(text, addressed, variant)
    ]
    assert problems == []


@pytest.mark.parametrize(
    "text",
    [
        # Mixed registers Dyad once shipped, and close relatives.
        "Solo tú y tu terapeuta pueden leer tus registros.",
        "Hola: tu seguimiento privado está listo; solo tú y tu terapeuta ven tus respuestas.",
        "¿Qué es algo que sale bien cuando lo hacen juntos, tú y tu pareja?",
        "¿Cuándo sentiste que tu pareja y tú formaban un equipo? ¿Qué estaban haciendo?",
        "Busca con tu pareja 20 minutos para turnarse.",
        "Información clínica confidencial: no la reenvíe.",
        "Por favor, escriba su respuesta.",
        "Ustedes dos deciden.",
        "Pregunta a tu pareja si quiere hablar con su terapeuta.",
        "Mientras haya un aviso abierto, los ejercicios quedan en pausa.",
    ],
)
def test_mixed_registers_and_second_terms_are_flagged(text: str) -> None:
    assert register_problems(text)


def test_a_prompt_is_read_as_spoken_to_a_partner_even_without_a_tu() -> None:
    prompt = "Toda pareja tiene fortalezas. ¿Qué es algo que sale bien cuando lo hacen juntos?"
    assert register_problems(prompt, addressed=True)
    assert register_problems(prompt.replace("hacen", "hacéis"), addressed=True) == []


@pytest.mark.parametrize(
    "text",
    [
        "Solo tú y tu terapeuta podéis leer tus registros.",
        "¿Cuándo sentiste que tu pareja y tú formabais un equipo? ¿Qué estabais haciendo?",
        # Third person plural about a couple, to a therapist: not ustedes.
        "Los mensajes de c3 quedan en pausa para los dos; los dos mantienen el mismo ritmo.",
        "Se avisará a los dos con las mismas palabras y no recibirán más mensajes.",
        # A third person subjunctive that looks like an usted imperative.
        "Guarda los consejos para cuando te los pida.",
        "Preguntas de seguimiento sin respuesta: 2",
        "Sin alertas de seguridad abiertas ni recientes.",
    ],
)
def test_the_es_es_register_passes(text: str) -> None:
    assert register_problems(text) == []


def test_the_evening_window_is_tarde_in_spain_and_noche_in_latin_america() -> None:
    spain, latin = catalog("es-ES"), catalog("es-419")
    assert spain["onboarding.window_evening"] == "Tarde (17–21)"
    assert latin["onboarding.window_evening"] == "Noche (17–21)"
    # ...and no other window has the same name in its variant.
    assert "Tarde" not in spain["onboarding.window_afternoon"] + spain["onboarding.window_morning"]
    assert "Noche" not in latin["onboarding.window_afternoon"] + latin["onboarding.window_morning"]


@pytest.mark.parametrize(
    "text",
    [
        "Solo tú y tu terapeuta podéis leer tus registros.",
        "Cread un grupo solo con vosotros dos y añadidme.",
        "Os avisaré a los dos cuando esté decidido.",
        "Vuestro objetivo compartido: {goal}",
        "Si los dos decidís compartir, publicaré las respuestas.",
        "Por favor, escriba su respuesta.",
        "¿Quiere usted hablar con su terapeuta?",
        "Mientras haya un aviso abierto, los ejercicios quedan en pausa.",
    ],
)
def test_vosotros_usted_and_second_terms_are_flagged_in_latin_american_spanish(text: str) -> None:
    assert register_problems(text, variant="es-419")


@pytest.mark.parametrize(
    "text",
    [
        "Solo tú y tu terapeuta pueden leer tus registros.",
        "Creen un grupo solo con ustedes dos y agréguenme.",
        "¿Qué es algo que sale bien cuando lo hacen juntos?",
        "Los dos decidieron compartir sus respuestas a «{prompt}».",
        # A country name and a verb ending that look like vosotros.
        "En tu país, llama al 911. Preguntas de seguimiento sin respuesta: 2",
    ],
)
def test_the_es_419_register_passes(text: str) -> None:
    assert register_problems(text, variant="es-419") == []


def test_es_419_readers_get_the_es_text_where_a_prompt_has_no_es_419_one() -> None:
    table = {"en": "Hi", "es": "Hola, {name}. ¿Qué tal?"}
    assert localized(table, "es-419") == table["es"]
    assert localized({**table, "es-419": "Qué onda"}, "es-419") == "Qué onda"
    assert localized({**table, "es-419": "Qué onda"}, "es") == table["es"]
