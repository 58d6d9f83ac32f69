"""The console's HTML, rendered on the server: no script at all, no inline style.

Every text comes from the ``console`` catalogs (and the digest's own renderer for the
digest); every value is escaped here. Both partners of a couple always appear in the
same form, the digest's first partner first. Charts are inline SVG from
``bot.core.charts``, each followed by its table of values. ``console.css`` holds a print
stylesheet: the couple page prints on A4 or Letter.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time
from zoneinfo import ZoneInfo

from bot.core.digest import render_html_sections as digest_sections
from bot.locales import catalog, t
from bot.locales.formats import (
    format_date,
    format_datetime,
    format_list,
    format_number,
    format_time,
)
from bot.services.console import AdminView, CoupleGlance, CoupleView, NotesColumn, PartnerGlance
from bot.services.schedule_preview import SchedulePreview
from bot.web.pages import esc


def _k(language: str, key: str, /, **params: object) -> str:
    return t(language, f"console.{key}", **params)


def _kind(language: str, kind: str) -> str:
    """An alert's kind in words (a kind the catalog does not know reads as a safety flag)."""
    key = f"digest.safety.kind.{kind}"
    return t(language, key if key in catalog(language) else "digest.safety.kind.other")


def document(
    language: str,
    title: str,
    body: str,
    *,
    static: str,
    prefix: str | None = None,
    page_class: str = "",
) -> str:
    """A whole console page; ``prefix`` (signed in) adds the navigation and sign-out."""
    nav = ""
    if prefix is not None:
        nav = (
            f'<nav class="top" aria-label="{esc(_k(language, "nav_label"))}">'
            f'<a href="{esc(prefix)}/console">{esc(_k(language, "caseload_title"))}</a>'
            f'<form method="post" action="{esc(prefix)}/console/logout">'
            f'<button type="submit" class="link">{esc(_k(language, "sign_out"))}</button>'
            "</form></nav>\n"
        )
    css = f"{static}/console.css"
    return (
        "<!doctype html>\n"
        f'<html lang="{esc(language)}">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="referrer" content="no-referrer">\n'
        f"<title>{esc(title)} · Dyad</title>\n"
        f'<link rel="stylesheet" href="{esc(css)}">\n'
        f'</head>\n<body class="console {esc(page_class)}">\n{nav}'
        f'<main id="main">\n{body}\n</main>\n</body>\n</html>\n'
    )


def message_page(language: str, title: str, message: str, *, static: str) -> str:
    """A refusal or notice: what happened and what to do."""
    body = f'<h1>{esc(title)}</h1>\n<p class="notice" role="alert">{esc(message)}</p>'
    return document(language, title, body, static=static)


def login_page(language: str, *, action: str, token: str, static: str) -> str:
    """The login link's page: one button, so that a link preview never uses the link up."""
    body = (
        f"<h1>{esc(_k(language, 'login_title'))}</h1>\n"
        f"<p>{esc(_k(language, 'login_body'))}</p>\n"
        f'<form method="post" action="{esc(action)}">'
        f'<input type="hidden" name="token" value="{esc(token)}">'
        f'<button type="submit" class="primary">{esc(_k(language, "login_button"))}</button>'
        "</form>"
    )
    return document(language, _k(language, "login_title"), body, static=static)


def _when(when: datetime | None, language: str, zone: ZoneInfo) -> str:
    if when is None:
        return _k(language, "none_planned")
    return format_datetime(when.astimezone(zone), language)


def _partner(p: PartnerGlance, language: str) -> str:
    """One partner's facts; the same fields, in the same order, for both partners."""
    if p.days_since_answer is None:
        last = _k(language, "last_answer_never")
    else:
        last = _k(language, "last_answer_days", days=p.days_since_answer)
    off = _k(language, "off_track_yes") if p.off_track else _k(language, "off_track_no")
    items = [
        (_k(language, "field_state"), _k(language, f"state.{p.state}")),
        (_k(language, "field_last_answer"), last),
        (_k(language, "field_missed"), str(p.missed)),
        (_k(language, "field_off_track"), off),
    ]
    rows = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in items)
    flag = " off-track" if p.off_track else ""
    return (
        f'<section class="partner seat-{esc(p.slot)}{flag}">'
        f"<h3>{esc(_k(language, 'partner_name', name=p.name, slot=p.slot))}</h3>"
        f"<dl>{rows}</dl></section>"
    )


def _flags(row: CoupleGlance, language: str) -> str:
    """Badges for what needs attention, each in words (never colour alone)."""
    flags = []
    if row.open_alerts:
        kinds = _k(language, "list_separator").join(
            _kind(language, kind) for kind in row.alert_kinds
        )
        flags.append(
            (
                "alert",
                _k(
                    language,
                    "flag_alerts",
                    count=row.open_alerts,
                    unseen=row.unseen_alerts,
                    kinds=kinds,
                ),
            )
        )
    if row.split:
        gap = format_number(row.gap, language) if row.gap is not None else "?"
        flags.append(("split", _k(language, "flag_split", gap=gap)))
    if row.off_track:
        flags.append(("off-track", _k(language, "flag_off_track")))
    if any(p.state == "unreachable" for p in row.partners):
        flags.append(("unreachable", _k(language, "flag_unreachable")))
    if any(p.missed for p in row.partners):
        flags.append(("missed", _k(language, "flag_missed")))
    if not flags:
        return f'<p class="flags calm">{esc(_k(language, "flag_none"))}</p>'
    items = "".join(f'<li class="flag {cls}">{esc(text)}</li>' for cls, text in flags)
    return f'<ul class="flags">{items}</ul>'


def _glance(
    row: CoupleGlance, language: str, zone: ZoneInfo, *, link: str | None, heading: str
) -> str:
    title = f"{row.handle} · {row.label}"
    name = f'<a href="{esc(link)}">{esc(title)}</a>' if link else esc(title)
    owner = (
        ""
        if row.own
        else f'<p class="owner">{esc(_k(language, "owner", name=row.therapist_name))}</p>'
    )
    first, second = row.partners
    when = _when(row.next_session, language, zone)
    return (
        f'<article class="couple" id="couple-{row.couple_id}">'
        f"<{heading}>{name}</{heading}>{owner}{_flags(row, language)}"
        f'<div class="partners">{_partner(first, language)}{_partner(second, language)}</div>'
        f'<p class="next">{esc(_k(language, "next_session", when=when))}</p>'
        "</article>"
    )


def caseload_page(
    language: str,
    rows: Sequence[CoupleGlance],
    *,
    zone: ZoneInfo,
    prefix: str,
    static: str,
    admin: bool,
) -> str:
    """Every couple, most in need of attention first; an admin's other couples after."""
    intro = _k(language, "caseload_intro_admin" if admin else "caseload_intro")
    parts = [f"<h1>{esc(_k(language, 'caseload_title'))}</h1>", f"<p>{esc(intro)}</p>"]
    if admin:
        link = f"{prefix}/console/admin"
        parts.append(f'<p><a href="{esc(link)}">{esc(_k(language, "admin_title"))}</a></p>')
    if not rows:
        parts.append(f"<p>{esc(_k(language, 'caseload_empty'))}</p>")
    own = [r for r in rows if r.own]
    others = [r for r in rows if not r.own]
    parts += [
        _glance(r, language, zone, link=f"{prefix}/console/c/{r.couple_id}", heading="h2")
        for r in own
    ]
    if others:
        parts.append(f'<h2 class="others">{esc(_k(language, "caseload_others"))}</h2>')
        parts += [
            _glance(r, language, zone, link=f"{prefix}/console/c/{r.couple_id}", heading="h3")
            for r in others
        ]
    body = "\n".join(parts)
    return document(language, _k(language, "caseload_title"), body, static=static, prefix=prefix)


def _alerts(view: CoupleView, language: str, zone: ZoneInfo, prefix: str) -> str:
    couple = view.access.couple
    names = {p.slot: p.name for p in view.glance.partners}
    parts = [f"<h2>{esc(_k(language, 'alerts_title'))}</h2>"]
    if not view.alerts:
        parts.append(f"<p>{esc(_k(language, 'alerts_none'))}</p>")
    items = []
    for alert in view.alerts:
        state = "cleared" if alert.cleared else ("seen" if alert.seen else "new")
        text = _k(
            language,
            "alert_line",
            kind=_kind(language, alert.kind),
            name=names.get(alert.slot, alert.slot),
            when=format_datetime(alert.at.astimezone(zone), language),
            state=_k(language, f"alert_state.{state}"),
        )
        action = ""
        if view.access.own and state == "new":
            action = (
                f'<form method="post" class="inline" '
                f'action="{esc(prefix)}/console/c/{couple.id}/alerts/{alert.alert_id}/ack">'
                f'<button type="submit">{esc(_k(language, "acknowledge"))}</button></form>'
            )
        items.append(f'<li class="alert-{state}">{esc(text)} {action}</li>')
    if items:
        parts.append(f'<ul class="alerts">{"".join(items)}</ul>')
    if view.access.own:
        parts.append(
            f'<p class="hint">{esc(_k(language, "alerts_words_hint", handle=couple.handle))}</p>'
        )
    return f'<section class="alerts-section" id="alerts">{"".join(parts)}</section>'


def _session_forms(view: CoupleView, day: str, language: str, prefix: str) -> str:
    """Skip and move buttons for one coming session (the couple's own therapist only)."""
    action = f"{prefix}/console/c/{view.access.couple.id}/sessions"
    ident = f"move-{day}"
    return (
        f'<form method="post" class="inline" action="{esc(action)}/skip">'
        f'<input type="hidden" name="day" value="{esc(day)}">'
        f'<button type="submit">{esc(_k(language, "session_skip"))}</button></form> '
        f'<form method="post" class="inline move" action="{esc(action)}/move">'
        f'<input type="hidden" name="day" value="{esc(day)}">'
        f'<label for="{ident}-day">{esc(_k(language, "session_move_to"))}</label> '
        f'<input type="date" id="{ident}-day" name="to_day" required> '
        f'<label for="{ident}-time" class="visually-hidden">{esc(_k(language, "session_time"))}'
        f'</label><input type="time" id="{ident}-time" name="to_time" required> '
        f'<button type="submit">{esc(_k(language, "session_move"))}</button></form>'
    )


def _sessions(view: CoupleView, language: str, zone: ZoneInfo, prefix: str) -> str:
    parts = [f"<h2>{esc(_k(language, 'sessions_title'))}</h2>"]
    if not view.sessions:
        parts.append(f"<p>{esc(_k(language, 'sessions_none'))}</p>")
    items = []
    for s in view.sessions:
        marks = []
        if s.cancelled:
            marks.append(_k(language, "session_skipped"))
        if s.moved_from is not None:
            moved = format_datetime(s.moved_from.astimezone(zone), language)
            marks.append(_k(language, "session_moved", old=moved))
        if s.recurring:
            marks.append(_k(language, "session_weekly"))
        when = format_datetime(s.starts_at.astimezone(zone), language)
        extra = f" ({_k(language, 'list_separator').join(marks)})" if marks else ""
        forms = ""
        if view.access.own and s.coming and not s.cancelled:
            day = f"{s.starts_at.astimezone(zone):%Y-%m-%d}"
            forms = " " + _session_forms(view, day, language, prefix)
        items.append(f"<li>{esc(when + extra)}{forms}</li>")
    if items:
        parts.append(f'<ul class="sessions">{"".join(items)}</ul>')
    hint = _k(language, "sessions_hint", handle=view.access.couple.handle)
    parts.append(f'<p class="hint">{esc(hint)}</p>')
    return f'<section class="sessions-section" id="sessions">{"".join(parts)}</section>'


def couple_page(language: str, view: CoupleView, *, prefix: str, static: str) -> str:
    """The couple's page: what needs attention, the charts, the digest, alerts, sessions."""
    zone = ZoneInfo(view.therapist.timezone)
    couple = view.access.couple
    title = _k(language, "couple_title", handle=couple.handle, label=couple.label)
    parts = [_glance(view.glance, language, zone, link=None, heading="h1")]
    parts.append(_alerts(view, language, zone, prefix))
    parts.append(
        f'<section class="charts"><h2>{esc(_k(language, "charts_title"))}</h2>'
        f'<p class="hint">{esc(_k(language, "charts_hint"))}</p>'
        + "".join(chart.html() for chart in view.charts)
        + "</section>"
    )
    if view.digest is not None:
        header, first, second, *rest = digest_sections(view.digest, language)
        heading = esc(_k(language, "digest_title"))
        parts.append(
            f'<section class="digest"><h2 class="digest-title">{heading}</h2>'
            f'{header}<div class="digest-partners">{first}{second}</div>{"".join(rest)}</section>'
        )
        notes = f"{prefix}/console/c/{couple.id}/notes"
        link = esc(_k(language, "notes_link"))
        parts.append(f'<p class="notes-link"><a href="{esc(notes)}">{link}</a></p>')
    else:
        parts.append(f'<p class="notice">{esc(_k(language, "admin_view_note"))}</p>')
    parts.append(_sessions(view, language, zone, prefix))
    return document(
        language, title, "\n".join(parts), static=static, prefix=prefix, page_class="couple-page"
    )


def notes_page(
    language: str,
    handle: str,
    couple_id: int,
    columns: Sequence[NotesColumn],
    *,
    zone: ZoneInfo,
    prefix: str,
    static: str,
    days: int,
) -> str:
    """Both partners' kept-private words, side by side with the same room."""
    title = _k(language, "notes_title", handle=handle)
    parts = [
        f"<h1>{esc(title)}</h1>",
        f'<p class="notice">{esc(_k(language, "notes_intro", days=days))}</p>',
        '<div class="partners">',
    ]
    for column in columns:
        items = "".join(
            f'<li><span class="when">{esc(format_date(n.at.astimezone(zone), language))}</span> '
            f"<q>{esc(n.text)}</q></li>"
            for n in column.notes
        )
        more = (
            f"<p>{esc(_k(language, 'notes_more', count=column.left_out))}</p>"
            if column.left_out
            else ""
        )
        body = f"<ul>{items}</ul>" if items else f"<p>{esc(_k(language, 'notes_none'))}</p>"
        parts.append(
            f'<section class="partner seat-{esc(column.slot)}">'
            f"<h2>{esc(_k(language, 'partner_name', name=column.name, slot=column.slot))}</h2>"
            f"{body}{more}</section>"
        )
    parts.append("</div>")
    back = f"{prefix}/console/c/{couple_id}"
    parts.append(f'<p><a href="{esc(back)}">{esc(_k(language, "back_to_couple"))}</a></p>')
    return document(language, title, "\n".join(parts), static=static, prefix=prefix)


def _window(language: str, window: str | None) -> str:
    key = f"onboarding.window_{window}"
    return t(language, key) if key in catalog(language) else _k(language, "preview.window_none")


def _preview(preview: SchedulePreview, language: str) -> str:
    """The fortnight preview as a table in the therapist's language: one row per local
    date, one column per partner (each in their own time zone), the planner's own rows."""
    head = [_k(language, "preview.date")] + [
        _k(
            language,
            "preview.partner",
            slot=c.slot,
            timezone=c.timezone,
            window=_window(language, c.window),
        )
        for c in preview.columns
    ]
    rows = []
    for day, cells in preview.rows:
        when = format_date(datetime.combine(day, time(12)), language)
        row = [f'<th scope="row">{esc(when)}</th>']
        for mine in cells:
            items = "".join(
                f"<li><time>{esc(format_time(cell.at, language))}</time> "
                f'<span class="kind">{esc(_k(language, f"preview.kind.{cell.kind}"))}</span> '
                f"<code>{esc(cell.prompt_key)}</code>"
                + (f" <q>{esc(cell.words)}</q>" if cell.words else "")
                + "</li>"
                for cell in mine
            )
            row.append(f"<td><ul>{items}</ul></td>" if items else "<td></td>")
        rows.append(f"<tr>{''.join(row)}</tr>")
    header = "".join(f'<th scope="col">{esc(h)}</th>' for h in head)
    counts = format_list(
        (_k(language, "preview.count", slot=c.slot, count=c.deliveries) for c in preview.columns),
        language,
    )
    parts = []
    if preview.waiting is not None:
        waiting = _k(language, f"preview.waiting_{preview.waiting}", handle=preview.handle)
        parts.append(f'<p class="notice">{esc(waiting)}</p>')
    parts.append(
        f'<table class="preview"><thead><tr>{header}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
    total = _k(language, "preview.total", days=preview.days, counts=counts)
    parts.append(f'<p class="preview-total">{esc(total)}</p>')
    return "".join(parts)


def admin_page(
    language: str,
    view: AdminView,
    check: tuple[bool, tuple[str, ...]] | None,
    *,
    prefix: str,
    static: str,
) -> str:
    """The practice's configuration, ``schedules check`` on a file, a couple's preview."""
    title = _k(language, "admin_title")
    parts = [f"<h1>{esc(title)}</h1>", f"<p>{esc(view.practice_name)}</p>"]
    parts.append(f"<h2>{esc(_k(language, 'admin_check_title'))}</h2>")
    parts.append(
        f'<form method="post" action="{esc(prefix)}/console/admin/check" '
        'enctype="multipart/form-data">'
        f'<label for="practice-file">{esc(_k(language, "admin_file"))}</label> '
        '<input type="file" id="practice-file" name="file" accept=".toml,text/plain" required> '
        f'<button type="submit">{esc(_k(language, "admin_check"))}</button></form>'
    )
    if check is not None:
        ok, lines = check
        heading = _k(language, "admin_check_ok" if ok else "admin_check_problems")
        items = "".join(f"<li><code>{esc(line)}</code></li>" for line in lines)
        role = "status" if ok else "alert"
        parts.append(
            f'<div class="check-result" role="{role}"><p>{esc(heading)}</p><ul>{items}</ul></div>'
        )
    parts.append(f"<h2>{esc(_k(language, 'admin_preview_title'))}</h2>")
    options = "".join(
        f'<option value="{esc(h)}"{" selected" if h == view.selected else ""}>{esc(h)}</option>'
        for h in view.handles
    )
    parts.append(
        f'<form method="get" action="{esc(prefix)}/console/admin">'
        f'<label for="preview-couple">{esc(_k(language, "admin_couple"))}</label> '
        f'<select id="preview-couple" name="couple">{options}</select> '
        f'<button type="submit">{esc(_k(language, "admin_preview"))}</button></form>'
    )
    if view.problem:
        problem = t(language, view.problem, handle=view.selected or "")
        parts.append(f'<p class="notice">{esc(problem)}</p>')
    if view.preview is not None:
        parts.append(_preview(view.preview, language))
    parts.append(f"<h2>{esc(_k(language, 'admin_config_title'))}</h2>")
    if view.config_toml is None:
        parts.append(f"<p>{esc(_k(language, 'admin_defaults'))}</p>")
    else:
        parts.append(f'<pre class="config">{esc(view.config_toml)}</pre>')
    return document(language, title, "\n".join(parts), static=static, prefix=prefix)
