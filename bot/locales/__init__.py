"""Message catalogs: every user-facing text goes through :func:`t` (or :func:`tn`).

Catalogs are gettext files, ``bot/locales/<locale>/LC_MESSAGES/dyad.po``, read with
Babel when a locale is first used. A msgid is Dyad's key, ``<area>.<name>``
(``common.too_long``); the English catalog holds the source texts, and the template
(``make translations``) shows them to translators as notes. Placeholders use ``{name}``
(``str.format`` syntax); every locale defines the same keys with the same placeholders
(a test checks this). A plural entry (msgid and msgid_plural both the key) has one form
per plural category of its locale, chosen by :func:`tn` from the catalog's
``Plural-Forms`` rule.

Locales are ``en``, ``es-ES`` (Spain: vosotros to the couple), ``es-419`` (Latin
America: ustedes) and any other directory present (``pt_BR`` -> ``pt-BR``). A stored
language may be a bare language: ``es`` reads as ``es-ES``, as it always meant.
:func:`pick_locale` chooses the locale from a Telegram ``language_code`` and a time zone;
:func:`pick_language` gives the bare language that prompt, instrument and crisis data
are keyed by (``es-419`` -> ``es``).
"""

from __future__ import annotations

import gettext
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

_ROOT = Path(__file__).parent
DOMAIN = "dyad"
DEFAULT_LANGUAGE = "en"
DEFAULT_LOCALE = "en"
SPAIN = "es-ES"
LATIN_AMERICA = "es-419"
# Countries whose time zones make a bare "es" Latin American Spanish (ISO 3166).
LATIN_AMERICAN_COUNTRIES = frozenset(
    {
        *("AR", "BO", "CL", "CO", "CR", "CU", "DO", "EC", "GT", "HN"),
        *("MX", "NI", "PA", "PE", "PR", "PY", "SV", "UY", "VE"),
    }
)


def _tag(directory: str) -> str:
    return directory.replace("_", "-")


def _discover() -> tuple[str, ...]:
    found = sorted(_tag(p.parents[1].name) for p in _ROOT.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))
    return tuple(sorted(found, key=lambda tag: (tag != DEFAULT_LOCALE, tag)))


LOCALES: tuple[str, ...] = _discover()
SUPPORTED_LANGUAGES: tuple[str, ...] = tuple(dict.fromkeys(tag.split("-")[0] for tag in LOCALES))
REQUIRED_TEXT_LANGUAGES: tuple[str, ...] = ("en", "es")
"""The languages a practice's own texts (prompts, instruments, crisis lines) must carry: the
ones Dyad spoke when practices began writing them. A language added since (``pt``) is
optional there, so a stored file stays valid when Dyad learns a language; where a
practice's text lacks it, its speakers read the English text (:func:`localized`). Dyad's
shipped texts carry every supported language (a test checks it)."""


def _split(code: str | None) -> tuple[str, str | None]:
    parts = [p for p in (code or "").replace("_", "-").split("-") if p]
    language = parts[0].lower() if parts else ""
    region = parts[1].upper() if len(parts) > 1 else None
    return language, region


def pick_language(code: str | None) -> str:
    """The supported bare language closest to a code (``es-MX`` or ``es-419`` -> ``es``)."""
    language, _ = _split(code)
    return language if language in SUPPORTED_LANGUAGES else DEFAULT_LANGUAGE


def pick_locale(code: str | None, timezone: str | None = None) -> str:
    """The catalog locale for a Telegram ``language_code`` and, for Spanish, a time zone.

    A region in the code decides (``es-ES`` -> es-ES; ``es-MX``, ``es-AR``, ``es-US``,
    ``es-419`` -> es-419); a bare ``es`` follows the time zone (a Latin American
    country's -> es-419, anything else -> es-ES). Other languages have one locale each.
    """
    language, region = _split(code)
    if language not in SUPPORTED_LANGUAGES:
        return DEFAULT_LOCALE
    if region is not None and f"{language}-{region}" in LOCALES:
        return f"{language}-{region}"
    if language == "es":
        if region is not None:
            return SPAIN if region == "ES" else LATIN_AMERICA
        from bot.core.timezones import country_of

        return LATIN_AMERICA if country_of(timezone) in LATIN_AMERICAN_COUNTRIES else SPAIN
    return next(tag for tag in LOCALES if tag.split("-")[0] == language)


def resolve(language: str | None) -> str:
    """The locale a stored or given language means (``es`` -> ``es-ES``, ``es_419`` -> es-419)."""
    language_part, region = _split(language)
    if region is not None and f"{language_part}-{region}" in LOCALES:
        return f"{language_part}-{region}"
    return pick_locale(language)


@dataclass(frozen=True)
class Catalog:
    """One locale's messages: singular texts, plural forms, and the plural rule."""

    locale: str
    messages: dict[str, str]
    plurals: dict[str, tuple[str, ...]]
    num_plurals: int
    plural_index: Callable[[int], int]


@cache
def load(locale: str) -> Catalog:
    """The parsed catalog of one locale (``en``, ``es-ES``, ...), read once."""
    from babel.messages.pofile import read_po

    if locale not in LOCALES:
        raise KeyError(f"unsupported locale {locale!r}")
    directory = locale.replace("-", "_")
    with (_ROOT / directory / "LC_MESSAGES" / f"{DOMAIN}.po").open("rb") as fh:
        parsed = read_po(fh, locale=directory, domain=DOMAIN)
    messages: dict[str, str] = {}
    plurals: dict[str, tuple[str, ...]] = {}
    for message in parsed:
        if not message.id:
            continue
        if isinstance(message.id, tuple | list):
            plurals[str(message.id[0])] = tuple(str(s) for s in message.string or ())
        else:
            messages[str(message.id)] = str(message.string)
    rule = gettext.c2py(parsed.plural_expr)
    return Catalog(locale, messages, plurals, parsed.num_plurals, rule)


def catalog(language: str) -> dict[str, str]:
    """All singular messages of one locale (or bare language), keyed ``area.name``."""
    return load(resolve(language)).messages


def plural_catalog(language: str) -> dict[str, tuple[str, ...]]:
    """All plural messages of one locale: each key's forms, in the locale's plural order."""
    return load(resolve(language)).plurals


def placeholders(text: str) -> frozenset[str]:
    """The ``{name}`` placeholders a message uses."""
    return frozenset(
        field.split(".")[0].split("[")[0]
        for _, field, _, _ in string.Formatter().parse(text)
        if field is not None and field != ""
    )


def t(language: str, key: str, /, **params: object) -> str:
    """The message ``key`` in ``language``, with its placeholders filled in."""
    text = catalog(language)[key]
    return text.format(**params) if params or "{" in text else text


def tn(language: str, key: str, count: int, /, **params: object) -> str:
    """The plural message ``key`` for ``count`` (also given as ``{count}``) in ``language``."""
    entry = load(resolve(language))
    forms = entry.plurals[key]
    text = forms[min(entry.plural_index(count), len(forms) - 1)]
    return text.format(**{"count": count, **params})


def localized(texts: Mapping[str, str], language: str | None) -> str:
    """The text of a table keyed by locale or language (prompts, instruments, crisis lines).

    The fallback rule: the exact locale (``text.es-419``), else the bare language
    (``text.es``, Spain's Spanish), else English. A table needs a variant's own text only
    where the bare language's would be wrong for it (es-419: where ``text.es`` says
    vosotros); a test checks that the fallback never shows es-419 users a vosotros form.
    """
    locale = resolve(language)
    for key in (locale, locale.split("-")[0], DEFAULT_LANGUAGE):
        text = texts.get(key)
        if text:
            return text
    raise KeyError(f"no text for {locale!r} nor English")


def variant_keys() -> tuple[str, ...]:
    """The keys a text table may hold besides bare languages (``es-419``, ``es-ES``...)."""
    return tuple(tag for tag in LOCALES if "-" in tag)


def follow_zone(language: str, timezone: str | None) -> str:
    """A Spanish speaker's variant after they choose a time zone (others are unchanged).

    A Latin American country's zone gives es-419 and Spain's gives es-ES; any other zone
    (New York, London) keeps the variant chosen so far.
    """
    locale = resolve(language)
    if locale.split("-")[0] != "es":
        return locale
    from bot.core.timezones import country_of

    country = country_of(timezone)
    if country in LATIN_AMERICAN_COUNTRIES:
        return LATIN_AMERICA
    return SPAIN if country == "ES" else locale


@cache
def display_name(code: str) -> str:
    """A language or locale named in itself, for buttons: "Español (Latinoamérica)"."""
    from babel import Locale

    name = str(Locale.parse(code.replace("-", "_")).get_display_name() or code)
    return name[:1].upper() + name[1:]


def stored(locale: str) -> str:
    """How a locale is kept in the database: the bare language for its language's default
    variant (``es-ES`` -> ``es``, as stored before variants existed), else the locale."""
    locale = resolve(locale)
    bare = locale.split("-")[0]
    return bare if resolve(bare) == locale else locale
