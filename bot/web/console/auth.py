"""The console's session cookie: set on sign-in, read on every request, cleared on sign-out.

The cookie holds a random token whose hash alone is stored (``console_sessions``). It is
HttpOnly (no script reads it), SameSite=Strict (no other site's page can send it) and
Secure; only with ``DYAD_CONSOLE_INSECURE_LOOPBACK_COOKIE`` (tests and the demo, allowed
only for loopback http) is it sent over plain http. Sessions end after
``DYAD_CONSOLE_IDLE_MINUTES`` without a request.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final
from urllib.parse import urlsplit

from aiohttp import web

from bot.config import Settings
from bot.services import console
from bot.services.deps import Deps
from db.models import Therapist

COOKIE: Final = "dyad_console"


def cookie_path(prefix: str) -> str:
    """The cookie is sent to the console's own pages only."""
    return f"{prefix}/console"


def set_session_cookie(
    response: web.StreamResponse, token: str, settings: Settings, prefix: str
) -> None:
    """Give the browser its session cookie."""
    response.set_cookie(
        COOKIE,
        token,
        path=cookie_path(prefix),
        httponly=True,
        secure=not settings.console_insecure_loopback_cookie,
        samesite="Strict",
    )


def clear_session_cookie(response: web.StreamResponse, prefix: str) -> None:
    """Tell the browser to forget the cookie."""
    response.del_cookie(COOKIE, path=cookie_path(prefix))


def session_token(request: web.Request) -> str:
    """The session token the browser sent, or empty."""
    return request.cookies.get(COOKIE, "")


def idle_limit(settings: Settings) -> timedelta:
    """How long a signed-in browser may stay idle."""
    return timedelta(minutes=settings.console_idle_minutes)


async def signed_in(request: web.Request, deps: Deps) -> Therapist | None:
    """The therapist whose open session the request carries, or None."""
    token = session_token(request)
    if not token:
        return None
    async with deps.db.uow() as uow:
        return await console.session_therapist(
            uow, token, deps.clock.now(), idle_limit(deps.settings)
        )


def same_origin(request: web.Request) -> bool:
    """Whether a form post comes from this site (SameSite=Strict already keeps others out).

    Browsers say so in ``Sec-Fetch-Site``; the pages' ``no-referrer`` policy makes their
    ``Origin`` "null", so a named origin is compared only when it is given.
    """
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        return True
    return urlsplit(origin).netloc == request.host
