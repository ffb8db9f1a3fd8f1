"""A small HTTP-aware TCP proxy in front of the moto server, to break DynamoDB on demand.

Workers point `CHECKOUT_DYNAMODB_ENDPOINT_URL` at `FaultProxy.url`; the test switches
the mode while they run:

- `pass_through()`: every request is forwarded to moto;
- `cut()`: every connection is reset as soon as it is accepted (DynamoDB unreachable);
- `throttle(rate)`: that fraction of requests is answered with DynamoDB's
  `ThrottlingException` (HTTP 400), the rest are forwarded;
- `garbage_for(session_id)`: requests whose body names that session are answered with
  HTTP 200 and a body botocore cannot parse into the operation's output, the rest are
  forwarded: a command whose handling fails every time;
- `refuse(*operations, code=...)`: requests for those DynamoDB operations (the
  `X-Amz-Target` header, e.g. `UpdateTimeToLive`) are answered with HTTP 400 and that
  error code, as a DynamoDB implementation that lacks them does (dynalite), the rest
  are forwarded.

One request per client connection: the proxy answers with `Connection: close`, which
botocore's connection pool honours, so no request ever needs to be framed after another.
"""

from __future__ import annotations

import contextlib
import random
import socket
import struct
import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

THROTTLED_BODY = (
    b'{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate exceeded"}'
)
# Valid JSON of the wrong shape: botocore's parser raises AttributeError on it for every
# DynamoDB operation. (A non-JSON body would not do: botocore parses it as an empty
# response, so a GetItem reads "no item" and an UpdateItem "succeeded".)
GARBAGE_BODY = b"[]"
SOCKET_TIMEOUT_SECONDS = 30.0
MAX_HEADER_BYTES = 64 * 1024
MAX_CONNECTIONS = 32


class FaultProxy:
    """Listens on 127.0.0.1 (a free port) and forwards to `upstream` unless told otherwise."""

    def __init__(self, upstream: str, *, seed: int = 0) -> None:
        parsed = urlparse(upstream)
        self._upstream = (parsed.hostname or "127.0.0.1", parsed.port or 80)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)  # so the accept loop notices `stop`
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._mode: tuple[str, object] = ("pass", None)
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self._stopped = threading.Event()
        self._pool = ThreadPoolExecutor(MAX_CONNECTIONS, thread_name_prefix="fault-proxy")
        self._thread = threading.Thread(target=self._accept_loop, name="fault-proxy", daemon=True)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)
        self._listener.close()
        self._pool.shutdown(wait=False, cancel_futures=True)

    # ─── Modes ───

    def pass_through(self) -> None:
        self._mode = ("pass", None)

    def cut(self) -> None:
        self._mode = ("cut", None)

    def throttle(self, rate: float) -> None:
        self._mode = ("throttle", rate)

    def garbage_for(self, session_id: str) -> None:
        self._mode = ("garbage", session_id.encode())

    def refuse(self, *operations: str, code: str = "UnknownOperationException") -> None:
        self._mode = ("refuse", (frozenset(operations), code))

    # ─── Serving ───

    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:  # listener closed
                return
            self._pool.submit(self._serve, client)

    def _serve(self, client: socket.socket) -> None:
        mode, argument = self._mode
        with client:
            if mode == "cut":
                self._count("cut")
                _reset(client)
                return
            client.settimeout(SOCKET_TIMEOUT_SECONDS)
            try:
                request = _read_request(client)
                if request is not None:
                    client.sendall(self._answer(request, mode, argument))
            except OSError:
                self._count("errors")

    def _answer(self, request: bytes, mode: str, argument: object) -> bytes:
        if mode == "throttle" and self._chance(float(argument)):  # type: ignore[arg-type]
            self._count("throttled")
            return _response(400, "Bad Request", THROTTLED_BODY)
        if mode == "garbage" and argument in request.partition(b"\r\n\r\n")[2]:
            self._count("garbled")
            return _response(200, "OK", GARBAGE_BODY)
        if mode == "refuse":
            operations, code = argument  # type: ignore[misc]
            if _operation(request) in operations:
                self._count("refused")
                return _response(400, "Bad Request", _error_body(code))
        self._count("forwarded")
        return self._forward(request)

    def _forward(self, request: bytes) -> bytes:
        with socket.create_connection(self._upstream, timeout=SOCKET_TIMEOUT_SECONDS) as up:
            up.sendall(_with_connection_close(request))
            chunks = []
            while chunk := up.recv(65536):  # moto closes after the response
                chunks.append(chunk)
        return b"".join(chunks)

    def _chance(self, rate: float) -> bool:
        with self._lock:
            return self._random.random() < rate

    def _count(self, what: str) -> None:
        with self._lock:
            self.counts[what] += 1


def _read_request(client: socket.socket) -> bytes | None:
    """One HTTP/1.1 request with a Content-Length body; None if the client went away."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = client.recv(65536)
        if not chunk:
            return None
        data += chunk
        if len(data) > MAX_HEADER_BYTES and b"\r\n\r\n" not in data:
            raise OSError("request headers too large")
    head, _, body = data.partition(b"\r\n\r\n")
    length = _content_length(head)
    while len(body) < length:
        chunk = client.recv(min(65536, length - len(body)))
        if not chunk:
            return None
        body += chunk
    return head + b"\r\n\r\n" + body


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return 0


def _operation(request: bytes) -> str:
    """The DynamoDB operation a request asks for (`X-Amz-Target: DynamoDB_20120810.Op`)."""
    for line in request.partition(b"\r\n\r\n")[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"x-amz-target":
            return value.strip().decode().rpartition(".")[2]
    return ""


def _error_body(code: str) -> bytes:
    return f'{{"__type":"com.amazon.coral.service#{code}","message":"{code}"}}'.encode()


def _with_connection_close(request: bytes) -> bytes:
    head, _, body = request.partition(b"\r\n\r\n")
    lines = [
        line
        for line in head.split(b"\r\n")
        if line.partition(b":")[0].strip().lower() != b"connection"
    ]
    return b"\r\n".join([*lines, b"Connection: close"]) + b"\r\n\r\n" + body


def _response(status: int, reason: str, body: bytes) -> bytes:
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "Content-Type: application/x-amz-json-1.0\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"x-amzn-RequestId: {uuid.uuid4()}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + body


def _reset(client: socket.socket) -> None:
    """Close with RST (linger 0): the client sees its connection reset, as when a host dies."""
    with contextlib.suppress(OSError):
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
