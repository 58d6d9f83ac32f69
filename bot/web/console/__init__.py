"""The therapist console: caseload, couple pages with charts, alerts, in a browser.

``auth`` keeps the sign-in (one-time login link or Mini App launch, then an HttpOnly,
Secure, SameSite=Strict session cookie that ends after inactivity), ``pages`` renders the
HTML (no script), ``routes`` serves it beside the Mini App pages: ``add_routes`` mounts it
on the web layer's application, under the same path and the same security headers.
"""

from __future__ import annotations

from bot.web.console.routes import add_routes

__all__ = ["add_routes"]
