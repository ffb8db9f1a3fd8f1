"""The client: the four operations, their attempts and retries, one persistent connection."""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import (
    BotoCoreError,
    ChecksumError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoRegionError,
    ReadTimeoutError,
)
from botocore.exceptions import (
    SSLError as BotoSSLError,
)

from worker.dynamodb.http.encoding import ENCODER
from worker.dynamodb.http.fork import forget_connection_after_fork
from worker.dynamodb.http.responses import parse_error, parse_success, response_metadata
from worker.dynamodb.http.retries import (
    DEFAULT_MAX_ATTEMPTS,
    MAX_BACKOFF_SECONDS,
    NO_RETRY_INCREMENT,
    RETRY_COST,
    THROTTLING_BASE_SECONDS,
    THROTTLING_RETRY_COST,
    TRANSIENT_BASE_SECONDS,
    RetryPolicy,
    classify,
)
from worker.dynamodb.http.signing import SERVICE, SigV4Signer, host_header
from worker.dynamodb.http.wire import Connection, dropped, read_response

TARGET_PREFIX = "DynamoDB_20120810."

RequestListener = Callable[[str], Any]


class DynamoDBHttpClient:
    """The four DynamoDB operations the store uses, over one persistent HTTP connection.

    `credentials`: a botocore credentials object (`boto3.Session().get_credentials()`;
    refreshable ones are refreshed as botocore does, `get_frozen_credentials()` per
    request), or None: every request then raises `NoCredentialsError`.
    `backoff_scale` multiplies botocore's backoff bases (1 s for throttling, 25 ms for
    other retryable failures); tests set it near 0. Backoff is capped at `max_backoff`.
    `ssl_context` (https endpoints): default `ssl.create_default_context()`, the
    system's CAs and hostname checking.
    """

    def __init__(
        self,
        credentials: Any,
        region_name: str,
        *,
        endpoint_url: str | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        backoff_scale: float = 1.0,
        max_backoff: float = MAX_BACKOFF_SECONDS,
        connect_timeout: float = 3.0,
        read_timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if not region_name:
            raise NoRegionError()
        self.region_name = region_name
        self.endpoint_url = endpoint_url or default_endpoint(region_name)
        parts = urlsplit(self.endpoint_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) endpoint URL: {self.endpoint_url!r}")
        self._retries = RetryPolicy(max_attempts, backoff_scale, max_backoff)
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._listeners: list[RequestListener] = []
        self._lock = threading.Lock()

        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._path = (parts.path.rstrip("/") or "") + "/"
        self._signer = SigV4Signer(credentials, region_name, host_header(parts), self._path)
        if parts.scheme == "https":
            self._ssl_context = ssl_context or ssl.create_default_context()
        else:
            self._ssl_context = None
        self._request_line = f"POST {self._path} HTTP/1.1\r\n"
        self._connection: Connection | None = None
        forget_connection_after_fork(self)

    # ─── The operations ───

    def get_item(self, **params: Any) -> dict[str, Any]:
        return self._call("GetItem", params)

    def put_item(self, **params: Any) -> dict[str, Any]:
        return self._call("PutItem", params)

    def update_item(self, **params: Any) -> dict[str, Any]:
        return self._call("UpdateItem", params)

    def add_request_listener(self, listener: RequestListener) -> None:
        """Call `listener(operation_name)` before every HTTP attempt (retries included)."""
        self._listeners.append(listener)

    def close(self) -> None:
        with self._lock:
            self._drop_connection()

    def __enter__(self) -> DynamoDBHttpClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ─── One call: attempts and retries ───

    def _call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        body = ENCODER.encode(params).encode()
        target = TARGET_PREFIX + operation
        attempt = 0
        acquired = 0  # retry quota held by the last retry, given back on success
        while True:
            attempt += 1
            for listener in self._listeners:
                listener(operation)
            headers = self._signer.headers(target, body, time.time())
            try:
                with self._lock:
                    status, response_headers, data = self._exchange(headers, body)
            except BotoCoreError:
                # Connection errors and timeouts: transient in botocore's standard mode.
                cost = self._retries.acquire(attempt, RETRY_COST)
                if not cost:
                    raise
                acquired = cost
                time.sleep(self._retries.delay(attempt, TRANSIENT_BASE_SECONDS, None))
                continue

            expected_crc = response_headers.get("x-amz-crc32")
            if expected_crc is not None:
                actual_crc = zlib.crc32(data) & 0xFFFFFFFF
                if str(actual_crc) != expected_crc.strip():
                    cost = self._retries.acquire(attempt, RETRY_COST)
                    if not cost:
                        raise ChecksumError(
                            checksum_type="crc32",
                            expected_checksum=expected_crc,
                            actual_checksum=actual_crc,
                        )
                    acquired = cost
                    time.sleep(
                        self._retries.delay(attempt, TRANSIENT_BASE_SECONDS, response_headers)
                    )
                    continue

            if 200 <= status < 300:
                parsed = parse_success(data)
                parsed["ResponseMetadata"] = response_metadata(status, response_headers, attempt)
                self._retries.release(acquired or NO_RETRY_INCREMENT)
                return parsed

            error = parse_error(status, response_headers, data)
            throttling, retryable = classify(status, error["Error"]["Code"])
            metadata = error["ResponseMetadata"]
            metadata["RetryAttempts"] = attempt - 1
            if attempt >= self._retries.max_attempts:
                metadata["MaxAttemptsReached"] = True
            elif retryable:
                cost = THROTTLING_RETRY_COST if throttling else RETRY_COST
                cost = self._retries.acquire(attempt, cost)
                if cost:
                    acquired = cost
                    base = THROTTLING_BASE_SECONDS if throttling else TRANSIENT_BASE_SECONDS
                    time.sleep(self._retries.delay(attempt, base, response_headers))
                    continue
                metadata["RetryQuotaReached"] = True
            raise ClientError(error, operation)

    # ─── HTTP ───

    def _exchange(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        """One request and its response on the persistent connection (the lock held)."""
        connection = self._connection
        if connection is None or dropped(connection.sock):
            connection = self._connect()
        head = "".join([self._request_line, *[f"{k}: {v}\r\n" for k, v in headers.items()]])
        request = f"{head}Content-Length: {len(body)}\r\n\r\n".encode("latin-1") + body
        try:
            connection.sock.sendall(request)
            status, response_headers, data, will_close = read_response(connection.reader)
        except TimeoutError as error:
            self._drop_connection()
            raise ReadTimeoutError(endpoint_url=self.endpoint_url, error=error) from error
        except (OSError, http.client.HTTPException, ValueError) as error:
            self._drop_connection()
            raise ConnectionClosedError(endpoint_url=self.endpoint_url, error=error) from error
        except BaseException:
            self._drop_connection()
            raise
        if will_close:
            self._drop_connection()
        return status, response_headers, data

    def _connect(self) -> Connection:
        """A new connection: `http.client` connects (and does TLS with the default context)."""
        self._drop_connection()
        if self._ssl_context is not None:
            http_connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                self._host, self._port, timeout=self._connect_timeout, context=self._ssl_context
            )
        else:
            http_connection = http.client.HTTPConnection(
                self._host, self._port, timeout=self._connect_timeout
            )
        try:
            http_connection.connect()
        except TimeoutError as error:
            http_connection.close()
            raise ConnectTimeoutError(endpoint_url=self.endpoint_url, error=error) from error
        except ssl.SSLError as error:
            http_connection.close()
            raise BotoSSLError(endpoint_url=self.endpoint_url, error=error) from error
        except OSError as error:
            http_connection.close()
            raise EndpointConnectionError(endpoint_url=self.endpoint_url, error=error) from error
        sock = http_connection.sock
        sock.settimeout(self._read_timeout)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        self._connection = Connection(http_connection, sock)
        return self._connection

    def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    def _after_fork(self) -> None:
        # The parent keeps using the inherited socket: forget it without a word on it.
        self._connection = None
        self._lock = threading.Lock()


def default_endpoint(region: str) -> str:
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://{SERVICE}.{region}.{suffix}"
