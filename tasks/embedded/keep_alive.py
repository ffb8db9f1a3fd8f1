"""A threaded WSGI server that keeps its clients' connections open (HTTP/1.1), for moto.

Why not werkzeug's (moto's own server): its development server answers every request
with `Connection: close` and has no switch for it, so each DynamoDB request from a
worker paid a TCP connect and teardown that DynamoDB's clients, whose connections stay
open, do not pay: about 8% of a worker's CPU samples in a py-spy profile (the client's
`_connect`). `http.server` keeps a connection open between requests by itself under
HTTP/1.1 as long as every answer is framed, so this only adds the WSGI call, with the
whole answer buffered and sent with its Content-Length (DynamoDB's answers are small).
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
# Framing is this server's: the application's own say in it is dropped.
HOP_BY_HOP = frozenset({"connection", "content-length", "keep-alive", "transfer-encoding"})


def serve(app: WSGIApp, host: str, port: int) -> None:
    """Serve `app` on host:port until the process is stopped."""
    handler = type("Handler", (_KeepAliveHandler,), {"app": staticmethod(app)})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    server.serve_forever()


class _KeepAliveHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # One send per answer, at once: with the stdlib's unbuffered writes the head and the
    # body went out as two segments, and Nagle held the second back until the client's
    # delayed ACK (about 40 ms a request).
    wbufsize = -1
    disable_nagle_algorithm = True
    app: WSGIApp

    def handle_request(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, headers, data = self._call(self._environ(body, length))
        code, _, reason = status.partition(" ")
        self.send_response(int(code), reason)
        for name, value in headers:
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = handle_request

    def _call(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
        answer: dict[str, Any] = {}
        chunks: list[bytes] = []

        def start_response(status: str, headers: list, exc_info: Any = None) -> Any:
            answer.update(status=status, headers=headers)
            return chunks.append

        result = self.app(environ, start_response)
        try:
            chunks.extend(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        return answer["status"], answer["headers"], b"".join(chunks)

    def _environ(self, body: bytes, length: int) -> dict[str, Any]:
        path, _, query = self.path.partition("?")
        host, port = self.server.server_address[:2]
        environ: dict[str, Any] = {
            "REQUEST_METHOD": self.command,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote(path),
            "QUERY_STRING": query,
            "SERVER_NAME": str(host),
            "SERVER_PORT": str(port),
            "SERVER_PROTOCOL": self.request_version,
            "REMOTE_ADDR": self.client_address[0],
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(length),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name, value in self.headers.items():
            key = name.upper().replace("-", "_")
            if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                continue
            earlier = environ.get(f"HTTP_{key}")  # a repeated header: one, comma-joined
            environ[f"HTTP_{key}"] = f"{earlier},{value}" if earlier else value
        return environ

    def log_message(self, format: str, *args: Any) -> None:
        pass  # a line per request is moto.log's noise, not news
