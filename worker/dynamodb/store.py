"""DynamoDB session store: consistent reads, conditional writes, the command ledger.

Every write is one conditional `PutItem` or `UpdateItem` that also appends the
command that caused it to the ledger inside the session item (`worker.domain.ledger`):
the session can never change without its command being recorded, at the write units
of a plain write (a transaction with a separate record bills both items twice).
"""

from __future__ import annotations

import decimal
import json
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from worker.domain import ledger
from worker.domain.rules import Applied, Snapshot
from worker.dynamodb.clients import make_store_client
from worker.dynamodb.conditions import Expression, unchanged_since
from worker.dynamodb.copies import NoCopies, SessionCopies
from worker.dynamodb.items import (
    LEDGER,
    SESSION_KEY,
    TTL,
    VERSION,
    Item,
    session_item,
    snapshot_from_item,
    to_item,
)
from worker.errors import SessionChanged, StoreUnavailable, WriteRefused
from worker.settings import Settings

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


class DynamoSessionStore:
    """Sessions in the seed's layout plus their command ledger, written conditionally."""

    def __init__(
        self,
        client: Any,
        *,
        sessions_table: str,
        session_ttl_seconds: int,
        copies: SessionCopies | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._sessions_table = sessions_table
        self._session_ttl = session_ttl_seconds
        self._copies = copies or NoCopies()
        self._clock = clock

    @classmethod
    def from_settings(
        cls, settings: Settings, client: Any | None = None, copies: SessionCopies | None = None
    ) -> DynamoSessionStore:
        return cls(
            client or make_store_client(settings),
            sessions_table=settings.sessions_table,
            session_ttl_seconds=settings.session_ttl_seconds,
            copies=copies,
        )

    def load(self, session_id: str, *, consistent: bool = False) -> Snapshot | None:
        """The session as a strongly consistent read sees it, expired or not.

        Unless `consistent`, the copy this store kept after its own last write of the
        session (`worker.dynamodb.copies`) stands in for the read: every write it leads
        to is conditioned on it still being current, and a stale copy fails that
        condition and hands back the current item (one failed write instead of one read).
        """
        copy = None if consistent else self._copies.get(session_id)
        if copy:
            kept = json.loads(copy)
            return snapshot_from_item(
                kept["item"], now=self._now(), loaded_at=kept["at"], fresh=False
            )
        response = self._call(
            self._client.get_item,
            TableName=self._sessions_table,
            Key={SESSION_KEY: {"S": session_id}},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return snapshot_from_item(item, now=self._now()) if item else None

    def save(self, *, before: Snapshot | None, applied: Applied, ledger_entry: str) -> None:
        """Write `applied` over `before` with `ledger_entry` added to the session's ledger,
        and keep the item as written for the next `load`."""
        now = self._now()
        session_id = applied.session.id
        try:
            write, written = self._session_write(before, applied, now, ledger_entry)
            if "Put" in write:
                self._call(self._client.put_item, **write["Put"])
            else:
                self._call(self._client.update_item, **write["Update"])
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
            current = (
                snapshot_from_item(item, now=self._now())
                if item
                else self.load(session_id, consistent=True)
            )
            raise SessionChanged(current) from None
        self._keep_copy(session_id, now, written)

    def _keep_copy(self, session_id: str, now: int, item: Item) -> None:
        try:
            text = json.dumps({"at": now, "item": item})
        except TypeError:
            return  # binary attributes (the TypeScript side can store those): read next time
        self._copies.put(session_id, text)

    # ─── Requests ───

    def _session_write(
        self, before: Snapshot | None, applied: Applied, now: int, entry: str
    ) -> tuple[dict[str, Any], Item]:
        """The request, and the item it leaves in the table when it succeeds."""
        ttl = now + self._session_ttl
        if before is None or before.expired:
            put = self._session_put(applied, ttl, now, [entry])
            return {"Put": put}, put["Item"]
        history = ledger.appended(before.ledger, entry)
        old, new = before.session.to_document(), applied.session.to_document()
        changed = {name: value for name, value in new.items() if old.get(name, _MISSING) != value}
        bookkeeping = {TTL: ttl, VERSION: applied.version, LEDGER: history}
        # Commands only ever add or replace attributes, so there is nothing to REMOVE.
        sets = to_item({**changed, **bookkeeping})
        update = self._session_update(before, applied.session.id, sets, now)
        return {"Update": update}, {**before.token.item, **sets}

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
        self, before: Snapshot, session_id: str, sets: Item, now: int
    ) -> dict[str, Any]:
        """SET only the attributes the command changed, guarded by what every writer changes."""
        expression = Expression()
        assignments = [
            f"{expression.name(name)} = {expression.raw_value(value)}"
            for name, value in sets.items()
        ]
        return {
            "TableName": self._sessions_table,
            "Key": {SESSION_KEY: {"S": session_id}},
            "UpdateExpression": "SET " + ", ".join(assignments),
            "ConditionExpression": unchanged_since(expression, before.token, now),
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


def _refusal_reason(error: ClientError) -> str:
    message = error.response.get("Error", {}).get("Message", "")
    if ITEM_TOO_LARGE in message:
        return "it would exceed the 400 KB item size limit"
    return message or "the item is not valid"


_MISSING = object()


def _code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")
