"""Small builders for commands and seed-layout items used by the end-to-end tests."""

from __future__ import annotations

from typing import Any

MUG = {"id": "li-mug", "type": "product", "total_amount": 2500, "title": "Mug", "sku": "MUG-1"}
BUYER = {"email": "ann@example.com", "first_name": "Ann"}
ADDRESS = {"line1": "1 Main St", "city": "Springfield", "country": "US"}
CARD = {"id": "pi-1", "type": "card", "credential": {"type": "token", "token": "tok_abc"}}


def create(command_id: str, session_id: str, **fields: Any) -> dict[str, Any]:
    return {"type": "create_session", "command_id": command_id, "session_id": session_id, **fields}


def update(command_id: str, session_id: str, **updates: Any) -> dict[str, Any]:
    return {
        "type": "update_session",
        "command_id": command_id,
        "session_id": session_id,
        "updates": updates,
    }


def transition(command_id: str, session_id: str, target: str) -> dict[str, Any]:
    return {
        "type": "transition_session",
        "command_id": command_id,
        "session_id": session_id,
        "target": target,
    }


def seed_layout_item(session_id: str, *, ttl: int) -> dict[str, Any]:
    """An item as the seed's document client writes it: no `version`, unknown fields."""
    stamp = {"S": "2026-01-01T00:00:00.000Z"}
    return {
        "sessionId": {"S": session_id},
        "id": {"S": session_id},
        "status": {"S": "incomplete"},
        "currency": {"S": "USD"},
        "line_items": {
            "L": [
                {
                    "M": {
                        "id": {"S": "li-1"},
                        "type": {"S": "product"},
                        "total_amount": {"N": "1000"},
                        "ts_gift_wrap": {"BOOL": True},
                    }
                }
            ]
        },
        "totals": {
            "M": {
                name: {"N": value}
                for name, value in {
                    "subtotal": "1000",
                    "tax": "80",
                    "shipping": "0",
                    "discount": "0",
                    "fee": "5",
                    "total": "1085",
                }.items()
            }
            | {"currency": {"S": "USD"}}
        },
        "payment_instruments": {
            "L": [{"M": {"id": {"S": "pi-9"}, "handler_id": {"S": "gpay"}, "ts_rank": {"N": "1"}}}]
        },
        "messages": {
            "L": [
                {
                    "M": {
                        "type": {"S": "warning"},
                        "code": {"S": "missing_buyer_email"},
                        "message": {"S": "Buyer email is required."},
                    }
                }
            ]
        },
        "shipping_address": {"M": {"line1": {"S": "2 Side St"}, "ts_geo": {"L": [{"N": "1.5"}]}}},
        "created_at": stamp,
        "updated_at": stamp,
        "ts_only_field": {"M": {"campaign": {"S": "spring"}, "weights": {"L": [{"N": "0.25"}]}}},
        "ttl": {"N": str(ttl)},
    }
