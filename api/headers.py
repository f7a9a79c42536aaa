"""The security headers every answer carries, added in one place (a plain ASGI middleware: cheap).

The API serves JSON to programs and, under /docs and /redoc, a page for people; neither is ever
meant to be framed, sniffed as another type or cached by a proxy. Behind a TLS-terminating
reverse proxy, the proxy adds Strict-Transport-Security (README, "Behind a reverse proxy").
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# JSON answers: nothing may run, load or frame them.
API_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# The docs pages: their own scripts and styles (fastapi-offline serves Swagger UI and ReDoc from
# this server; the page that starts them is an inline script), nothing from anywhere else.
DOCS_POLICY = ("default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
               "img-src 'self' data:; font-src 'self'; connect-src 'self'; worker-src 'self' blob:; "
               "frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
DOCS_PREFIXES = ("/docs", "/redoc", "/static-offline-docs")

COMMON = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
]
API_HEADERS = [*COMMON, (b"content-security-policy", API_POLICY.encode()), (b"cache-control", b"no-store")]
DOCS_HEADERS = [*COMMON, (b"content-security-policy", DOCS_POLICY.encode())]


class SecurityHeaders:
    """Adds the headers above to every HTTP answer of the app, errors included."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = DOCS_HEADERS if scope["path"].startswith(DOCS_PREFIXES) else API_HEADERS

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)
