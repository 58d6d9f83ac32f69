"""The prompt library: every prompt Dyad can send, kept as data.

The shipped prompts live in the TOML files next to this module, one file per kind
(``hope.toml``, ``skill.toml`` with the skill follow-ups, ``couple_space.toml``,
``checkin.toml``), each a list of ``[[prompts]]`` tables::

    [[prompts]]
    key = "hope.small_win"          # stable id: lowercase, dotted, at most 40 characters
    kind = "hope"                   # hope | skill | skill_followup | couple_space | checkin
    tags = ["noticing"]             # free labels; conflict_communication is paused by a hold
    answer = "text"                 # text | buttons
    text.en = "Hi {name}. ..."      # {name} is the partner's own first name
    text.es = "Hola, {name}. ..."
    text.pt = "Olá, {name}. ..."

Buttons prompts list their ``choices`` (ids whose labels are the catalog entries
``schedules.choice.<id>``) and may set ``optional_text = true`` to invite a few words
after the button. Skill prompts name their ``followup`` (a ``skill_followup`` key) and
``followup_after`` (whole days, such as ``"2d"``). A practice adds prompts, or replaces
a shipped one by reusing its key, with the same tables in its ``practice.toml``.
"""

from __future__ import annotations

import re
import string
import tomllib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from bot.locales import REQUIRED_TEXT_LANGUAGES, SUPPORTED_LANGUAGES, localized, variant_keys

PromptKind = Literal["hope", "skill", "skill_followup", "couple_space", "checkin"]
PROMPT_KINDS: tuple[str, ...] = get_args(PromptKind)
AnswerType = Literal["text", "buttons"]

CHOICES: tuple[str, ...] = ("yes", "partly", "not_yet", "start")
"""Button ids a prompt may offer; each one's label is ``schedules.choice.<id>``."""

CONFLICT_TAG = "conflict_communication"
"""Exercises paused while a couple has an open safety hold (CLINICAL.md, Safety)."""

HOLD_SUBSTITUTE_TAGS = frozenset({"appreciation", "self_care"})
"""A skill carrying one of these tags may stand in for a paused one under a hold."""

ALLOWED_PLACEHOLDERS = frozenset({"name"})
MAX_PROMPT_CHARS = 600
MAX_KEY_CHARS = 40  # prompt keys travel in callback data (64 bytes in all)
MAX_FOLLOWUP_DAYS = 14

_KEY = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")
_TAG = re.compile(r"^[a-z][a-z0-9_]*$")
_DAYS = re.compile(r"^(\d{1,2})d$")
_LANGUAGE_NAMES = {"en": "English", "es": "Spanish", "pt": "Portuguese"}
_LIBRARY_DIR = Path(__file__).parent


class ConfigValueError(ValueError):
    """A configuration value that is wrong, with what to change about it."""

    def __init__(self, message: str, fix: str, *, at: tuple[str | int, ...] = ()) -> None:
        super().__init__(f"{message}. {fix}")
        self.message = message
        self.fix = fix
        self.at = at  # where inside the validated value, when narrower than the field


def _placeholders(text: str) -> frozenset[str]:
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(text)]
    except ValueError:
        raise ConfigValueError(
            "a single '{' or '}' in the text",
            "Write {name} for the partner's first name, or double a brace ({{) to show it",
        ) from None
    return frozenset(field for field in fields if field is not None)


def parse_followup_days(value: str) -> int:
    """Whole days from a delay such as ``"2d"``."""
    match = _DAYS.match(value.strip())
    days = int(match.group(1)) if match else 0
    if not 1 <= days <= MAX_FOLLOWUP_DAYS:
        raise ConfigValueError(
            f"followup_after '{value}' is not a delay in whole days",
            f'Write a number of days from 1 to {MAX_FOLLOWUP_DAYS}, such as "2d"',
        )
    return days


class Prompt(BaseModel):
    """One prompt of the library, in every supported language."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    kind: PromptKind
    tags: tuple[str, ...] = ()
    text: dict[str, str]
    answer: AnswerType
    choices: tuple[str, ...] = ()
    optional_text: bool = False
    followup: str | None = None
    followup_after: str | None = None

    @field_validator("key")
    @classmethod
    def _key_shape(cls, value: str) -> str:
        if len(value) > MAX_KEY_CHARS or not _KEY.match(value):
            raise ConfigValueError(
                f"prompt key '{value}' has the wrong shape",
                f"Use lowercase words joined by dots, such as 'hope.small_win', "
                f"at most {MAX_KEY_CHARS} characters",
            )
        return value

    @field_validator("tags")
    @classmethod
    def _tag_shape(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for tag in value:
            if not _TAG.match(tag):
                raise ConfigValueError(
                    f"tag '{tag}' has the wrong shape", "Use lowercase letters, digits and _"
                )
        return value

    @field_validator("text")
    @classmethod
    def _every_language(cls, value: dict[str, str]) -> dict[str, str]:
        for language, text in value.items():
            if not text.strip():
                raise ConfigValueError(
                    f"text.{language} is empty", f"Write the text or remove text.{language}"
                )
        for language in REQUIRED_TEXT_LANGUAGES:
            if not value.get(language, "").strip():
                name = _LANGUAGE_NAMES.get(language, language)
                raise ConfigValueError(
                    f"missing translation: no {name} ({language}) text",
                    f'Add text.{language} = "..." to this prompt',
                )
        for language in value:
            if language not in SUPPORTED_LANGUAGES and language not in variant_keys():
                raise ConfigValueError(
                    f"text in unsupported language '{language}'",
                    f"Dyad speaks {', '.join((*SUPPORTED_LANGUAGES, *variant_keys()))}; "
                    f"remove text.{language}",
                )
        used = {language: _placeholders(text) for language, text in value.items()}
        for language, names in used.items():
            unknown = names - ALLOWED_PLACEHOLDERS
            if unknown:
                raise ConfigValueError(
                    f"unknown placeholder {{{sorted(unknown)[0]}}} in text.{language}",
                    "Only {name} (the partner's own first name) can be filled in",
                )
        if len(set(used.values())) > 1:
            raise ConfigValueError(
                "the languages use different placeholders",
                "Use {name} in every language or in none",
            )
        for language, text in value.items():
            if len(text) > MAX_PROMPT_CHARS:
                raise ConfigValueError(
                    f"text.{language} is {len(text)} characters long",
                    f"Keep a prompt under {MAX_PROMPT_CHARS} characters",
                )
        return value

    @field_validator("followup_after")
    @classmethod
    def _delay_shape(cls, value: str | None) -> str | None:
        if value is not None:
            parse_followup_days(value)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Prompt:
        if self.answer == "buttons":
            unknown = [choice for choice in self.choices if choice not in CHOICES]
            if not self.choices or unknown:
                raise ConfigValueError(
                    f"buttons prompt with choices {list(self.choices)}",
                    f"List choices from: {', '.join(CHOICES)}",
                )
        elif self.choices or self.optional_text:
            raise ConfigValueError(
                "choices and optional_text only apply to buttons prompts",
                'Remove them, or set answer = "buttons"',
            )
        if self.kind == "skill":
            if self.followup is None or self.followup_after is None:
                raise ConfigValueError(
                    "a skill prompt needs its follow-up",
                    'Add followup = "<a skill_followup key>" and followup_after = "2d"',
                )
        elif self.followup is not None or self.followup_after is not None:
            raise ConfigValueError(
                f"followup is only for skill prompts, and this one is {self.kind}",
                "Remove followup and followup_after",
            )
        return self

    @property
    def followup_days(self) -> int | None:
        """Days between this skill and its follow-up, or None for other kinds."""
        return parse_followup_days(self.followup_after) if self.followup_after else None

    @property
    def is_conflict_communication(self) -> bool:
        """Whether a safety hold pauses this prompt."""
        return CONFLICT_TAG in self.tags


@dataclass(frozen=True)
class LibraryIssue:
    """A prompt that does not fit with the rest of the library."""

    key: str
    field: str | None
    message: str
    fix: str


class UnknownPromptError(KeyError):
    """A prompt key the library does not hold."""


class LibraryError(ValueError):
    """Prompts that do not fit together (see :class:`LibraryIssue`)."""

    def __init__(self, issues: Sequence[LibraryIssue]) -> None:
        super().__init__("; ".join(f"{i.key}: {i.message}" for i in issues))
        self.issues = tuple(issues)


class PromptLibrary:
    """All prompts by key: the shipped ones, plus or replaced by a practice's own."""

    def __init__(self, prompts: Iterable[Prompt]) -> None:
        self._by_key: dict[str, Prompt] = {}
        for prompt in prompts:
            self._by_key[prompt.key] = prompt

    def __contains__(self, key: object) -> bool:
        return key in self._by_key

    def __len__(self) -> int:
        return len(self._by_key)

    def __iter__(self) -> Iterator[Prompt]:
        return iter(sorted(self._by_key.values(), key=lambda p: p.key))

    def get(self, key: str) -> Prompt:
        """The prompt ``key``; :class:`UnknownPromptError` if there is none."""
        try:
            return self._by_key[key]
        except KeyError:
            raise UnknownPromptError(key) from None

    def by_kind(self, kind: str) -> tuple[Prompt, ...]:
        """Every prompt of one kind, ordered by key."""
        return tuple(p for p in self if p.kind == kind)

    def with_tags(self, kind: str, tags: Iterable[str]) -> tuple[Prompt, ...]:
        """Prompts of ``kind`` carrying at least one of ``tags`` (all of the kind if none)."""
        wanted = frozenset(tags)
        return tuple(p for p in self.by_kind(kind) if not wanted or wanted & set(p.tags))

    def followup_for(self, skill_key: str) -> Prompt | None:
        """The follow-up prompt of a skill, or None if ``skill_key`` is no skill."""
        prompt = self.get(skill_key)
        return self.get(prompt.followup) if prompt.followup else None

    def text(self, key: str, language: str | None, /, **params: object) -> str:
        """The prompt's text in ``language`` (closest supported one), placeholders filled."""
        return localized(self.get(key).text, language).format(**params)

    def issues(self) -> list[LibraryIssue]:
        """Broken follow-up references, and paused kinds with nothing to stand in for them."""
        found: list[LibraryIssue] = []
        for prompt in self:
            if prompt.followup is None:
                continue
            target = self._by_key.get(prompt.followup)
            if target is None:
                found.append(
                    LibraryIssue(
                        prompt.key,
                        "followup",
                        f"unknown prompt key '{prompt.followup}' as followup",
                        "Name a skill_followup prompt of the library or of this file",
                    )
                )
            elif target.kind != "skill_followup":
                found.append(
                    LibraryIssue(
                        prompt.key,
                        "followup",
                        f"followup '{prompt.followup}' is a {target.kind} prompt",
                        "Name a prompt whose kind is skill_followup",
                    )
                )
        for kind in PROMPT_KINDS:
            paused = [p for p in self.by_kind(kind) if p.is_conflict_communication]
            if paused and not hold_substitutes(self, kind):
                found.append(
                    LibraryIssue(
                        paused[0].key,
                        "tags",
                        f"no {kind} prompt can stand in for this one under a safety hold",
                        f"Keep at least one {kind} prompt without {CONFLICT_TAG}"
                        + (" tagged appreciation or self_care" if kind.startswith("skill") else ""),
                    )
                )
        return found


def hold_substitutes(library: PromptLibrary, kind: str) -> tuple[Prompt, ...]:
    """Prompts of ``kind`` that may replace a paused one while a safety hold is open."""
    return tuple(
        prompt
        for prompt in library.by_kind(kind)
        if not prompt.is_conflict_communication
        and (not kind.startswith("skill") or HOLD_SUBSTITUTE_TAGS & set(prompt.tags))
    )


@cache
def shipped_prompts() -> tuple[Prompt, ...]:
    """The prompts shipped with Dyad, read once from the library's TOML files."""
    prompts: list[Prompt] = []
    for path in sorted(_LIBRARY_DIR.glob("*.toml")):
        with path.open("rb") as fh:
            data = tomllib.load(fh)
        prompts.extend(Prompt.model_validate(table) for table in data["prompts"])
    return tuple(prompts)


def merge_issues(extra: Sequence[Prompt]) -> list[LibraryIssue]:
    """Problems with a practice's prompts: duplicates, kind changes, broken follow-ups."""
    shipped = {prompt.key: prompt for prompt in shipped_prompts()}
    found: list[LibraryIssue] = []
    seen: set[str] = set()
    for prompt in extra:
        if prompt.key in seen:
            found.append(
                LibraryIssue(
                    prompt.key,
                    "key",
                    f"prompt key '{prompt.key}' is defined twice in this file",
                    "Keep one of them, or give the other a new key",
                )
            )
        seen.add(prompt.key)
        original = shipped.get(prompt.key)
        if original is not None and original.kind != prompt.kind:
            found.append(
                LibraryIssue(
                    prompt.key,
                    "kind",
                    f"prompt '{prompt.key}' replaces a shipped {original.kind} prompt "
                    f"with kind {prompt.kind}",
                    f'Keep kind = "{original.kind}", or use a new key',
                )
            )
    found.extend(PromptLibrary([*shipped.values(), *extra]).issues())
    return found


def load_library(extra: Iterable[Prompt | Mapping[str, Any]] = ()) -> PromptLibrary:
    """The shipped library with a practice's ``[[prompts]]`` added (same key replaces)."""
    added = [p if isinstance(p, Prompt) else Prompt.model_validate(p) for p in extra]
    issues = merge_issues(added)
    if issues:
        raise LibraryError(issues)
    return PromptLibrary([*shipped_prompts(), *added])
