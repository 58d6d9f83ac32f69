"""Dates, times, numbers and lists in a locale's own conventions, from Babel's CLDR data.

Dyad's English is British (``Mon, 5 Oct 2026``, 24-hour clock, "a, b and c"); es-ES
writes ``lun, 5 oct 2026`` and ``4,1``, es-419 ``4.1`` and a 12-hour clock, pt-BR
``seg., 5 de out. de 2026``. Times are shown in the zone of the datetime given.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from functools import cache

from babel import Locale
from babel.dates import format_skeleton
from babel.dates import format_time as _babel_time
from babel.lists import format_list as _babel_list
from babel.numbers import format_decimal

from bot.locales import resolve

# Dyad's locale -> the CLDR locale whose conventions it follows.
_CLDR = {"en": "en_GB"}


@cache
def cldr_locale(language: str) -> Locale:
    """The Babel locale of a Dyad locale or stored language (``en`` -> en_GB)."""
    locale = resolve(language)
    return Locale.parse(_CLDR.get(locale, locale.replace("-", "_")))


def format_date(when: datetime, language: str) -> str:
    """Weekday, day, month and year: "Mon, 5 Oct 2026", "lun, 5 oct 2026"."""
    return format_skeleton("yMMMEd", when, locale=cldr_locale(language))


def format_day(when: datetime, language: str) -> str:
    """Weekday, day and month, without the year: "Mon 5 Oct", "lun, 5 oct"."""
    return format_skeleton("MMMEd", when, locale=cldr_locale(language))


def format_day_month(when: date, language: str) -> str:
    """Day and abbreviated month, for a chart's axis: "5 Oct", "5 oct"."""
    return format_skeleton("MMMd", when, locale=cldr_locale(language))


def format_time(when: datetime, language: str) -> str:
    """Hours and minutes: "17:00", "5:00 p.m."."""
    return _babel_time(when, "short", locale=cldr_locale(language))


def format_datetime(when: datetime, language: str) -> str:
    """A date and a time joined the locale's way: "Mon, 5 Oct 2026, 17:00"."""
    locale = cldr_locale(language)
    pattern = str(locale.datetime_formats["medium"])
    return pattern.replace("{1}", format_date(when, language)).replace(
        "{0}", format_time(when, language)
    )


def weekday_name(index: int, language: str) -> str:
    """The full name of a weekday (0 = Monday): "Thursday", "jueves"."""
    return str(cldr_locale(language).days["format"]["wide"][index])


def format_number(value: float, language: str) -> str:
    """A score or gap with at most one decimal (halves round up), with the locale's mark."""
    # Decimal from the shortest repr, so 6.25 shows as 6.3 (float rounding would say 6.2).
    rounded = Decimal(repr(value)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    if rounded == 0:
        rounded = Decimal("0")
    return format_decimal(rounded, "#,##0.#", locale=cldr_locale(language))


def format_list(items: Iterable[str], language: str) -> str:
    """Items joined the locale's way: "a, b and c", "a, b y c", "a, b e c"."""
    return _babel_list(list(items), style="standard", locale=cldr_locale(language))
