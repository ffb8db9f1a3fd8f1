"""One line, and a documented exit code, when a CLI command cannot do what it was asked.

`main()` runs every command through `run_friendly`. An unreachable Redis or
DynamoDB, missing AWS settings, missing tables or a CHECKOUT_* setting that does not
validate are the operator's to fix, so the traceback (shown with `checkout --debug`)
would only hide the one thing to do. The codes are `tasks.cli.exit_codes`.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Iterator

from tasks.cli.exit_codes import DYNAMODB, MEANINGS, REDIS, TABLES_MISSING, USAGE, codes_help

# Commands that need Redis and would otherwise meet its absence inside their own error
# handling (a partial-send report, a dead-letter store error): Redis is pinged first.
NEEDS_REDIS = frozenset({"send", "events", "status", "dlq", "bulk-update", "report", "shards"})
# Commands that read no CHECKOUT_* setting: the others check every setting first, so a
# wrong one is named before anything starts (`up` and `bench` pass them to workers).
NO_SETTINGS = frozenset({"schema"})
# Commands that read one Redis only: with several shards (CHECKOUT_REDIS_URLS) they are
# refused, not left to show one shard as if it were the deployment.
ONE_SHARD_ONLY = frozenset({"bench"})
PREFLIGHT_TIMEOUT_SECONDS = 5.0

EPILOG = f"""{codes_help(*MEANINGS)}
Add --debug (before the command) to see the traceback of any of them."""
# `user:password@` in a URL (the password may hold an unescaped `@`, not a `/`).
_URL_PASSWORD = re.compile(r"(?<=://)([^/@:]*):[^/]*@")


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
        command = getattr(args, "command", None)
        if command not in NO_SETTINGS:
            check_settings()
        # A usage error is reported as one, whatever state the services are in.
        check_arguments = getattr(args, "check_arguments", None)
        if check_arguments is not None and (code := check_arguments(args)):
            return code
        if command in ONE_SHARD_ONLY:
            refuse_several_shards(command)
        if command in NEEDS_REDIS:
            ping_redis(all_shards=command != "status")  # status shows each shard's state
        return run(args)
    except Exception as error:
        friendly = explain(error)
        if friendly is None:
            raise
        print(f"checkout: {friendly}", file=sys.stderr)
        return friendly.code


def check_settings() -> None:
    """Raise the settings' ValidationError, if any, before a command starts its work."""
    from worker.settings import get_settings

    get_settings()


def refuse_several_shards(command: str) -> None:
    from worker.settings import get_settings

    urls = get_settings().shard_urls
    if len(urls) > 1:
        raise Friendly(
            f"`checkout {command}` reads one Redis, and CHECKOUT_REDIS_URLS lists {len(urls)} "
            f"shards: run it for each shard with CHECKOUT_REDIS_URL set to that shard's URL "
            "(and CHECKOUT_REDIS_URLS unset)",
            USAGE,
        )


def ping_redis(*, all_shards: bool = True) -> None:
    """Fail fast, before a command reads its input or writes half its output: every
    shard (`all_shards`) or the first."""
    import redis

    from worker.settings import get_settings

    urls = get_settings().shard_urls
    for shard, url in enumerate(urls if all_shards else urls[:1]):
        client = redis.Redis.from_url(
            url,
            socket_connect_timeout=PREFLIGHT_TIMEOUT_SECONDS,
            socket_timeout=PREFLIGHT_TIMEOUT_SECONDS,
        )
        try:
            client.ping()
        except (redis.ConnectionError, redis.TimeoutError) as error:
            if len(urls) == 1:
                raise
            raise Friendly(
                f"cannot reach shard {shard} at {mask_password(url)} ({error}): start it or "
                "fix CHECKOUT_REDIS_URLS",
                REDIS,
            ) from error
        finally:
            client.close()


def explain(error: BaseException) -> Friendly | None:
    """The friendly form of `error` or of any error it was raised from; None if none fits."""
    for cause in _chain(error):
        if isinstance(cause, Friendly):  # a command's own one line
            return cause
        for explainer in (_settings, _shards, _redis, _kombu, _dynamodb):
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


def _settings(error: BaseException) -> Friendly | None:
    from tasks.cli.settings_errors import describe_settings_error, is_settings_error

    if not is_settings_error(error):
        return None
    return Friendly(describe_settings_error(error), USAGE)


def _shards(error: BaseException) -> Friendly | None:
    from worker.delivery.shard_records import ShardMismatch

    return Friendly(str(error), USAGE) if isinstance(error, ShardMismatch) else None


def _redis_url() -> str:
    from worker.settings import get_settings

    return mask_password(get_settings().redis_url)


def _redis(error: BaseException) -> Friendly | None:
    import redis

    if isinstance(error, redis.AuthenticationError | redis.exceptions.NoPermissionError):
        if (shard := _failed_shard(error)) is not None:
            number, url = shard
            return Friendly(
                f"shard {number}'s Redis at {mask_password(url)} refused us ({error}): check "
                "the user and password in its URL in CHECKOUT_REDIS_URLS",
                REDIS,
            )
        return Friendly(
            f"Redis at {_redis_url()} refused us ({error}): check the user and password in "
            "CHECKOUT_REDIS_URL",
            REDIS,
        )
    if isinstance(error, redis.ConnectionError | redis.TimeoutError):
        return _redis_unreachable(error)
    return None


def _kombu(error: BaseException) -> Friendly | None:
    # Celery's broker connection (`checkout status` pings workers through it).
    from kombu.exceptions import OperationalError

    return _redis_unreachable(error) if isinstance(error, OperationalError) else None


def _redis_unreachable(error: BaseException | None = None) -> Friendly:
    """One Redis: the URL it has. Several shards: the one that failed, which a client of
    `make_redis_client` marks its errors with (after the preflight, a shard may go away
    partway through a command), or every shard's when the error does not say."""
    from worker.settings import get_settings

    urls = get_settings().shard_urls
    if len(urls) > 1:
        if error is not None and (shard := _failed_shard(error)) is not None:
            number, url = shard
            return Friendly(
                f"cannot reach shard {number} at {mask_password(url)}: start it or check "
                "CHECKOUT_REDIS_URLS",
                REDIS,
            )
        listed = ", ".join(f"{n}: {mask_password(url)}" for n, url in enumerate(urls))
        return Friendly(
            f"cannot reach one of the {len(urls)} Redis shards ({listed}): start them or "
            "check CHECKOUT_REDIS_URLS",
            REDIS,
        )
    return Friendly(
        f"cannot reach Redis at {_redis_url()}: start it (`checkout up` runs one) or set "
        "CHECKOUT_REDIS_URL",
        REDIS,
    )


def shard_failure(error: BaseException) -> Friendly | None:
    """With several shards, the one line for a Redis error a shard raised, naming that
    shard (for a command that reports Redis errors itself: `checkout dlq`)."""
    if _failed_shard(error) is None:
        return None
    for cause in _chain(error):
        if (friendly := _redis(cause)) is not None:
            return friendly
    return None


def _failed_shard(error: BaseException) -> tuple[int, str] | None:
    """(shard number, URL) of the shard that raised `error`, with several shards."""
    from worker.redis_client import failed_url
    from worker.settings import get_settings

    urls = get_settings().shard_urls
    if len(urls) == 1:
        return None
    for cause in _chain(error):  # kombu's errors wrap redis-py's
        url = failed_url(cause)
        if url in urls:
            return urls.index(url), url
    return None


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
            DYNAMODB,
        )
    if isinstance(error, NoCredentialsError | PartialCredentialsError):
        return Friendly(
            "no AWS credentials for DynamoDB: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            "(any values for a local DynamoDB) or AWS_PROFILE",
            DYNAMODB,
        )
    if isinstance(error, EndpointConnectionError):
        return Friendly(
            f"cannot reach DynamoDB at {error.kwargs.get('endpoint_url')}: start it "
            "(`checkout up` runs one) or set CHECKOUT_DYNAMODB_ENDPOINT_URL",
            DYNAMODB,
        )
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        if code == "ResourceNotFoundException":
            return _tables_missing()
        if code in ("UnrecognizedClientException", "InvalidSignatureException"):
            return Friendly(
                f"DynamoDB refused our AWS credentials ({code}): check AWS_ACCESS_KEY_ID "
                "and AWS_SECRET_ACCESS_KEY",
                DYNAMODB,
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
    its password (also in a URL too malformed to parse)."""
    return _URL_PASSWORD.sub(r"\1:***@", url, count=1)
