"""Prometheus metrics of a worker (README "Seeing it run").

A worker is several processes (Celery's prefork pool), so the metrics use
prometheus-client's multiprocess mode: every process writes its samples to files
under `PROMETHEUS_MULTIPROC_DIR`, and the endpoint in the worker's main process
adds them up (`MultiProcessCollector`). `checkout worker` sets that directory
before the pool forks (prometheus-client reads it when it is first imported).

Labels come from closed sets: the command types, event types, rejection and
dead-letter codes the schemas define; anything else (a foreign client's made-up
`type`) is counted as `unknown`, so no input can add series, and no id or email
becomes a label.
"""

from __future__ import annotations

import logging
from typing import Any, get_args

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.multiprocess import MultiProcessCollector

from schemas.commands import COMMAND_TYPES
from schemas.events import DeadLetterCode, ErrorCode, EventType

UNKNOWN = "unknown"
DEAD_LETTER_CODES = frozenset(get_args(DeadLetterCode))
OUTCOMES = (
    frozenset(get_args(EventType) + get_args(ErrorCode)) | DEAD_LETTER_CODES | {"dead_lettered"}
)

logger = logging.getLogger("checkout.metrics")

COMMANDS = Counter(
    "checkout_commands",
    "Commands finished, by command type and outcome (the result event type, the "
    "rejection code, or dead_lettered)",
    ["type", "outcome"],
)
COMMAND_SECONDS = Histogram(
    "checkout_command_seconds",
    "Seconds from enqueue (Redis clock) to the result event",
    ["type"],
    # Interactive commands take milliseconds; retries with backoff take minutes.
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900),
)
RETRIES = Counter("checkout_retries", "Failed attempts scheduled for another try")
DEAD_LETTERS = Counter("checkout_dead_letters", "Commands dead-lettered, by code", ["code"])
DEAD_LETTERS_EVICTED = Counter(
    "checkout_dead_letters_evicted",
    "Dead-letter entries evicted (CHECKOUT_DEAD_LETTER_MAX / CHECKOUT_DEAD_LETTER_TTL)",
)
DYNAMODB_REQUESTS = Counter(
    "checkout_dynamodb_requests",
    "HTTP requests sent to DynamoDB (botocore's retries included), by operation",
    ["operation"],
)


# ─── What the processor calls ───


def closed(value: object, allowed: frozenset[str]) -> str:
    """`value` as a label if the schemas define it, else `unknown`."""
    return value if isinstance(value, str) and value in allowed else UNKNOWN


def observe_outcome(command_type: str | None, outcome: str, seconds: float | None) -> None:
    """Count one finished command; `seconds` is enqueue to result, if known."""
    label = closed(command_type, COMMAND_TYPES)
    COMMANDS.labels(type=label, outcome=closed(outcome, OUTCOMES)).inc()
    if seconds is not None:
        COMMAND_SECONDS.labels(type=label).observe(max(seconds, 0.0))


def count_retry() -> None:
    RETRIES.inc()


def count_dead_letters_evicted(count: int) -> None:
    DEAD_LETTERS_EVICTED.inc(count)


def count_dead_letter(code: str) -> None:
    DEAD_LETTERS.labels(code=closed(code, DEAD_LETTER_CODES)).inc()


def register_request_counter(client: Any) -> None:
    """Count every HTTP request `client` sends: a botocore DynamoDB client, or a
    `worker.dynamodb.http.DynamoDBHttpClient` (anything with `add_request_listener`)."""
    add_listener = getattr(client, "add_request_listener", None)
    if add_listener is not None:
        add_listener(_count_operation)
    else:
        client.meta.events.register("before-send.dynamodb", _count_request)


def _count_operation(operation: str) -> None:
    DYNAMODB_REQUESTS.labels(operation=operation or UNKNOWN).inc()


def _count_request(request: Any = None, **_: Any) -> None:
    # "DynamoDB_20120810.GetItem" -> "GetItem". Must return None: a value would be
    # taken as the response and the request never sent.
    target = request.headers.get("X-Amz-Target", b"") if request is not None else b""
    if isinstance(target, bytes):
        target = target.decode("ascii", "replace")
    DYNAMODB_REQUESTS.labels(operation=target.rpartition(".")[2] or UNKNOWN).inc()


# ─── The worker's main process ───


def serve(port: int, addr: str = "127.0.0.1") -> None:
    """Serve `/metrics` on `port`: the sum of every worker process's samples."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    start_http_server(port, addr=addr, registry=registry)
    logger.info("metrics on http://%s:%d/metrics", addr, port)
