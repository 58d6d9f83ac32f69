"""The Mini App's HTML, rendered on the server: no build step, no inline script or style.

Every text comes from the catalogs and every value is escaped here. Pages work with a
keyboard and a screen reader: one ``<h1>``, a fieldset and legend per question, a label
for every control, native radio groups (arrow keys move within a question), the crisis
card announced as an alert. Telegram's theme colours, when the launch gave them, reach
the page as ``data-tg-*`` attributes that the page's script turns into CSS variables.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping, Sequence
from typing import Final

from bot.core.instruments import Item
from bot.core.safety import CrisisResource
from bot.locales import LOCALES, display_name, localized, t
from bot.services.checkins import CheckinForm
from bot.services.miniapp_settings import KEEP, PAUSE, RESUME, SettingsPage
from bot.services.onboarding import WINDOWS
from bot.services.partners import MAX_PAUSE_DAYS

_THEME_KEY: Final = re.compile(r"[a-z][a-z_]{0,39}")
_COLOUR: Final = re.compile(r"#[0-9a-fA-F]{6}")
_DIAL: Final = re.compile(r"\+?[0-9]+")


def esc(text: object) -> str:
    """Text made safe for HTML content and attribute values."""
    return html.escape(str(text), quote=True)


def clean_theme(raw: str) -> dict[str, str]:
    """Telegram's theme parameters (JSON), reduced to known-safe ``key: #rrggbb`` pairs."""
    try:
        theme = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    if not isinstance(theme, dict):
        return {}
    return {
        key: value
        for key, value in list(theme.items())[:30]
        if isinstance(key, str)
        and _THEME_KEY.fullmatch(key)
        and isinstance(value, str)
        and _COLOUR.fullmatch(value)
    }


def document(language: str, title: str, body: str, *, static: str, theme: Mapping[str, str]) -> str:
    """A whole page around ``body`` (already safe HTML)."""
    colours = "".join(
        f' data-tg-{esc(key.replace("_", "-"))}="{esc(value)}"' for key, value in theme.items()
    )
    return (
        "<!doctype html>\n"
        f'<html lang="{esc(language)}">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="referrer" content="no-referrer">\n'
        '<meta name="color-scheme" content="light dark">\n'
        f"<title>{esc(title)}</title>\n"
        f'<link rel="stylesheet" href="{esc(static)}/miniapp.css">\n'
        f'<script src="{esc(static)}/miniapp.js" defer></script>\n'
        f'</head>\n<body{colours}>\n<main id="main">\n{body}\n</main>\n</body>\n</html>\n'
    )


def _hidden(name: str, value: object) -> str:
    return f'<input type="hidden" name="{esc(name)}" value="{esc(value)}">'


def launch_shell(language: str, *, action: str, fields: Mapping[str, str], static: str) -> str:
    """What a Mini App URL first loads: its script posts the launch's initData to ``action``.

    Nothing private is here; the server learns who it is from the signed initData only.
    """
    hidden = "".join(_hidden(name, value) for name, value in fields.items())
    body = (
        f'<form id="launch" method="post" action="{esc(action)}" hidden>'
        f"{_hidden('init_data', '')}{_hidden('theme', '')}{hidden}</form>\n"
        f'<p id="loading" role="status">{esc(t(language, "webapp.loading"))}</p>\n'
        f'<p id="outside-telegram" hidden>{esc(t(language, "webapp.open_from_telegram"))}</p>\n'
        f"<noscript><p>{esc(t(language, 'webapp.needs_script'))}</p></noscript>"
    )
    return document(language, t(language, "webapp.page_title"), body, static=static, theme={})


def error_page(
    language: str, message: str, *, static: str, theme: Mapping[str, str] | None = None
) -> str:
    """A refusal: what happened and what to do, and nothing changed."""
    body = (
        f'<h1 id="error-title">{esc(t(language, "webapp.error_title"))}</h1>\n'
        f'<p class="error" role="alert">{esc(message)}</p>'
    )
    return document(
        language, t(language, "webapp.error_title"), body, static=static, theme=theme or {}
    )


def crisis_card(language: str, resources: Sequence[CrisisResource], *, shown: bool) -> str:
    """The crisis resources, on the page (hidden until screening calls for them)."""
    emergency = next((r for r in resources if r.emergency), None)

    def dial(number: str) -> str:
        digits = re.sub(r"[\s().-]", "", number)
        if _DIAL.fullmatch(digits):
            label = t(language, "webapp.crisis_call", number=number)
            return f'<a href="tel:{esc(digits)}" aria-label="{esc(label)}">{esc(number)}</a>'
        return esc(number)

    # The catalog's crisis texts are Telegram HTML with <b> only; their values are escaped.
    parts = [f'<h2 id="crisis-title">{t(language, "safety.crisis_heading")}</h2>']
    if emergency is None:
        parts.append(f"<p>{t(language, 'safety.crisis_emergency_local')}</p>")
    else:
        line = t(language, "safety.crisis_emergency", emergency=dial(emergency.number))
        parts.append(f"<p>{line} {esc(emergency.description)}</p>")
    items = []
    for resource in resources:
        if resource is emergency:
            continue
        line = t(
            language,
            "safety.crisis_resource",
            name=esc(resource.name),
            number=dial(resource.number),
        )
        more = f"<br>{esc(resource.description)}" if resource.description else ""
        items.append(f"<li>{line}{more}</li>")
    if items:
        parts.append(f"<ul>{''.join(items)}</ul>")
    parts.append(f"<p>{esc(t(language, 'safety.crisis_not_monitored'))}</p>")
    hidden = "" if shown else " hidden"
    return (
        f'<section id="crisis" class="crisis" role="alert" tabindex="-1" '
        f'aria-labelledby="crisis-title"{hidden}>{"".join(parts)}</section>'
    )


def _radio(name: str, value: str, label: str, checked: bool, described: str) -> str:
    ident = f"{name}-{value or 'skip'}"
    mark = " checked" if checked else ""
    return (
        f'<span class="option"><input type="radio" name="{esc(name)}" id="{esc(ident)}" '
        f'value="{esc(value)}"{mark}{described}>'
        f'<label for="{esc(ident)}">{esc(label)}</label></span>'
    )


def _item(item: Item, language: str, value: str, text_hint: str | None = None) -> str:
    name = item.id
    requires = f' data-requires="{esc(item.requires)}"' if item.requires else ""
    if item.type == "text":
        hint = text_hint or t(language, "webapp.note_hint")
        return (
            f'<div class="item text" id="item-{esc(name)}">'
            f'<label for="{esc(name)}">{esc(item.text_in(language))}</label>'
            f'<textarea id="{esc(name)}" name="{esc(name)}" rows="5" maxlength="3000" '
            f'aria-describedby="{esc(name)}-hint">{esc(value)}</textarea>'
            f'<p class="hint" id="{esc(name)}-hint">{esc(hint)}</p></div>'
        )
    hints = []
    if item.requires:
        hints.append(t(language, "webapp.requires_hint"))
    options: list[tuple[str, str]]
    if item.type == "scale":
        assert item.min is not None and item.max is not None
        hints.append(
            t(
                language,
                "webapp.scale_hint",
                min=item.min,
                max=item.max,
                min_label=localized(item.min_label, language) if item.min_label else "",
                max_label=localized(item.max_label, language) if item.max_label else "",
            )
        )
        options = [(str(v), str(v)) for v in range(item.min, item.max + 1)]
    else:
        options = [(c.id, c.label_in(language)) for c in item.choices]
    hint_id = f"{name}-hint"
    described = f' aria-describedby="{esc(hint_id)}"' if hints else ""
    hint = f'<p class="hint" id="{esc(hint_id)}">{esc(" ".join(hints))}</p>' if hints else ""
    chosen = value if value in {v for v, _ in options} else ""
    radios = "".join(_radio(name, v, label, v == chosen, described) for v, label in options)
    skip = _radio(name, "", t(language, "webapp.no_answer"), chosen == "", "")
    kind = "scale" if item.type == "scale" else "choice"
    return (
        f'<fieldset class="item {kind}" id="item-{esc(name)}"{requires}>'
        f"<legend>{esc(item.text_in(language))}</legend>{hint}"
        f'<div class="options">{radios}</div><div class="options skip">{skip}</div></fieldset>'
    )


def checkin_page(
    language: str,
    form: CheckinForm,
    values: Mapping[str, str],
    resources: Sequence[CrisisResource],
    *,
    show_crisis: bool,
    init_data: str,
    theme: Mapping[str, str],
    prefix: str,
    static: str,
    problem: str | None = None,
) -> str:
    """The whole check-in on one page."""
    kept = (
        f'<p class="kept">{esc(t(language, "webapp.kept_from_chat"))}</p>' if form.answered else ""
    )
    return answers_page(
        language,
        title=t(language, "webapp.checkin_title"),
        intro=f"{form.title} · {t(language, 'webapp.checkin_private')}",
        lead=kept,
        form_id="checkin",
        action=f"{prefix}/checkin",
        fields={"checkin": form.checkin_id},
        items=form.items,
        values=values,
        resources=resources,
        show_crisis=show_crisis,
        init_data=init_data,
        theme=theme,
        static=static,
        send_label=t(language, "webapp.send"),
        problem=problem,
    )


def answers_page(
    language: str,
    *,
    title: str,
    intro: str,
    lead: str,
    form_id: str,
    action: str,
    fields: Mapping[str, object],
    items: Sequence[Item],
    values: Mapping[str, str],
    resources: Sequence[CrisisResource],
    show_crisis: bool,
    init_data: str,
    theme: Mapping[str, str],
    static: str,
    send_label: str,
    problem: str | None = None,
    text_hint: str | None = None,
) -> str:
    """A page of questions sent at once, its draft kept on the server as it is filled.

    ``lead`` is safe HTML shown before the crisis card; ``action`` takes the sent page,
    ``action/draft`` the draft; ``text_hint`` replaces the note's hint under a text field.
    """
    error = (
        f'<p class="error" role="alert" id="problem" tabindex="-1">'
        f"{esc(t(language, 'webapp.fix_below'))} {esc(problem)}</p>"
        if problem
        else ""
    )
    rendered = "\n".join(
        _item(item, language, values.get(item.id, ""), text_hint) for item in items
    )
    hidden = "".join(_hidden(name, value) for name, value in fields.items())
    body = (
        f"<h1>{esc(title)}</h1>\n"
        f'<p class="intro">{esc(intro)}</p>'
        f"\n{lead}\n{crisis_card(language, resources, shown=show_crisis)}\n{error}\n"
        f'<form id="{esc(form_id)}" class="answers" method="post" action="{esc(action)}/send" '
        f'data-draft="{esc(action)}/draft" '
        f'data-saved-text="{esc(t(language, "webapp.draft_saved"))}" '
        f'data-failed-text="{esc(t(language, "webapp.draft_failed"))}">\n'
        f"{_hidden('init_data', init_data)}{_hidden('theme', json.dumps(dict(theme)))}"
        f"{hidden}\n{rendered}\n"
        f'<p id="draft-status" class="status" role="status" aria-live="polite"></p>\n'
        f'<button type="submit" class="primary">{esc(send_label)}</button>\n'
        "</form>"
    )
    return document(language, t(language, "webapp.page_title"), body, static=static, theme=theme)


def saved_page(
    language: str,
    resources: Sequence[CrisisResource],
    *,
    show_crisis: bool,
    theme: Mapping[str, str],
    static: str,
    said: str | None = None,
) -> str:
    """After sending: the crisis card first when called for, then "saved" (or ``said``)."""
    body = (
        f"{crisis_card(language, resources, shown=show_crisis)}\n"
        f'<h1 id="saved">{esc(t(language, "webapp.saved_title"))}</h1>\n'
        f"<p>{esc(said or t(language, 'webapp.saved_body'))}</p>\n"
        f'<button type="button" id="close" class="primary">{esc(t(language, "webapp.close"))}'
        "</button>"
    )
    return document(language, t(language, "webapp.saved_title"), body, static=static, theme=theme)


def _choices(
    name: str, legend: str, options: Sequence[tuple[str, str]], chosen: str, hint: str = ""
) -> str:
    """A question answered with one of a few radio buttons, in a fieldset with its legend."""
    described = f' aria-describedby="{esc(name)}-hint"' if hint else ""
    note = f'<p class="hint" id="{esc(name)}-hint">{esc(hint)}</p>' if hint else ""
    radios = "".join(_radio(name, v, label, v == chosen, described) for v, label in options)
    return (
        f'<fieldset class="item choice" id="item-{esc(name)}"><legend>{esc(legend)}</legend>'
        f'{note}<div class="options">{radios}</div></fieldset>'
    )


def settings_page(
    language: str,
    page: SettingsPage,
    *,
    init_data: str,
    theme: Mapping[str, str],
    prefix: str,
    static: str,
    values: Mapping[str, str] | None = None,
    problem: str | None = None,
) -> str:
    """The partner's settings on one page: what /settings, /pause and /resume offer."""
    chosen = {**page.current, **(values or {})}
    error = (
        f'<p class="error" role="alert" id="problem" tabindex="-1">{esc(problem)}</p>'
        if problem
        else ""
    )
    languages = [(code, display_name(code)) for code in LOCALES]
    windows = [(w, t(language, f"onboarding.window_{w}")) for w in WINDOWS]
    discreet = [
        ("yes", t(language, "onboarding.discreet_yes")),
        ("no", t(language, "onboarding.discreet_no")),
    ]
    zone_options = "".join(
        f'<option value="{i}"{" selected" if str(i) == chosen.get("tz") else ""}>'
        f"{esc(zone.replace('_', ' '))}</option>"
        for i, zone in enumerate(page.zones)
    )
    keep = "" if chosen.get("tz") else " selected"
    zone_legend = esc(t(language, "partner.settings_timezone"))
    zone = (
        f'<fieldset class="item" id="item-tz"><legend>{zone_legend}</legend>'
        f'<label for="tz">{esc(t(language, "webapp.timezone_pick"))}</label>'
        f'<select id="tz" name="tz"><option value=""{keep}>'
        f"{esc(t(language, 'webapp.timezone_keep', zone=page.current_zone))}</option>"
        f'{zone_options}</select><label for="tz_typed">{esc(t(language, "webapp.timezone_type"))}'
        f'</label><input type="text" id="tz_typed" name="tz_typed" maxlength="64" '
        f'autocomplete="off" value="{esc(chosen.get("tz_typed", ""))}"></fieldset>'
    )
    pause_options = [
        (KEEP, t(language, "webapp.pause_keep")),
        (PAUSE, t(language, "webapp.pause_for")),
    ]
    if page.paused_until is not None:
        pause_options.append((RESUME, t(language, "webapp.resume_now")))
    status = (
        t(language, "webapp.paused_until", until=page.paused_until)
        if page.paused_until
        else t(language, "webapp.not_paused")
    )
    pause = _choices(
        "pause", t(language, "webapp.pause_title"), pause_options, chosen.get("pause", KEEP), status
    )
    days = (
        f'<p class="days"><label for="days">{esc(t(language, "webapp.pause_days"))}</label>'
        f'<input type="number" id="days" name="days" min="1" max="{MAX_PAUSE_DAYS}" '
        f'inputmode="numeric" value="{esc(chosen.get("days", "") or "7")}"></p>'
    )
    questions = "\n".join(
        [
            _choices(
                "language", t(language, "partner.settings_language"), languages, chosen["language"]
            ),
            zone,
            _choices("window", t(language, "partner.settings_window"), windows, chosen["window"]),
            _choices(
                "discreet",
                t(language, "partner.settings_discreet"),
                discreet,
                chosen["discreet"],
                t(language, "webapp.discreet_hint"),
            ),
            pause + days,
        ]
    )
    save = t(language, "webapp.settings_save")
    body = (
        f"<h1>{esc(t(language, 'webapp.settings_title'))}</h1>\n"
        f'<p class="intro">{esc(t(language, "webapp.settings_private"))}</p>\n'
        f"{crisis_card(language, page.resources, shown=False)}\n{error}\n"
        f'<form id="settings" method="post" action="{esc(prefix)}/settings/send">\n'
        f"{_hidden('init_data', init_data)}{_hidden('theme', json.dumps(dict(theme)))}\n"
        f"{questions}\n"
        f'<button type="submit" class="primary">{esc(save)}</button>\n'
        "</form>"
    )
    return document(
        language, t(language, "webapp.settings_title"), body, static=static, theme=theme
    )
