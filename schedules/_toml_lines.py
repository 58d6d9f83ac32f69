"""Where each table and key of a TOML document starts, so problems can name a line.

``tomllib`` gives values without positions. :class:`TomlLines` re-reads the text (which
must already have parsed) and records the line of every table header, key, and array
element, by the same path the parsed data uses: ``("schedules", "standard", "rules",
2, "window")`` is the ``window`` key of the third ``[[schedules.standard.rules]]``.
"""

from __future__ import annotations

import bisect
import tomllib
from collections.abc import Sequence

TomlPath = tuple[str | int, ...]

_BARE_KEY = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_SCALAR_END = frozenset(",]}#\r\n")


class TomlLines:
    """The 1-based line of each path of a valid TOML document."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._pos = 0
        self._newlines = [i for i, char in enumerate(text) if char == "\n"]
        self._lines: dict[TomlPath, int] = {}
        self._arrays: dict[TomlPath, int] = {}
        self._document()

    def exact(self, path: Sequence[str | int]) -> int | None:
        """The line where ``path`` is written, or None if it is not in the text."""
        return self._lines.get(tuple(path))

    def line_of(self, path: Sequence[str | int]) -> int:
        """The line of ``path``, or of its nearest written ancestor (line 1 at worst)."""
        key = tuple(path)
        while key:
            if key in self._lines:
                return self._lines[key]
            key = key[:-1]
        return 1

    # --- scanning -------------------------------------------------------------------

    def _line(self, pos: int) -> int:
        return bisect.bisect_left(self._newlines, pos) + 1

    def _peek(self, token: str) -> bool:
        return self._text.startswith(token, self._pos)

    def _record(self, path: TomlPath, line: int, *, first: int = 1) -> None:
        # Implicit parent tables get the line where they first appear.
        for end in range(first, len(path)):
            self._lines.setdefault(path[:end], line)
        self._lines.setdefault(path, line)

    def _skip_blank(self, *, newlines: bool) -> None:
        text = self._text
        while self._pos < len(text):
            char = text[self._pos]
            if char in " \t" or (newlines and char in "\r\n"):
                self._pos += 1
            elif newlines and char == "#":
                end = text.find("\n", self._pos)
                self._pos = len(text) if end < 0 else end
            else:
                return

    def _document(self) -> None:
        table: TomlPath = ()
        while True:
            self._skip_blank(newlines=True)
            if self._pos >= len(self._text):
                return
            if self._peek("["):
                table = self._header()
            else:
                self._key_value(table)

    def _resolve(self, keys: Sequence[str]) -> TomlPath:
        # Inside an array of tables, a dotted name means its latest element.
        path: TomlPath = ()
        for key in keys:
            path = (*path, key)
            if path in self._arrays:
                path = (*path, self._arrays[path] - 1)
        return path

    def _header(self) -> TomlPath:
        line = self._line(self._pos)
        is_array = self._peek("[[")
        self._pos += 2 if is_array else 1
        keys = self._key()
        self._skip_blank(newlines=False)
        self._pos += 2 if is_array else 1
        parent = self._resolve(keys[:-1])
        named = (*parent, keys[-1])
        if not is_array:
            self._record(named, line)
            self._lines[named] = line  # an explicit header beats an earlier implicit mention
            return named
        index = self._arrays.get(named, 0)
        self._arrays[named] = index + 1
        self._record((*named, index), line)
        return (*named, index)

    def _key_value(self, table: TomlPath) -> None:
        line = self._line(self._pos)
        path = (*table, *self._key())
        self._record(path, line, first=len(table) + 1)
        self._skip_blank(newlines=False)
        self._pos += 1  # "="
        self._skip_blank(newlines=False)
        self._value(path)

    def _key(self) -> list[str]:
        keys: list[str] = []
        while True:
            self._skip_blank(newlines=False)
            if self._peek('"'):
                raw = self._basic_string()
                keys.append(tomllib.loads(f"k = {raw}")["k"])
            elif self._peek("'"):
                keys.append(self._literal_string()[1:-1])
            else:
                start = self._pos
                while self._pos < len(self._text) and self._text[self._pos] in _BARE_KEY:
                    self._pos += 1
                keys.append(self._text[start : self._pos])
            self._skip_blank(newlines=False)
            if not self._peek("."):
                return keys
            self._pos += 1

    def _value(self, path: TomlPath) -> None:
        if self._peek('"""'):
            self._multiline_string('"""')
        elif self._peek("'''"):
            self._multiline_string("'''")
        elif self._peek('"'):
            self._basic_string()
        elif self._peek("'"):
            self._literal_string()
        elif self._peek("["):
            self._array(path)
        elif self._peek("{"):
            self._inline_table(path)
        else:
            while self._pos < len(self._text) and self._text[self._pos] not in _SCALAR_END:
                self._pos += 1

    def _basic_string(self) -> str:
        start = self._pos
        self._pos += 1
        while self._text[self._pos] != '"':
            self._pos += 2 if self._text[self._pos] == "\\" else 1
        self._pos += 1
        return self._text[start : self._pos]

    def _literal_string(self) -> str:
        start = self._pos
        self._pos = self._text.index("'", self._pos + 1) + 1
        return self._text[start : self._pos]

    def _multiline_string(self, quotes: str) -> None:
        self._pos += 3
        while not self._peek(quotes):
            self._pos += 2 if quotes == '"""' and self._peek("\\") else 1
        self._pos += 3
        # Up to two quotes right before the closing ones belong to the string.
        for _ in range(2):
            if self._peek(quotes[0]):
                self._pos += 1

    def _array(self, path: TomlPath) -> None:
        self._pos += 1
        index = 0
        while True:
            self._skip_blank(newlines=True)
            if self._peek("]"):
                self._pos += 1
                return
            self._record((*path, index), self._line(self._pos), first=len(path) + 1)
            self._value((*path, index))
            index += 1
            self._skip_blank(newlines=True)
            if self._peek(","):
                self._pos += 1

    def _inline_table(self, path: TomlPath) -> None:
        self._pos += 1
        while True:
            self._skip_blank(newlines=True)
            if self._peek("}"):
                self._pos += 1
                return
            line = self._line(self._pos)
            inner = (*path, *self._key())
            self._record(inner, line, first=len(path) + 1)
            self._skip_blank(newlines=False)
            self._pos += 1  # "="
            self._skip_blank(newlines=False)
            self._value(inner)
            self._skip_blank(newlines=True)
            if self._peek(","):
                self._pos += 1
