"""Every package the product imports is declared in pyproject.toml, not merely pulled in by
another one (an extra of a dependency can change or go away in any release)."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("bot", "handlers", "schedules", "db")
FIRST_PARTY = (*PRODUCT, "fakebotapi")  # the fake Bot API ships beside the product (the demo)


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    return {
        _normal(re.split(r"[\s\[<>=~!;]", spec, maxsplit=1)[0]) for spec in project["dependencies"]
    }


def _imported() -> dict[str, str]:
    """Top-level module names the product imports, each with one file that does."""
    found: dict[str, str] = {}
    for package in PRODUCT:
        for path in sorted((ROOT / package).rglob("*.py")):
            where = path.relative_to(ROOT).as_posix()
            for node in ast.walk(ast.parse(path.read_text("utf-8"))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    found.setdefault(name.split(".")[0], where)
    return found


def test_every_third_party_import_is_a_declared_dependency() -> None:
    distributions = importlib.metadata.packages_distributions()
    declared = _declared()
    missing = []
    for module, where in sorted(_imported().items()):
        if module in sys.stdlib_module_names or module in FIRST_PARTY or module == "__future__":
            continue
        owners = {_normal(d) for d in distributions.get(module, [module])}
        if not owners & declared:
            missing.append(f"{module} (imported in {where}; from {sorted(owners)})")
    assert not missing, "imported but not declared in pyproject.toml: " + ", ".join(missing)
