"""`dyad schedules check`: every problem in a practice.toml is named with its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.locales import localized
from schedules._toml_lines import TomlLines
from schedules.check import (
    CheckResult,
    PracticeFileError,
    check_practice_file,
    check_practice_text,
    default_schedules,
    format_problems,
    load_practice_schedules,
)
from schedules.library import load_library
from schedules.model import DEFAULT_PRACTICE_FILE, CheckinSettings, DeliverySettings, TimeRange
from schedules.planning import rules_never_sent

GOOD = """\
[delivery]
quiet_hours = "22:00-07:00"
max_per_day = 2
default_template = "calm"

[schedules.calm]
description = "One hope prompt a week"

[[schedules.calm.rules]]
kind = "hope"
days = ["tue"]
window = "evening"
jitter = 30

[[prompts]]
key = "hope.our_garden"
kind = "hope"
answer = "text"
text.en = "What grew in the garden this week, {name}?"
text.es = "¿Qué creció en el jardín esta semana, {name}?"
text.pt = "O que cresceu no jardim esta semana, {name}?"
"""


def line_with(text: str, fragment: str, occurrence: int = 1) -> int:
    """The line number of the ``occurrence``-th line containing ``fragment``."""
    found = [n for n, line in enumerate(text.splitlines(), start=1) if fragment in line]
    return found[occurrence - 1]


def problems(text: str) -> list[tuple[int, str]]:
    result = check_practice_text(text)
    assert not result.ok and result.config is None
    return [(p.line, str(p)) for p in result.problems]


def only_problem(text: str) -> tuple[int, str]:
    found = problems(text)
    assert len(found) == 1, found
    return found[0]


def test_the_shipped_default_is_valid_and_summarised_in_one_line() -> None:
    result = check_practice_file(DEFAULT_PRACTICE_FILE)
    assert result.ok, format_problems(result)
    assert result.summary == f"ok: 2 templates, 8 rules, {len(load_library())} prompts (en, es, pt)"
    assert format_problems(result) == []


def test_a_valid_practice_file_yields_its_configuration() -> None:
    result = check_practice_text(GOOD)
    assert result.ok
    prompts = len(load_library()) + 1
    assert result.summary == f"ok: 1 template, 1 rule, {prompts} prompts (en, es, pt)"
    assert result.config is not None and result.library is not None
    assert result.config.delivery.quiet_hours == TimeRange(22 * 60, 7 * 60)
    assert result.config.template().rules[0].id == "hope-1"
    assert "hope.our_garden" in result.library


def test_sections_left_out_keep_the_shipped_values() -> None:
    result = check_practice_text("")
    assert result.ok and result.config is not None
    assert result.config == default_schedules()
    assert DeliverySettings() == default_schedules().delivery
    assert CheckinSettings() == default_schedules().checkin


def test_a_toml_syntax_error_names_its_line() -> None:
    text = 'max = 1\n[delivery\nquiet_hours = "22:00-07:00"\n'
    line, message = only_problem(text)
    assert line == 2
    assert message.startswith("TOML syntax error: Expected ']'")


def test_an_unterminated_string_at_the_end_names_the_last_line() -> None:
    line, message = only_problem('[delivery]\nquiet_hours = "22:00\n')
    assert line == 2 and "TOML syntax error" in message


def test_an_unknown_kind_names_the_rules_kind_line() -> None:
    text = GOOD.replace('kind = "hope"\ndays', 'kind = "hopes"\ndays')
    assert only_problem(text) == (
        line_with(text, 'kind = "hopes"'),
        "unknown kind 'hopes'. Use one of: hope, skill, couple_space, checkin.",
    )


def test_a_follow_up_cannot_be_scheduled_on_its_own() -> None:
    text = GOOD.replace('kind = "hope"\ndays', 'kind = "skill_followup"\ndays')
    line, message = only_problem(text)
    assert line == line_with(text, "skill_followup")
    assert "planned after their skill automatically" in message


def test_a_bad_day_name_names_the_days_line() -> None:
    text = GOOD.replace('days = ["tue"]', 'days = ["tue", "thurs"]')
    assert only_problem(text) == (
        line_with(text, "thurs"),
        "bad day name 'thurs'. Use mon, tue, wed, thu, fri, sat, sun, or days = \"daily\".",
    )


def test_days_written_over_several_lines_still_point_at_the_days_key() -> None:
    text = GOOD.replace('days = ["tue"]', 'days = [\n  "tue",\n  "funday",\n]')
    assert only_problem(text)[0] == line_with(text, "days = [")


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        ("25:00-26:00", "window '25:00-26:00' is outside the day"),
        ("08:60-09:00", "window '08:60-09:00' is outside the day"),
        ("12:00-09:00", "window '12:00-09:00' ends before it starts"),
        ("09:00-09:00", "window '09:00-09:00' ends before it starts"),
        ("8am-noon", "unknown window '8am-noon'"),
        ("night", "unknown window 'night'"),
    ],
)
def test_a_window_outside_the_day_or_malformed_is_refused(window: str, expected: str) -> None:
    text = GOOD.replace('window = "evening"', f'window = "{window}"')
    line, message = only_problem(text)
    assert line == line_with(text, "window = ")
    assert message.startswith(expected)


def test_a_named_windows_redefinition_is_checked_too() -> None:
    text = GOOD.replace(
        "[schedules.calm]", '[delivery.windows]\nevening = "17:00-24:30"\n\n[schedules.calm]'
    )
    assert only_problem(text) == (
        line_with(text, '"17:00-24:30"'),
        "window '17:00-24:30' is outside the day. Use times from 00:00 to 24:00.",
    )


def test_a_window_entirely_inside_quiet_hours_is_flagged() -> None:
    text = GOOD.replace('window = "evening"', 'window = "22:30-23:30"')
    line, message = only_problem(text)
    assert line == line_with(text, "22:30-23:30")
    assert "lies entirely inside quiet hours 22:00-07:00" in message


def test_quiet_hours_that_swallow_a_partner_window_are_flagged() -> None:
    text = GOOD.replace('"22:00-07:00"', '"16:00-23:00"')
    line, message = only_problem(text)
    assert line == line_with(text, "quiet_hours")
    assert message.startswith("window evening (17:00-21:00) lies entirely inside quiet hours")


def test_quiet_hours_malformed_is_refused() -> None:
    text = GOOD.replace('"22:00-07:00"', '"late"')
    assert only_problem(text) == (
        2,
        "quiet_hours 'late' is not a time range. Write it as \"HH:MM-HH:MM\", such as "
        '"08:00-12:00".',
    )


def test_an_unknown_prompt_key_suggests_the_closest_one() -> None:
    text = GOOD.replace("jitter = 30", 'prompt = "hope.smal_win"')
    assert only_problem(text) == (
        line_with(text, "hope.smal_win"),
        "unknown prompt key 'hope.smal_win'. Did you mean 'hope.small_win'?",
    )


def test_a_rule_may_name_the_practices_own_prompt() -> None:
    assert check_practice_text(GOOD.replace("jitter = 30", 'prompt = "hope.our_garden"')).ok


def test_a_fixed_prompt_of_another_kind_is_refused() -> None:
    text = GOOD.replace("jitter = 30", 'prompt = "couple_space.thank_you"')
    line, message = only_problem(text)
    assert line == line_with(text, "couple_space.thank_you")
    assert message.startswith("prompt 'couple_space.thank_you' is a couple_space prompt")


def test_a_fixed_prompt_cannot_also_rotate() -> None:
    text = GOOD.replace("jitter = 30", 'prompt = "hope.small_win"\nrotation = "weekly"')
    line, message = only_problem(text)
    assert line == line_with(text, "[[schedules.calm.rules]]")
    assert message.startswith("a rule with a fixed prompt cannot also rotate")


def test_tags_that_match_no_prompt_are_refused() -> None:
    text = GOOD.replace("jitter = 30", 'tags = ["gardening"]')
    line, message = only_problem(text)
    assert line == line_with(text, "gardening")
    assert "no hope prompt has any of the tags ['gardening']" in message


def test_a_practice_prompt_without_a_translation_is_refused() -> None:
    text = GOOD.replace('text.es = "¿Qué creció en el jardín esta semana, {name}?"\n', "")
    assert only_problem(text) == (
        line_with(text, "text.en"),
        'missing translation: no Spanish (es) text. Add text.es = "..." to this prompt.',
    )


def test_a_practice_prompt_without_portuguese_stays_valid_and_reads_in_english() -> None:
    # Portuguese came after practices wrote their files: a stored file must stay valid.
    text = GOOD.replace('text.pt = "O que cresceu no jardim esta semana, {name}?"\n', "")
    result = check_practice_text(text)
    assert result.ok and result.library is not None
    prompt = next(p for p in result.library if "garden" in p.text["en"])
    assert "pt" not in prompt.text
    assert localized(prompt.text, "pt-BR") == prompt.text["en"]


def test_a_practice_prompt_without_english_is_refused() -> None:
    text = GOOD.replace('text.en = "What grew in the garden this week, {name}?"\n', "")
    line, message = only_problem(text)
    assert line == line_with(text, "text.es")
    assert message.startswith("missing translation: no English (en) text")


def test_a_prompt_with_no_text_at_all_points_at_its_table() -> None:
    text = GOOD.split("text.en")[0]
    assert only_problem(text) == (
        line_with(text, "[[prompts]]"),
        "missing key 'text'. Add text = ... here.",
    )


def test_a_prompt_written_as_an_inline_table_is_read_the_same_way() -> None:
    text = GOOD.split("text.en")[0] + (
        'text = { en = "Hello {name}", es = "Hola {nombre}", pt = "Olá {name}" }\n'
    )
    line, message = only_problem(text)
    assert line == line_with(text, "text = {")
    assert message.startswith("unknown placeholder {nombre} in text.es")


def test_an_unknown_default_template_is_refused() -> None:
    text = GOOD.replace('default_template = "calm"', 'default_template = "clam"')
    assert only_problem(text) == (
        line_with(text, "default_template"),
        "unknown template 'clam' as default_template. Did you mean 'calm'?",
    )


def test_the_default_template_may_name_a_shipped_one_when_schedules_are_left_out() -> None:
    assert check_practice_text('[delivery]\ndefault_template = "light"\n').ok
    _, message = only_problem('[delivery]\ndefault_template = "heavy"\n')
    assert message.startswith("unknown template 'heavy'")


@pytest.mark.parametrize(
    ("typo", "where", "suggestion"),
    [
        ("jiter = 5", "[[schedules.calm.rules]]", "Did you mean 'jitter'?"),
        ("max_per_dya = 2", "[delivery]", "Did you mean 'max_per_day'?"),
        ("anser = 'text'", "[[prompts]]", "Did you mean 'answer'?"),
        ("descripton = 'x'", "[schedules.calm]", "Did you mean 'description'?"),
    ],
)
def test_an_unknown_key_is_named_with_a_suggestion(typo: str, where: str, suggestion: str) -> None:
    text = GOOD.replace(where, f"{where}\n{typo}", 1)
    key = typo.split(" ")[0]
    assert only_problem(text) == (line_with(text, typo), f"unknown key '{key}'. {suggestion}")


def test_an_unknown_section_is_named_with_a_suggestion() -> None:
    text = GOOD + '\n[schedule.extra]\nkind = "hope"\n'
    assert only_problem(text) == (
        line_with(text, "[schedule.extra]"),
        "unknown section 'schedule'. Did you mean 'schedules'?",
    )


def test_sections_other_parts_of_dyad_read_are_not_reported() -> None:
    text = GOOD + '\n[crisis_resources.es]\nemergency = "112"\n'
    assert check_practice_text(text).ok
    assert not check_practice_text(text, other_sections=()).ok


def test_a_problem_in_the_third_rule_points_into_the_third_rule() -> None:
    rule = '\n[[schedules.calm.rules]]\nkind = "hope"\ndays = ["mon"]\n'
    text = GOOD + rule + rule.replace('"mon"', '"sun"').replace('kind = "hope"\n', "")
    line, message = only_problem(text)
    assert line == line_with(text, "[[schedules.calm.rules]]", occurrence=3)
    assert message == "missing key 'kind'. Add kind = ... here."


def test_a_header_inside_a_multiline_string_is_not_mistaken_for_a_rule() -> None:
    decoy = 'description = """\n[[schedules.calm.rules]]\nkind = "x"\n"""'
    text = GOOD.replace('description = "One hope prompt a week"', decoy) + (
        '\n[[schedules.calm.rules]]\nkind = "hope"\ndays = ["mon"]\nwindow = "noon"\n'
    )
    assert only_problem(text)[0] == line_with(text, 'window = "noon"')


def test_quoted_template_names_are_located() -> None:
    text = (
        GOOD.replace("[schedules.calm]", '[schedules."night owls"]')
        .replace("[[schedules.calm.rules]]", '[[schedules."night owls".rules]]')
        .replace('"calm"', '"night owls"')
    )
    text = text.replace('days = ["tue"]', 'days = ["tue", "noday"]')
    assert only_problem(text)[0] == line_with(text, "noday")


def test_rules_written_as_an_inline_array_with_windows_line_endings_are_located() -> None:
    text = (
        '[schedules.calm]\r\nrules = [\r\n  { kind = "hope", days = ["mon"] },\r\n'
        '  { kind = "hope", days = ["sun"], window = "late" },\r\n]\r\n'
        '[ delivery ]\r\ndefault_template = "calm"\r\n'
    )
    assert only_problem(text) == (
        4,
        "unknown window 'late'. Use 'partner', 'morning', "
        "'afternoon', 'evening' or \"HH:MM-HH:MM\".",
    )


def test_two_rules_with_one_id_point_at_the_second() -> None:
    text = GOOD.replace("jitter = 30", 'id = "weekly"') + (
        '\n[[schedules.calm.rules]]\nid = "weekly"\nkind = "hope"\ndays = ["fri"]\n'
    )
    assert only_problem(text) == (
        line_with(text, 'id = "weekly"', occurrence=2),
        "two rules have the id 'weekly'. Give each rule its own id.",
    )


def test_a_prompt_defined_twice_points_at_the_second() -> None:
    prompt = GOOD[GOOD.index("[[prompts]]") :]
    text = GOOD + "\n" + prompt
    line, message = only_problem(text)
    assert line == line_with(text, 'key = "hope.our_garden"', occurrence=2)
    assert message.startswith("prompt key 'hope.our_garden' is defined twice")


def test_replacing_a_shipped_prompt_with_another_kind_is_refused() -> None:
    text = GOOD.replace('key = "hope.our_garden"', 'key = "skill.self_care"')
    line, message = only_problem(text)
    assert line == line_with(text, 'kind = "hope"', occurrence=2)
    assert message.startswith("prompt 'skill.self_care' replaces a shipped skill prompt")


def test_many_problems_are_all_reported_in_line_order() -> None:
    text = (
        GOOD.replace("max_per_day = 2", "max_per_day = 0")
        .replace('days = ["tue"]', 'days = ["tue", "thurs"]')
        .replace('default_template = "calm"', 'default_template = "clam"')
        .replace('text.es = "¿Qué creció en el jardín esta semana, {name}?"\n', "")
    )
    found = problems(text)
    assert [line for line, _ in found] == sorted(line for line, _ in found)
    assert [message.split(".")[0] for _, message in found] == [
        "max_per_day is 0",
        "unknown template 'clam' as default_template",
        "bad day name 'thurs'",
        "missing translation: no Spanish (es) text",
    ]


def test_format_problems_prints_file_line_message(tmp_path: Path) -> None:
    path = tmp_path / "practice.toml"
    path.write_text(GOOD.replace("jitter = 30", "jitter = -5"), encoding="utf-8")
    result = check_practice_file(path)
    assert format_problems(result) == [
        f"{path}:{line_with(path.read_text(), 'jitter')}: jitter is -5. Use at least 0."
    ]
    assert result.summary == "1 problem"


def test_an_unreadable_file_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    result = check_practice_file(tmp_path / "missing.toml")
    assert not result.ok and "cannot read the file" in result.problems[0].message


def test_loading_a_broken_file_raises_with_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "practice.toml"
    path.write_text(GOOD.replace('"evening"', '"night"'), encoding="utf-8")
    with pytest.raises(PracticeFileError, match=r"practice.toml:\d+: unknown window 'night'"):
        load_practice_schedules(path)
    path.write_text(GOOD, encoding="utf-8")
    loaded = load_practice_schedules(path)
    assert loaded.delivery.max_per_day == 2
    assert loaded.library().text("hope.our_garden", "es", name="Ana").endswith("Ana?")
    assert load_practice_schedules(None) == default_schedules()


def test_toml_lines_follow_nested_arrays_of_tables() -> None:
    text = (
        "# fruit\n"
        "[[fruits]]\n"  # 2
        'name = "apple"\n'  # 3
        "[[fruits.varieties]]\n"  # 4
        'name = "red"\n'  # 5
        "[[fruits]]\n"  # 6
        "'quoted key' = 1\n"  # 7
        "[[fruits.varieties]]\n"  # 8
        "[[fruits.varieties]]\n"  # 9
        "list = [\n  1,\n  { a = 2 },\n]\n"  # 10-13
        "s = '''\n[[fruits]]\n'''\n"  # 14-16
        "after = 1\n"  # 17
    )
    lines = TomlLines(text)
    assert lines.exact(("fruits", 0)) == 2
    assert lines.exact(("fruits", 0, "varieties", 0, "name")) == 5
    assert lines.exact(("fruits", 1)) == 6
    assert lines.exact(("fruits", 1, "quoted key")) == 7
    assert lines.exact(("fruits", 1, "varieties", 1)) == 9
    assert lines.exact(("fruits", 1, "varieties", 1, "list", 1, "a")) == 12
    assert lines.exact(("fruits", 2)) is None, "a header inside a string is no header"
    assert lines.exact(("fruits", 1, "varieties", 1, "after")) == 17
    assert lines.line_of(("fruits", 1, "varieties", 0, "missing")) == 8


def test_check_result_without_config_has_no_summary_counts() -> None:
    assert CheckResult("x", ()).summary == "0 problems"


def test_templates_without_the_default_are_refused_when_default_template_is_left_out() -> None:
    """The file that stopped every practice's prompts: it passed the check before."""
    text = GOOD.replace('default_template = "calm"\n', "")
    line, message = only_problem(text)
    assert line == line_with(text, "[schedules.calm]")
    assert "would follow 'standard', which this file does not define" in message
    assert 'Add default_template = "calm" under [delivery]' in message


def test_a_rule_the_daily_maximum_always_crowds_out_is_refused() -> None:
    text = """\
[delivery]
max_per_day = 1
default_template = "busy"

[schedules.busy]
[[schedules.busy.rules]]
kind = "checkin"
days = "daily"

[[schedules.busy.rules]]
kind = "hope"
days = ["tue"]
"""
    line, message = only_problem(text)
    assert line == line_with(text, "[[schedules.busy.rules]]", 2)
    assert message.startswith("rule 'hope-1' would never be sent")
    assert "Raise max_per_day" in message


def test_a_reminder_must_come_before_the_check_in_expires() -> None:
    text = "[checkin]\nremind_after_hours = 10\nexpire_after_hours = 6\n"
    line, message = only_problem(text)
    assert line == 3 and "must be later than remind_after_hours" in message
    settings = check_practice_text("[checkin]\nremind_after_hours = 2\n").config
    assert settings is not None and settings.checkin.expire_after_hours == 24


def test_every_file_the_check_accepts_the_planner_can_plan() -> None:
    for path in (DEFAULT_PRACTICE_FILE, Path(__file__).parents[2] / "docs/practice.example.toml"):
        result = check_practice_file(path)
        assert result.config is not None and result.library is not None, format_problems(result)
        result.config.template()  # the default template exists
        for name in result.config.schedules:
            assert rules_never_sent(result.config, result.library, name) == set()
