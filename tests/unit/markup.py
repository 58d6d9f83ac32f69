"""HTML checks shared by the digest and Telegram message tests: balanced tags, visible text."""

from __future__ import annotations

from html.parser import HTMLParser

TELEGRAM_TAGS = {"b", "i", "u", "s", "code", "pre", "blockquote", "a"}
VOID_TAGS = {"meta", "br"}


class MarkupCheck(HTMLParser):
    """Collects tags, nesting errors and text of an HTML fragment."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.tags: set[str] = set()
        self.errors: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        if tag not in VOID_TAGS:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def check_markup(markup: str) -> MarkupCheck:
    """Parse ``markup``; the result says which tags it used and whether they balance."""
    checker = MarkupCheck()
    checker.feed(markup)
    checker.close()
    return checker


def assert_balanced(markup: str) -> MarkupCheck:
    checker = check_markup(markup)
    assert checker.errors == [], checker.errors
    assert checker.stack == [], f"left open: {checker.stack}"
    return checker


def visible_text(markup: str) -> str:
    """The text a reader sees, with whitespace removed (splits may drop a space)."""
    return "".join("".join(check_markup(markup).text).split())


def utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2
