"""The DynamoDB item layout the seed's TypeScript store uses, in both directions.

Partition key `sessionId` (S); the session's fields as top-level attributes in the
native types the AWS document client writes (M, L, N, S, BOOL, NULL); `ttl` in
epoch seconds. This pipeline adds one attribute, `version`, which the seed carries
through its own writes untouched.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer
from pydantic import ValidationError

from schemas.commands import describe_validation_error
from schemas.session import CheckoutSession
from worker.domain import Snapshot
from worker.errors import StoredSessionInvalid
from worker.service import CommandRecord

SESSION_KEY = "sessionId"
COMMAND_KEY = "commandId"
TTL = "ttl"
VERSION = "version"
STORE_ONLY_ATTRIBUTES = frozenset({SESSION_KEY, TTL, VERSION})

AttributeValue = dict[str, Any]
Item = dict[str, AttributeValue]

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


# The attributes the seed's writes can change and that a decision reads (totals and
# messages are derived from them).
SEED_DECISION_INPUTS = (
    "status",
    "currency",
    "line_items",
    "buyer",
    "shipping_address",
    "billing_address",
    "payment_instruments",
    "continue_url",
)


@dataclass(frozen=True)
class ItemToken:
    """What a conditional write compares against, as the item was when loaded."""

    version: int | None  # None: a session the seed created, which has no version yet
    updated_at: str | None
    has_ttl: bool
    loaded_at: int  # epoch seconds, the store's clock
    # The decision inputs exactly as stored, for an equality condition byte for byte.
    inputs: dict[str, AttributeValue] = field(default_factory=dict)
    # The whole item as loaded: what a write leaves is this plus what it SETs.
    item: Item = field(default_factory=dict)


def to_attribute(value: Any) -> AttributeValue:
    return _serializer.serialize(_decimals(value))


def to_item(values: dict[str, Any]) -> Item:
    return {name: to_attribute(value) for name, value in values.items()}


def from_item(item: Item) -> dict[str, Any]:
    return {name: _plain(_deserializer.deserialize(value)) for name, value in item.items()}


def session_item(session: CheckoutSession, *, version: int, ttl: int) -> Item:
    """The whole item for a new session, laid out as the seed's `create` lays it out."""
    return to_item({SESSION_KEY: session.id, **session.to_document(), TTL: ttl, VERSION: version})


def snapshot_from_item(item: Item, *, now: int, loaded_at: int | None = None) -> Snapshot:
    """The stored session; `expired` once its ttl has passed, deleted or not.

    `loaded_at` is when the item was known to be current (default: now); a copy kept
    since an earlier write passes that write's time.
    """
    values = from_item(item)
    ttl, version = values.get(TTL), values.get(VERSION)
    document = {k: v for k, v in values.items() if k not in STORE_ONLY_ATTRIBUTES}
    try:
        session = CheckoutSession.model_validate(document)
    except ValidationError as error:
        raise StoredSessionInvalid(
            f"Stored checkout session {values.get(SESSION_KEY)} is not a valid session: "
            f"{describe_validation_error(error)}"
        ) from error
    return Snapshot(
        session=session,
        version=version if isinstance(version, int) else 1,
        expired=isinstance(ttl, int) and ttl <= now,
        token=ItemToken(
            version=version if isinstance(version, int) else None,
            updated_at=document.get("updated_at"),
            has_ttl=ttl is not None,
            loaded_at=now if loaded_at is None else loaded_at,
            inputs={name: item[name] for name in SEED_DECISION_INPUTS if name in item},
            item=item,
        ),
    )


def record_item(record: CommandRecord, *, ttl: int) -> Item:
    values = {
        COMMAND_KEY: record.command_id,
        "fingerprint": record.fingerprint,
        "event": record.event_json,
        TTL: ttl,
    }
    if record.session_id is not None:
        values[SESSION_KEY] = record.session_id
    return to_item(values)


def record_from_item(item: Item) -> CommandRecord:
    values = from_item(item)
    return CommandRecord(
        command_id=values[COMMAND_KEY],
        fingerprint=values["fingerprint"],
        session_id=values.get(SESSION_KEY),
        event_json=values["event"],
    )


def _decimals(value: Any) -> Any:
    """floats -> Decimal, which is all boto3's serializer accepts for numbers."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: _decimals(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decimals(v) for v in value]
    return value


def _plain(value: Any) -> Any:
    """Decimal -> int or float, as the document client gives JavaScript numbers."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, set):  # string/number sets: not in the seed's layout, kept readable
        return sorted(_plain(v) for v in value)
    if isinstance(value, Binary):
        # A Buffer the TypeScript side stored, shown as base64 text. Updates only write
        # the attributes a command changed, so the stored value stays binary.
        return base64.b64encode(value.value).decode()
    return value
