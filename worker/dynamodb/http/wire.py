"""A minimal HTTP/1.1 wire reader: the connection, its responses' framing, staleness."""

from __future__ import annotations

import http.client
import select
import socket
from typing import Any


class Connection:
    """An open connection: the socket `http.client` connected, and a buffered reader on it."""

    __slots__ = ("http", "reader", "sock")

    def __init__(self, http_connection: http.client.HTTPConnection, sock: socket.socket) -> None:
        self.http = http_connection
        self.sock = sock
        self.reader = sock.makefile("rb")

    def close(self) -> None:
        self.reader.close()
        self.http.close()


_MAX_LINE = 65536
_MAX_HEADERS = 100


def read_response(reader: Any) -> tuple[int, dict[str, str], bytes, bool]:
    """Status, headers (lower-case names), body and whether the server closes the
    connection after it: HTTP/1.1 framing by Content-Length, chunked, or end of stream.

    Parsed here instead of by `http.client.HTTPResponse`, whose header parsing (the
    `email` package) alone costs about 50 us per response.
    """
    while True:
        line = reader.readline(_MAX_LINE + 1)
        if not line:
            raise http.client.RemoteDisconnected("the server closed the connection, no response")
        if len(line) > _MAX_LINE:
            raise http.client.LineTooLong("status line")
        version, _, rest = line.decode("latin-1").rstrip("\r\n").partition(" ")
        if not version.startswith("HTTP/1."):
            raise http.client.BadStatusLine(line.decode("latin-1"))
        status = int(rest[:3])
        headers = _read_headers(reader)
        if status >= 200:
            break  # 1xx answers are interim: the real one follows
    connection = headers.get("connection", "").lower()
    will_close = "close" in connection or (version == "HTTP/1.0" and "keep-alive" not in connection)
    if "chunked" in headers.get("transfer-encoding", "").lower():
        data = _read_chunked(reader)
    elif "content-length" in headers:
        length = int(headers["content-length"])
        data = reader.read(length) if length else b""
        if len(data) < length:
            raise http.client.IncompleteRead(data, length - len(data))
    elif status in (204, 304):
        data = b""
    else:
        data = reader.read()  # framed by the end of the stream
        will_close = True
    return status, headers, data, will_close


def _read_headers(reader: Any) -> dict[str, str]:
    headers: dict[str, str] = {}
    name = ""
    for _ in range(_MAX_HEADERS + 1):
        line = reader.readline(_MAX_LINE + 1)
        if len(line) > _MAX_LINE:
            raise http.client.LineTooLong("header line")
        if line in (b"\r\n", b"\n", b""):
            return headers
        text = line.decode("latin-1")
        if text[0] in " \t" and name:  # obsolete line folding
            headers[name] = f"{headers[name]} {text.strip()}"
            continue
        name, _, value = text.partition(":")
        name = name.strip().lower()
        value = value.strip()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    raise http.client.HTTPException(f"more than {_MAX_HEADERS} headers")


def _read_chunked(reader: Any) -> bytes:
    chunks = []
    while True:
        line = reader.readline(_MAX_LINE + 1)
        if not line:
            raise http.client.IncompleteRead(b"".join(chunks))
        size = int(line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            _read_headers(reader)  # trailers, unused
            return b"".join(chunks)
        chunk = reader.read(size)
        if len(chunk) < size:
            raise http.client.IncompleteRead(chunk, size - len(chunk))
        chunks.append(chunk)
        reader.readline(_MAX_LINE + 1)  # the CRLF after the chunk


def dropped(sock: socket.socket) -> bool:
    """Whether an idle kept-alive connection was closed (or sent something) meanwhile."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)
