"""Dyad's Spanish is es-ES throughout: tú to each person, vosotros to the two partners.

It never slips into usted or ustedes (Latin American plural address), and it names each
concept one way: the check-in is a "registro", an alert an "alerta", 17–21 h is "tarde".
The checks are small lists of forms that cannot be right in es-ES, chosen so that the
third person plural ("los dos mantienen el mismo ritmo", said to a therapist about a
couple) is not mistaken for ustedes.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.locales import catalog

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

# Never Dyad's register, whoever reads the text.
_USTED_PRONOUNS = re.compile(r"\b(ustedes|usted)\b", re.IGNORECASE)
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


def register_problems(text: str, addressed: bool | None = None) -> list[str]:
    """What in one es-ES text breaks the register or the terms (empty when it is fine).

    ``addressed`` says the text speaks to a partner (every prompt and check-in item does);
    left out, a text counts as addressed when it uses tú or vosotros anywhere.
    """
    problems = [f"usted/ustedes: {m[0]!r}" for m in _USTED_PRONOUNS.finditer(text)]
    problems += [f"usted imperative: {m[1]!r}" for m in _USTED_IMPERATIVE.finditer(text)]
    if addressed or (addressed is None and _SECOND_PERSON.search(text)):
        problems += [f"ustedes form: {m[0]!r}" for m in _USTEDES_FORMS.finditer(text)]
    for match in _CHECKIN_SYNONYM.finditer(text):
        if not re.search(r"preguntas? de $", text[: match.start()], re.IGNORECASE):
            problems.append(f"check-in called {match[0]!r}, not 'registro'")
    problems += [f"alert called {m[0]!r}, not 'alerta'" for m in _ALERT_SYNONYM.finditer(text)]
    return problems


def _spanish_values(node: Any, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "es" and isinstance(value, str):
                yield f"{where}.es", value
            else:
                yield from _spanish_values(value, f"{where}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _spanish_values(value, f"{where}[{index}]")


def spanish_texts() -> list[tuple[str, str, bool | None]]:
    """Every Spanish text Dyad ships (catalog, prompts, instruments, crisis lines), with
    whether it is known to speak to a partner."""
    texts: list[tuple[str, str, bool | None]] = [
        (f"catalog {key}", text, None) for key, text in sorted(catalog("es").items())
    ]
    for path in MULTILINGUAL_DATA:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        addressed = True if any(path.is_relative_to(folder) for folder in ADDRESSED) else None
        where = str(path.relative_to(ROOT))
        texts += [(key, text, addressed) for key, text in _spanish_values(data, where)]
    return texts


def test_every_spanish_text_keeps_the_es_es_register_and_terms() -> None:
    texts = spanish_texts()
    assert len(texts) > 300  # the catalog, the prompt library and the instruments all count
    problems = [
        f"{where}: {problem}"
        for where, text, addressed in texts
        for problem in register_problems(text, addressed)
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


def test_the_evening_window_is_tarde() -> None:
    es = catalog("es")
    assert es["onboarding.window_evening"] == "Tarde (17–21)"
    # ...and no other window is called "tarde" too.
    assert "Tarde" not in es["onboarding.window_afternoon"] + es["onboarding.window_morning"]
