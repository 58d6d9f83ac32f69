"""Shared themes: the keywords both partners raise, folded across case, accents and plurals.

Matching is deliberately crude (a stop-word list and a few suffix rules per language):
a theme is a prompt for the therapist's attention, not an analysis. The function is
symmetric in the two partners, so neither partner's wording decides what a theme is
called more than the other's.

Across languages (one partner writes English, the other Spanish) words meet through a
small bilingual concept lexicon, ``data/themes/concepts.toml``: each concept lists
everyday words per language, stemmed like any check-in word, so "money" and "dinero"
(or "bills" and "facturas") are one theme, shown with each language's own word
("money / dinero"). Words outside the lexicon still meet when their stems are equal, as
within one language. A word the lexicon lacks is simply not matched across languages:
the method misses themes rather than inventing them.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

from bot.locales import pick_language

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


def theme_language(language: str) -> str:
    """The language whose stop words and stems apply (``es-419``, ``es-ES`` -> ``es``;
    ``pt-BR`` -> ``pt``)."""
    bare = pick_language(language)
    return bare if bare in THEME_LANGUAGES else "en"


def stem(word: str, language: str) -> str:
    """A crude stem of a folded word, so plurals and common endings meet."""
    stemmer: Callable[[str], str] = _STEMMERS.get(theme_language(language), _stem_en)
    return stemmer(word)


def keywords(text: str, language: str) -> list[tuple[str, str]]:
    """The (stem, surface form) of each content word in ``text``, in order."""
    language = theme_language(language)
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


# Concept keys start with a character no stem has, so they never meet a plain stem.
_CONCEPT = "="


@cache
def concept_lexicon() -> dict[tuple[str, str], str]:
    """``(language, stem) -> concept id`` from ``data/themes/concepts.toml``, read once.

    Every word listed must be one content word (or phrase) of its language and belong to
    one concept only; a language Dyad has no stems for yet is left out.
    """
    resource = files("bot.core").joinpath("data", "themes", "concepts.toml")
    table = tomllib.loads(resource.read_text(encoding="utf-8"))
    lexicon: dict[tuple[str, str], str] = {}
    for concept, by_language in table.items():
        for language, words in by_language.items():
            if language not in THEME_LANGUAGES:
                continue
            for word in words:
                found = keywords(word, language)
                if len(found) != 1:
                    raise ValueError(f"concept {concept}: {word!r} is not one {language} word")
                key = (language, found[0][0])
                if lexicon.setdefault(key, concept) != concept:
                    raise ValueError(f"{word!r} ({language}) is in {lexicon[key]} and {concept}")
    return lexicon


def theme_key(root: str, language: str) -> str:
    """What a stem counts as: its concept when the lexicon has it (``dinero`` and ``money``
    are both ``=money``), else the stem itself."""
    concept = concept_lexicon().get((theme_language(language), root))
    return _CONCEPT + concept if concept else root


def _tally(
    texts: Iterable[str], language: str
) -> tuple[Counter[str], Counter[tuple[str, str, str]]]:
    language = theme_language(language)
    keys: Counter[str] = Counter()
    surfaces: Counter[tuple[str, str, str]] = Counter()
    for text in texts:
        for root, surface in keywords(text, language):
            key = theme_key(root, language)
            keys[key] += 1
            surfaces[(key, language, surface)] += 1
    return keys, surfaces


def _shown(key: str, surfaces: Counter[tuple[str, str, str]]) -> str:
    """How a theme is shown: in each language its partners used, the form used most, then
    the shortest, then the first alphabetically; languages in a fixed order ("money /
    dinero"). Nothing depends on which partner is "first"."""
    by_language: dict[str, list[tuple[int, str]]] = {}
    for (k, language, surface), count in surfaces.items():
        if k == key:
            by_language.setdefault(language, []).append((count, surface))
    parts = [
        min(by_language[language], key=lambda form: (-form[0], len(form[1]), form[1]))[1]
        for language in sorted(by_language, key=THEME_LANGUAGES.index)
    ]
    return " / ".join(dict.fromkeys(parts))


def shared_themes(
    first: Sequence[str],
    first_language: str,
    second: Sequence[str],
    second_language: str,
    *,
    exclude: Iterable[str] = (),
    limit: int = DEFAULT_THEME_LIMIT,
) -> tuple[Theme, ...]:
    """Keywords (or concepts) both partners raise, most shared first; symmetric in the two.

    ``first`` and ``second`` must hold only words a partner marked OK to raise:
    a theme drawn from a private note would put that note's subject on the
    session's table, in front of the other partner.
    ``exclude`` holds words that are never themes (the partners' own names).
    """
    keys_1, surfaces_1 = _tally(first, first_language)
    keys_2, surfaces_2 = _tally(second, second_language)
    banned = {
        theme_key(stem(fold(word), lang), lang)
        for name in exclude
        for word in _WORD.findall(name)
        for lang in {first_language, second_language}
    }
    shared = (set(keys_1) & set(keys_2)) - banned
    surfaces = surfaces_1 + surfaces_2
    themes = [
        (min(keys_1[key], keys_2[key]), keys_1[key] + keys_2[key], _shown(key, surfaces))
        for key in shared
    ]
    themes.sort(key=lambda item: (-item[0], -item[1], item[2]))
    chosen: dict[str, Theme] = {}
    for _, total, shown in themes:
        # Partners writing in different languages can reach one form by two stems.
        if shown not in chosen and len(chosen) < limit:
            chosen[shown] = Theme(word=shown, mentions=total)
    return tuple(chosen.values())
