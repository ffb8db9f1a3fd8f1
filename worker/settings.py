"""Configuration from the environment, read once per process.

boto3 reads the usual `AWS_*` variables (region, credentials) itself.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DAY_SECONDS = 24 * 60 * 60
# What the forms below expect, in the words a settings error prints (`checkout` names
# the variable: CHECKOUT_REDIS_URL=localhost:6379: expected redis://host:port/db ...).
REDIS_URL_FORM = "expected redis://[:password@]host:port/db (or rediss:// for TLS, unix:///path)"
ENDPOINT_URL_FORM = "expected http://host:port or https://host (unset: AWS's own endpoint)"
TABLE_NAME_FORM = "expected a DynamoDB table name: 3-255 letters, digits, '_', '.' or '-'"
_TABLE_NAME = re.compile(r"[A-Za-z0-9_.-]{3,255}\Z")
SHARD_TAG_FORM = "expected s<K>, shard K's tag (set by `checkout worker --shard K`), or unset"
_SHARD_TAG = re.compile(r"s[0-9]+")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHECKOUT_", frozen=True)

    redis_url: str = "redis://127.0.0.1:6379/0"
    # Several Redis shards, comma-separated (README "Scaling out"): set, it replaces
    # `redis_url`, and a session's commands all go to shard `worker.delivery.shards`.
    # `redis_url` is then the first shard's, `shard_urls` all of them.
    redis_urls: Annotated[tuple[str, ...] | None, NoDecode] = None
    # The tag of the one shard these settings serve ('' with one Redis, `s<K>` for
    # shard K of several): every jid and dead-letter id made there starts with it
    # (`worker.delivery.jids`). Set by `for_shard` and `checkout worker --shard K`.
    shard_tag: str = ""
    # Unset means real AWS; set it to a moto server or DynamoDB Local.
    dynamodb_endpoint_url: str | None = None
    # The session store's client: `http` (worker.dynamodb.http, a fraction of botocore's
    # CPU per request) or `botocore`. `http` falls back to botocore by itself when the
    # environment asks for a proxy, AWS_ENDPOINT_URL*, FIPS or dual-stack endpoints.
    dynamodb_client: Literal["http", "botocore"] = "http"
    sessions_table: str = "checkout_sessions"
    events_stream: str = "checkout:events"
    # The longest command (its JSON text, bytes) a producer accepts and a worker
    # applies; DynamoDB's item limit is 400 KB, and every byte of a command is kept
    # in Redis while it is in flight (and in a dead letter).
    max_command_bytes: int = Field(default=256 * 1024, ge=1024, le=400_000)
    # Approximate cap on stream entries, so an unread stream cannot exhaust Redis memory.
    events_maxlen: int = Field(default=1_000_000, ge=1000)
    commands_queue: str = "checkout.commands"
    # Bulk runs (`checkout send --bulk`, `checkout bulk-update`) go to their own queue;
    # workers take interactive commands first.
    bulk_queue: str = "checkout.bulk"
    # Every key the pipeline keeps in Redis (journal, ordering, dead letters, runs)
    # starts with this, so several deployments can share one Redis.
    key_prefix: str = "checkout"
    # Call the delivery script as a Redis Functions library where Redis has Functions
    # (7+; a tenth of the script's CPU a call); false: always EVALSHA (for a Redis whose
    # ACL denies FUNCTION LOAD). Redis 6.2 gets EVALSHA either way.
    redis_functions: bool = True

    # ─── Failure handling (README "Failure handling") ───
    # Failed attempts before a command is dead-lettered (transient or unexpected errors,
    # or worker processes dying while applying it).
    max_retries: int = Field(default=10, ge=0)
    # Cap on the exponential backoff between attempts (full jitter, seconds).
    retry_backoff_max: float = Field(default=300.0, gt=0)
    # A command enqueued but not claimed by a worker this long after its messages
    # behind it were, or claimed by a worker that stopped heartbeating, is enqueued
    # again. Also kombu's own visibility timeout. Shorter: faster recovery of a message
    # lost between the queue and a dead worker; longer: fewer needless duplicates when
    # a single command legitimately takes long (duplicates are skipped, not re-applied).
    visibility_timeout: float = Field(default=60.0, ge=1)
    # A worker process whose heartbeat is older than this is dead: its command is
    # re-enqueued at once instead of after the visibility timeout.
    heartbeat_timeout: float = Field(default=10.0, ge=1)
    # How long Redis keeps the session as this pipeline last wrote it, so the next
    # command of the session needs no DynamoDB read (0: always read). Memory: about
    # one item (1-10 KB) per session written within this time.
    session_copy_ttl: int = Field(default=300, ge=0)
    # The dead-letter store's bounds: entries older than `dead_letter_ttl` seconds are
    # evicted, then the oldest while there are more than `dead_letter_max`; evictions
    # are counted (`checkout status`, metric checkout_dead_letters_evicted_total).
    # Memory: each entry keeps its command (up to CHECKOUT_MAX_COMMAND_BYTES).
    dead_letter_max: int = Field(default=10_000, ge=1)
    dead_letter_ttl: float = Field(default=7 * DAY_SECONDS, ge=60)
    # How often the reaper (one worker at a time, holding a lease) looks for retries and
    # parked commands that are due; every fifth tick it also looks for dead workers and
    # lost messages (`worker.delivery.reaper`). Idle, a tick costs Redis one call.
    reap_interval: float = Field(default=1.0, gt=0)
    session_ttl_seconds: int = Field(default=DAY_SECONDS, ge=60)

    # ─── Operations (README "Seeing it run") ───
    # Port of the worker's Prometheus endpoint (`/metrics`); unset: no endpoint.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    # The address it listens on: this host only unless a deployment says otherwise
    # (a container publishing the port needs 0.0.0.0).
    metrics_host: str = "127.0.0.1"
    # `text` (Celery's format) or `json`: one JSON object per log line.
    log_format: Literal["text", "json"] = "text"
    # Celery task events (what Flower and `celery events` show) from the start: three
    # Redis PUBLISHes per command, so off unless asked (`checkout worker --events`).
    # Flower's remote `enable_events` turns them on for `task_events_lease` seconds,
    # renewed by each call (Flower calls every 5 s), so they stop once Flower has gone.
    task_events: bool = False
    task_events_lease: float = Field(default=60.0, gt=0)
    # How a worker runs its commands (README "Worker pools", `checkout worker --pool`):
    # `solo`, processes that each take messages and apply them themselves, under a
    # parent that replaces any that dies (`worker.runtime.solo_group`); `prefork`, a main
    # process that takes messages and hands each to a pool process (which it replaces if
    # it dies, and kills past Celery's time limit). Solo skips the hand-off: 10-15% less
    # worker CPU per order-flow command in `checkout bench` (README "Worker pools").
    worker_pool: Literal["prefork", "solo"] = "solo"

    # ─── Data (README "Data and secrets") ───
    # The only fields of a payment instrument that leave the table (events, dead-letter
    # listings, `checkout get`), comma-separated; `name.*` keeps everything under the
    # key, every other value reads `[redacted]`. Unset: the documented default
    # (`schemas.payments`). Widen it knowingly.
    payment_display_fields: Annotated[tuple[str, ...] | None, NoDecode] = None

    @field_validator("redis_url")
    @classmethod
    def _redis_url_form(cls, value: str) -> str:
        # The form redis-py and Celery parse; refused here, a mistyped URL is one
        # settings error instead of a ValueError deep in the first connection.
        if not _url_form_ok(value, ("redis", "rediss", "unix")):
            raise ValueError(REDIS_URL_FORM)
        return value

    @field_validator("redis_urls", mode="before")
    @classmethod
    def _url_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(url.strip() for url in value.split(",") if url.strip()) or None
        return value

    @field_validator("redis_urls")
    @classmethod
    def _redis_urls_form(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is None:
            return None
        for position, url in enumerate(value):
            if not _url_form_ok(url, ("redis", "rediss", "unix")):
                raise ValueError(f"{REDIS_URL_FORM}, comma-separated (shard {position} is not)")
        if len(set(value)) != len(value):
            raise ValueError("expected each shard once: a URL is listed twice")
        return value

    @field_validator("shard_tag")
    @classmethod
    def _shard_tag_form(cls, value: str) -> str:
        if value and not _SHARD_TAG.fullmatch(value):
            raise ValueError(SHARD_TAG_FORM)
        return value

    @model_validator(mode="after")
    def _first_shard_is_the_redis(self) -> Settings:
        # Frozen: set through __dict__, once, while the model is being built.
        if self.redis_urls:
            self.__dict__["redis_url"] = self.redis_urls[0]
        return self

    @field_validator("dynamodb_endpoint_url")
    @classmethod
    def _endpoint_url_form(cls, value: str | None) -> str | None:
        if value and not _url_form_ok(value, ("http", "https"), needs_host=True):
            raise ValueError(ENDPOINT_URL_FORM)
        return value

    @field_validator("sessions_table")
    @classmethod
    def _table_name(cls, value: str) -> str:
        if not _TABLE_NAME.match(value):
            raise ValueError(TABLE_NAME_FORM)
        return value

    @field_validator("payment_display_fields", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(name.strip() for name in value.split(",") if name.strip())
        return value

    @property
    def shard_urls(self) -> tuple[str, ...]:
        """Every shard's Redis URL, in shard order (one: `redis_url`)."""
        return self.redis_urls or (self.redis_url,)

    def for_shard(self, shard: int) -> Settings:
        """These settings for one shard alone: its URL as `redis_url`, no other shard, and
        with several shards its tag (`shard_tag`)."""
        urls = self.shard_urls
        tag = f"s{shard}" if len(urls) > 1 else self.shard_tag
        return self.model_copy(
            update={"redis_url": urls[shard], "redis_urls": None, "shard_tag": tag}
        )

    @property
    def command_time_limit(self) -> int:
        """Seconds one command may take in a worker process before it is stopped: five
        visibility timeouts, at least five minutes (a stuck call, not a slow one)."""
        return max(300, int(self.visibility_timeout * 5))


def _url_form_ok(url: str, schemes: tuple[str, ...], *, needs_host: bool = False) -> bool:
    """A URL with one of `schemes` and, if it names a port, a numeric one."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return False
    return parts.scheme in schemes and (bool(parts.hostname) or not needs_host)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
