"""Interop with the real TypeScript store: the seed's own code on the pipeline's table
(the harness: tests/integration/seed_harness.py)."""

from __future__ import annotations

from typing import Any

import pytest

from schemas import command_fingerprint, parse_command
from tests.integration.helpers import (
    complete,
    create,
    decided,
    full_updates,
    ledger_holds,
    new_id,
    raw_ledger,
    raw_session,
    transition,
    update,
)
from tests.integration.seed_harness import SeedError, op, seed, seed_harness  # noqa: F401
from worker.domain.ledger import ledger_entry
from worker.errors import SessionChanged

ALL_MISSING = [
    "missing_line_items",
    "missing_buyer_email",
    "missing_shipping_address",
    "missing_payment",
]
ADDRESS = {"line1": "1 Main St", "city": "Springfield", "country": "US"}
PAYMENT = [{"id": "pi_1", "type": "card", "credential": {"type": "token", "token": "tok_1"}}]


def seed_adds_buyer_and_address(settings, session_id: str, **fields: Any) -> dict[str, Any]:
    """The seed's update of a buyer email and a shipping address (the seed's clock optional)."""
    updates = {"buyer": {"email": "seed@example.com"}, "shipping_address": ADDRESS}
    return op("update", settings.sessions_table, id=session_id, updates=updates, **fields)


def document(store, session_id: str) -> tuple[dict[str, Any], int]:
    snapshot = store.load(session_id)
    return snapshot.session.to_document(), snapshot.version


def pipeline_attributes(store, session_id: str) -> dict[str, Any]:
    """What the seed's `get` returns beyond the session: our `version` and ledger."""
    snapshot = store.load(session_id)
    return {"version": snapshot.version, "applied_commands": list(snapshot.ledger)}


def codes(session: dict[str, Any]) -> list[str]:
    return [message["code"] for message in session["messages"]]


# ─── 1. The seed creates, the pipeline updates ───


def test_pipeline_updates_a_session_the_seed_created(env, settings, service, store, dynamodb):
    created = seed(env, op("create", settings.sessions_table, currency="EUR"))
    session_id = created["id"]

    item = raw_session(dynamodb, settings, session_id)
    assert "version" not in item
    assert set(item) == {"sessionId", "ttl", *created}
    assert document(store, session_id) == (created, 1)  # no version: read as version 1

    command = update(session_id, **full_updates())
    event = service.handle(command)

    assert event.type == "session.updated"
    assert event.version == 2
    assert event.previous_status == "incomplete"
    session, version = document(store, session_id)
    assert version == 2
    assert session["totals"] == {
        "subtotal": 2500,
        "tax": 200,
        "shipping": 0,
        "discount": 300,
        "fee": 13,  # 12.5, rounded half up as Math.round does
        "total": 2413,
        "currency": "EUR",
    }
    assert session["messages"] == []
    assert session["status"] == "ready_for_complete"
    assert session["created_at"] == created["created_at"]
    assert session["updated_at"] > created["updated_at"]
    assert seed(env, op("get", settings.sessions_table, id=session_id)) == {
        **session,
        **pipeline_attributes(store, session_id),
    }
    fingerprint = command_fingerprint(parse_command(command))
    written_at = session["updated_at"]
    assert raw_ledger(dynamodb, settings, session_id) == [
        ledger_entry(command["command_id"], fingerprint, "incomplete", written_at=written_at)
    ]


# ─── 2. The seed reads what the pipeline wrote ───


def test_seed_reads_sessions_the_pipeline_created_and_updated(env, settings, service, store):
    created_only, updated = new_id("s"), new_id("s")
    service.handle(create(created_only, currency="JPY"))
    service.handle(create(updated))
    updates = full_updates()
    # Attributes the pipeline does not model, as the TypeScript side writes them.
    updates["line_items"][0]["x_meta"] = {"weight_kg": 1.5, "fragile": True, "gift": None}
    updates["buyer"]["x_loyalty"] = {"tier": "gold", "points": 1200}
    updates["continue_url"] = "https://shop.example/continue"
    service.handle(update(updated, **updates))

    read = seed(
        env,
        [
            op("get", settings.sessions_table, id=created_only),
            op("get", settings.sessions_table, id=updated),
            op("status", settings.sessions_table, id=updated),
            op("get", settings.sessions_table, id=new_id("absent")),
        ],
    )

    ours_created, _ = document(store, created_only)
    ours_updated, _ = document(store, updated)
    assert read[0] == {**ours_created, **pipeline_attributes(store, created_only)}
    assert read[0]["version"] == 1
    assert len(read[0]["applied_commands"]) == 1
    assert codes(read[0]) == ALL_MISSING
    assert read[0]["totals"]["currency"] == "JPY"
    assert read[1] == {**ours_updated, **pipeline_attributes(store, updated)}
    assert read[1]["version"] == 2
    assert len(read[1]["applied_commands"]) == 2
    for name in ("line_items", "totals", "messages", "status", "currency"):
        assert read[1][name] == ours_updated[name], name
    assert (read[1]["created_at"], read[1]["updated_at"]) == (
        ours_updated["created_at"],
        ours_updated["updated_at"],
    )
    assert read[1]["line_items"][0]["x_meta"] == {"weight_kg": 1.5, "fragile": True, "gift": None}
    assert read[2] == "ready_for_complete"
    assert read[3] is None


# ─── 3. The seed writes a pipeline session; the pipeline notices ───


def test_seed_update_of_a_pipeline_session_is_detected_and_kept(
    env, settings, service, store, dynamodb
):
    session_id = new_id("s")
    made = create(session_id)
    lines = update(session_id, line_items=full_updates()["line_items"])
    service.handle(made)
    service.handle(lines)
    stale = store.load(session_id)

    written = seed(env, seed_adds_buyer_and_address(settings, session_id))

    # The seed read our item and put it all back: our version and ledger ride along.
    assert written["version"] == 2
    assert written["applied_commands"] == list(stale.ledger)
    assert codes(written) == ["missing_payment"]
    item = raw_session(dynamodb, settings, session_id)
    assert item["version"] == {"N": "2"}
    assert raw_ledger(dynamodb, settings, session_id) == list(stale.ledger)
    assert item["updated_at"] == {"S": written["updated_at"]}
    assert written["updated_at"] != stale.session.updated_at

    entry, applied = decided(update(session_id, payment_instruments=PAYMENT), stale, session_id)
    with pytest.raises(SessionChanged) as changed:
        store.save(before=stale, applied=applied, ledger_entry=entry)
    assert changed.value.current.session.to_document() == {
        k: v for k, v in written.items() if k not in ("version", "applied_commands")
    }
    assert changed.value.current.ledger == stale.ledger

    payment = update(session_id, payment_instruments=PAYMENT)
    event = service.handle(payment)

    assert event.version == 3
    ledger = raw_ledger(dynamodb, settings, session_id)
    assert len(ledger) == 3
    assert all(ledger_holds(ledger, command) for command in (made, lines, payment))
    assert service.handle(lines).error.code == "already_applied"
    session, version = document(store, session_id)
    assert version == 3
    assert session["buyer"] == {"email": "seed@example.com"}  # the seed's change survives
    assert session["shipping_address"] == ADDRESS
    assert session["line_items"] == full_updates()["line_items"]
    assert session["payment_instruments"] == PAYMENT
    assert session["messages"] == []
    assert session["status"] == "ready_for_complete"
    assert session["totals"] == written["totals"]


def test_seed_transition_of_a_pipeline_session_is_detected_and_kept(
    env, settings, service, store, dynamodb
):
    session_id = new_id("s")
    service.handle(create(session_id))
    service.handle(update(session_id, line_items=full_updates()["line_items"]))
    stale = store.load(session_id)

    moved = seed(
        env, op("transition", settings.sessions_table, id=session_id, target="requires_escalation")
    )

    assert moved["status"] == "requires_escalation"
    assert moved["version"] == 2
    item = raw_session(dynamodb, settings, session_id)
    assert item["status"] == {"S": "requires_escalation"}
    assert item["updated_at"] == {"S": moved["updated_at"]}
    assert item["version"] == {"N": "2"}

    entry, applied = decided(update(session_id, buyer={"email": "a@x"}), stale, session_id)
    with pytest.raises(SessionChanged) as changed:
        store.save(before=stale, applied=applied, ledger_entry=entry)
    assert changed.value.current.session.status == "requires_escalation"

    event = service.handle(transition(session_id, "ready_for_complete"))

    assert event.type == "session.status_changed"
    assert event.previous_status == "requires_escalation"  # decided on the seed's write
    assert event.version == 3
    session, _ = document(store, session_id)
    assert session["status"] == "ready_for_complete"
    assert session["updated_at"] > moved["updated_at"]
    assert session["line_items"] == full_updates()["line_items"]


def test_seed_writes_keep_the_ledger_through_update_and_transition(
    env, settings, service, store, dynamodb
):
    session_id = new_id("s")
    made = create(session_id)
    lines = update(session_id, line_items=full_updates()["line_items"])
    service.handle(made)
    service.handle(lines)
    ours = raw_ledger(dynamodb, settings, session_id)
    assert len(ours) == 2

    done = seed(
        env,
        [
            seed_adds_buyer_and_address(settings, session_id),
            op("transition", settings.sessions_table, id=session_id, target="requires_escalation"),
            op("get", settings.sessions_table, id=session_id),
        ],
    )

    assert done[0]["applied_commands"] == ours  # its update's put carries it back
    assert done[2]["applied_commands"] == ours
    assert done[2]["status"] == "requires_escalation"
    assert raw_ledger(dynamodb, settings, session_id) == ours
    # The pipeline still knows its commands on the item the seed wrote, and keeps adding.
    assert service.handle(made).error.code == "already_applied"
    moved = transition(session_id, "ready_for_complete")
    assert service.handle(moved).previous_status == "requires_escalation"
    ledger = raw_ledger(dynamodb, settings, session_id)
    assert ledger[:-1] == [ours[0], ours[1].rsplit(":", 2)[0]]  # the newest: status, stamp
    assert all(ledger_holds(ledger, command) for command in (made, lines, moved))


def test_seed_update_stamped_in_the_same_millisecond_is_detected(
    env, settings, service, store, dynamodb
):
    session_id = new_id("s")
    service.handle(create(session_id))
    service.handle(update(session_id, line_items=full_updates()["line_items"]))
    stale = store.load(session_id)

    # The seed's host clock reads the instant of our last write (a few ms of skew).
    written = seed(
        env, seed_adds_buyer_and_address(settings, session_id, clock=stale.session.updated_at)
    )
    assert written["updated_at"] == stale.session.updated_at
    assert raw_session(dynamodb, settings, session_id)["buyer"] == {
        "M": {"email": {"S": "seed@example.com"}}
    }

    entry, applied = decided(update(session_id, payment_instruments=PAYMENT), stale, session_id)
    try:
        store.save(before=stale, applied=applied, ledger_entry=entry)
    except SessionChanged:
        return
    # The stale write landed on top of the seed's: every required field is present, but
    # the stored messages and status are the ones decided without the seed's buyer/address.
    session, _ = document(store, session_id)
    assert (codes(session), session["status"]) == ([], "ready_for_complete"), (
        f"seed write not detected; stored: {codes(session)}, {session['status']}, "
        f"buyer={session.get('buyer')}, shipping_address={session.get('shipping_address')}"
    )


def test_seed_refuses_to_transition_a_session_the_pipeline_completed(env, settings, service):
    session_id = new_id("s")
    service.handle(create(session_id))
    service.handle(update(session_id, **full_updates()))
    assert service.handle(complete(session_id)).type == "session.completed"

    with pytest.raises(SeedError) as refused:
        seed(env, op("transition", settings.sessions_table, id=session_id, target="incomplete"))

    assert str(refused.value) == "Invalid transition: completed → incomplete. Allowed: "


def test_a_completed_session_the_seed_reopens_stays_closed(env, settings, service, store):
    session_id = new_id("s")
    service.handle(create(session_id))
    service.handle(update(session_id, **full_updates()))
    service.handle(complete(session_id))

    # The seed's update recomputes status without knowing closed states.
    reopened = seed(
        env,
        op("update", settings.sessions_table, id=session_id, updates={"continue_url": "https://x"}),
    )
    assert reopened["status"] == "ready_for_complete"

    again = service.handle(complete(session_id) | {"command_id": new_id("again")})

    assert (again.type, again.error.code) == ("command.rejected", "session_closed")
    assert store.load(session_id).session.closed_status == "completed"


# ─── 4. The same arithmetic through both stores ───


def cart(*amounts: tuple[str, int]) -> list[dict[str, Any]]:
    return [
        {"id": f"li_{n}", "type": kind, "total_amount": amount}
        for n, (kind, amount) in enumerate(amounts, start=1)
    ]


CARTS = {
    "fee 0.5": (cart(("product", 100)), "USD"),
    "fee 1.5 with discount": (cart(("product", 250), ("service", 50), ("discount", -40)), "USD"),
    "fee 12.5": (cart(("product", 1999), ("service", 501), ("discount", -300)), "EUR"),
    "fee -0.5": (cart(("product", -100)), "USD"),
    "fee -1.5, positive discount": (cart(("product", -300), ("discount", 25)), "GBP"),
    "fee 5e9 + 0.5": (cart(("product", 10**12 + 100)), "JPY"),
    "tax 8.48, other types ignored": (
        cart(("product", 106), ("shipping", 999), ("other", 7)),
        "USD",
    ),
    "empty": ([], "USD"),
}


def test_seed_and_pipeline_compute_the_same_totals_through_the_stores(
    env, settings, service, store
):
    ids = {name: new_id("s") for name in CARTS}
    for session_id in ids.values():
        service.handle(create(session_id))

    by_seed = seed(
        env,
        [
            op(
                "update",
                settings.sessions_table,
                id=ids[name],
                updates={"line_items": items, "currency": currency},
            )
            for name, (items, currency) in CARTS.items()
        ],
    )

    for (name, (items, currency)), theirs in zip(CARTS.items(), by_seed, strict=True):
        session_id = ids[name]
        stored, _ = document(store, session_id)
        assert stored["totals"] == theirs["totals"], name
        assert theirs["totals"]["currency"] == currency
        # The pipeline recomputes on the seed's item: the same numbers come out again.
        event = service.handle(update(session_id, line_items=items, currency=currency))
        assert event.version == 2, name
        ours, _ = document(store, session_id)
        assert ours["totals"] == theirs["totals"], name
        assert ours["messages"] == theirs["messages"], name
        assert ours["status"] == theirs["status"], name
    assert by_seed[0]["totals"]["fee"] == 1
    assert by_seed[2]["totals"]["fee"] == 13
    assert by_seed[3]["totals"]["fee"] == 0
    assert by_seed[4]["totals"]["fee"] == -1  # Math.round(-1.5)
    assert by_seed[5]["totals"]["fee"] == 5_000_000_001
