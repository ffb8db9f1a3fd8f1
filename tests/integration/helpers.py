"""Small builders shared by the integration tests: commands, seed items, raw reads."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from schemas import command_fingerprint, parse_command
from worker.domain.ledger import find_applied, ledger_entry
from worker.domain.rules import Applied, Snapshot, decide

SEED_TTL_SECONDS = 24 * 60 * 60


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


# ─── Commands ───


def create(session_id: str | None, **extra: Any) -> dict[str, Any]:
    command = {"command_id": new_id("cmd"), "type": "create_session", **extra}
    if session_id is not None:
        command["session_id"] = session_id
    return command


def update(session_id: str, **updates: Any) -> dict[str, Any]:
    return {
        "command_id": new_id("cmd"),
        "type": "update_session",
        "session_id": session_id,
        "updates": updates,
    }


def transition(session_id: str, target: str) -> dict[str, Any]:
    return {
        "command_id": new_id("cmd"),
        "type": "transition_session",
        "session_id": session_id,
        "target": target,
    }


def complete(session_id: str) -> dict[str, Any]:
    return {"command_id": new_id("cmd"), "type": "complete_session", "session_id": session_id}


def cancel(session_id: str) -> dict[str, Any]:
    return {"command_id": new_id("cmd"), "type": "cancel_session", "session_id": session_id}


def full_updates() -> dict[str, Any]:
    """Everything a session needs to become ready_for_complete."""
    return {
        "line_items": [
            {"id": "li_1", "type": "product", "total_amount": 1999, "title": "Widget"},
            {"id": "li_2", "type": "service", "total_amount": 501},
            {"id": "li_3", "type": "discount", "total_amount": -300},
        ],
        "buyer": {"email": "ada@example.com", "first_name": "Ada"},
        "shipping_address": {"line1": "1 Main St", "city": "Springfield", "country": "US"},
        "payment_instruments": [
            {"id": "pi_1", "type": "card", "credential": {"type": "token", "token": "tok_secret"}}
        ],
    }


# ─── The seed's item layout, as @aws-sdk/lib-dynamodb marshalls it ───


def marshall(value: Any) -> dict[str, Any]:
    """One JavaScript value as the document client writes it (numbers as `String(n)`)."""
    if isinstance(value, bool):
        return {"BOOL": value}
    if value is None:
        return {"NULL": True}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, int | float):
        return {"N": repr(value)}
    if isinstance(value, dict):
        return {"M": {key: marshall(item) for key, item in value.items()}}
    if isinstance(value, list):
        return {"L": [marshall(item) for item in value]}
    raise TypeError(value)


def seed_item(session: dict[str, Any], *, ttl: int | None = None) -> dict[str, Any]:
    """`{sessionId: session.id, ...session, ttl}`: the seed's PutCommand item."""
    if ttl is None:
        ttl = int(time.time()) + SEED_TTL_SECONDS
    return {
        key: marshall(value)
        for key, value in {"sessionId": session["id"], **session, "ttl": ttl}.items()
    }


def seed_session(session_id: str) -> dict[str, Any]:
    """A session the TypeScript service wrote, with attributes this pipeline does not know.

    The stored totals are the seed's for these line items; the buyer has no email yet,
    so the seed's messages say so and its status is incomplete.
    """
    return {
        "id": session_id,
        "status": "incomplete",
        "currency": "USD",
        "line_items": [
            {
                "id": "li_1",
                "type": "product",
                "total_amount": 2000,
                "title": "Lamp",
                "x_meta": {"sku": "L-1", "weight_kg": 1.5, "fragile": True, "gift": None},
            },
            {"id": "li_2", "type": "service", "total_amount": 500, "x_tags": ["install", 3]},
            {"id": "li_3", "type": "discount", "total_amount": -300},
        ],
        "totals": {
            "subtotal": 2500,
            "tax": 200,
            "shipping": 0,
            "discount": 300,
            "fee": 13,
            "total": 2413,
            "currency": "USD",
        },
        "payment_instruments": [
            {
                "id": "pi_1",
                "type": "card",
                "credential": {"type": "token", "token": "tok_seed"},
                "x_wallet": {"provider": "acme", "risk": 0.25},
            }
        ],
        "messages": [
            {
                "type": "warning",
                "code": "missing_buyer_email",
                "message": "Buyer email is required.",
            }
        ],
        "created_at": "2024-05-01T12:00:00.123Z",
        "updated_at": "2024-05-01T12:00:00.123Z",
        "buyer": {"first_name": "Grace", "x_loyalty": {"tier": "gold", "points": 1200}},
        "shipping_address": {
            "line1": "2 Elm St",
            "country": "US",
            "x_geo": {"lat": 52.5, "lon": 13.25},
        },
        "billing_address": {"line1": "PO Box 9", "x_vat": {"id": "DE123", "verified": False}},
        "continue_url": "https://shop.example/continue",
        "x_channel": "kiosk",
        "x_experiment": {"arm": "B", "weights": [0.5, 0.5], "enabled": True, "note": None},
    }


# ─── Raw reads ───


def raw_session(client: Any, settings: Any, session_id: str) -> dict[str, Any] | None:
    response = client.get_item(
        TableName=settings.sessions_table, Key={"sessionId": {"S": session_id}}, ConsistentRead=True
    )
    return response.get("Item")


def raw_ledger(client: Any, settings: Any, session_id: str) -> list[str] | None:
    """The session item's `applied_commands` as stored; None without the attribute."""
    item = raw_session(client, settings, session_id) or {}
    if "applied_commands" not in item:
        return None
    return [entry["S"] for entry in item["applied_commands"]["L"]]


def ledger_holds(ledger: list[str] | None, command: dict[str, Any]) -> bool:
    """Whether `command` (as sent, same content) is in the ledger."""
    fingerprint = command_fingerprint(parse_command(command))
    found = find_applied(ledger or [], command["command_id"], fingerprint)
    return bool(found and found.same_content)


def put_raw(client: Any, settings: Any, item: dict[str, Any]) -> None:
    """An unconditional PutItem, as the seed's store writes."""
    client.put_item(TableName=settings.sessions_table, Item=item)


def count_sessions(client: Any, settings: Any) -> int:
    return client.scan(TableName=settings.sessions_table, Select="COUNT", ConsistentRead=True)[
        "Count"
    ]


def stream_entries(redis_client: Any, settings: Any) -> list[tuple[str, dict[str, str]]]:
    return redis_client.xrange(settings.events_stream)


def stream_events(redis_client: Any, settings: Any) -> list[dict[str, Any]]:
    return [json.loads(fields["event"]) for _, fields in stream_entries(redis_client, settings)]


def seed_rewrite(client: Any, settings: Any, session_id: str, **changes: Any) -> dict[str, Any]:
    """The seed's `update`: read the item, change fields, put it all back unconditionally.

    Like the seed, it copies `version` through unchanged and sets a new `updated_at`
    and `ttl`. Returns the item it wrote.
    """
    item = dict(raw_session(client, settings, session_id))
    for name, value in changes.items():
        item[name] = marshall(value)
    item["updated_at"] = {"S": later_stamp(item["updated_at"]["S"])}
    item["ttl"] = marshall(int(time.time()) + SEED_TTL_SECONDS)
    put_raw(client, settings, item)
    return item


def later_stamp(stamp: str, *, milliseconds: int = 250) -> str:
    """An ISO timestamp as `toISOString` writes it, a little after `stamp`."""
    from datetime import datetime, timedelta

    moment = datetime.fromisoformat(stamp) + timedelta(milliseconds=milliseconds)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


def expire(client: Any, settings: Any, session_id: str, *, ago: int = 60) -> None:
    """Move the item's ttl into the past; moto, like DynamoDB for a while, keeps the item."""
    client.update_item(
        TableName=settings.sessions_table,
        Key={"sessionId": {"S": session_id}},
        UpdateExpression="SET #ttl = :ttl",
        ExpressionAttributeNames={"#ttl": "ttl"},
        ExpressionAttributeValues={":ttl": {"N": str(int(time.time()) - ago)}},
    )


def decided(payload: dict, snapshot: Snapshot | None, session_id: str) -> tuple[str, Applied]:
    """The ledger entry and the effect a worker would save for `payload` over `snapshot`."""
    command = parse_command(payload)
    applied = decide(command, snapshot, now=datetime.now(UTC), session_id=session_id)
    entry = ledger_entry(
        command.command_id,
        command_fingerprint(command),
        applied.previous_status,
        written_at=applied.session.updated_at,
    )
    return entry, applied
