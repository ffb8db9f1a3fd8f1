"""The DynamoDB item layout shared with the seed's TypeScript store, in both directions."""

from __future__ import annotations

import re
import time

from tests.integration.helpers import (
    complete,
    create,
    full_updates,
    marshall,
    new_id,
    put_raw,
    raw_session,
    seed_item,
    seed_session,
    transition,
    update,
)

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
SEED_MESSAGES = {
    "missing_line_items": "Cart is empty. Add at least one line item.",
    "missing_buyer_email": "Buyer email is required.",
    "missing_shipping_address": "Shipping address is required.",
    "missing_payment": "At least one payment instrument is required.",
}


def warnings(*codes: str) -> dict:
    return marshall([{"type": "warning", "code": c, "message": SEED_MESSAGES[c]} for c in codes])


def test_item_after_create_and_update_has_the_seed_layout(service, dynamodb, tables):
    session_id = new_id("s")
    service.handle(create(session_id))
    service.handle(update(session_id, **full_updates()))
    now = time.time()

    item = raw_session(dynamodb, tables, session_id)

    assert set(item) == {
        "sessionId", "id", "status", "currency", "line_items", "totals", "payment_instruments",
        "messages", "created_at", "updated_at", "buyer", "shipping_address", "ttl", "version",
        "applied_commands",
    }  # fmt: skip
    assert item["sessionId"] == {"S": session_id}
    assert item["id"] == {"S": session_id}
    assert item["status"] == {"S": "ready_for_complete"}
    assert item["line_items"]["L"][0] == marshall(full_updates()["line_items"][0])
    assert all(set(entry) == {"M"} for entry in item["line_items"]["L"])
    assert item["totals"] == {
        "M": {
            "subtotal": {"N": "2500"},
            "tax": {"N": "200"},
            "shipping": {"N": "0"},
            "discount": {"N": "300"},
            "fee": {"N": "13"},  # 12.5 rounded half up, as JavaScript's Math.round does
            "total": {"N": "2413"},
            "currency": {"S": "USD"},
        }
    }
    assert item["messages"] == {"L": []}
    assert item["payment_instruments"] == marshall(full_updates()["payment_instruments"])
    assert ISO_MS.match(item["created_at"]["S"])
    assert ISO_MS.match(item["updated_at"]["S"])
    assert item["updated_at"]["S"] >= item["created_at"]["S"]
    assert abs(int(item["ttl"]["N"]) - (now + 86400)) <= 5
    assert item["version"] == {"N": "2"}
    # The ledger: a list of short strings, the create's entry (older: no status) first.
    ledger = item["applied_commands"]["L"]
    assert [set(entry) for entry in ledger] == [{"S"}, {"S"}]
    assert re.fullmatch(r"[\w-]{12}:[0-9a-f]{8}", ledger[0]["S"])
    assert re.fullmatch(r"[\w-]{12}:[0-9a-f]{8}:incomplete:[0-9a-f]{6}", ledger[1]["S"])


def test_created_item_carries_the_seed_create_messages(service, dynamodb, tables):
    session_id = new_id("s")
    service.handle(create(session_id, currency="EUR"))

    item = raw_session(dynamodb, tables, session_id)

    assert item["messages"] == warnings(
        "missing_line_items", "missing_buyer_email", "missing_shipping_address", "missing_payment"
    )
    assert item["line_items"] == {"L": []}
    assert item["payment_instruments"] == {"L": []}
    assert item["totals"]["M"]["currency"] == {"S": "EUR"}
    assert item["totals"]["M"]["total"] == {"N": "0"}
    assert item["created_at"] == item["updated_at"]
    assert item["version"] == {"N": "1"}


def test_buyer_update_of_a_seed_item_keeps_every_unknown_attribute(service, dynamodb, tables):
    session_id = new_id("seed")
    original = seed_item(seed_session(session_id))
    put_raw(dynamodb, tables, original)

    event = service.handle(update(session_id, buyer={"email": "grace@example.com"}))

    item = raw_session(dynamodb, tables, session_id)
    assert event.type == "session.updated"
    assert set(item) == set(original) | {"version", "applied_commands"}
    rewritten = {"buyer", "messages", "status", "updated_at", "ttl", "version", "applied_commands"}
    assert {name: item[name] for name in set(item) - rewritten} == {
        name: original[name] for name in set(original) - rewritten
    }
    assert item["buyer"] == marshall({"email": "grace@example.com"})  # replaced, as the seed does
    assert item["messages"] == {"L": []}
    assert item["status"] == {"S": "ready_for_complete"}
    assert item["version"] == {"N": "2"}
    assert len(item["applied_commands"]["L"]) == 1
    assert item["updated_at"]["S"] > original["updated_at"]["S"]


def test_line_item_update_of_a_seed_item_recomputes_like_the_seed(service, dynamodb, tables):
    session_id = new_id("seed")
    original = seed_item(seed_session(session_id))
    put_raw(dynamodb, tables, original)
    line_items = [
        {"id": "a", "type": "product", "total_amount": 4000, "x_note": {"gift": True}},
        {"id": "b", "type": "service", "total_amount": 500},
        {"id": "c", "type": "discount", "total_amount": -450},
        {"id": "d", "type": "shipping", "total_amount": 999},  # neither product nor discount
    ]

    service.handle(update(session_id, line_items=line_items))

    item = raw_session(dynamodb, tables, session_id)
    assert item["line_items"] == marshall(line_items)
    # subtotal 4500, tax Math.round(360) = 360, fee Math.round(22.5) = 23 (Python's round: 22)
    assert item["totals"] == marshall(
        {
            "subtotal": 4500,
            "tax": 360,
            "shipping": 0,
            "discount": 450,
            "fee": 23,
            "total": 4433,
            "currency": "USD",
        }
    )
    assert item["messages"] == warnings("missing_buyer_email")
    assert item["status"] == {"S": "incomplete"}
    for name in ("buyer", "shipping_address", "billing_address", "payment_instruments"):
        assert item[name] == original[name]
    assert item["x_experiment"] == original["x_experiment"]


def test_emptying_a_seed_cart_gives_the_seed_messages_in_order(service, dynamodb, tables):
    session_id = new_id("seed")
    put_raw(dynamodb, tables, seed_item(seed_session(session_id)))

    service.handle(update(session_id, line_items=[]))

    item = raw_session(dynamodb, tables, session_id)
    assert item["messages"] == warnings("missing_line_items", "missing_buyer_email")
    assert item["totals"]["M"]["total"] == {"N": "0"}
    assert item["status"] == {"S": "incomplete"}


def test_a_seed_created_session_transitions_and_completes(service, dynamodb, tables):
    session_id = new_id("seed")
    session = seed_session(session_id)
    session["buyer"]["email"] = "grace@example.com"
    session["messages"] = []  # complete data, forced back to incomplete by the seed's transition
    original = seed_item(session)
    put_raw(dynamodb, tables, original)

    moved = service.handle(transition(session_id, "ready_for_complete"))
    done = service.handle(complete(session_id))

    assert (moved.type, moved.version, moved.previous_status) == (
        "session.status_changed",
        2,
        "incomplete",
    )
    assert (done.type, done.version, done.previous_status) == (
        "session.completed",
        3,
        "ready_for_complete",
    )
    item = raw_session(dynamodb, tables, session_id)
    assert item["status"] == {"S": "completed"}
    assert item["version"] == {"N": "3"}
    for name in set(original) - {"status", "updated_at", "ttl"}:
        assert item[name] == original[name], name
    assert len(item["applied_commands"]["L"]) == 2


def test_update_of_a_seed_item_with_a_binary_attribute_keeps_it(service, dynamodb, tables):
    # The document client writes a Uint8Array/Buffer as B. Expected: the update applies
    # and keeps it, or the command is rejected; not an exception that drops the command.
    session_id = new_id("seed")
    original = seed_item(seed_session(session_id))
    original["x_signature"] = {"B": b"\x00\x01\xfe"}
    put_raw(dynamodb, tables, original)

    event = service.handle(update(session_id, buyer={"email": "grace@example.com"}))

    assert event.type in ("session.updated", "command.rejected")
    assert raw_session(dynamodb, tables, session_id)["x_signature"] == {"B": b"\x00\x01\xfe"}
