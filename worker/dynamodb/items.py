"""The DynamoDB item layout the seed's TypeScript store uses, in both directions.

Partition key `sessionId` (S); the session's fields as top-level attributes in the
native types the AWS document client writes (M, L, N, S, BOOL, NULL); `ttl` in
epoch seconds. This pipeline adds two attributes, which the seed carries through its
own writes untouched: `version`, and `applied_commands`, the ledger of the last
commands applied (`worker.domain.ledger`).
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
from worker.domain.rules import Snapshot
from worker.errors import CorruptSession

SESSION_KEY = "sessionId"
TTL = "ttl"
VERSION = "version"
LEDGER = "applied_commands"
STORE_ONLY_ATTRIBUTES = frozenset({SESSION_KEY, TTL, VERSION, LEDGER})

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


# boto3's TypeSerializer/TypeDeserializer cost about 0.4 ms of CPU per command on this
# machine (they probe every value's type through a chain of checks). The shapes a
# session holds (strings, safe integers, booleans, null, maps, lists) are converted
# here directly; anything else (floats, big numbers, binary, sets) still goes through
# boto3, so its rules (38 significant digits, Binary) stay the only ones.
_FAST_INT_LIMIT = 10**38


def to_attribute(value: Any) -> AttributeValue:
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int) and -_FAST_INT_LIMIT < value < _FAST_INT_LIMIT:
        return {"N": str(value)}
    if isinstance(value, dict):
        return {"M": {name: to_attribute(member) for name, member in value.items()}}
    if isinstance(value, list):
        return {"L": [to_attribute(member) for member in value]}
    if value is None:
        return {"NULL": True}
    return _serializer.serialize(_decimals(value))


def to_item(values: dict[str, Any]) -> Item:
    return {name: to_attribute(value) for name, value in values.items()}


def from_item(item: Item) -> dict[str, Any]:
    return {name: from_attribute(value) for name, value in item.items()}


def from_attribute(attribute: AttributeValue) -> Any:
    """A stored value as the document client reads it (see `to_attribute` on why not boto3)."""
    ((kind, content),) = attribute.items()
    if kind == "S" or kind == "BOOL":
        return content
    if kind == "N" and content.lstrip("-").isdigit():
        return int(content)
    if kind == "M":
        return {name: from_attribute(member) for name, member in content.items()}
    if kind == "L":
        return [from_attribute(member) for member in content]
    if kind == "NULL":
        return None
    return _plain(_deserializer.deserialize(attribute))


def session_item(session: CheckoutSession, *, version: int, ttl: int, ledger: list[str]) -> Item:
    """The whole item for a new session, laid out as the seed's `create` lays it out."""
    document = session.to_document()
    return to_item(
        {SESSION_KEY: session.id, **document, TTL: ttl, VERSION: version, LEDGER: ledger}
    )


def snapshot_from_item(
    item: Item, *, now: int, loaded_at: int | None = None, fresh: bool = True
) -> Snapshot:
    """The stored session; `expired` once its ttl has passed, deleted or not.

    `loaded_at` is when the item was known to be current (default: now); a copy kept
    since an earlier write passes that write's time, and `fresh=False`.
    """
    session_id = item.get(SESSION_KEY, {}).get("S")
    problem = unreadable_attribute(item)
    if problem:
        raise CorruptSession(session_id, problem)
    values = from_item(item)
    ttl, version, ledger = values.get(TTL), values.get(VERSION), values.get(LEDGER)
    document = {k: v for k, v in values.items() if k not in STORE_ONLY_ATTRIBUTES}
    try:
        session = CheckoutSession.model_validate(document)
    except ValidationError as error:
        raise CorruptSession(session_id, describe_validation_error(error)) from error
    return Snapshot(
        session=session,
        fresh=fresh,
        version=version if isinstance(version, int) else 1,
        expired=isinstance(ttl, int) and ttl <= now,
        ledger=tuple(entry for entry in ledger if isinstance(entry, str))
        if isinstance(ledger, list)
        else (),
        token=ItemToken(
            version=version if isinstance(version, int) else None,
            updated_at=document.get("updated_at"),
            has_ttl=ttl is not None,
            loaded_at=now if loaded_at is None else loaded_at,
            inputs={name: item[name] for name in SEED_DECISION_INPUTS if name in item},
            item=item,
        ),
    )


# Read as integers by the store's conditions (`version = :v`, `ttl > :now`) and the
# rules, whatever the session model allows: any other type fails every conditional
# write as if another writer had just changed the item, which no retry resolves.
INTEGER_ATTRIBUTES = (VERSION, TTL)
TOTALS = "totals"
TOTALS_AMOUNTS = ("subtotal", "tax", "shipping", "discount", "fee", "total")
_KINDS = {
    "S": "a string",
    "N": "a number",
    "BOOL": "a boolean",
    "NULL": "null",
    "M": "a map",
    "L": "a list",
    "B": "binary",
    "SS": "a string set",
    "NS": "a number set",
    "BS": "a binary set",
}
_SHOWN_CHARS = 40


def unreadable_attribute(item: Item) -> str | None:
    """What makes `item` unreadable, naming the attribute, or None.

    Checked on the stored types, before anything reads them: `version` and `ttl` must
    be integral numbers when present, and so must the totals' amounts (a string amount
    would pass the session model's lax integers). Everything else the session model
    checks (`snapshot_from_item`).
    """
    for name in INTEGER_ATTRIBUTES:
        if name in item and not _is_integer(item[name]):
            return _wrong(name, item[name], "an integer")
    totals = item.get(TOTALS)
    if totals is None:
        return None
    if "M" not in totals:
        return _wrong(TOTALS, totals, "a map")
    for name in TOTALS_AMOUNTS:
        amount = totals["M"].get(name)
        if amount is not None and not _is_integer(amount):
            return _wrong(f"{TOTALS}.{name}", amount, "an integer")
    return None


def _is_integer(attribute: AttributeValue) -> bool:
    number = attribute.get("N")
    if not isinstance(number, str):
        return False
    if number.lstrip("-").isdigit():  # how DynamoDB returns integers: no Decimal needed
        return True
    try:
        value = Decimal(number)
    except ArithmeticError:
        return False
    return value.is_finite() and value == value.to_integral_value()


def _wrong(name: str, attribute: AttributeValue, expected: str) -> str:
    """What is stored instead, in a form safe to log (strings as their repr, cut
    short): "attribute `version` is a string ('7'), expected an integer"."""
    ((kind, content),) = attribute.items()
    found = _KINDS.get(kind, "of an unknown type")
    if kind == "S":
        shown = repr(content[:_SHOWN_CHARS]) + ("..." if len(content) > _SHOWN_CHARS else "")
        found += f" ({shown})"
    elif kind == "N":
        found = f"a number with a fraction ({content[:_SHOWN_CHARS]})"
    elif kind == "BOOL":
        found += f" ({'true' if content else 'false'})"
    return f"attribute `{name}` is {found}, expected {expected}"


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
