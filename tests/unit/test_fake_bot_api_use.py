"""Tests, benchmarks and the demo play Telegram through the fake Bot API's public simulation API
only (``FakeBotAPI``, ``FakeUser``, ``FakeGroup`` and what ``fakebotapi`` exports), so the fake
can change inside without breaking them, and what they need is written down as a method there."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
USERS_OF_THE_FAKE = ("tests", "bench", "bot/demo.py")
PRODUCT = ("bot", "handlers", "schedules", "db")


def _private(name: str) -> bool:
    return name.startswith("_") and not name.endswith("__")


def _defined_private_names(packages: tuple[str, ...]) -> set[str]:
    """Underscored functions, methods and ``self._x`` attributes defined in ``packages``."""
    names: set[str] = set()
    for package in packages:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text("utf-8"))):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                    if _private(node.name):
                        names.add(node.name)
                elif (
                    isinstance(node, ast.Attribute)
                    and isinstance(node.value, ast.Name)
                    and node.value.id == "self"
                    and _private(node.attr)
                ):
                    names.add(node.attr)
    return names


def _receiver_name(node: ast.expr) -> str:
    """``fake`` for ``fake``, ``harness.fake`` or ``self.h.fake``; "" for anything else."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def private_uses(source: str, fake_only: set[str]) -> Iterator[tuple[int, str]]:
    """Where ``source`` reaches into the fake: (line, what).

    Any underscored attribute of something named like the fake (``fake._x``,
    ``harness.fake._x``); an underscored name only the fake defines, on anything (a
    ``FakeUser``'s ``_api``); an underscored name imported from ``fakebotapi``.
    """
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            receiver = _receiver_name(node.value)
            if receiver in ("self", "cls"):
                continue
            if "fake" in receiver.lower() or node.attr in fake_only:
                yield node.lineno, f"{ast.unparse(node.value)}.{node.attr}"
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("fakebotapi"):
            module = node.module or ""
            for alias in node.names:
                if _private(alias.name) or any(_private(part) for part in module.split(".")):
                    yield node.lineno, f"from {module} import {alias.name}"


def test_the_check_sees_each_way_in() -> None:
    source = (
        "from fakebotapi.server import _Configured\n"
        "harness.fake._user_pressed(user, message, 'x')\n"
        "when = fake._date()\n"
        "user._cursor = 0\n"
        "processor._handle = counted\n"
        "self._state = 1\n"
    )
    found = sorted(line for line, _ in private_uses(source, fake_only={"_cursor"}))
    assert found == [1, 2, 3, 4]


def test_tests_benchmarks_and_the_demo_use_only_the_fakes_public_api() -> None:
    # Names the product defines too (a processor's ``_handle``) are left to the first rule.
    fake_only = _defined_private_names(("fakebotapi",)) - _defined_private_names(PRODUCT)
    uses = [
        f"{path.relative_to(ROOT)}:{line}: {what}"
        for place in USERS_OF_THE_FAKE
        for path in sorted(
            (ROOT / place).rglob("*.py") if (ROOT / place).is_dir() else [ROOT / place]
        )
        for line, what in private_uses(path.read_text("utf-8"), fake_only)
    ]
    assert not uses, (
        "the fake Bot API's internals are used; add a documented method to FakeBotAPI, "
        "FakeUser or FakeGroup instead:\n" + "\n".join(uses)
    )
