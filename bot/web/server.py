"""The Mini App's HTTP server (aiohttp): pages for partners' private answers.

Every request that reads or changes anything carries Telegram's signed ``initData``
(posted by the page, never in a URL) and is validated on its own: no session, no
cookie, nothing kept in this process, so any number of processes can serve behind a
load balancer. Every response is private: ``Cache-Control: no-store``, a
Content-Security-Policy that allows only this origin (no inline script or style, no
third-party origin, framing only by Telegram's web client) and ``Referrer-Policy:
no-referrer``.

Routes under the path of ``DYAD_WEBAPP_URL`` (``/app`` by default):

- ``GET  /checkin[?d=DELIVERY]``: the launch page; its script posts the launch's initData
- ``POST /checkin``: the whole check-in on one page (started or resumed as in the chat)
- ``POST /checkin/draft``: keep the half-filled page on the server (JSON answer)
- ``POST /checkin/send``: store it; the page shows "saved" (and crisis resources if due)
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Final, TypeVar
from urllib.parse import urlsplit

from aiohttp import web

from bot.core.numbers import ascii_int, is_ascii_digits
from bot.core.safety import CrisisResource
from bot.locales import pick_locale, t
from bot.services import miniapp, miniapp_prompts, miniapp_settings
from bot.services.deps import Deps
from bot.services.texts import UserError
from bot.web import console, pages
from bot.web.initdata import InitData, InvalidInitData, validate_init_data

if TYPE_CHECKING:  # types only: the pages reach the database through the services
    from db.models import Partner
    from db.uow import UnitOfWork

log = logging.getLogger(__name__)

STATIC_DIR: Final = Path(__file__).parent / "static"
MAX_BODY: Final = 64 * 1024
TELEGRAM_WEB_CLIENT: Final = "https://web.telegram.org"
CONTENT_SECURITY_POLICY: Final = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        f"frame-ancestors {TELEGRAM_WEB_CLIENT}",
    ]
)
SECURITY_HEADERS: Final[Mapping[str, str]] = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_T = TypeVar("_T")
PROMPT_STALE: Final = "webapp.prompt_stale"
FIXABLE: Final = frozenset(
    {
        "webapp.choose_one",
        "webapp.reply_empty",
        "webapp.settings_invalid",
        "webapp.timezone_unknown",
        "webapp.pause_invalid",
    }
)


def webapp_path(url: str | None) -> str:
    """The path the pages live under, from the public URL (``https://x/app`` -> ``/app``)."""
    path = urlsplit(url).path.rstrip("/") if url else ""
    return path or "/app"


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every answer, refusals included, is private and may be framed only by Telegram."""
    try:
        response = await handler(request)
    except web.HTTPException as error:
        error.headers.update(SECURITY_HEADERS)
        raise
    response.headers.update(SECURITY_HEADERS)
    return response


class _Refused(Exception):
    """A request answered with an error page (or JSON), having changed nothing."""

    def __init__(self, status: int, language: str, message: str) -> None:
        super().__init__(message)
        self.status, self.language, self.message = status, language, message


def _browser_language(request: web.Request) -> str:
    first = request.headers.get("Accept-Language", "").split(",")[0].split(";")[0].strip()
    return pick_locale(first or None)


def _html(body: str, status: int = 200) -> web.Response:
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8")


class MiniApp:
    """The request handlers, over the process's dependencies and the bot's token."""

    def __init__(self, deps: Deps, bot_token: str, prefix: str) -> None:
        self.deps = deps
        self.bot_token = bot_token
        self.prefix = prefix
        self.static = f"{prefix}/static"

    def application(self) -> web.Application:
        """The aiohttp application with every route and the security headers."""
        app = web.Application(middlewares=[security_headers], client_max_size=MAX_BODY)
        p = self.prefix
        app.router.add_get(f"{p}/checkin", self.launch_checkin)
        app.router.add_post(f"{p}/checkin", self.open_checkin)
        app.router.add_post(f"{p}/checkin/draft", self.draft_checkin)
        app.router.add_post(f"{p}/checkin/send", self.send_checkin)
        app.router.add_get(f"{p}/prompt", self.launch_prompt)
        app.router.add_post(f"{p}/prompt", self.open_prompt)
        app.router.add_post(f"{p}/prompt/draft", self.draft_prompt)
        app.router.add_post(f"{p}/prompt/send", self.send_prompt)
        app.router.add_get(f"{p}/settings", self.launch_settings)
        app.router.add_post(f"{p}/settings", self.open_settings)
        app.router.add_post(f"{p}/settings/send", self.send_settings)
        app.router.add_static(self.static, STATIC_DIR, append_version=False)
        console.add_routes(app, self.deps, self.bot_token, p)  # the therapist console
        return app

    # --- authentication -------------------------------------------------------------------

    def _validated(self, request: web.Request, form: Mapping[str, str]) -> InitData:
        settings = self.deps.settings
        try:
            return validate_init_data(
                form.get("init_data", ""),
                self.bot_token,
                now=self.deps.clock.now(),
                max_age=timedelta(seconds=settings.webapp_auth_max_age_seconds),
            )
        except InvalidInitData as error:
            log.info("mini app request refused", extra={"reason": error.reason})
            language = _browser_language(request)
            key = "webapp.error_stale" if error.reason == "stale" else "webapp.error_forged"
            raise _Refused(403, language, t(language, key)) from None

    async def _form(self, request: web.Request) -> dict[str, str]:
        data = await request.post()
        return {key: value for key, value in data.items() if isinstance(value, str)}

    def _theme(self, form: Mapping[str, str]) -> dict[str, str]:
        return pages.clean_theme(form.get("theme", ""))

    @staticmethod
    def _refusal(error: UserError, language: str, stale: str = "webapp.stale") -> _Refused:
        if error.key == "webapp.not_a_partner":
            return _Refused(403, language, t(language, error.key))
        if error.key in ("common.stale_button", "checkin.no_open", "prompts.no_open"):
            return _Refused(409, language, t(language, stale))
        return _Refused(409, language, t(language, error.key, **error.params))

    async def _as_partner(
        self,
        request: web.Request,
        form: Mapping[str, str],
        use: Callable[[UnitOfWork, Partner, InitData], Awaitable[_T]],
        *,
        stale: str = "webapp.stale",
        anytime: bool = False,
        fixable: Callable[[UserError], bool] | None = None,
    ) -> tuple[InitData, _T]:
        """Run ``use`` for the partner the validated initData names, in one unit of work.

        ``anytime``: also after the couple's programme ended (settings, as in the chat).

        A user error the page can fix (an answer to correct: ``fixable``, by default
        :func:`_fixable`) is raised as it is; any other becomes a refusal
        (:class:`_Refused`) in the partner's language.
        """
        can_fix = _fixable if fixable is None else fixable
        init = self._validated(request, form)
        language = pick_locale(init.user.language_code)
        async with self.deps.db.uow() as uow:
            try:
                partner = await miniapp.partner_of(uow, init.user.id, in_programme=not anytime)
                language = partner.language
                return init, await use(uow, partner, init)
            except UserError as error:
                if can_fix(error):
                    raise
                raise self._refusal(error, language, stale) from None

    def _error(self, refused: _Refused, theme: Mapping[str, str]) -> web.Response:
        page = pages.error_page(refused.language, refused.message, static=self.static, theme=theme)
        return _html(page, refused.status)

    # --- pages ----------------------------------------------------------------------------

    async def launch_checkin(self, request: web.Request) -> web.Response:
        """The page Telegram opens; nothing here is private."""
        fields = {}
        delivery = request.query.get("d", "")
        if is_ascii_digits(delivery) and len(delivery) < 19:
            fields["d"] = delivery
        shell = pages.launch_shell(
            _browser_language(request),
            action=f"{self.prefix}/checkin",
            fields=fields,
            static=self.static,
        )
        return _html(shell)

    async def open_checkin(self, request: web.Request) -> web.Response:
        """The whole check-in on one page, with the draft kept on the server."""
        form = await self._form(request)
        theme = self._theme(form)

        async def use(uow: UnitOfWork, partner: Partner, init: InitData) -> miniapp.CheckinPage:
            return await miniapp.checkin_page(
                uow,
                partner,
                init.user.id,
                self.deps.cipher,
                self.deps.clock.now(),
                delivery_id=ascii_int(form.get("d", "")),
            )

        try:
            init, page = await self._as_partner(request, form, use, fixable=_never)
        except _Refused as refused:
            return self._error(refused, theme)
        if page.form is None:
            return _html(
                pages.saved_page(
                    page.language,
                    page.resources,
                    show_crisis=False,
                    theme=theme,
                    static=self.static,
                )
            )
        return _html(self._checkin_page(page, init, theme, page.values))

    def _checkin_page(
        self,
        page: miniapp.CheckinPage,
        init: InitData,
        theme: Mapping[str, str],
        values: Mapping[str, str],
        problem: str | None = None,
    ) -> str:
        assert page.form is not None
        return pages.checkin_page(
            page.language,
            page.form,
            values,
            page.resources,
            show_crisis=page.show_crisis,
            init_data=init.raw,
            theme=theme,
            prefix=self.prefix,
            static=self.static,
            problem=problem,
        )

    def _checkin_id(self, form: Mapping[str, str], language: str) -> int:
        value = form.get("checkin", "")
        if not is_ascii_digits(value) or len(value) > 18:
            raise _Refused(409, language, t(language, "webapp.stale"))
        return int(value)

    async def draft_checkin(self, request: web.Request) -> web.Response:
        """Keep the half-filled page; say whether the crisis resources must show now."""
        form = await self._form(request)

        async def use(uow: UnitOfWork, partner: Partner, init: InitData) -> bool:
            return await miniapp.save_checkin_draft(
                uow,
                partner,
                init.user.id,
                self.deps.cipher,
                self._checkin_id(form, partner.language),
                form,
                self.deps.clock.now(),
            )

        try:
            _, crisis = await self._as_partner(request, form, use, fixable=_never)
        except _Refused as refused:
            return web.json_response({"error": refused.message}, status=refused.status)
        return web.json_response({"saved": True, "crisis": crisis})

    async def send_checkin(self, request: web.Request) -> web.Response:
        """Store the page through the chat's own steps; show "saved" and, if due, resources."""
        form = await self._form(request)
        theme = self._theme(form)

        async def use(uow: UnitOfWork, partner: Partner, init: InitData) -> miniapp.Sent:
            return await miniapp.send_checkin(
                uow,
                partner,
                init.user.id,
                self.deps.cipher,
                self._checkin_id(form, partner.language),
                form,
                self.deps.clock.now(),
            )

        try:
            try:
                _, sent = await self._as_partner(request, form, use, fixable=_instrument_error)
            except UserError as error:  # an answer to correct: the page again, nothing stored
                return await self._again(request, form, theme, error)
        except _Refused as refused:
            return self._error(refused, theme)
        return self._stored(sent.language, sent.resources, sent.show_crisis, theme)

    def _stored(
        self,
        language: str,
        resources: Sequence[CrisisResource],
        show_crisis: bool,
        theme: Mapping[str, str],
        said: str | None = None,
    ) -> web.Response:
        """A page's answers are stored: wake the dispatcher (a note, an alert may be queued)
        and show "saved" (or ``said``), the crisis card first when called for."""
        self.deps.wake_dispatcher()  # the "saved" note goes out now, not at the next idle tick
        page = pages.saved_page(
            language, resources, show_crisis=show_crisis, theme=theme, static=self.static, said=said
        )
        return _html(page)

    async def _again(
        self,
        request: web.Request,
        form: Mapping[str, str],
        theme: Mapping[str, str],
        error: UserError,
    ) -> web.Response:
        """The same page with what was entered and what to correct (nothing was stored)."""

        async def use(uow: UnitOfWork, partner: Partner, init: InitData) -> miniapp.CheckinPage:
            checkin_id = self._checkin_id(form, partner.language)
            return await miniapp.reopen_checkin(uow, partner, checkin_id)

        init, page = await self._as_partner(request, form, use, fixable=_never)
        problem = t(page.language, error.key, **error.params)
        return _html(self._checkin_page(page, init, theme, form, problem), status=422)

    # --- a prompt's private answer (and a skill's follow-up) ---------------------------------

    async def launch_prompt(self, request: web.Request) -> web.Response:
        """The page Telegram opens from a prompt's button; nothing here is private."""
        return self._launch(request, f"{self.prefix}/prompt")

    def _launch(self, request: web.Request, action: str) -> web.Response:
        fields = {}
        delivery = request.query.get("d", "")
        if is_ascii_digits(delivery) and len(delivery) < 19:
            fields["d"] = delivery
        shell = pages.launch_shell(
            _browser_language(request), action=action, fields=fields, static=self.static
        )
        return _html(shell)

    @staticmethod
    def _delivery_id(form: Mapping[str, str]) -> int:
        value = form.get("d", "")
        if not is_ascii_digits(value) or len(value) > 18:
            raise UserError("common.stale_button")
        return int(value)

    def _prompt_page(
        self,
        page: miniapp_prompts.PromptPage,
        init: InitData,
        theme: Mapping[str, str],
        values: Mapping[str, str] | None = None,
        problem: str | None = None,
    ) -> str:
        language = page.language
        followup = page.items[0].id == miniapp_prompts.CHOICE  # the words ask the question
        shared = any(item.id == miniapp_prompts.SHARE for item in page.items)
        hint = "space_hint" if shared else "reply_hint"
        lead = "" if followup else f'<p class="prompt">{pages.esc(page.prompt)}</p>'
        return pages.answers_page(
            language,
            title=t(language, "webapp.prompt_title"),
            intro=(
                t(language, "webapp.space_private")
                if shared
                else t(language, "webapp.prompt_private")
            ),
            lead=lead,
            form_id="prompt",
            action=f"{self.prefix}/prompt",
            fields={"d": page.delivery_id},
            items=page.items,
            values=page.values if values is None else values,
            resources=page.resources,
            show_crisis=page.show_crisis,
            init_data=init.raw,
            theme=theme,
            static=self.static,
            send_label=t(language, "webapp.send_answer"),
            problem=problem,
            text_hint=None if followup else t(language, f"webapp.{hint}"),
        )

    async def open_prompt(self, request: web.Request) -> web.Response:
        """The prompt's page, with its draft kept on the server."""
        form = await self._form(request)
        theme = self._theme(form)

        async def use(
            uow: UnitOfWork, partner: Partner, init: InitData
        ) -> miniapp_prompts.PromptPage:
            delivery = self._delivery_id(form)
            return await miniapp_prompts.prompt_page(
                uow, partner, init.user.id, self.deps.cipher, delivery
            )

        try:
            init, page = await self._as_partner(request, form, use, stale=PROMPT_STALE)
        except _Refused as refused:
            return self._error(refused, theme)
        return _html(self._prompt_page(page, init, theme))

    async def draft_prompt(self, request: web.Request) -> web.Response:
        """Keep the half-filled page; say whether the crisis resources must show now."""
        form = await self._form(request)

        async def use(uow: UnitOfWork, partner: Partner, init: InitData) -> bool:
            return await miniapp_prompts.save_prompt_draft(
                uow,
                partner,
                init.user.id,
                self.deps.cipher,
                self._delivery_id(form),
                form,
                self.deps.clock.now(),
            )

        try:
            _, crisis = await self._as_partner(request, form, use, stale=PROMPT_STALE)
        except _Refused as refused:
            return web.json_response({"error": refused.message}, status=refused.status)
        self.deps.wake_dispatcher()  # an alert may be waiting for the therapist
        return web.json_response({"saved": True, "crisis": crisis})

    async def send_prompt(self, request: web.Request) -> web.Response:
        """Store the answer through the chat's own steps; show "saved" and, if due, resources."""
        form = await self._form(request)
        theme = self._theme(form)

        async def use(
            uow: UnitOfWork, partner: Partner, init: InitData
        ) -> miniapp_prompts.PromptSent:
            return await miniapp_prompts.send_prompt(
                uow,
                partner,
                init.user.id,
                self.deps.cipher,
                self._delivery_id(form),
                form,
                self.deps.clock.now(),
            )

        try:
            try:
                _, sent = await self._as_partner(request, form, use, stale=PROMPT_STALE)
            except UserError as error:  # an answer to correct: the page again, nothing stored
                return await self._prompt_again(request, form, theme, error)
        except _Refused as refused:
            return self._error(refused, theme)
        return self._stored(sent.language, sent.resources, sent.show_crisis, theme, sent.said)

    async def _prompt_again(
        self,
        request: web.Request,
        form: Mapping[str, str],
        theme: Mapping[str, str],
        error: UserError,
    ) -> web.Response:
        async def use(
            uow: UnitOfWork, partner: Partner, init: InitData
        ) -> miniapp_prompts.PromptPage:
            return await miniapp_prompts.prompt_page(
                uow, partner, init.user.id, self.deps.cipher, self._delivery_id(form)
            )

        init, page = await self._as_partner(request, form, use, stale=PROMPT_STALE)
        problem = t(page.language, error.key, **error.params)
        return _html(self._prompt_page(page, init, theme, form, problem), status=422)

    # --- /settings --------------------------------------------------------------------------

    async def launch_settings(self, request: web.Request) -> web.Response:
        """The page Telegram opens from /settings; nothing here is private."""
        return self._launch(request, f"{self.prefix}/settings")

    def _settings_page(
        self,
        page: miniapp_settings.SettingsPage,
        init: InitData,
        theme: Mapping[str, str],
        values: Mapping[str, str] | None = None,
        problem: str | None = None,
    ) -> str:
        return pages.settings_page(
            page.language,
            page,
            init_data=init.raw,
            theme=theme,
            prefix=self.prefix,
            static=self.static,
            values=values,
            problem=problem,
        )

    async def open_settings(self, request: web.Request) -> web.Response:
        """The partner's settings as they stand."""
        form = await self._form(request)
        theme = self._theme(form)

        async def use(
            uow: UnitOfWork, partner: Partner, init: InitData
        ) -> miniapp_settings.SettingsPage:
            return await miniapp_settings.settings_page(uow, partner, self.deps.clock.now())

        try:
            init, page = await self._as_partner(request, form, use, anytime=True)
        except _Refused as refused:
            return self._error(refused, theme)
        return _html(self._settings_page(page, init, theme))

    async def send_settings(self, request: web.Request) -> web.Response:
        """Apply the page through the chat's own steps; show "saved" (or crisis resources)."""
        form = await self._form(request)
        theme = self._theme(form)

        async def use(
            uow: UnitOfWork, partner: Partner, init: InitData
        ) -> miniapp_settings.SettingsSent:
            return await miniapp_settings.send_settings(
                uow, partner, init.user.id, self.deps.cipher, form, self.deps.clock.now()
            )

        async def again(
            uow: UnitOfWork, partner: Partner, init: InitData
        ) -> miniapp_settings.SettingsPage:
            return await miniapp_settings.settings_page(uow, partner, self.deps.clock.now())

        try:
            try:
                _, sent = await self._as_partner(request, form, use, anytime=True)
            except UserError as error:  # a field to correct: the page again, nothing changed
                init, page = await self._as_partner(request, form, again, anytime=True)
                problem = t(page.language, error.key, **error.params)
                return _html(self._settings_page(page, init, theme, form, problem), status=422)
        except _Refused as refused:
            return self._error(refused, theme)
        said = None if sent.show_crisis else t(sent.language, "webapp.settings_saved")
        return self._stored(sent.language, sent.resources, sent.show_crisis, theme, said)


def _fixable(error: UserError) -> bool:
    """An answer the person can correct on the page (the page comes back with it)."""
    return _instrument_error(error) or error.key in FIXABLE


def _instrument_error(error: UserError) -> bool:
    """A check-in answer out of its instrument's range: the check-in page comes back."""
    return error.key.startswith("instruments.")


def _never(error: UserError) -> bool:
    """A page with nothing to correct: every refusal is a refusal."""
    return False


class WebServer:
    """Serves the Mini App on ``host:port`` (``port=0`` takes any free port)."""

    def __init__(
        self, deps: Deps, bot_token: str, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.deps = deps
        self.host = host
        self.port = port
        self.app = MiniApp(deps, bot_token, webapp_path(deps.settings.webapp_url))
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        """Where this server answers, for tests and the demo (loopback http)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{self.app.prefix}"

    async def start(self) -> None:
        """Listen."""
        runner = web.AppRunner(self.app.application(), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
            await web.SockSite(runner, sock).start()
        except BaseException:
            sock.close()
            await runner.cleanup()
            raise
        self.port = int(sock.getsockname()[1])
        self._runner = runner
        log.info("mini app listening", extra={"port": self.port})

    async def stop(self) -> None:
        """Close the server."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
