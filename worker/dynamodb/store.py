"""DynamoDB session store: consistent reads, conditional writes, the command ledger.

Every write is one conditional `PutItem` or `UpdateItem` that also appends the
command that caused it to the ledger inside the session item (DESIGN §3, design B,
`worker.domain.ledger`): the session can never change without its command being recorded,
at the write units of a plain write (a transaction with a separate record bills
both items twice).
"""

from __future__ import annotations

import decimal
import json
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from worker.domain import ledger
from worker.domain.rules import Applied, Snapshot
from worker.dynamodb.http import make_hot_path_client
from worker.dynamodb.items import (
    LEDGER,
    SEED_DECISION_INPUTS,
    SESSION_KEY,
    TTL,
    VERSION,
    Item,
    ItemToken,
    session_item,
    snapshot_from_item,
    to_attribute,
)
from worker.errors import SessionChanged, StoreUnavailable, WriteRefused
from worker.observability.metrics import register_request_counter
from worker.settings import Settings

# Clocks of the seed's hosts and ours may differ by this much; beyond it a seed write
# cannot carry an `updated_at` as old as one we read (see `_seed_could_restamp`).
MAX_CLOCK_SKEW_SECONDS = 60

# How DynamoDB words a write past the 400 KB item limit (a ValidationException).
ITEM_TOO_LARGE = "exceeded the maximum allowed size"

RETRYABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "ResourceNotFoundException",  # tables not created yet: `checkout init`, then retry
    }
)


def make_dynamodb_client(settings: Settings) -> Any:
    """A botocore DynamoDB client with its standard retry mode: for tables, scans and
    tools. The store's own reads and writes use `worker.dynamodb.http`, the same
    requests at a fraction of the CPU (README "Measured")."""
    session = boto3.session.Session()
    region = session.region_name or ("us-east-1" if settings.dynamodb_endpoint_url else None)
    config = Config(
        retries={"mode": "standard", "max_attempts": 5},
        connect_timeout=3,
        read_timeout=10,
        # The store builds every request itself; validating it again costs CPU per write.
        parameter_validation=False,
        tcp_keepalive=True,
    )
    client = session.client(
        "dynamodb",
        endpoint_url=settings.dynamodb_endpoint_url,
        region_name=region,
        config=config,
    )
    register_request_counter(client)  # checkout_dynamodb_requests_total
    return client


class DynamoSessionStore:
    """Sessions in the seed's layout plus their command ledger, written conditionally."""

    def __init__(
        self,
        client: Any,
        *,
        sessions_table: str,
        session_ttl_seconds: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._sessions_table = sessions_table
        self._session_ttl = session_ttl_seconds
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: Settings, client: Any | None = None) -> DynamoSessionStore:
        return cls(
            client or make_hot_path_client(settings),
            sessions_table=settings.sessions_table,
            session_ttl_seconds=settings.session_ttl_seconds,
        )

    def load(self, session_id: str, *, cached: str | None = None) -> Snapshot | None:
        """The session as a strongly consistent read sees it, expired or not.

        `cached` is a copy `save` returned after an earlier write (kept in Redis by the
        journal): used instead of a read, because every write it leads to is
        conditioned on it still being current, and a stale copy fails that condition
        and hands back the current item (one failed write instead of one read).
        """
        if cached:
            copy = json.loads(cached)
            return snapshot_from_item(copy["item"], now=self._now(), loaded_at=copy["at"])
        response = self._call(
            self._client.get_item,
            TableName=self._sessions_table,
            Key={SESSION_KEY: {"S": session_id}},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return snapshot_from_item(item, now=self._now()) if item else None

    def save(self, *, before: Snapshot | None, applied: Applied, ledger_entry: str) -> str | None:
        """Write `applied` over `before` with `ledger_entry` added to the session's ledger.

        Returns the session item as written, as text for `load(cached=...)`.
        """
        now = self._now()
        session_id = applied.session.id
        try:
            write = self._session_write(before, applied, now, ledger_entry)
            if "Put" in write:
                self._call(self._client.put_item, **write["Put"])
            else:
                self._call(self._client.update_item, **write["Update"])
            return _copy_text(now, _written_item(before, write))
        except decimal.DecimalException as error:
            raise WriteRefused(
                session_id, "a number has more than 38 significant digits"
            ) from error
        except ClientError as error:
            if _code(error) == "ValidationException":
                # Permanent for this content: retrying would loop; answering is the cure.
                raise WriteRefused(session_id, _refusal_reason(error)) from error
            if _code(error) != "ConditionalCheckFailedException":
                raise
            # Another writer, or this very write retried after it landed: either way
            # the current item (and its ledger) decides what happens next.
            item = error.response.get("Item")
            current = snapshot_from_item(item, now=self._now()) if item else self.load(session_id)
            raise SessionChanged(current) from None

    # ─── Requests ───

    def _session_write(
        self, before: Snapshot | None, applied: Applied, now: int, entry: str
    ) -> dict[str, Any]:
        ttl = now + self._session_ttl
        if before is None or before.expired:
            return {"Put": self._session_put(applied, ttl, now, [entry])}
        history = ledger.appended(before.ledger, entry)
        return {"Update": self._session_update(before, applied, ttl, now, history)}

    def _session_put(
        self, applied: Applied, ttl: int, now: int, history: list[str]
    ) -> dict[str, Any]:
        return {
            "TableName": self._sessions_table,
            "Item": session_item(applied.session, version=applied.version, ttl=ttl, ledger=history),
            # A new id, or one whose previous session has expired.
            "ConditionExpression": "attribute_not_exists(#key) OR #ttl <= :now",
            "ExpressionAttributeNames": {"#key": SESSION_KEY, "#ttl": TTL},
            "ExpressionAttributeValues": {":now": {"N": str(now)}},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }

    def _session_update(
        self, before: Snapshot, applied: Applied, ttl: int, now: int, history: list[str]
    ) -> dict[str, Any]:
        """SET only the attributes the command changed, guarded by what every writer changes."""
        expression = _Expression()
        old, new = before.session.to_document(), applied.session.to_document()
        changed = {name: value for name, value in new.items() if old.get(name, _MISSING) != value}
        bookkeeping = {TTL: ttl, VERSION: applied.version, LEDGER: history}
        sets = [
            f"{expression.name(name)} = {expression.value(value)}"
            for name, value in {**changed, **bookkeeping}.items()
        ]
        # Commands only ever add or replace attributes, so there is nothing to REMOVE.
        update = "SET " + ", ".join(sets)
        return {
            "TableName": self._sessions_table,
            "Key": {SESSION_KEY: {"S": applied.session.id}},
            "UpdateExpression": update,
            "ConditionExpression": _unchanged_since(expression, before.token, now),
            "ExpressionAttributeNames": expression.names,
            "ExpressionAttributeValues": expression.values,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }

    def _call(self, operation: Callable[..., Any], **request: Any) -> Any:
        """Run one request; what botocore's retries could not get through is `StoreUnavailable`."""
        try:
            return operation(**request)
        except BotoCoreError as error:
            raise StoreUnavailable(f"DynamoDB unreachable: {error}") from error
        except ClientError as error:
            if _code(error) in RETRYABLE_CODES:
                raise StoreUnavailable(f"DynamoDB: {_code(error)}: {error}") from error
            raise

    def _now(self) -> int:
        return int(self._clock())


_MISSING = object()


class _Expression:
    """Placeholders for an expression: DynamoDB reserves words like `status` and `ttl`."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}

    def name(self, attribute: str) -> str:
        placeholder = f"#n{len(self.names)}"
        for existing, name in self.names.items():
            if name == attribute:
                return existing
        self.names[placeholder] = attribute
        return placeholder

    def value(self, value: Any) -> str:
        return self.raw_value(to_attribute(value))

    def raw_value(self, attribute: Any) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = attribute
        return placeholder


def _unchanged_since(expression: _Expression, token: ItemToken, now: int) -> str:
    """The item is still the one we read, and still alive.

    `version` catches this pipeline's writers. `updated_at` catches the seed's, which
    set it on every write but copy `version` through unchanged. A seed write stamped
    in the very millisecond we read (clock skew, or our stamps running ahead in a
    burst) is caught only by comparing what it can change, so a recently written
    item is also compared on every decision input.
    """
    version = expression.name(VERSION)
    parts = [
        f"attribute_not_exists({version})"
        if token.version is None
        else f"{version} = {expression.value(token.version)}",
        f"{expression.name('updated_at')} = {expression.value(token.updated_at)}",
    ]
    if _seed_could_restamp(token):
        parts += [
            _stored_as(expression, name, token.inputs.get(name)) for name in SEED_DECISION_INPUTS
        ]
    ttl = expression.name(TTL)
    alive = f"{ttl} > {expression.value(now)}"
    parts.append(alive if token.has_ttl else f"(attribute_not_exists({ttl}) OR {alive})")
    return " AND ".join(parts)


def _seed_could_restamp(token: ItemToken) -> bool:
    """Whether a later seed write could carry the same `updated_at` as the one we read.

    Only if the stamp is within the clock skew we allow between hosts of our load time.
    """
    try:
        written = datetime.fromisoformat(token.updated_at or "").timestamp()
    except ValueError:
        return True  # not a stamp we can reason about: compare everything
    return token.loaded_at - written <= MAX_CLOCK_SKEW_SECONDS


def _stored_as(expression: _Expression, name: str, stored: Any) -> str:
    placeholder = expression.name(name)
    if stored is None:
        return f"attribute_not_exists({placeholder})"
    return f"{placeholder} = {expression.raw_value(stored)}"


def _copy_text(now: int, item: Item) -> str | None:
    """The written item as text for `load(cached=...)`; None for an item holding binary
    attributes (the TypeScript side can store those): the next command reads it."""
    try:
        return json.dumps({"at": now, "item": item})
    except TypeError:
        return None


def _written_item(before: Snapshot | None, session_write: dict[str, Any]) -> Item:
    """The item a successful Put or SET-only Update leaves in the table."""
    if "Put" in session_write:
        return session_write["Put"]["Item"]
    update = session_write["Update"]
    names, values = update["ExpressionAttributeNames"], update["ExpressionAttributeValues"]
    item = dict(before.token.item) if before else {}
    for assignment in update["UpdateExpression"].removeprefix("SET ").split(", "):
        name, value = assignment.split(" = ")
        item[names[name]] = values[value]
    return item


def _refusal_reason(error: ClientError) -> str:
    message = error.response.get("Error", {}).get("Message", "")
    if ITEM_TOO_LARGE in message:
        return "it would exceed the 400 KB item size limit"
    return message or "the item is not valid"


def _code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")
