"""DynamoDB session store: consistent reads, conditional writes, command records.

Every write is conditional, and a session write commits in one transaction with
the record of the command that caused it (design A: `TransactWriteItems`), so a
crash can never leave a session changed without its command being recorded, or
the other way round.
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

from worker.domain import Applied, Snapshot
from worker.errors import AlreadyRecorded, SessionChanged, StoreUnavailable, WriteRefused
from worker.metrics import register_request_counter
from worker.service import CommandRecord
from worker.settings import Settings
from worker.store_items import (
    COMMAND_KEY,
    SEED_DECISION_INPUTS,
    SESSION_KEY,
    TTL,
    VERSION,
    Item,
    ItemToken,
    record_from_item,
    record_item,
    session_item,
    snapshot_from_item,
    to_attribute,
)

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
    """A low-level DynamoDB client with botocore's standard retry mode."""
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
    """Sessions in the seed's layout plus idempotency records, written conditionally."""

    def __init__(
        self,
        client: Any,
        *,
        sessions_table: str,
        commands_table: str,
        session_ttl_seconds: int,
        command_ttl_seconds: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._sessions_table = sessions_table
        self._commands_table = commands_table
        self._session_ttl = session_ttl_seconds
        self._command_ttl = command_ttl_seconds
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: Settings, client: Any | None = None) -> DynamoSessionStore:
        return cls(
            client or make_dynamodb_client(settings),
            sessions_table=settings.sessions_table,
            commands_table=settings.commands_table,
            session_ttl_seconds=settings.session_ttl_seconds,
            command_ttl_seconds=settings.command_ttl_seconds,
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

    def save(
        self, record: CommandRecord, *, before: Snapshot | None, applied: Applied | None
    ) -> str | None:
        """Commit `record`, with `applied` over `before` when the command changed a session.

        Returns the session item as written, as text for `load(cached=...)`.
        """
        now = self._now()
        record_put = self._record_put(record, now)
        if applied is None:
            self._put_record(record_put)
            return None
        session_id = applied.session.id
        try:
            session_write = self._session_write(before, applied, now)
            self._call(self._client.transact_write_items, TransactItems=[session_write, record_put])
            return _copy_text(now, _written_item(before, session_write))
        except decimal.DecimalException as error:
            raise WriteRefused(
                session_id, "a number has more than 38 significant digits"
            ) from error
        except ClientError as error:
            if _code(error) == "ValidationException":
                # Permanent for this content: retrying would loop; answering is the cure.
                raise WriteRefused(session_id, _refusal_reason(error)) from error
            self._raise_cancellation(error, session_id)

    # ─── Requests ───

    def _record_put(self, record: CommandRecord, now: int) -> dict[str, Any]:
        # Absent or expired (DynamoDB deletes expired items up to days late): claim the id.
        return {
            "Put": {
                "TableName": self._commands_table,
                "Item": record_item(record, ttl=now + self._command_ttl),
                "ConditionExpression": "attribute_not_exists(#key) OR #ttl <= :now",
                "ExpressionAttributeNames": {"#key": COMMAND_KEY, "#ttl": TTL},
                "ExpressionAttributeValues": {":now": {"N": str(now)}},
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }

    def _session_write(self, before: Snapshot | None, applied: Applied, now: int) -> dict[str, Any]:
        ttl = now + self._session_ttl
        if before is None or before.expired:
            return {"Put": self._session_put(applied, ttl, now)}
        return {"Update": self._session_update(before, applied, ttl, now)}

    def _session_put(self, applied: Applied, ttl: int, now: int) -> dict[str, Any]:
        return {
            "TableName": self._sessions_table,
            "Item": session_item(applied.session, version=applied.version, ttl=ttl),
            # A new id, or one whose previous session has expired.
            "ConditionExpression": "attribute_not_exists(#key) OR #ttl <= :now",
            "ExpressionAttributeNames": {"#key": SESSION_KEY, "#ttl": TTL},
            "ExpressionAttributeValues": {":now": {"N": str(now)}},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }

    def _session_update(
        self, before: Snapshot, applied: Applied, ttl: int, now: int
    ) -> dict[str, Any]:
        """SET only the attributes the command changed, guarded by what every writer changes."""
        expression = _Expression()
        old, new = before.session.to_document(), applied.session.to_document()
        changed = {name: value for name, value in new.items() if old.get(name, _MISSING) != value}
        sets = [
            f"{expression.name(name)} = {expression.value(value)}"
            for name, value in {**changed, TTL: ttl, VERSION: applied.version}.items()
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

    # ─── Outcomes ───

    def _put_record(self, record_put: dict[str, Any]) -> None:
        try:
            self._call(self._client.put_item, **record_put["Put"])
        except ClientError as error:
            if _code(error) != "ConditionalCheckFailedException":
                raise
            item = error.response.get("Item") or self._get_record(record_put)
            raise AlreadyRecorded(record_from_item(item)) from None

    def _raise_cancellation(self, error: ClientError, session_id: str) -> None:
        if _code(error) != "TransactionCanceledException":
            raise error
        session_reason, record_reason = error.response.get("CancellationReasons", [{}, {}])
        # Check the record first: a retried request that did land fails both conditions,
        # and is then a duplicate, not a conflict.
        if record_reason.get("Code") == "ConditionalCheckFailed":
            raise AlreadyRecorded(record_from_item(record_reason["Item"])) from None
        if session_reason.get("Code") in ("ConditionalCheckFailed", "TransactionConflict"):
            item = session_reason.get("Item")
            current = snapshot_from_item(item, now=self._now()) if item else self.load(session_id)
            raise SessionChanged(current) from None
        codes = [reason.get("Code") for reason in (session_reason, record_reason)]
        raise StoreUnavailable(f"transaction canceled for session {session_id}: {codes}") from None

    def _get_record(self, record_put: dict[str, Any]) -> Item:
        key = {COMMAND_KEY: record_put["Put"]["Item"][COMMAND_KEY]}
        response = self._call(
            self._client.get_item, TableName=self._commands_table, Key=key, ConsistentRead=True
        )
        return response["Item"]

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
