"""Convert the TOML message catalogs (``bot/locales/<lang>/*.toml``) into gettext ``.po`` files.

Dyad's messages used to live in TOML files, one directory per language; they now live in
``bot/locales/<locale>/LC_MESSAGES/dyad.po``, one entry per key (the key is the msgid).
Branches written against the TOML files are merged with this script:

    git merge BRANCH            # a deleted TOML file the branch edited: keep its version
    .venv/bin/python scripts/catalogs_from_toml.py
    git rm -q bot/locales/*/*.toml && git commit

For every TOML file present it writes each key that is new, or whose text differs from
the TOML at the base (the merge base with ``MERGE_HEAD`` during a merge, else the commit
the catalogs were converted from), into the locale's catalog: ``en`` -> ``en``, ``es`` ->
``es_ES``, ``pt`` -> ``pt_BR`` (every key, for a locale without a catalog yet). Keys the
branch did not touch keep their ``.po`` text (or stay removed), so edits made to the
catalogs since (plural forms, the Spanish variants) survive. A key that is plural in the
catalog and was changed in the TOML is reported, not overwritten.

Every es_ES key missing from ``es_419`` (or changed in the Spanish TOML) is copied there
as a ``fuzzy`` entry marked "copied from es_ES": the Latin American register test fails on
a copy that uses vosotros, so such a text gets its ustedes version before it ships.

Running it again changes nothing. Finally it runs ``make translations`` (pybabel extract
and update), so the files are exactly as the Babel tooling writes them.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog, Message
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parents[1]
LOCALES_DIR = ROOT / "bot" / "locales"
DOMAIN = "dyad"
# The main-branch commit whose TOML catalogs were converted first.
BASELINE = "42a285e"
# TOML directory -> gettext locale.
LOCALE_OF_DIRECTORY = {"en": "en", "es": "es_ES", "pt": "pt_BR"}
LATIN_AMERICAN = "es_419"
COPIED_MARK = "copied from es_ES: check the register (ustedes) before removing fuzzy"
# Fixed header dates, so a catalog created twice is the same file.
CREATED = datetime(2026, 12, 1, tzinfo=UTC)


def flatten(prefix: str, table: dict[str, Any], out: dict[str, str]) -> None:
    """``[section] name = "..."`` in ``area.toml`` -> ``{"area.section.name": "..."}``."""
    for key, value in table.items():
        full = f"{prefix}.{key}"
        if isinstance(value, dict):
            flatten(full, value, out)
        elif isinstance(value, str):
            out[full] = value
        else:
            raise TypeError(f"catalog entry {full} must be text, not {type(value).__name__}")


def _git(*args: str) -> str | None:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    return done.stdout if done.returncode == 0 else None


def base_revision(explicit: str | None) -> str:
    """The revision whose TOML counts as already converted."""
    if explicit:
        return explicit
    if (ROOT / ".git").exists() or _git("rev-parse", "--git-dir"):
        merge_head = _git("rev-parse", "-q", "--verify", "MERGE_HEAD")
        if merge_head:
            base = _git("merge-base", "HEAD", merge_head.strip())
            if base:
                return base.strip()
    return BASELINE


def toml_messages(directory: str, revision: str | None) -> dict[str, str]:
    """The flattened TOML messages of one language, from the work tree or a revision."""
    out: dict[str, str] = {}
    if revision is None:
        for path in sorted((LOCALES_DIR / directory).glob("*.toml")):
            flatten(path.stem, tomllib.loads(path.read_text(encoding="utf-8")), out)
        return out
    listing = _git("ls-tree", "--name-only", f"{revision}:bot/locales/{directory}") or ""
    for name in sorted(line for line in listing.splitlines() if line.endswith(".toml")):
        text = _git("show", f"{revision}:bot/locales/{directory}/{name}")
        if text is not None:
            flatten(name.removesuffix(".toml"), tomllib.loads(text), out)
    return out


def po_path(locale: str) -> Path:
    return LOCALES_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


def load(locale: str) -> Catalog:
    path = po_path(locale)
    if path.exists():
        with path.open("rb") as fh:
            return read_po(fh, locale=locale, domain=DOMAIN)
    return Catalog(
        locale=locale,
        domain=DOMAIN,
        project="Dyad",
        version="0.1.0",
        copyright_holder="Dyad",
        msgid_bugs_address="",
        creation_date=CREATED,
        revision_date=CREATED,
        language_team=f"{locale} <>",
        last_translator="Dyad <>",
        fuzzy=False,
    )


def replace(catalog: Catalog, message: Message) -> None:
    """Put ``message`` in place of any entry with its key (Babel's ``[]=`` would merge)."""
    key = message.id[0] if isinstance(message.id, tuple) else message.id
    if catalog.get(key) is not None:
        del catalog[key]
    catalog[message.id] = message


def keys_of(catalog: Catalog) -> set[str]:
    return {str(m.id[0] if isinstance(m.id, tuple) else m.id) for m in catalog if m.id}


def save(catalog: Catalog) -> None:
    path = po_path(str(catalog.locale_identifier))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        write_po(fh, catalog, sort_output=True)


def merge_language(directory: str, base: str, english: set[str] | None) -> tuple[Catalog, set[str]]:
    """Write the new and changed keys of one TOML language into its catalog.

    ``english`` holds the English keys (None while converting English itself): a key
    English lacks is reported and skipped. Returns the catalog and the keys written (to
    refresh their es_419 copies).
    """
    locale = LOCALE_OF_DIRECTORY[directory]
    fresh = not po_path(locale).exists()
    catalog = load(locale)
    current = toml_messages(directory, None)
    before = {} if fresh else toml_messages(directory, base)
    written: set[str] = set()
    for key, text in current.items():
        # Untouched since the base: the catalog's own text (or its removal) stands.
        if before.get(key) == text:
            continue
        if english is not None and key not in english:
            print(f"{directory}: {key} is not an English key; add it to en first")
            continue
        existing = catalog.get(key)
        if existing is not None and isinstance(existing.id, tuple):
            print(f"{directory}: {key} is plural in the catalog; edit it there by hand")
            continue
        if existing is not None and existing.string == text:
            continue
        replace(catalog, Message(key, text))
        written.add(key)
    return catalog, written


def fill_latin_american(spain: Catalog, refreshed: set[str]) -> Catalog:
    """Copy es_ES keys that es_419 lacks (or whose es_ES text changed) as fuzzy entries."""
    latin = load(LATIN_AMERICAN)
    for message in spain:
        if not message.id:
            continue
        key = message.id[0] if isinstance(message.id, tuple) else message.id
        existing = latin.get(key)
        if existing is not None and key not in refreshed:
            continue
        if existing is not None and existing.string == message.string:
            continue
        copy = Message(message.id, message.string, flags={"fuzzy"}, user_comments=[COPIED_MARK])
        replace(latin, copy)
    return latin


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", help="revision whose TOML is already converted")
    parser.add_argument(
        "--no-make", action="store_true", help="skip `make translations` afterwards"
    )
    args = parser.parse_args(argv)
    base = base_revision(args.base)
    directories = sorted(
        d.name for d in LOCALES_DIR.iterdir() if d.is_dir() and any(d.glob("*.toml"))
    )
    unknown = [d for d in directories if d not in LOCALE_OF_DIRECTORY]
    if unknown:
        print(f"no locale for TOML directories {unknown}; add them to LOCALE_OF_DIRECTORY")
        return 2
    spanish_written: set[str] = set()
    english = None if "en" in directories else keys_of(load("en"))
    for directory in sorted(directories, key=lambda d: d != "en"):
        catalog, written = merge_language(directory, base, english)
        save(catalog)
        if directory == "en":
            english = keys_of(catalog)
        print(f"{directory} -> {catalog.locale_identifier}: {len(written)} entries written")
        if directory == "es":
            spanish_written = written
    if po_path("es_ES").exists():
        with po_path("es_ES").open("rb") as fh:
            spain = read_po(fh, locale="es_ES", domain=DOMAIN)
        save(fill_latin_american(spain, spanish_written))
    if not args.no_make:
        subprocess.run(["make", "-s", "translations"], cwd=ROOT, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
