"""The console's routes, under the web layer's path (``/app`` by default):

- ``GET  /console/login/{token}``: the login link's page (one button, nothing used yet)
- ``POST /console/login``: use the link once; set the session cookie; on to the caseload
- ``GET  /console/app`` and ``POST /console/app``: the same from a Telegram Mini App launch
  (validated ``initData``; the page's script posts it, as the check-in page does)
- ``GET  /console``: the caseload
- ``GET  /console/c/{id}``: one couple; ``GET /console/c/{id}/notes``: kept-private words
- ``POST /console/c/{id}/alerts/{alert}/ack``: acknowledge an alert
- ``POST /console/c/{id}/sessions/skip`` and ``…/move``: as ``/session HANDLE skip|move``
- ``GET  /console/admin[?couple=HANDLE]``, ``POST /console/admin/check``: the practice
  admin's page (configuration as stored, a file check, a couple's fortnight preview)
- ``POST /console/logout``: sign out

Nothing is kept in the process: the session lives in the database, so any worker serves
any request. Every answer carries the web layer's security headers (``no-store``, strict
CSP, no referrer); the console pages load no script at all.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Final, TypeVar
from zoneinfo import ZoneInfo

from aiohttp import web

from bot.core.numbers import is_ascii_digits
from bot.locales import pick_language, t
from bot.services import console
from bot.services.deps import Deps
from bot.services.notes import PERIOD as NOTES_PERIOD
from bot.services.texts import UserError
from bot.web import pages as webapp_pages
from bot.web.console import auth, pages
from bot.web.initdata import InvalidInitData, validate_init_data
from db.models import Couple, Therapist
from db.uow import UnitOfWork

log = logging.getLogger(__name__)
_T = TypeVar("_T")
_Notes = tuple[Couple, tuple[console.NotesColumn, console.NotesColumn]]

STATIC_DIR: Final = Path(__file__).parent / "static"


def _html(body: str, status: int = 200) -> web.Response:
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8")


def _language(request: web.Request) -> str:
    first = request.headers.get("Accept-Language", "").split(",")[0].split(";")[0].strip()
    return pick_language(first or None)


def _id(request: web.Request, name: str) -> int:
    value = request.match_info.get(name, "")
    if not is_ascii_digits(value) or len(value) > 18:
        raise web.HTTPNotFound()
    return int(value)


class _Answer(Exception):
    """A page that ends the request early (signed out, refused); its response is sent."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


_Handler = Callable[["Console", web.Request], Awaitable[web.Response]]


def _answered(handler: _Handler) -> _Handler:
    """A page handler whose early answers (:class:`_Answer`) are the response."""

    @functools.wraps(handler)
    async def wrapper(self: Console, request: web.Request) -> web.Response:
        try:
            return await handler(self, request)
        except _Answer as answer:
            return answer.response

    return wrapper


class Console:
    """The console's request handlers over the process's dependencies."""

    def __init__(self, deps: Deps, bot_token: str, prefix: str) -> None:
        self.deps = deps
        self.bot_token = bot_token
        self.prefix = prefix
        self.static = f"{prefix}/console/static"

    # --- helpers --------------------------------------------------------------------------

    def _message(self, language: str, key: str, status: int, **params: object) -> web.Response:
        page = pages.message_page(
            language,
            t(language, f"console.{key}_title"),
            t(language, f"console.{key}", **params),
            static=self.static,
        )
        return _html(page, status)

    def _signed_out(self, request: web.Request) -> web.Response:
        response = self._message(_language(request), "signed_out", 401)
        if auth.session_token(request):
            auth.clear_session_cookie(response, self.prefix)
        return response

    def _refused(self, therapist: Therapist, error: UserError) -> web.Response:
        if error.key == "console.not_found":
            return self._message(therapist.language, "not_found", 404)
        return self._message(therapist.language, "problem", 409)

    def _foreign(self, request: web.Request) -> web.Response | None:
        if auth.same_origin(request):
            return None
        return self._message(_language(request), "foreign_form", 403)

    def _to(self, path: str, *, token: str | None = None) -> web.Response:
        response = web.Response(status=303, headers={"Location": f"{self.prefix}{path}"})
        if token is not None:
            auth.set_session_cookie(response, token, self.deps.settings, self.prefix)
        return response

    # --- signing in -----------------------------------------------------------------------

    async def login_page(self, request: web.Request) -> web.Response:
        """The page a login link opens: a button, so a link preview uses nothing up."""
        token = request.match_info.get("token", "")
        return _html(
            pages.login_page(
                _language(request),
                action=f"{self.prefix}/console/login",
                token=token,
                static=self.static,
            )
        )

    async def login(self, request: web.Request) -> web.Response:
        """Use the link (once, in time) and start the browser's session."""
        if (refused := self._foreign(request)) is not None:
            return refused
        form = await request.post()
        token = form.get("token")
        now = self.deps.clock.now()
        try:
            async with self.deps.db.uow() as uow:
                session = await console.redeem_login_link(uow, str(token or ""), now)
        except UserError:
            log.info("console login link refused")
            return self._message(_language(request), "link_invalid", 403)
        return self._to("/console", token=session)

    async def miniapp_launch(self, request: web.Request) -> web.Response:
        """The Mini App's first load: its script posts the launch's initData back."""
        shell = webapp_pages.launch_shell(
            _language(request),
            action=f"{self.prefix}/console/app",
            fields={},
            static=f"{self.prefix}/static",
        )
        return _html(shell)

    async def miniapp_signin(self, request: web.Request) -> web.Response:
        """A validated Mini App launch by a therapist starts a session."""
        if (refused := self._foreign(request)) is not None:
            return refused
        form = await request.post()
        now = self.deps.clock.now()
        try:
            init = validate_init_data(
                str(form.get("init_data", "")),
                self.bot_token,
                now=now,
                max_age=timedelta(seconds=self.deps.settings.webapp_auth_max_age_seconds),
            )
        except InvalidInitData:
            return self._message(_language(request), "link_invalid", 403)
        try:
            async with self.deps.db.uow() as uow:
                session = await console.start_miniapp_session(uow, init.user.id, now)
        except UserError:
            return self._message(pick_language(init.user.language_code), "not_a_therapist", 403)
        return self._to("/console", token=session)

    async def logout(self, request: web.Request) -> web.Response:
        """Sign out: the session ends on the server and the cookie is cleared."""
        if (refused := self._foreign(request)) is not None:
            return refused
        async with self.deps.db.uow() as uow:
            await console.end_session(uow, auth.session_token(request), self.deps.clock.now())
        response = self._message(_language(request), "signed_out_done", 200)
        auth.clear_session_cookie(response, self.prefix)
        return response

    # --- pages ----------------------------------------------------------------------------

    async def _as_therapist(
        self,
        request: web.Request,
        use: Callable[[UnitOfWork, Therapist], Awaitable[_T]],
        *,
        posted: bool = False,
        refuse: Callable[[Therapist, UserError], web.Response] | None = None,
    ) -> tuple[Therapist, _T]:
        """Run ``use`` for the signed-in therapist, in one unit of work.

        ``posted``: a form that changes something, refused from another site. A refusal
        (signed out, another site's form, a couple that is not theirs) is raised as
        :class:`_Answer` with its page (``refuse`` turns a user error into one).
        """
        if posted and (refused := self._foreign(request)) is not None:
            raise _Answer(refused)
        therapist = await auth.signed_in(request, self.deps)
        if therapist is None:
            raise _Answer(self._signed_out(request))
        try:
            async with self.deps.db.uow() as uow:
                return therapist, await use(uow, therapist)
        except UserError as error:
            raise _Answer((refuse or self._refused)(therapist, error)) from None

    @_answered
    async def caseload(self, request: web.Request) -> web.Response:
        """Every couple of the therapist (an admin: of the practice), by attention."""

        async def use(uow: UnitOfWork, therapist: Therapist) -> list[console.CoupleGlance]:
            return await console.caseload(uow, therapist, self.deps.clock.now())

        therapist, rows = await self._as_therapist(request, use)
        page = pages.caseload_page(
            therapist.language,
            rows,
            zone=ZoneInfo(therapist.timezone),
            prefix=self.prefix,
            static=self.static,
            admin=therapist.is_admin,
        )
        return _html(page)

    @_answered
    async def couple(self, request: web.Request) -> web.Response:
        """One couple's page; another therapist's couple reads as not found."""
        couple_id = _id(request, "couple")

        async def use(uow: UnitOfWork, therapist: Therapist) -> console.CoupleView:
            return await console.couple_view(
                uow, therapist, couple_id, self.deps.cipher, self.deps.clock.now()
            )

        therapist, view = await self._as_therapist(request, use)
        page = pages.couple_page(therapist.language, view, prefix=self.prefix, static=self.static)
        return _html(page)

    @_answered
    async def notes(self, request: web.Request) -> web.Response:
        """The words each partner kept for their therapist: the couple's own therapist only."""
        couple_id = _id(request, "couple")

        async def use(
            uow: UnitOfWork, therapist: Therapist
        ) -> tuple[Couple, tuple[console.NotesColumn, console.NotesColumn]]:
            return await console.notes_page(
                uow, therapist, couple_id, self.deps.cipher, self.deps.clock.now()
            )

        therapist, (couple, columns) = await self._as_therapist(request, use)
        page = pages.notes_page(
            therapist.language,
            couple.handle,
            couple.id,
            columns,
            zone=ZoneInfo(therapist.timezone),
            prefix=self.prefix,
            static=self.static,
            days=NOTES_PERIOD.days,
        )
        return _html(page)

    @_answered
    async def acknowledge(self, request: web.Request) -> web.Response:
        """Mark an alert seen, then back to the couple's page."""
        couple_id, alert_id = _id(request, "couple"), _id(request, "alert")

        async def use(uow: UnitOfWork, therapist: Therapist) -> None:
            await console.acknowledge_alert(
                uow, therapist, couple_id, alert_id, self.deps.clock.now()
            )

        await self._as_therapist(request, use, posted=True)
        return self._to(f"/console/c/{couple_id}#alerts")

    @_answered
    async def session(self, request: web.Request) -> web.Response:
        """Skip or move a session (the chat's ``/session``), then back to the couple."""
        couple_id = _id(request, "couple")
        action = request.match_info.get("action", "")

        form = await request.post()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}

        async def use(uow: UnitOfWork, therapist: Therapist) -> None:
            await console.change_session(
                uow, therapist, couple_id, action, fields, self.deps.clock.now()
            )

        def refuse(therapist: Therapist, error: UserError) -> web.Response:
            if error.key == "console.not_found":
                return self._refused(therapist, error)
            language = therapist.language
            page = pages.message_page(
                language,
                t(language, "console.problem_title"),
                t(language, error.key, **error.params),
                static=self.static,
            )
            return _html(page, 422)

        await self._as_therapist(request, use, posted=True, refuse=refuse)
        return self._to(f"/console/c/{couple_id}#sessions")

    @_answered
    async def admin(self, request: web.Request) -> web.Response:
        """The practice admin's page: configuration, a file check, a couple's preview."""
        handle = request.query.get("couple", "")[:16] or None

        async def use(uow: UnitOfWork, therapist: Therapist) -> console.AdminView:
            return await console.admin_view(uow, therapist, self.deps.clock.now(), handle)

        therapist, view = await self._as_therapist(request, use)
        return _html(self._admin_page(therapist, view))

    def _admin_page(
        self,
        therapist: Therapist,
        view: console.AdminView,
        check: tuple[bool, tuple[str, ...]] | None = None,
    ) -> str:
        return pages.admin_page(
            therapist.language, view, check, prefix=self.prefix, static=self.static
        )

    @_answered
    async def admin_check(self, request: web.Request) -> web.Response:
        """``dyad schedules check`` on an uploaded practice.toml; nothing is stored."""

        async def use(uow: UnitOfWork, therapist: Therapist) -> console.AdminView:
            return await console.admin_view(uow, therapist, self.deps.clock.now(), None)

        therapist, view = await self._as_therapist(request, use, posted=True)
        form = await request.post()
        upload = form.get("file")
        if isinstance(upload, web.FileField):
            name = (upload.filename or "practice.toml")[:80]
            raw = upload.file.read()
        else:
            name, raw = "practice.toml", str(upload or "").encode()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            check: tuple[bool, tuple[str, ...]] = (
                False,
                (t(therapist.language, "console.admin_not_text", name=name),),
            )
        else:
            check = console.check_upload(name, text)
        return _html(self._admin_page(therapist, view, check), 200 if check[0] else 422)


def add_routes(app: web.Application, deps: Deps, bot_token: str, prefix: str) -> None:
    """Mount the console on the web layer's application, under ``prefix``."""
    handlers = Console(deps, bot_token, prefix)
    p = f"{prefix}/console"
    app.router.add_get(p, handlers.caseload)
    app.router.add_get(f"{p}/login/{{token}}", handlers.login_page)
    app.router.add_post(f"{p}/login", handlers.login)
    app.router.add_get(f"{p}/app", handlers.miniapp_launch)
    app.router.add_post(f"{p}/app", handlers.miniapp_signin)
    app.router.add_post(f"{p}/logout", handlers.logout)
    app.router.add_get(f"{p}/c/{{couple}}", handlers.couple)
    app.router.add_get(f"{p}/c/{{couple}}/notes", handlers.notes)
    app.router.add_post(f"{p}/c/{{couple}}/alerts/{{alert}}/ack", handlers.acknowledge)
    app.router.add_post(f"{p}/c/{{couple}}/sessions/{{action}}", handlers.session)
    app.router.add_get(f"{p}/admin", handlers.admin)
    app.router.add_post(f"{p}/admin/check", handlers.admin_check)
    app.router.add_static(f"{p}/static", STATIC_DIR, append_version=False)
