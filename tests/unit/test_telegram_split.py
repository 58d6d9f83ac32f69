"""Telegram's 4,096 characters: long HTML becomes messages that are short, valid and complete."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.channels.telegram_split import split_html, telegram_messages
from tests.unit.markup import assert_balanced, utf16_length, visible_text

_markup_lines = st.lists(
    st.sampled_from(
        [
            "<b>Heading</b>",
            "• plain item with some words",
            "<blockquote>“a quote &amp; more words here” <i>(Mon 5 Oct)</i></blockquote>",
            "<b><u>Part</u></b>",
            "<code>▁▂▃▄▅▆▇█</code> mean 5",
            "🙂🙂🙂 emoji line 🙂",
            "<blockquote>" + "long " * 60 + "</blockquote>",
            "&amp;" * 40,
        ]
    ),
    min_size=1,
    max_size=30,
).map("\n".join)


@settings(max_examples=60, deadline=None)
@given(markup=_markup_lines, limit=st.integers(60, 400))
def test_splitting_keeps_every_chunk_short_balanced_and_complete(markup: str, limit: int) -> None:
    chunks = split_html(markup, limit)
    for chunk in chunks:
        assert utf16_length(chunk) <= limit
        assert_balanced(chunk)
    assert visible_text("".join(chunks)) == visible_text(markup)


def test_splitting_prefers_line_ends() -> None:
    lines = [f"• item number {i} with a few words" for i in range(40)]
    chunks = split_html("\n".join(lines), 200)
    assert len(chunks) > 1
    assert all(chunk.split("\n")[0] in lines and chunk.split("\n")[-1] in lines for chunk in chunks)


def test_parts_that_fit_share_a_message_separated_by_a_blank_line() -> None:
    parts = [("<b><u>One</u></b>", "• a"), ("<b><u>Two</u></b>",)]
    assert telegram_messages(parts) == ["<b><u>One</u></b>\n• a\n\n<b><u>Two</u></b>"]


def test_a_part_too_long_for_a_message_is_split_between_its_sections_first() -> None:
    first = "<b><u>Part</u></b>\n<b>First</b>\n" + "\n".join(f"• line {i}" for i in range(8))
    second = "<b>Second</b>\n" + "\n".join(f"• line {i}" for i in range(8))
    messages = telegram_messages([("<b><u>Before</u></b>",), (first, second)], len(first) + 10)
    assert messages == ["<b><u>Before</u></b>", first, second]
