"""Check-in instruments as data: items, answer validation, risk answers and scoring.

Built-in instruments live in ``data/instruments/<name>.toml``; a practice adds its own
under ``[instruments.<name>]`` in practice.toml, in the same shape (see
``dyad_checkin.toml``). Answers are stored by item id (and choice id), never by item
text, so wording can change without touching stored data.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Final, Literal, cast, get_args

from bot.locales import REQUIRED_TEXT_LANGUAGES, localized

ItemType = Literal["scale", "choice", "yes_no", "text"]
Role = Literal["wellbeing", "hope", "alliance", "skill", "note", "safety"]
Answer = int | str

ITEM_TYPES: Final[frozenset[str]] = frozenset(get_args(ItemType))
ROLES: Final[frozenset[str]] = frozenset(get_args(Role))
BUILTIN_INSTRUMENTS: Final = ("dyad_checkin", "dyad_safety")
# Under Telegram's 4096-character message limit, with room for the digest's quoting.
TEXT_ANSWER_LIMIT: Final = 3000
# Wide enough for a 0-100 scale, narrow enough that a typo in practice.toml stands out.
_MAX_SCALE_SPAN: Final = 100

_DIR: Final = Path(__file__).parent / "data" / "instruments"
# Short, so "<instrument>:<item>:<choice>" fits Telegram's 64-byte callback data.
_ID: Final = re.compile(r"[a-z][a-z0-9_]{0,19}")
_INTEGER: Final = re.compile(r"[+-]?\d{1,6}")
# Control characters other than newline and tab: PostgreSQL rejects NUL in text,
# and the rest only garble the digest.
_CONTROL: Final = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_ROLE_TYPES: Final[Mapping[str, frozenset[str]]] = {
    "wellbeing": frozenset({"scale"}),
    "hope": frozenset({"scale"}),
    "alliance": frozenset({"scale"}),
    "skill": frozenset({"scale", "choice", "yes_no"}),
    "note": frozenset({"text"}),
    "safety": frozenset({"choice", "yes_no"}),
}


class InstrumentError(ValueError):
    """An instrument definition that cannot be used; the message is for the practice admin."""


class InvalidAnswer(ValueError):
    """An answer the partner can correct; ``key`` is the catalog message to show them."""

    def __init__(self, key: str, **params: object) -> None:
        super().__init__(key)
        self.key = key
        self.params = params


def _in_language(texts: Mapping[str, str], language: str) -> str:
    return localized(texts, language)


@dataclass(frozen=True)
class Choice:
    """One answer option of a choice or yes/no item."""

    id: str
    label: Mapping[str, str] = field(hash=False)

    def label_in(self, language: str) -> str:
        """The label in a partner's language."""
        return _in_language(self.label, language)


@dataclass(frozen=True)
class Item:
    """One question of an instrument."""

    id: str
    type: ItemType
    text: Mapping[str, str] = field(hash=False)
    role: Role | None = None
    optional: bool = False
    min: int | None = None
    max: int | None = None
    min_label: Mapping[str, str] = field(default_factory=dict, hash=False)
    max_label: Mapping[str, str] = field(default_factory=dict, hash=False)
    choices: tuple[Choice, ...] = ()
    # Choice ids that count as a risk answer (the safety item's "yes").
    risk_choices: frozenset[str] = frozenset()
    # Asked only when this earlier item got a non-empty answer ("OK to raise?" after a note).
    requires: str | None = None

    def text_in(self, language: str) -> str:
        """The question in a partner's language."""
        return _in_language(self.text, language)

    def choice(self, choice_id: str) -> Choice:
        """The choice with this id; KeyError if there is none."""
        for choice in self.choices:
            if choice.id == choice_id:
                return choice
        raise KeyError(choice_id)


@dataclass(frozen=True)
class Instrument:
    """A named, ordered set of items, with its citation and licence note."""

    name: str
    title: Mapping[str, str] = field(hash=False)
    items: tuple[Item, ...]
    citation: str = ""
    licence: str = ""

    def title_in(self, language: str) -> str:
        """The title in a partner's language."""
        return _in_language(self.title, language)

    def item(self, item_id: str) -> Item:
        """The item with this id; KeyError if there is none."""
        for item in self.items:
            if item.id == item_id:
                return item
        raise KeyError(item_id)


# --- parsing and validation ---------------------------------------------------------------

_INSTRUMENT_KEYS: Final = frozenset({"title", "items", "citation", "licence", "license"})
_ITEM_KEYS: Final = frozenset(
    {"id", "type", "text", "role", "optional", "min", "max", "min_label", "max_label"}
    | {"choices", "risk", "requires"}
)


def _fold_choice(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    bare = "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")
    return " ".join(re.sub(r"[\W_]+", " ", bare).split())


def _texts(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise InstrumentError(
            f"{where}: expected a table of texts by language, e.g. {{ en = ... }}"
        )
    missing = [lang for lang in REQUIRED_TEXT_LANGUAGES if lang not in value]
    if missing:
        raise InstrumentError(f"{where}: missing text in {', '.join(missing)}")
    texts: dict[str, str] = {}
    for lang, text in value.items():
        if not isinstance(text, str) or not text.strip():
            raise InstrumentError(f"{where}.{lang}: expected non-empty text")
        texts[str(lang)] = text.strip()
    return texts


def _identifier(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise InstrumentError(
            f"{where}: {value!r} must be 1-20 lower-case letters, digits or _, "
            "starting with a letter"
        )
    return value


def _integer(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InstrumentError(f"{where}: expected a whole number")
    return value


def _choices(value: Any, where: str) -> tuple[Choice, ...]:
    if not isinstance(value, list) or len(value) < 2:
        raise InstrumentError(f"{where}: expected a list of at least two {{ id, label }} tables")
    choices: list[Choice] = []
    claimed: dict[str, str] = {}
    for index, entry in enumerate(value):
        here = f"{where}[{index}]"
        if not isinstance(entry, Mapping) or set(entry) != {"id", "label"}:
            raise InstrumentError(f"{here}: expected exactly 'id' and 'label'")
        choice = Choice(
            _identifier(entry["id"], f"{here}.id"), _texts(entry["label"], f"{here}.label")
        )
        # A typed answer is matched against ids and labels in every language, so each
        # must point at one choice only.
        for spelling in {choice.id, *choice.label.values()}:
            folded = _fold_choice(spelling)
            if claimed.setdefault(folded, choice.id) != choice.id:
                raise InstrumentError(f"{here}: {spelling!r} could mean two different choices")
        choices.append(choice)
    return tuple(choices)


def _parse_item(entry: Any, where: str, earlier: Mapping[str, Item]) -> Item:
    if not isinstance(entry, Mapping):
        raise InstrumentError(f"{where}: expected a table")
    unknown = set(entry) - _ITEM_KEYS
    if unknown:
        raise InstrumentError(f"{where}: unknown keys {sorted(unknown)}")
    item_id = _identifier(entry.get("id"), f"{where}.id")
    where = f"{where} ({item_id})"
    if item_id in earlier:
        raise InstrumentError(f"{where}: the id {item_id!r} is used twice")
    kind = entry.get("type")
    if kind not in ITEM_TYPES:
        raise InstrumentError(f"{where}.type: expected one of {sorted(ITEM_TYPES)}")
    role = entry.get("role")
    if role is not None and role not in ROLES:
        raise InstrumentError(f"{where}.role: expected one of {sorted(ROLES)}")
    if role is not None and kind not in _ROLE_TYPES[role]:
        raise InstrumentError(f"{where}: a {role} item must be of type {sorted(_ROLE_TYPES[role])}")
    optional = entry.get("optional", False)
    if not isinstance(optional, bool):
        raise InstrumentError(f"{where}.optional: expected true or false")
    requires = entry.get("requires")
    if requires is not None and requires not in earlier:
        raise InstrumentError(f"{where}.requires: {requires!r} is not an earlier item")

    allowed = {
        "scale": {"min", "max", "min_label", "max_label"},
        "choice": {"choices", "risk"},
        "yes_no": {"choices", "risk"},
        "text": set(),
    }[kind]
    misplaced = set(entry) & (_ITEM_KEYS - {"id", "type", "text", "role", "optional", "requires"})
    if misplaced - allowed:
        raise InstrumentError(
            f"{where}: {sorted(misplaced - allowed)} do not apply to {kind} items"
        )

    lowest = highest = None
    min_label: dict[str, str] = {}
    max_label: dict[str, str] = {}
    choices: tuple[Choice, ...] = ()
    risk: frozenset[str] = frozenset()
    if kind == "scale":
        lowest, highest = (
            _integer(entry.get("min"), f"{where}.min"),
            _integer(entry.get("max"), f"{where}.max"),
        )
        if not lowest < highest <= lowest + _MAX_SCALE_SPAN:
            raise InstrumentError(
                f"{where}: need min < max, at most {_MAX_SCALE_SPAN} apart "
                f"(got {lowest}..{highest})"
            )
        if "min_label" in entry:
            min_label = _texts(entry["min_label"], f"{where}.min_label")
        if "max_label" in entry:
            max_label = _texts(entry["max_label"], f"{where}.max_label")
    elif kind in ("choice", "yes_no"):
        choices = _choices(entry.get("choices"), f"{where}.choices")
        ids = {choice.id for choice in choices}
        if kind == "yes_no" and not {"yes", "no"} <= ids:
            raise InstrumentError(f"{where}: a yes_no item needs choices with ids 'yes' and 'no'")
        raw_risk = entry.get("risk", ["yes"] if role == "safety" else [])
        if not isinstance(raw_risk, list) or not set(raw_risk) <= ids:
            raise InstrumentError(f"{where}.risk: expected a list of this item's choice ids")
        risk = frozenset(raw_risk)
        if role == "safety" and not risk:
            raise InstrumentError(f"{where}: a safety item needs at least one risk choice")
    return Item(
        id=item_id,
        type=cast(ItemType, kind),
        text=_texts(entry.get("text"), f"{where}.text"),
        role=cast(Role | None, role),
        optional=optional,
        min=lowest,
        max=highest,
        min_label=min_label,
        max_label=max_label,
        choices=choices,
        risk_choices=risk,
        requires=requires,
    )


def parse_instrument(name: str, table: Mapping[str, Any]) -> Instrument:
    """Build and validate an instrument from its TOML table; InstrumentError says what is wrong."""
    where = f"instrument {name!r}"
    _identifier(name, where)
    unknown = set(table) - _INSTRUMENT_KEYS
    if unknown:
        raise InstrumentError(f"{where}: unknown keys {sorted(unknown)}")
    raw_items = table.get("items")
    if not isinstance(raw_items, list) or not raw_items:
        raise InstrumentError(f"{where}: needs at least one [[items]] table")
    items: dict[str, Item] = {}
    for index, entry in enumerate(raw_items):
        item = _parse_item(entry, f"{where}, item {index + 1}", items)
        items[item.id] = item
    notes = {key: table.get(key, "") for key in ("citation", "licence", "license")}
    if not all(isinstance(value, str) for value in notes.values()):
        raise InstrumentError(f"{where}: citation and licence must be text")
    return Instrument(
        name=name,
        title=_texts(table.get("title"), f"{where}.title"),
        items=tuple(items.values()),
        citation=notes["citation"].strip(),
        licence=(notes["licence"] or notes["license"]).strip(),
    )


@cache
def load_instrument(name: str) -> Instrument:
    """A built-in instrument by name (read once from the package); KeyError if unknown."""
    path = _DIR / f"{name}.toml"
    if not _ID.fullmatch(name) or not path.is_file():
        raise KeyError(f"no built-in instrument {name!r}")
    # Reading packaged data is the one exception to "no I/O" here, as for the catalogs.
    with path.open("rb") as fh:
        return parse_instrument(name, tomllib.load(fh))


def load_instruments(extra: Mapping[str, Any] | None = None) -> dict[str, Instrument]:
    """The built-in instruments plus a practice's own (practice.toml ``[instruments]``)."""
    instruments = {path.stem: load_instrument(path.stem) for path in sorted(_DIR.glob("*.toml"))}
    for name, table in (extra or {}).items():
        if name in instruments:
            raise InstrumentError(f"instrument {name!r}: that name belongs to a built-in")
        if not isinstance(table, Mapping):
            raise InstrumentError(f"instrument {name!r}: expected a table")
        instruments[name] = parse_instrument(name, table)
    return instruments


# --- answers ------------------------------------------------------------------------------


def validate_answer(item: Item, raw: str) -> Answer:
    """The stored form of a partner's answer (an int or a choice id or the text).

    Raises InvalidAnswer (with a ``instruments.*`` catalog key) on input the partner can
    fix. Skipping an optional item is a separate action, not an empty answer.
    """
    if item.type == "scale":
        assert item.min is not None and item.max is not None
        bounds = {"min": item.min, "max": item.max}
        number = raw.strip()
        if not _INTEGER.fullmatch(number):
            raise InvalidAnswer("instruments.answer_not_a_number", **bounds)
        value = int(number)  # int() reads any Unicode decimal digits, as the regex allows
        if not item.min <= value <= item.max:
            raise InvalidAnswer("instruments.answer_out_of_range", **bounds)
        return value
    if item.type in ("choice", "yes_no"):
        wanted = _fold_choice(raw)
        for choice in item.choices:
            if wanted and wanted in {_fold_choice(s) for s in (choice.id, *choice.label.values())}:
                return choice.id
        raise InvalidAnswer("instruments.answer_unknown_choice")
    text = _CONTROL.sub("", raw).strip()
    if not text:
        raise InvalidAnswer("instruments.answer_empty")
    if len(text) > TEXT_ANSWER_LIMIT:
        raise InvalidAnswer("instruments.answer_too_long", limit=TEXT_ANSWER_LIMIT)
    return text


def is_risk_answer(item: Item, value: Answer | None) -> bool:
    """Whether this answer to this item calls for crisis resources and a therapist alert."""
    return isinstance(value, str) and value in item.risk_choices


def should_ask(item: Item, answers: Mapping[str, Answer]) -> bool:
    """Whether an item is asked, given the answers so far (follow-ups need their lead answered)."""
    return item.requires is None or answers.get(item.requires, "") not in ("", None)


def next_item(
    instrument: Instrument, answers: Mapping[str, Answer], skipped: Collection[str] = ()
) -> Item | None:
    """The next item to ask, or None when the check-in is complete."""
    for item in instrument.items:
        if item.id not in answers and item.id not in skipped and should_ask(item, answers):
            return item
    return None


def ok_to_raise(instrument: Instrument, answers: Mapping[str, Answer]) -> bool:
    """Whether the partner said their note may be raised in session (private unless "yes")."""
    notes = {item.id for item in instrument.items if item.role == "note"}
    return any(
        answers.get(item.id) == "yes"
        for item in instrument.items
        if item.type == "yes_no" and item.requires in notes
    )


def score_summary(instrument: Instrument, answers: Mapping[str, Answer]) -> dict[str, float]:
    """The mean answer per role over the answered scale items (for the digest)."""
    totals: dict[str, list[int]] = {}
    for item in instrument.items:
        value = answers.get(item.id)
        if item.type != "scale" or item.role is None:
            continue
        if isinstance(value, int) and not isinstance(value, bool):
            totals.setdefault(item.role, []).append(value)
    return {role: sum(values) / len(values) for role, values in totals.items()}
