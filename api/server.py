"""How serve.py runs the app: uvicorn (uvloop, httptools) with deadlines and limits for slow clients.

uvicorn closes idle keep-alive connections, but gives a client all the time it wants to finish
its request headers. `DeadlineProtocol` closes a connection whose headers take longer than
HEADER_SECONDS or grow past MAX_HEADER_BYTES; the body has its own deadline in the app
(`api.answers.read_body`). With `limit_concurrency`, connections and requests past the limit are
answered 503 at once, so memory stays bounded (at most that many bodies of 8 MiB are ever held).
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEADER_SECONDS = 10.0  # from the first byte of a request to the end of its headers
MAX_HEADER_BYTES = 64 * 1024
KEEP_ALIVE_SECONDS = 5  # an idle keep-alive connection is closed after this
MAX_CONCURRENCY = 256  # connections (and requests in progress) per worker; more are answered 503
GRACEFUL_SECONDS = 30  # at SIGTERM, requests in flight get this long to finish
WORKER_PING_SECONDS = 30  # a worker slow to answer the supervisor's ping on a busy machine is not killed


class DeadlineProtocol(HttpToolsProtocol):
    """httptools' protocol, with a deadline and a size limit for the request headers."""

    _header_timer: asyncio.TimerHandle | None = None  # set while a request's headers are awaited
    _header_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_headers()

    def data_received(self, data: bytes) -> None:
        waiting = self._header_timer is not None  # for this request's headers
        super().data_received(data)
        if waiting:
            self._header_bytes += len(data)
            if self._header_timer is not None and self._header_bytes > MAX_HEADER_BYTES:
                self._refuse(b"431 Request Header Fields Too Large")  # still no end of headers

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._header_timer is None:
            self._await_headers()

    def on_headers_complete(self) -> None:
        self._stop_timer()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timer()
        super().connection_lost(exc)

    def _await_headers(self) -> None:
        self._header_bytes = 0
        self._header_timer = self.loop.call_later(HEADER_SECONDS, self._headers_too_slow)

    def _stop_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        self._refuse(b"408 Request Timeout")

    def _refuse(self, status: bytes) -> None:
        self._stop_timer()
        if not self.transport.is_closing():
            self.transport.write(b"HTTP/1.1 " + status + b"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            self.transport.close()


def run(host: str, port: int, workers: int) -> None:
    """Serve `api:create_app` until SIGTERM or Ctrl-C."""
    import uvicorn

    # By name: worker processes import it (a class object does not survive their start).
    uvicorn.run("api:create_app", factory=True, host=host, port=port, workers=workers,
                loop="auto", http="api.server:DeadlineProtocol", log_level="warning", access_log=False,
                timeout_keep_alive=KEEP_ALIVE_SECONDS, limit_concurrency=MAX_CONCURRENCY,
                timeout_graceful_shutdown=GRACEFUL_SECONDS, timeout_worker_healthcheck=WORKER_PING_SECONDS)
