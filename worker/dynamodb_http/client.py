"""A lightweight DynamoDB JSON-protocol client for the worker's hot path.

Why not botocore: a botocore low-level client spends about 1.7 ms of CPU per DynamoDB
request on our 2-core machine (serializing and validating against the service model,
an event system with dozens of handlers, urllib3, SigV4 through `AWSRequest`, parsing
the response against the output shape), while a command's whole CPU budget is 1.5 ms.
`python -m benchmarks.client_cpu` measures both clients side by side (this process's
CPU, conditional UpdateItem shaped like the store's, median of 3 rounds of 1,000 calls
each); its run here, on a machine shared with other work:

    setup                                  botocore    this client
    moto, a new connection per request     2,203 us      517 us    4.3x less
    moto behind a keep-alive relay         2,083 us      400 us    5.2x less
    instant answers (the client's own)     1,678 us      149 us   11.2x less

(Both clients pay several hundred microseconds more per request when each answer takes
milliseconds to come: the process wakes up cold. The last row leaves that out.)

This client speaks the four operations the session store uses, `get_item`, `put_item`,
`update_item` and `transact_write_items`, with botocore's keyword arguments (attribute
values in wire form, `{"S": "x"}`, `{"N": "1"}`) and its return shape (the response
JSON as a dict plus `ResponseMetadata`, `B` values and `BS` members decoded to bytes).
Errors are `botocore.exceptions.ClientError` with the `response` botocore would give
(`Error`, `ResponseMetadata` and the error shape's fields, e.g. `Item` or
`CancellationReasons`); a request that cannot get through is a `BotoCoreError`
subclass. Retries follow botocore's "standard" mode (its throttling and transient
codes, 5xx, connection errors, DynamoDB's `x-amz-crc32`, its backoff scales and retry
quota). Requests are signed with SigV4 from the boto3 session's credentials.

What it deliberately does not do, compared with botocore:

- No parameter validation or model-driven serialization: the request dict is sent as
  JSON as given. `bytes` anywhere in it are base64-encoded (JSON's `default` hook, so
  this costs nothing when there are none), sets become lists; a `str` under `B` is
  sent as it is (as already base64), where botocore would encode its UTF-8 bytes.
- No output-shape parsing: a success returns every field of the response JSON, also
  ones the model does not know (botocore drops those, and null values).
- Only the four operations; no `client.exceptions.*` classes (catch `ClientError` and
  read `error.response["Error"]["Code"]`), no event system, paginators or waiters.
- Endpoint: the given URL or `https://dynamodb.<region>.amazonaws.com(.cn)`; not
  `AWS_ENDPOINT_URL*`, config-file endpoints, FIPS/dual-stack or account-id endpoints.
- A CRC32 mismatch still there after the last attempt raises `ChecksumError` (botocore's
  standard mode would hand back the response it could not verify).
- A 2xx answer whose body is not a JSON object raises botocore's `ResponseParserError`
  (botocore fails on JSON of another shape too, but reads text that is not JSON as an
  empty answer).
- No proxies, no client-side rate limiting ("adaptive" mode), no gzip.

One persistent HTTP/1.1 connection per client (`http.client` connects it, with the
default SSL context for https), reopened when the server closes it or it went stale;
requests are written and answers read here (`http.client`'s answer parsing alone costs
about 50 us). Requests on one client are serialized by a lock (each attempt holds it
for its round trip), so sharing a client between threads is safe but not concurrent:
use one per process (or per thread). A forked child drops the connection it inherited.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import os
import random
import select
import socket
import ssl
import threading
import time
import uuid
import weakref
import zlib
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit

import boto3
from botocore.exceptions import (
    BotoCoreError,
    ChecksumError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ReadTimeoutError,
)
from botocore.exceptions import (
    SSLError as BotoSSLError,
)
from botocore.parsers import ResponseParserError

from worker.metrics import register_request_counter
from worker.settings import Settings

TARGET_PREFIX = "DynamoDB_20120810."
CONTENT_TYPE = "application/x-amz-json-1.0"
SERVICE = "dynamodb"
USER_AGENT = "checkout-dynamodb-http/1"

# ─── botocore's standard retry mode (botocore/retries/standard.py, special.py) ───

DEFAULT_MAX_ATTEMPTS = 5  # what make_dynamodb_client configures
THROTTLING_CODES = frozenset(
    {  # ThrottledRetryableChecker._THROTTLED_ERROR_CODES
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)
# TransientRetryableChecker, plus DynamoDB's errors modeled as retryable (not throttling).
TRANSIENT_CODES = frozenset(
    {
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
        "ReplicatedWriteConflictException",
    }
)
TRANSIENT_STATUSES = frozenset({500, 502, 503, 504})
THROTTLING_STATUS = 429  # throttling when the code is not a modeled error
MAX_BACKOFF_SECONDS = 20.0
THROTTLING_BASE_SECONDS = 1.0
TRANSIENT_BASE_SECONDS = 0.025  # botocore's non-throttling scale for DynamoDB
RETRY_AFTER_MAX_ADDITIONAL = 5.0
RETRY_QUOTA = 500
RETRY_COST = 14
THROTTLING_RETRY_COST = 5
NO_RETRY_INCREMENT = 1

# Every error shape of the DynamoDB model and its members: botocore adds these fields of
# an error body to `error.response` (service-wide, whatever the operation). Checked
# against botocore's model by tests/unit/test_dynamodb_http.py.
_LOWER_MESSAGE = ("message",)
MODELED_ERRORS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(
        (
            "BackupInUseException",
            "BackupNotFoundException",
            "ContinuousBackupsUnavailableException",
            "DuplicateItemException",
            "ExportConflictException",
            "ExportNotFoundException",
            "GlobalTableAlreadyExistsException",
            "GlobalTableNotFoundException",
            "ImportConflictException",
            "ImportNotFoundException",
            "IndexNotFoundException",
            "InternalServerError",
            "InvalidExportTimeException",
            "InvalidRestoreTimeException",
            "ItemCollectionSizeLimitExceededException",
            "LimitExceededException",
            "PointInTimeRecoveryUnavailableException",
            "PolicyNotFoundException",
            "ReplicaAlreadyExistsException",
            "ReplicaNotFoundException",
            "ReplicatedWriteConflictException",
            "ResourceInUseException",
            "ResourceNotFoundException",
            "TableAlreadyExistsException",
            "TableInUseException",
            "TableNotFoundException",
            "TransactionConflictException",
        ),
        _LOWER_MESSAGE,
    ),
    "ConditionalCheckFailedException": ("message", "Item"),
    "IdempotentParameterMismatchException": ("Message",),
    "ProvisionedThroughputExceededException": ("message", "ThrottlingReasons"),
    "RequestLimitExceeded": ("message", "ThrottlingReasons"),
    "ThrottlingException": ("message", "throttlingReasons"),
    "TransactionCanceledException": ("Message", "CancellationReasons"),
    "TransactionInProgressException": ("Message",),
}

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
        self._credentials = credentials
        self._max_attempts = max(1, max_attempts)
        self._backoff_scale = backoff_scale
        self._max_backoff = max_backoff
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._listeners: list[RequestListener] = []
        self._lock = threading.Lock()
        self._retry_quota = RETRY_QUOTA
        self._random = random.random

        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._host_header = _host_header(parts)
        self._path = (parts.path.rstrip("/") or "") + "/"
        self._canonical_path = quote(self._path, safe="/~")
        if parts.scheme == "https":
            self._ssl_context = ssl_context or ssl.create_default_context()
        else:
            self._ssl_context = None
        self._request_line = f"POST {self._path} HTTP/1.1\r\n"
        self._connection: _Connection | None = None
        self._signing_key_id: tuple[str, str] | None = None
        self._signing_key = b""
        self._stamp_second = -1
        self._stamp = ("", "")
        _CLIENTS.add(self)

    # ─── The operations ───

    def get_item(self, **params: Any) -> dict[str, Any]:
        return self._call("GetItem", params)

    def put_item(self, **params: Any) -> dict[str, Any]:
        return self._call("PutItem", params)

    def update_item(self, **params: Any) -> dict[str, Any]:
        return self._call("UpdateItem", params)

    def transact_write_items(self, **params: Any) -> dict[str, Any]:
        # botocore fills the idempotency token once per call, so its retries reuse it.
        if "ClientRequestToken" not in params:
            params["ClientRequestToken"] = str(uuid.uuid4())
        return self._call("TransactWriteItems", params)

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
        body = _ENCODER.encode(params).encode()
        target = TARGET_PREFIX + operation
        attempt = 0
        acquired = 0  # retry quota held by the last retry, given back on success
        while True:
            attempt += 1
            for listener in self._listeners:
                listener(operation)
            headers = self._headers(target, body, time.time())
            try:
                with self._lock:
                    status, response_headers, data = self._exchange(headers, body)
            except BotoCoreError:
                # Connection errors and timeouts: transient in botocore's standard mode.
                cost = self._retry_cost(attempt, RETRY_COST)
                if not cost:
                    raise
                acquired = cost
                time.sleep(self._delay(attempt, TRANSIENT_BASE_SECONDS, None))
                continue

            expected_crc = response_headers.get("x-amz-crc32")
            if expected_crc is not None:
                actual_crc = zlib.crc32(data) & 0xFFFFFFFF
                if str(actual_crc) != expected_crc.strip():
                    cost = self._retry_cost(attempt, RETRY_COST)
                    if not cost:
                        raise ChecksumError(
                            checksum_type="crc32",
                            expected_checksum=expected_crc,
                            actual_checksum=actual_crc,
                        )
                    acquired = cost
                    time.sleep(self._delay(attempt, TRANSIENT_BASE_SECONDS, response_headers))
                    continue

            if 200 <= status < 300:
                parsed = _parse_success(data)
                parsed["ResponseMetadata"] = _metadata(status, response_headers, attempt)
                self._release_quota(acquired or NO_RETRY_INCREMENT)
                return parsed

            error = parse_error(status, response_headers, data)
            code = error["Error"]["Code"]
            throttling = code in THROTTLING_CODES or (
                status == THROTTLING_STATUS and code not in MODELED_ERRORS
            )
            retryable = throttling or code in TRANSIENT_CODES or status in TRANSIENT_STATUSES
            metadata = error["ResponseMetadata"]
            metadata["RetryAttempts"] = attempt - 1
            if attempt >= self._max_attempts:
                metadata["MaxAttemptsReached"] = True
            elif retryable:
                cost = THROTTLING_RETRY_COST if throttling else RETRY_COST
                cost = self._retry_cost(attempt, cost)
                if cost:
                    acquired = cost
                    base = THROTTLING_BASE_SECONDS if throttling else TRANSIENT_BASE_SECONDS
                    time.sleep(self._delay(attempt, base, response_headers))
                    continue
                metadata["RetryQuotaReached"] = True
            raise ClientError(error, operation)

    def _retry_cost(self, attempt: int, cost: int) -> int:
        """The quota taken for another attempt, or 0: no more attempts."""
        if attempt >= self._max_attempts or cost > self._retry_quota:
            return 0
        self._retry_quota -= cost
        return cost

    def _release_quota(self, amount: int) -> None:
        if self._retry_quota < RETRY_QUOTA:
            self._retry_quota = min(RETRY_QUOTA, self._retry_quota + amount)

    def _delay(self, attempt: int, base: float, headers: dict[str, str] | None) -> float:
        """Exponential backoff with full jitter, as botocore's `ExponentialBackoff`."""
        delay = self._random() * min(
            base * self._backoff_scale * 2 ** (attempt - 1), self._max_backoff
        )
        retry_after = headers.get("x-amz-retry-after") if headers else None
        if retry_after is not None:
            try:
                wanted = int(retry_after) / 1000.0
            except ValueError:
                return delay
            if wanted >= 0:
                return max(delay, min(wanted, RETRY_AFTER_MAX_ADDITIONAL + delay))
        return delay

    # ─── HTTP ───

    def _exchange(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        """One request and its response on the persistent connection (the lock held)."""
        connection = self._connection
        if connection is None or _dropped(connection.sock):
            connection = self._connect()
        head = "".join([self._request_line, *[f"{k}: {v}\r\n" for k, v in headers.items()]])
        request = f"{head}Content-Length: {len(body)}\r\n\r\n".encode("latin-1") + body
        try:
            connection.sock.sendall(request)
            status, response_headers, data, will_close = _read_response(connection.reader)
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

    def _connect(self) -> _Connection:
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
        self._connection = _Connection(http_connection, sock)
        return self._connection

    def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    def _after_fork(self) -> None:
        # The parent keeps using the inherited socket: forget it without a word on it.
        self._connection = None
        self._lock = threading.Lock()

    # ─── SigV4 ───

    def _headers(self, target: str, body: bytes, now: float) -> dict[str, str]:
        """The request's headers, signed with SigV4 at `now` (seconds since the epoch)."""
        credentials = self._credentials
        if credentials is None:
            raise NoCredentialsError()
        frozen = credentials.get_frozen_credentials()
        second = int(now)
        if second != self._stamp_second:
            amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(second))
            self._stamp_second, self._stamp = second, (amz_date, amz_date[:8])
        amz_date, date = self._stamp
        token = frozen.token
        if token:
            token_line = f"x-amz-security-token:{token}\n"
            signed = "content-type;host;x-amz-date;x-amz-security-token;x-amz-target"
        else:
            token_line = ""
            signed = "content-type;host;x-amz-date;x-amz-target"
        canonical = (
            f"POST\n{self._canonical_path}\n\n"
            f"content-type:{CONTENT_TYPE}\nhost:{self._host_header}\n"
            f"x-amz-date:{amz_date}\n{token_line}x-amz-target:{target}\n\n"
            f"{signed}\n{hashlib.sha256(body).hexdigest()}"
        )
        scope = f"{date}/{self.region_name}/{SERVICE}/aws4_request"
        string_to_sign = (
            f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n"
            f"{hashlib.sha256(canonical.encode()).hexdigest()}"
        )
        signature = hmac.digest(
            self._key(frozen.secret_key, date), string_to_sign.encode(), "sha256"
        ).hex()
        headers = {
            "Host": self._host_header,
            "Content-Type": CONTENT_TYPE,
            "X-Amz-Target": target,
            "X-Amz-Date": amz_date,
            "Authorization": (
                f"AWS4-HMAC-SHA256 Credential={frozen.access_key}/{scope}, "
                f"SignedHeaders={signed}, Signature={signature}"
            ),
            "User-Agent": USER_AGENT,
            "Accept-Encoding": "identity",
        }
        if token:
            headers["X-Amz-Security-Token"] = token
        return headers

    def _key(self, secret: str, date: str) -> bytes:
        """The derived signing key, kept for the last (secret, date) (region is fixed)."""
        if self._signing_key_id != (secret, date):
            key = hmac.digest(f"AWS4{secret}".encode(), date.encode(), "sha256")
            for part in (self.region_name, SERVICE, "aws4_request"):
                key = hmac.digest(key, part.encode(), "sha256")
            self._signing_key_id, self._signing_key = (secret, date), key
        return self._signing_key


def make_hot_path_client(settings: Settings) -> DynamoDBHttpClient:
    """The worker's DynamoDB client, configured as `worker.store.make_dynamodb_client`'s:
    the boto3 session's region (us-east-1 when an endpoint URL is set and no region is),
    its credentials, 5 attempts, connect timeout 3 s, read timeout 10 s, and the
    `checkout_dynamodb_requests_total` counter."""
    session = boto3.session.Session()
    region = session.region_name or ("us-east-1" if settings.dynamodb_endpoint_url else None)
    if not region:
        raise NoRegionError()
    client = DynamoDBHttpClient(
        session.get_credentials(),
        region,
        endpoint_url=settings.dynamodb_endpoint_url,
        max_attempts=DEFAULT_MAX_ATTEMPTS,
        connect_timeout=3.0,
        read_timeout=10.0,
    )
    register_request_counter(client)
    return client


def default_endpoint(region: str) -> str:
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://{SERVICE}.{region}.{suffix}"


# ─── Responses ───


def parse_error(status: int, headers: dict[str, str], data: bytes) -> dict[str, Any]:
    """`error.response` as botocore builds it for a DynamoDB error answer.

    `headers` has lower-case names. The body's fields that the error's shape in the
    DynamoDB model declares (`Item`, `CancellationReasons`, `message`...) are added at
    the top level, as botocore adds them.
    """
    metadata: dict[str, Any] = {}
    stripped = data.strip()
    if status >= 500 and (not stripped or stripped.startswith(b"<html>")):
        # botocore's generic error: no protocol error in the body.
        error = {"Code": str(status), "Message": http.client.responses.get(status, "")}
        body: Any = {}
    else:
        body = _error_body(data)
        code = body.get("__type")
        code = str(status) if code is None else str(code)
        code = code.split(":", 1)[0].rsplit("#", 1)[-1]
        error = {"Message": body.get("message", body.get("Message", "")), "Code": code}
        if "x-amzn-requestid" in headers:
            metadata["RequestId"] = headers["x-amzn-requestid"]
    metadata["HTTPStatusCode"] = status
    metadata["HTTPHeaders"] = headers
    response: dict[str, Any] = {"Error": error, "ResponseMetadata": metadata}
    for member in MODELED_ERRORS.get(error["Code"], ()):
        value = body.get(member)
        if value is not None:
            response[member] = value
    return response


def _error_body(data: bytes) -> dict[str, Any]:
    if not data:
        return {}
    text = data.decode("utf-8")
    try:
        body = json.loads(text)
    except ValueError:
        return {"message": text}
    if not isinstance(body, dict):
        return {"message": text}
    if '"B' in text:
        _decode_binary(body)
    return body


def _parse_success(data: bytes) -> dict[str, Any]:
    """The answer to a request that succeeded. A body that is not a JSON object raises
    `ResponseParserError` (not a BotoCoreError: to the store, a failure that is no outage):
    botocore fails on JSON of the wrong shape too, and takes text that is not JSON for an
    empty answer, which would read "no item" or "written"."""
    if not data:
        return {}
    try:
        parsed = json.loads(data)
    except ValueError as error:
        raise ResponseParserError(f"DynamoDB answered a body that is not JSON: {error}") from None
    if not isinstance(parsed, dict):
        raise ResponseParserError(f"DynamoDB answered JSON that is not an object: {data[:80]!r}")
    if b'"B"' in data or b'"BS"' in data:
        _decode_binary(parsed)
    return parsed


def _metadata(status: int, headers: dict[str, str], attempt: int) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    if "x-amzn-requestid" in headers:
        metadata["RequestId"] = headers["x-amzn-requestid"]
    metadata["HTTPStatusCode"] = status
    metadata["HTTPHeaders"] = headers
    metadata["RetryAttempts"] = attempt - 1
    return metadata


def _decode_binary(node: Any) -> None:
    """Decode `{"B": base64}` and `{"BS": [base64, ...]}` attribute values in place."""
    if isinstance(node, dict):
        if len(node) == 1:
            ((key, value),) = node.items()
            if key == "B" and isinstance(value, str):
                node["B"] = base64.b64decode(value)
                return
            if key == "BS" and isinstance(value, list) and all(isinstance(v, str) for v in value):
                node["BS"] = [base64.b64decode(v) for v in value]
                return
        for value in node.values():
            if isinstance(value, dict | list):
                _decode_binary(value)
    elif isinstance(node, list):
        for value in node:
            if isinstance(value, dict | list):
                _decode_binary(value)


class _Connection:
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


def _read_response(reader: Any) -> tuple[int, dict[str, str], bytes, bool]:
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


# ─── Requests ───


def _json_default(value: Any) -> Any:
    """What JSON cannot say by itself: bytes (base64, as botocore sends blobs) and sets."""
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, set | frozenset):
        return list(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


_ENCODER = json.JSONEncoder(separators=(",", ":"), default=_json_default)


def _host_header(parts: Any) -> str:
    """The Host header botocore signs: the port only when it is not the scheme's default."""
    host = parts.hostname
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None and parts.port != {"http": 80, "https": 443}[parts.scheme]:
        host = f"{host}:{parts.port}"
    return host


def _dropped(sock: socket.socket) -> bool:
    """Whether an idle kept-alive connection was closed (or sent something) meanwhile."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


_CLIENTS: weakref.WeakSet[DynamoDBHttpClient] = weakref.WeakSet()


def _forget_connections_after_fork() -> None:
    for client in list(_CLIENTS):
        client._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_connections_after_fork)
