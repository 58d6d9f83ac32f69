"""Checking a practice's ``practice.toml`` (its schedule part), with line numbers.

``dyad schedules check FILE`` prints :func:`format_problems` (``FILE:LINE: message``)
and exits 1, or prints the one-line summary and exits 0. Messages are English: they are
read by practice admins at a terminal, not by partners. The app loads its schedules
through :func:`load_practice_schedules`, which runs the same checks.
"""

from __future__ import annotations

import difflib
import re
import tomllib
import types
import typing
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from bot.locales import SUPPORTED_LANGUAGES
from schedules._toml_lines import TomlLines, TomlPath
from schedules.library import (
    ConfigValueError,
    Prompt,
    PromptLibrary,
    merge_issues,
    shipped_prompts,
)
from schedules.model import (
    DEFAULT_PRACTICE_FILE,
    DEFAULT_TEMPLATE,
    PARTNER_WINDOW,
    SECTIONS,
    WINDOW_NAMES,
    CheckinSettings,
    DeliverySettings,
    PracticeSchedules,
    Rule,
    ScheduleTemplate,
    TimeRange,
)
from schedules.planning import rules_never_sent

OTHER_SECTIONS: frozenset[str] = frozenset(
    {
        "practice",
        "instruments",
        "crisis_resources",
        "retention",
        "digest",
        "alliance",
        "webhooks",
    }
)
"""Top-level sections of practice.toml that other parts of Dyad read (not checked here)."""

_Model = TypeVar("_Model", bound=BaseModel)
_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column \d+\)|\s*\(at end of document\)")


@dataclass(frozen=True)
class Problem:
    """Something wrong in the file: where, what, and what to change."""

    line: int
    message: str
    fix: str

    def __str__(self) -> str:
        fix = self.fix if self.fix.endswith((".", "?")) else f"{self.fix}."
        return f"{self.message}. {fix}"


@dataclass(frozen=True)
class CheckResult:
    """The outcome of checking one file: its problems, or the configuration it holds."""

    source: str
    problems: tuple[Problem, ...]
    config: PracticeSchedules | None = None
    library: PromptLibrary | None = None

    @property
    def ok(self) -> bool:
        """Whether the file can be used as it is."""
        return not self.problems

    @property
    def summary(self) -> str:
        """One line: ``ok: 2 templates, 9 rules, 74 prompts (en, es, pt)`` or a problem count."""
        if self.config is None or self.library is None:
            return _count(len(self.problems), "problem")
        templates = self.config.schedules.values()
        rules = sum(len(template.rules) for template in templates)
        return (
            f"ok: {_count(len(templates), 'template')}, {_count(rules, 'rule')}, "
            f"{_count(len(self.library), 'prompt')} ({', '.join(SUPPORTED_LANGUAGES)})"
        )


class PracticeFileError(ValueError):
    """A practice.toml with problems; ``str()`` lists them as ``FILE:LINE: message``."""

    def __init__(self, result: CheckResult) -> None:
        super().__init__("\n".join(format_problems(result)))
        self.result = result


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def format_problems(result: CheckResult) -> list[str]:
    """Each problem as ``FILE:LINE: message. What to change.``, in line order."""
    return [f"{result.source}:{problem.line}: {problem}" for problem in result.problems]


def check_practice_file(
    path: str | Path, *, other_sections: Collection[str] = OTHER_SECTIONS
) -> CheckResult:
    """Check a practice.toml file (its schedule part)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problem = Problem(1, f"cannot read the file ({exc})", "Give a readable UTF-8 file")
        return CheckResult(str(path), (problem,))
    return check_practice_text(text, str(path), other_sections=other_sections)


def check_practice_text(
    text: str,
    source: str = "practice.toml",
    *,
    other_sections: Collection[str] = OTHER_SECTIONS,
) -> CheckResult:
    """Check the text of a practice.toml; ``source`` names it in messages."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return CheckResult(source, (_syntax_problem(exc, text),))
    return _Checker(data, TomlLines(text), source, frozenset(other_sections)).run()


def load_practice_schedules(path: str | Path | None = None) -> PracticeSchedules:
    """The checked schedule configuration of ``path`` (the shipped default if None)."""
    if path is None:
        return default_schedules()
    result = check_practice_file(path)
    if result.config is None:
        raise PracticeFileError(result)
    return result.config


@cache
def default_schedules() -> PracticeSchedules:
    """The shipped default configuration (``schedules/default_practice.toml``)."""
    result = check_practice_file(DEFAULT_PRACTICE_FILE)
    if result.config is None:
        raise RuntimeError("\n".join(format_problems(result)))
    return result.config


def _syntax_problem(exc: tomllib.TOMLDecodeError, text: str) -> Problem:
    message = str(exc)
    match = _TOML_POSITION.search(message)
    if match and match.group(1):
        line = int(match.group(1))
    else:
        line = max(1, text.count("\n") + (0 if text.endswith("\n") else 1))
    what = _TOML_POSITION.sub("", message)
    return Problem(line, f"TOML syntax error: {what}", "Fix the syntax on this line")


def _model_below(model: type[BaseModel], keys: Sequence[str | int]) -> type[BaseModel] | None:
    """The model class that validates the table at ``keys`` under ``model``."""
    current: type[BaseModel] | None = model
    for key in keys:
        if isinstance(key, int) or current is None:
            continue
        field = current.model_fields.get(key)
        current = _first_model(field.annotation) if field else None
    return current


def _first_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        if not isinstance(arg, types.EllipsisType):
            found = _first_model(arg)
            if found is not None:
                return found
    return None


def _valid_rules(table: object) -> dict[int, Rule]:
    raw = table.get("rules") if isinstance(table, dict) else None
    valid: dict[int, Rule] = {}
    for index, rule in enumerate(raw if isinstance(raw, list) else []):
        try:
            valid[index] = Rule.model_validate({"id": "rule", **rule})
        except (ValidationError, TypeError):
            continue
    return valid


def _suggest(word: str, options: Collection[str]) -> str:
    close = difflib.get_close_matches(word, sorted(options), n=1, cutoff=0.6)
    if close:
        return f"Did you mean '{close[0]}'?"
    return f"Allowed here: {', '.join(sorted(options))}"


class _Checker:
    def __init__(
        self, data: dict[str, Any], lines: TomlLines, source: str, other: frozenset[str]
    ) -> None:
        self.data = data
        self.lines = lines
        self.source = source
        self.other = other
        self.problems: list[tuple[int, int, Problem]] = []
        self.unchecked_keys: set[str] = set()

    def report(self, path: TomlPath, message: str, fix: str) -> None:
        line = self.lines.line_of(path)
        # Keep file order, and the order of discovery within a line.
        self.problems.append((line, len(self.problems), Problem(line, message, fix)))

    def validate(self, model: type[_Model], raw: object, path: TomlPath) -> _Model | None:
        try:
            return model.model_validate(raw)
        except ValidationError as exc:
            for error in exc.errors():
                self.report_error(model, path, error)
            return None

    def report_error(self, model: type[BaseModel], path: TomlPath, error: Any) -> None:
        loc: TomlPath = tuple(error["loc"])
        kind: str = error["type"]
        ctx: dict[str, Any] = error.get("ctx") or {}
        cause = ctx.get("error")
        names = [part for part in loc if isinstance(part, str)]
        field = names[-1] if names else (path[-1] if path else "value")
        value = error.get("input")
        if isinstance(cause, ConfigValueError):
            self.report((*path, *loc, *cause.at), cause.message, cause.fix)
        elif kind == "extra_forbidden":
            below = _model_below(model, loc[:-1])
            allowed = set(below.model_fields) if below else set()
            self.report((*path, *loc), f"unknown key '{field}'", _suggest(str(field), allowed))
        elif kind == "missing":
            self.report((*path, *loc), f"missing key '{field}'", f"Add {field} = ... here")
        elif kind == "literal_error":
            self.report(
                (*path, *loc),
                f"unknown {field} {value!r}",
                f"Use one of: {ctx.get('expected', '')}",
            )
        elif kind in {"int_type", "int_parsing", "int_from_float"}:
            self.report((*path, *loc), f"{field} must be a whole number", "Write it without quotes")
        elif kind in {"string_type"}:
            self.report((*path, *loc), f"{field} must be text", 'Put it in quotes: "..."')
        elif kind in {"bool_type", "bool_parsing"}:
            self.report((*path, *loc), f"{field} must be true or false", "Write true or false")
        elif kind in {"greater_than_equal", "less_than_equal"}:
            bound = "at least" if kind == "greater_than_equal" else "at most"
            limit = ctx.get("ge", ctx.get("le"))
            self.report((*path, *loc), f"{field} is {value!r}", f"Use {bound} {limit}")
        elif kind == "too_short" and field == "rules":
            # Pydantic counts only the rules that validated; broken ones are reported already.
            if not value:
                self.report((*path, *loc), "this template has no rules", "Add a rule, or remove it")
        elif kind in {"list_type", "tuple_type"}:
            self.report((*path, *loc), f"{field} must be a list", 'Write it as ["...", "..."]')
        elif kind in {"dict_type", "model_type", "model_attributes_type"}:
            self.report((*path, *loc), f"{field} must be a table", f"Write it as [{field}]")
        else:
            self.report((*path, *loc), f"{field}: {error['msg']}", "Correct this value")

    def run(self) -> CheckResult:
        for key in self.data:
            if key not in SECTIONS and key not in self.other:
                self.report(
                    (key,), f"unknown section '{key}'", _suggest(key, {*SECTIONS, *self.other})
                )
        delivery = self.validate(DeliverySettings, self.data.get("delivery", {}), ("delivery",))
        checkin = self.validate(CheckinSettings, self.data.get("checkin", {}), ("checkin",))
        prompts = self.check_prompts()
        library = PromptLibrary([*shipped_prompts(), *prompts])
        templates = self.check_templates(library, delivery)
        if delivery is not None:
            self.check_windows(delivery)
        self.check_default_template()
        problems = tuple(problem for _, _, problem in sorted(self.problems))
        if problems or delivery is None or checkin is None or templates is None:
            return CheckResult(self.source, problems)
        config = PracticeSchedules(
            delivery=delivery, checkin=checkin, schedules=templates, prompts=tuple(prompts)
        )
        self.check_rules_fire(config, library)
        problems = tuple(problem for _, _, problem in sorted(self.problems))
        if problems:
            return CheckResult(self.source, problems)
        return CheckResult(self.source, (), config, library)

    def check_prompts(self) -> list[Prompt]:
        """The practice's valid prompts; keys of the invalid ones go to ``unchecked_keys``."""
        raw = self.data.get("prompts", [])
        if not isinstance(raw, list):
            self.report(("prompts",), "prompts must be a list of tables", "Write [[prompts]]")
            return []
        prompts: dict[int, Prompt] = {}
        for index, table in enumerate(raw):
            prompt = self.validate(Prompt, table, ("prompts", index))
            if prompt is not None:
                prompts[index] = prompt
            elif isinstance(table, dict) and isinstance(table.get("key"), str):
                # Rules naming a broken prompt are not reported a second time.
                self.unchecked_keys.add(table["key"])
        if len(prompts) == len(raw):
            for issue in merge_issues(list(prompts.values())):
                indexes = [i for i, p in prompts.items() if p.key == issue.key]
                # A duplicate is reported where it is written the second time.
                path: TomlPath = ("prompts", indexes[-1]) if indexes else ("prompts",)
                self.report((*path, issue.field) if issue.field else path, issue.message, issue.fix)
        return list(prompts.values())

    def check_default_template(self) -> None:
        delivery = self.data.get("delivery", {})
        written = delivery.get("default_template") if isinstance(delivery, dict) else None
        schedules = self.data.get("schedules")
        names = set(schedules) if isinstance(schedules, dict) else set()
        if "schedules" not in self.data:
            names = set(default_schedules().schedules)
        if isinstance(written, str) and names and written not in names:
            self.report(
                ("delivery", "default_template"),
                f"unknown template '{written}' as default_template",
                _suggest(written, names),
            )
        elif written is None and names and DEFAULT_TEMPLATE not in names:
            # Left out, default_template is the shipped "standard": the planner would look
            # for a template this file does not have.
            self.report(
                ("schedules",),
                f"no default_template is given, so new couples would follow "
                f"'{DEFAULT_TEMPLATE}', which this file does not define",
                f'Add default_template = "{sorted(names)[0]}" under [delivery] '
                f"(one of: {', '.join(sorted(names))})",
            )

    def check_rules_fire(self, config: PracticeSchedules, library: PromptLibrary) -> None:
        """Plan two weeks of every template as the planner would: each rule must be sent."""
        for name, template in config.schedules.items():
            try:
                never = rules_never_sent(config, library, name)
            except Exception as error:  # the planner could not use it: say so, here
                self.report(
                    ("schedules", name),
                    f"the planner cannot use template '{name}' ({type(error).__name__}: {error})",
                    "Correct this template's rules",
                )
                continue
            for index, rule in enumerate(template.rules):
                if rule.id in never:
                    self.report(
                        ("schedules", name, "rules", index),
                        f"rule '{rule.id}' would never be sent: on its days, rules of higher "
                        f"priority (or written before it) already use up max_per_day "
                        f"({config.delivery.max_per_day})",
                        "Raise max_per_day, move the rule to other days, or remove it",
                    )

    def check_templates(
        self, library: PromptLibrary, delivery: DeliverySettings | None
    ) -> dict[str, ScheduleTemplate] | None:
        if "schedules" not in self.data:
            # Leaving the section out keeps the shipped templates.
            return dict(default_schedules().schedules)
        raw = self.data["schedules"]
        if not isinstance(raw, dict) or not raw:
            self.report(
                ("schedules",), "schedules holds no templates", "Add [schedules.<name>] tables"
            )
            return None
        templates: dict[str, ScheduleTemplate] = {}
        for name, table in raw.items():
            template = self.validate(ScheduleTemplate, table, ("schedules", name))
            if template is not None:
                templates[name] = template
                rules = dict(enumerate(template.rules))
            else:
                # Still check the rules that are right on their own, to report more at once.
                rules = _valid_rules(table)
            for index, rule in rules.items():
                here: TomlPath = ("schedules", name, "rules", index)
                self.check_rule_prompts(library, rule.kind, rule.prompt, rule.tags, here)
                if delivery is not None and rule.window not in (PARTNER_WINDOW, *WINDOW_NAMES):
                    window = delivery.resolve_window(rule.window, "morning")
                    self.check_not_all_quiet(delivery, window, (*here, "window"))
        return templates if len(templates) == len(raw) else None

    def check_rule_prompts(
        self,
        library: PromptLibrary,
        kind: str,
        prompt: str | None,
        tags: tuple[str, ...],
        here: TomlPath,
    ) -> None:
        if prompt is not None:
            if prompt in self.unchecked_keys:
                return
            if prompt not in library:
                keys = {p.key for p in library.by_kind(kind)}
                self.report(
                    (*here, "prompt"), f"unknown prompt key '{prompt}'", _suggest(prompt, keys)
                )
            elif library.get(prompt).kind != kind:
                self.report(
                    (*here, "prompt"),
                    f"prompt '{prompt}' is a {library.get(prompt).kind} prompt, "
                    f"but this rule has kind {kind}",
                    f"Choose a {kind} prompt, or change the rule's kind",
                )
        elif not library.with_tags(kind, tags):
            known = sorted({tag for p in library.by_kind(kind) for tag in p.tags})
            self.report(
                (*here, "tags"),
                f"no {kind} prompt has any of the tags {list(tags)}",
                f"Use tags that {kind} prompts carry: {', '.join(known)}",
            )

    def check_windows(self, delivery: DeliverySettings) -> None:
        for name in WINDOW_NAMES:
            path: TomlPath = ("delivery", "windows", name)
            if self.lines.exact(path) is None:
                path = ("delivery", "quiet_hours")
            self.check_not_all_quiet(delivery, delivery.windows.named(name), path, name)

    def check_not_all_quiet(
        self, delivery: DeliverySettings, window: TimeRange, path: TomlPath, name: str = ""
    ) -> None:
        quiet = delivery.quiet_hours
        if quiet is not None and all(quiet.contains(m) for m in range(window.start, window.end)):
            label = f"window {name} ({window})" if name else f"window {window}"
            self.report(
                path,
                f"{label} lies entirely inside quiet hours {quiet}",
                "Move the window, or shorten quiet_hours, so some of it is allowed",
            )
