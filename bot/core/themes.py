"""Shared themes: the keywords both partners raise, folded across case, accents and plurals.

Matching is deliberately crude (a stop-word list and a few suffix rules per language):
a theme is a prompt for the therapist's attention, not an analysis. The function is
symmetric in the two partners, so neither partner's wording decides what a theme is
called more than the other's.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

THEME_LANGUAGES: tuple[str, ...] = ("en", "es", "pt")
MIN_WORD_LENGTH = 3
DEFAULT_THEME_LIMIT = 6

# Letters only: digits, punctuation and apostrophes split words ("don't" -> "don", "t").
_WORD = re.compile(r"[^\W\d_]+")
_VOWELS = frozenset("aeiou")
# Expressions of several words that name one thing; each counts as a single keyword.
_PHRASES: dict[str, tuple[re.Pattern[str], ...]] = {
    "es": (re.compile(r"\bfin(?:es)? de semana\b", re.IGNORECASE),),
    "pt": (re.compile(r"\bfi(?:m|ns) de semana\b", re.IGNORECASE),),
    "en": (),
}


@dataclass(frozen=True)
class Theme:
    """A keyword both partners used: how it is shown and how often it came up in all."""

    word: str
    mentions: int


def fold(text: str) -> str:
    """Lower-case ``text`` and strip its accents ("Discusión" -> "discusion")."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@cache
def stop_words(language: str) -> frozenset[str]:
    """The folded stop words of one language (read once from the package data)."""
    if language not in THEME_LANGUAGES:
        raise KeyError(f"no stop words for language {language!r}")
    resource = files("bot.core").joinpath("data", "stopwords", f"{language}.txt")
    lines = resource.read_text(encoding="utf-8").splitlines()
    return frozenset(fold(line.strip()) for line in lines if line.strip() and line[0] != "#")


def _stem_en(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        word = word[:-3] + "y"
    elif word.endswith("sses"):
        word = word[:-2]
    elif len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    stripped = False
    if len(word) > 5 and word.endswith("ing"):
        word, stripped = word[:-3], True
    elif len(word) > 4 and word.endswith("ed"):
        word, stripped = word[:-2], True
    # "stopped" -> "stopp" -> "stop", so it meets "stop".
    if stripped and len(word) > 3 and word[-1] == word[-2] and word[-1] not in _VOWELS:
        word = word[:-1]
    # "argue", "argued", "arguing" all end up as "argu".
    if len(word) > 3 and word.endswith("e"):
        word = word[:-1]
    return word


def _stem_es(word: str) -> str:
    # "discusiones" -> "discusion", "mujeres" -> "mujer"; "trabajos" -> "trabajo".
    if len(word) > 4 and word.endswith("es") and word[-3] not in _VOWELS:
        word = word[:-2]
    elif len(word) > 3 and word.endswith("s"):
        word = word[:-1]
    # Gender and verb endings: "cansado"/"cansada", "trabajo"/"trabaja".
    if len(word) > 4 and word[-1] in "aoe":
        word = word[:-1]
    return word


_PT_PLURALS = (("oes", "ao"), ("aes", "ao"), ("ais", "al"), ("eis", "el"))


def _stem_pt(word: str) -> str:
    # Plurals, folded: "discussoes"/"discussao", "casais"/"casal", "papeis"/"papel",
    # "viagens"/"viagem", "mulheres"/"mulher"; then as Spanish: "cansado"/"cansada".
    irregular = [(p, s) for p, s in _PT_PLURALS if len(word) > 4 and word.endswith(p)]
    if irregular:
        plural, singular = irregular[0]
        word = word[: -len(plural)] + singular
    elif len(word) > 3 and word.endswith("ns"):
        word = word[:-2] + "m"
    elif len(word) > 4 and word.endswith("es") and word[-3] in "rsz":
        word = word[:-2]
    elif len(word) > 3 and word.endswith("s"):
        word = word[:-1]
    if len(word) > 4 and word[-1] in "aoe":
        word = word[:-1]
    return word


_STEMMERS = {"es": _stem_es, "pt": _stem_pt}


def stem(word: str, language: str) -> str:
    """A crude stem of a folded word, so plurals and common endings meet."""
    return _STEMMERS.get(language, _stem_en)(word)


def keywords(text: str, language: str) -> list[tuple[str, str]]:
    """The (stem, surface form) of each content word in ``text``, in order."""
    language = language if language in THEME_LANGUAGES else "en"
    stops = stop_words(language)
    found: list[tuple[str, str]] = []
    text = unicodedata.normalize("NFC", text)
    for phrase in _PHRASES[language]:
        for match in phrase.finditer(text):
            surface = match.group().lower()
            found.append((" ".join(stem(fold(w), language) for w in surface.split()), surface))
        text = phrase.sub(" ", text)
    for match in _WORD.finditer(text):
        surface = match.group().lower()
        folded = fold(surface)
        if len(folded) < MIN_WORD_LENGTH or folded in stops:
            continue
        found.append((stem(folded, language), surface))
    return found


def _tally(texts: Iterable[str], language: str) -> tuple[Counter[str], Counter[tuple[str, str]]]:
    stems: Counter[str] = Counter()
    surfaces: Counter[tuple[str, str]] = Counter()
    for text in texts:
        for root, surface in keywords(text, language):
            stems[root] += 1
            surfaces[(root, surface)] += 1
    return stems, surfaces


def shared_themes(
    first: Sequence[str],
    first_language: str,
    second: Sequence[str],
    second_language: str,
    *,
    exclude: Iterable[str] = (),
    limit: int = DEFAULT_THEME_LIMIT,
) -> tuple[Theme, ...]:
    """Keywords both partners raise, most shared first; symmetric in the two partners.

    ``first`` and ``second`` must hold only words a partner marked OK to raise:
    a theme drawn from a private note would put that note's subject on the
    session's table, in front of the other partner.
    ``exclude`` holds words that are never themes (the partners' own names).
    """
    stems_1, surfaces_1 = _tally(first, first_language)
    stems_2, surfaces_2 = _tally(second, second_language)
    banned = {
        stem(fold(word), lang)
        for name in exclude
        for word in _WORD.findall(name)
        for lang in {first_language, second_language}
    }
    shared = (set(stems_1) & set(stems_2)) - banned
    surfaces = surfaces_1 + surfaces_2
    themes: list[tuple[int, int, str]] = []
    for root in shared:
        # The shown form is the one used most across both partners, then the
        # shortest, then the first alphabetically: nothing depends on who is "first".
        forms = [(count, surface) for (r, surface), count in surfaces.items() if r == root]
        _, shown = min(forms, key=lambda form: (-form[0], len(form[1]), form[1]))
        themes.append((min(stems_1[root], stems_2[root]), stems_1[root] + stems_2[root], shown))
    themes.sort(key=lambda item: (-item[0], -item[1], item[2]))
    chosen: dict[str, Theme] = {}
    for _, total, shown in themes:
        # Partners writing in different languages can reach one form by two stems.
        if shown not in chosen and len(chosen) < limit:
            chosen[shown] = Theme(word=shown, mentions=total)
    return tuple(chosen.values())
