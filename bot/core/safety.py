"""Crisis-language screening and crisis resources: values in, values out.

Screening folds case, accents and punctuation, then looks for whole-word phrases from
``data/crisis/<language>.txt`` (the syntax is described at the top of each list). Every
list is used for every text, whatever the partner's language: people mix languages, and
a false alarm is better than a miss.

Crisis resources are per country (``data/crisis_resources.toml``), replaced per locale
by a practice's ``[[crisis."<locale>"]]`` tables. A locale with no known country gets no
numbers, only "call your local emergency number": a wrong number is the worst defect.
Every packaged line names at least two independent published sources that confirm it.
"""

from __future__ import annotations

import hashlib
import html
import re
import tomllib
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any, Final

from bot.locales import REQUIRED_TEXT_LANGUAGES, pick_language, t

KINDS: Final[frozenset[str]] = frozenset({"self_harm", "suicide", "violence"})

_DATA: Final = Path(__file__).parent / "data"
# Dropped rather than spaced, so "don't" folds to "dont" on both sides.
_APOSTROPHES: Final = dict.fromkeys(map(ord, "'\u2019\u2018`\u00b4\u02bc\u02b9\uff07"), None)
_NON_WORD: Final = re.compile(r"[\W_]+")
_TOKEN: Final = re.compile(r"\([^()]*\)|[^\s()]+|[()]")
# ".." lets up to this many other words sit between two parts of a phrase.
_GAP_WORDS: Final = 2


def fold(text: str) -> str:
    """Text as screening compares it: case- and accent-folded words joined by single spaces."""
    lowered = text.translate(_APOSTROPHES).casefold()
    # NFKD splits "ñ" into "n" plus a combining tilde and fullwidth letters into plain ones;
    # dropping marks (Mn) and invisible format characters (Cf, e.g. soft hyphens) then
    # leaves the bare letters.
    decomposed = unicodedata.normalize("NFKD", lowered)
    bare = "".join(ch for ch in decomposed if unicodedata.category(ch) not in ("Mn", "Cf"))
    return _NON_WORD.sub(" ", bare).strip()


@dataclass(frozen=True)
class Phrase:
    """One entry of a crisis list, compiled."""

    id: str
    language: str
    kind: str
    source: str
    pattern: re.Pattern[str] = field(repr=False, compare=False)
    # The words the phrase can start with (prefix=True for "word*"): a cheap test that
    # lets screening skip most regular expressions on long texts.
    anchors: tuple[tuple[str, bool], ...] = field(repr=False, compare=False, default=())

    def may_match(self, words: frozenset[str]) -> bool:
        """Whether a text with these words could hold this phrase at all."""
        return any(
            any(word.startswith(anchor) for word in words) if prefix else anchor in words
            for anchor, prefix in self.anchors
        )


@dataclass(frozen=True)
class ScreenResult:
    """What screening found: the kinds of crisis language, and opaque ids of the phrases.

    The ids name list entries (see :func:`phrase_source`), never the partner's words; still,
    keep them out of logs and show them only in the therapist's alerts view.
    """

    flagged: bool
    kinds: frozenset[str] = frozenset()
    phrase_ids: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.flagged != bool(self.kinds) or not self.kinds <= KINDS:
            raise ValueError("a screen result is flagged exactly when it has known kinds")


CLEAR: Final = ScreenResult(flagged=False)


def _word_pattern(word: str, where: str) -> str:
    prefix = word.endswith("*")
    core = fold(word.removesuffix("*"))
    if not core or "*" in word.removesuffix("*"):
        raise ValueError(f"{where}: {word!r} is not a word")
    return re.escape(core) + (r"\w*" if prefix else "")


def _anchors(first_token: str) -> tuple[tuple[str, bool], ...]:
    options = first_token[1:-1].split("|") if first_token.startswith("(") else [first_token]
    anchors: list[tuple[str, bool]] = []
    for option in options:
        words = fold(option.strip().removesuffix("*")).split()
        anchors.append((words[0], option.strip().endswith("*") and len(words) == 1))
    return tuple(anchors)


def compile_phrase(source: str, where: str = "phrase") -> re.Pattern[str]:
    """The regular expression (over :func:`fold`-ed text) for one phrase of a crisis list."""
    tokens = _TOKEN.findall(source)
    if not tokens:
        raise ValueError(f"{where}: empty phrase")
    parts: list[str] = []
    for index, token in enumerate(tokens):
        edge = index in (0, len(tokens) - 1)
        if token == "..":
            if edge:
                raise ValueError(f"{where}: '..' must sit between two words")
            parts.append(rf"(?: \w+){{0,{_GAP_WORDS}}}")
        elif token.startswith("(") and token.endswith(")") and len(token) > 1:
            options = token[1:-1].split("|")
            words = [_word_pattern(option.strip(), where) for option in options if option.strip()]
            if not words:
                raise ValueError(f"{where}: {token!r} offers no word")
            group = "(?:" + "|".join(words) + ")"
            if len(words) < len(options):
                if edge:
                    raise ValueError(f"{where}: an optional word cannot start or end a phrase")
                parts.append(f"(?: {group})?")
            else:
                parts.append(f" {group}")
        elif "(" in token or ")" in token or "|" in token:
            raise ValueError(f"{where}: unbalanced choice in {source!r}")
        else:
            parts.append(f" {_word_pattern(token, where)}")
    body = "".join(parts)[1:]  # the first part is never a gap or optional, so it starts with " "
    return re.compile(rf"(?<!\w){body}(?!\w)")


def parse_phrase_list(language: str, text: str) -> tuple[Phrase, ...]:
    """Parse one crisis list (``kind: phrase`` lines, ``#`` comments); raise ValueError if bad."""
    phrases: list[Phrase] = []
    seen: set[str] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"crisis list {language}, line {number}"
        kind, sep, source = line.partition(":")
        kind, source = kind.strip(), " ".join(source.split())
        if not sep or kind not in KINDS:
            raise ValueError(f"{where}: expected 'kind: phrase' with kind in {sorted(KINDS)}")
        pattern = compile_phrase(source, where)
        digest = hashlib.sha256(f"{kind}:{pattern.pattern}".encode()).hexdigest()[:8]
        phrase_id = f"{language}.{kind}.{digest}"
        if phrase_id in seen:
            raise ValueError(f"{where}: the same phrase is listed twice")
        seen.add(phrase_id)
        anchors = _anchors(_TOKEN.findall(source)[0])
        phrases.append(Phrase(phrase_id, language, kind, source, pattern, anchors))
    return tuple(phrases)


@cache
def crisis_phrases() -> tuple[Phrase, ...]:
    """Every language's crisis phrases, read once from the packaged lists."""
    phrases: list[Phrase] = []
    # Reading packaged data is the one exception to "no I/O" here, as for the catalogs.
    for path in sorted((_DATA / "crisis").glob("*.txt")):
        phrases.extend(parse_phrase_list(path.stem, path.read_text(encoding="utf-8")))
    return tuple(phrases)


def screen_text(text: str, language: str | None = None) -> ScreenResult:
    """Look for self-harm, suicide or violence language in any supported language.

    ``language`` is the partner's language; it is accepted for clarity at call sites but
    does not narrow the search, because people mix languages.
    """
    del language  # every list is always used, see above
    folded = fold(text)
    if not folded:
        return CLEAR
    words = frozenset(folded.split())
    hits = [
        phrase
        for phrase in crisis_phrases()
        if phrase.may_match(words) and phrase.pattern.search(folded)
    ]
    if not hits:
        return CLEAR
    return ScreenResult(
        flagged=True,
        kinds=frozenset(phrase.kind for phrase in hits),
        phrase_ids=frozenset(phrase.id for phrase in hits),
    )


def phrase_source(phrase_id: str) -> Phrase | None:
    """The list entry behind a phrase id (for the therapist's alerts view), if it still exists."""
    return next((phrase for phrase in crisis_phrases() if phrase.id == phrase_id), None)


# --- crisis resources -------------------------------------------------------------------

# A leading "*" is a short code dialled as such (Chile's *4141).
_NUMBER: Final = re.compile(r"[+*]?[0-9][0-9 ().-]*[0-9]|[0-9]")
# A packaged line needs this many published sources ("Organisation: URL") confirming it.
MIN_SOURCES: Final = 2
# "Organisation: URL"; group 1 is the URL's host, "www." dropped, to tell publishers apart.
_SOURCE: Final = re.compile(r"\S.*: https?://(?:www\.)?([^/\s?#]+)\S*")
# Common non-ISO region codes people type.
_REGION_ALIASES: Final = {"UK": "GB"}


@dataclass(frozen=True)
class CrisisResource:
    """A line a partner in crisis can call; ``emergency`` marks the local emergency number."""

    name: str
    number: str
    description: str = ""
    emergency: bool = False
    # Where the number is published ("Organisation: URL"); set for every packaged line.
    sources: tuple[str, ...] = field(default=(), compare=False)


def parse_locale(locale: str) -> tuple[str, str | None]:
    """Split ``es-ES`` / ``en_gb`` / ``es`` into a lower-case language and an ISO region."""
    subtags = [part for part in re.split(r"[-_\s]+", locale.strip()) if part]
    language = subtags[0].lower() if subtags else ""
    region = next(
        (
            part.upper()
            for part in subtags[1:]
            if len(part) == 2 and part.isascii() and part.isalpha()
        ),
        None,
    )
    if region is not None:
        region = _REGION_ALIASES.get(region, region)
    return language, region


def _locale_key(locale: str) -> str:
    language, region = parse_locale(locale)
    return f"{language}-{region}" if region else language


def _resource_from_table(entry: Any, where: str) -> CrisisResource:
    if isinstance(entry, CrisisResource):
        return entry
    if not isinstance(entry, Mapping):
        raise ValueError(f"{where}: expected a table with name, number and description")
    unknown = set(entry) - {"name", "number", "description", "emergency"}
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
    name, number = entry.get("name"), entry.get("number")
    description, emergency = entry.get("description", ""), entry.get("emergency", False)
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{where}: 'name' must be non-empty text")
    if not isinstance(number, str) or not _NUMBER.fullmatch(number.strip()):
        raise ValueError(f"{where}: 'number' must be a phone number written as text, e.g. '024'")
    if not isinstance(description, str):
        raise ValueError(f"{where}: 'description' must be text")
    if not isinstance(emergency, bool):
        raise ValueError(f"{where}: 'emergency' must be true or false")
    return CrisisResource(name.strip(), number.strip(), description.strip(), emergency)


def parse_crisis_overrides(
    raw: Mapping[str, Any], section: str = "crisis"
) -> dict[str, list[CrisisResource]]:
    """Validate practice.toml's crisis table (locale -> list of resources); ``section`` names it."""
    parsed: dict[str, list[CrisisResource]] = {}
    for locale, entries in raw.items():
        key = _locale_key(str(locale))
        where = f"{section}.{locale}"
        if not key or key in parsed:
            raise ValueError(f"{where}: empty or repeated locale")
        if isinstance(entries, str | bytes) or not isinstance(entries, Sequence) or not entries:
            raise ValueError(f"{where}: expected a non-empty list of [[{where}]] tables")
        parsed[key] = [
            _resource_from_table(entry, f"{where}[{index}]") for index, entry in enumerate(entries)
        ]
    return parsed


def _localised(value: Any, language: str, where: str) -> str:
    if not isinstance(value, Mapping) or not all(
        isinstance(value.get(lang), str) and value[lang].strip() for lang in REQUIRED_TEXT_LANGUAGES
    ):
        raise ValueError(f"{where}: needs text in {', '.join(REQUIRED_TEXT_LANGUAGES)}")
    text = value.get(language)
    return str(text) if isinstance(text, str) and text.strip() else str(value["en"])


def _sources(value: Any, where: str) -> tuple[str, ...]:
    """At least two well-formed sources from different publishers (web hosts)."""
    listed = [] if isinstance(value, str | bytes) or not isinstance(value, Sequence) else value
    matches = [_SOURCE.fullmatch(source) if isinstance(source, str) else None for source in listed]
    hosts = {match[1].lower() for match in matches if match is not None}
    if not listed or None in matches or len(hosts) < MIN_SOURCES:
        raise ValueError(
            f"{where}: 'sources' must list at least {MIN_SOURCES} published sources from"
            " different publishers confirming the number, each as 'Organisation: https://...'"
        )
    return tuple(listed)


@cache
def _packaged() -> dict[str, list[dict[str, Any]]]:
    with (_DATA / "crisis_resources.toml").open("rb") as fh:
        countries: dict[str, list[dict[str, Any]]] = tomllib.load(fh)["countries"]
    return countries


def packaged_countries() -> frozenset[str]:
    """The ISO codes of the countries Dyad ships crisis resources for."""
    return frozenset(_packaged())


def parse_country_resources(
    country: str, entries: Sequence[Mapping[str, Any]], language: str
) -> tuple[CrisisResource, ...]:
    """Validate one country's packaged entries and return them in one language.

    Raises ValueError for an entry without at least two sources, so a line nobody
    confirmed twice can never be shipped, and for a country without exactly one
    emergency line.
    """
    resources: list[CrisisResource] = []
    for index, entry in enumerate(entries):
        where = f"crisis_resources.toml {country}[{index}]"
        unknown = set(entry) - {"name", "number", "description", "emergency", "sources"}
        if unknown:
            raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
        sources = _sources(entry.get("sources"), where)
        resource = _resource_from_table(
            {
                "name": _localised(entry.get("name"), language, where),
                "number": entry.get("number"),
                "description": _localised(entry.get("description"), language, where),
                "emergency": entry.get("emergency", False),
            },
            where,
        )
        resources.append(replace(resource, sources=sources))
    if resources and sum(resource.emergency for resource in resources) != 1:
        raise ValueError(f"crisis_resources.toml {country}: needs exactly one emergency line")
    return tuple(resources)


@cache
def default_crisis_resources(country: str, language: str) -> tuple[CrisisResource, ...]:
    """The packaged resources for an ISO country, in one supported language (empty if none)."""
    return parse_country_resources(country, _packaged().get(country, []), language)


def crisis_resources(
    locale: str, overrides: Mapping[str, Any] | None = None
) -> list[CrisisResource]:
    """The crisis resources for a locale such as ``es-ES``, ``en-US`` or plain ``es``.

    Order of precedence: the practice's table for the exact locale, the packaged
    defaults for its country, the practice's table for the bare language, and finally
    nothing (the message then says to call the local emergency number).
    """
    language, region = parse_locale(locale)
    table = parse_crisis_overrides(overrides or {})
    if region is not None and f"{language}-{region}" in table:
        return list(table[f"{language}-{region}"])
    if region is not None:
        defaults = default_crisis_resources(region, pick_language(language))
        if defaults:
            return list(defaults)
    return list(table.get(language, []))


def render_crisis_message(language: str, resources: Sequence[CrisisResource]) -> str:
    """The crisis message in Telegram HTML, every resource text escaped."""

    def esc(text: str) -> str:
        return html.escape(text, quote=False)

    emergency = next((resource for resource in resources if resource.emergency), None)
    lines = [t(language, "safety.crisis_heading"), ""]
    if emergency is None:
        lines.append(t(language, "safety.crisis_emergency_local"))
    else:
        line = t(language, "safety.crisis_emergency", emergency=esc(emergency.number))
        lines.append(f"{line} {esc(emergency.description)}".rstrip())
    for resource in resources:
        if resource is emergency:
            continue
        lines.append("")
        lines.append(
            t(
                language,
                "safety.crisis_resource",
                name=esc(resource.name),
                number=esc(resource.number),
            )
        )
        if resource.description:
            lines.append(esc(resource.description))
    lines += ["", t(language, "safety.crisis_not_monitored")]
    return "\n".join(lines)
