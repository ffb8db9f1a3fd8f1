"""One line, and a documented exit code, when a CLI command cannot reach what it needs.

`main()` runs every command through `run_friendly`. An unreachable Redis or
DynamoDB, missing AWS settings or missing tables are the operator's to fix, so
the traceback (shown with `checkout --debug`) would only hide the one thing to do.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit, urlunsplit

# Exit codes (also in `checkout --help`). 1 and 2 stay the commands' own
# (a refused input, a usage error).
REDIS_UNREACHABLE = 4
DYNAMODB_UNREACHABLE = 5
TABLES_MISSING = 6

# Commands that need Redis and would otherwise meet its absence inside their own error
# handling (a partial-send report, a dead-letter store error): Redis is pinged first.
NEEDS_REDIS = frozenset({"send", "events", "status", "dlq", "bulk-update", "report"})
PREFLIGHT_TIMEOUT_SECONDS = 5.0

EPILOG = f"""exit codes:
  0  done
  1  the command's own failure (a session not found, invalid input lines)
  2  usage error
  {REDIS_UNREACHABLE}  Redis unreachable or refusing us (CHECKOUT_REDIS_URL)
  {DYNAMODB_UNREACHABLE}  DynamoDB unreachable or not configured (CHECKOUT_DYNAMODB_ENDPOINT_URL, \
AWS_DEFAULT_REGION, AWS credentials)
  {TABLES_MISSING}  tables missing: run `checkout init`
Add --debug (before the command) to see the traceback."""


class Friendly(Exception):
    """What went wrong in one line, and the exit code that says which kind."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def run_friendly(run: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a command; infrastructure failures become one line on stderr and an exit code."""
    if getattr(args, "debug", False):
        return run(args)
    try:
        if getattr(args, "command", None) in NEEDS_REDIS:
            ping_redis()
        return run(args)
    except Exception as error:
        friendly = explain(error)
        if friendly is None:
            raise
        print(f"checkout: {friendly}", file=sys.stderr)
        return friendly.code


def ping_redis() -> None:
    """Fail fast, before a command reads its input or writes half its output."""
    import redis

    from worker.settings import get_settings

    client = redis.Redis.from_url(
        get_settings().redis_url,
        socket_connect_timeout=PREFLIGHT_TIMEOUT_SECONDS,
        socket_timeout=PREFLIGHT_TIMEOUT_SECONDS,
    )
    try:
        client.ping()
    finally:
        client.close()


def explain(error: BaseException) -> Friendly | None:
    """The friendly form of `error` or of any error it was raised from; None if none fits."""
    for cause in _chain(error):
        for explainer in (_redis, _kombu, _dynamodb):
            friendly = explainer(cause)
            if friendly is not None:
                return friendly
    return None


def _chain(error: BaseException) -> Iterator[BaseException]:
    """`error`, then what it was raised from (wrappers like StoreUnavailable hide the root)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _redis_url() -> str:
    from worker.settings import get_settings

    return mask_password(get_settings().redis_url)


def _redis(error: BaseException) -> Friendly | None:
    import redis

    if isinstance(error, redis.AuthenticationError | redis.exceptions.NoPermissionError):
        return Friendly(
            f"Redis at {_redis_url()} refused us ({error}): check the user and password in "
            "CHECKOUT_REDIS_URL",
            REDIS_UNREACHABLE,
        )
    if isinstance(error, redis.ConnectionError | redis.TimeoutError):
        return _redis_unreachable()
    return None


def _kombu(error: BaseException) -> Friendly | None:
    # Celery's broker connection (`checkout status` pings workers through it).
    from kombu.exceptions import OperationalError

    return _redis_unreachable() if isinstance(error, OperationalError) else None


def _redis_unreachable() -> Friendly:
    return Friendly(
        f"cannot reach Redis at {_redis_url()}: start it (`checkout up` runs one) or set "
        "CHECKOUT_REDIS_URL",
        REDIS_UNREACHABLE,
    )


def _dynamodb(error: BaseException) -> Friendly | None:
    from botocore.exceptions import (
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
    )

    if isinstance(error, NoRegionError):
        return Friendly(
            "no AWS region for DynamoDB: set AWS_DEFAULT_REGION (or "
            "CHECKOUT_DYNAMODB_ENDPOINT_URL for a local DynamoDB)",
            DYNAMODB_UNREACHABLE,
        )
    if isinstance(error, NoCredentialsError | PartialCredentialsError):
        return Friendly(
            "no AWS credentials for DynamoDB: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            "(any values for a local DynamoDB) or AWS_PROFILE",
            DYNAMODB_UNREACHABLE,
        )
    if isinstance(error, EndpointConnectionError):
        return Friendly(
            f"cannot reach DynamoDB at {error.kwargs.get('endpoint_url')}: start it "
            "(`checkout up` runs one) or set CHECKOUT_DYNAMODB_ENDPOINT_URL",
            DYNAMODB_UNREACHABLE,
        )
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        if code == "ResourceNotFoundException":
            return _tables_missing()
        if code in ("UnrecognizedClientException", "InvalidSignatureException"):
            return Friendly(
                f"DynamoDB refused our AWS credentials ({code}): check AWS_ACCESS_KEY_ID "
                "and AWS_SECRET_ACCESS_KEY",
                DYNAMODB_UNREACHABLE,
            )
    return None


def _tables_missing() -> Friendly:
    from worker.settings import get_settings

    settings = get_settings()
    return Friendly(
        f"table {settings.sessions_table} does not exist: run "
        "`checkout init` (or set CHECKOUT_SESSIONS_TABLE)",
        TABLES_MISSING,
    )


def mask_password(url: str) -> str:
    """`redis://user:secret@host` -> `redis://user:***@host`: the URL is worth showing, not
    its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))
