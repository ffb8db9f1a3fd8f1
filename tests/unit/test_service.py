"""CheckoutService with in-memory ports: events, versions, idempotency, conflicts."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from kombu.utils import json as kombu_json

from schemas.commands import command_fingerprint, parse_command
from schemas.events import event_id_for
from schemas.payments import REDACTED
from tests.support.fakes import FakeClock, InMemorySessionStore, ListEventPublisher, SequentialIds
from tests.support.publishing import PublishingService
from worker.domain.ledger import LEDGER_SIZE, find_applied, ledger_entry
from worker.domain.rules import new_session
from worker.errors import (
    ContentionExhausted,
    CorruptSession,
    EventsUnavailable,
    Transient,
)
from worker.service.apply import session_id_for

READY_UPDATES = {
    "line_items": [{"type": "product", "total_amount": 1000, "id": "li_1", "sku": "W-1"}],
    "buyer": {"email": "buyer@example.com"},
    "shipping_address": {"line1": "1 Main St", "country": "US"},
    "payment_instruments": [{"type": "card", "token": "tok_secret", "brand": "visa"}],
}


@dataclass
class Rig:
    store: InMemorySessionStore = field(default_factory=InMemorySessionStore)
    publisher: ListEventPublisher = field(default_factory=ListEventPublisher)
    clock: FakeClock = field(default_factory=FakeClock)
    ids: SequentialIds = field(default_factory=SequentialIds)
    max_write_attempts: int = 5

    @property
    def service(self) -> PublishingService:
        return PublishingService(
            self.store,
            self.publisher,
            clock=self.clock,
            new_session_id=self.ids,
            max_write_attempts=self.max_write_attempts,
        )

    def handle(self, payload: Any) -> dict[str, Any]:
        """Handle `payload` and return the event as published."""
        event = self.service.handle(payload)
        assert self.publisher.events[-1] == event.to_json()
        return json.loads(self.publisher.events[-1])

    def create(self, session_id: str = "cs_1") -> dict[str, Any]:
        return self.handle(command("create_session", f"create-{session_id}", session_id))

    def ready(self, session_id: str = "cs_1") -> dict[str, Any]:
        self.create(session_id)
        return self.handle(command("update_session", "ready", session_id, updates=READY_UPDATES))


def command(kind: str, command_id: str = "cmd-1", session_id: str | None = "cs_1", **fields):
    body: dict[str, Any] = {"command_id": command_id, "type": kind, **fields}
    if session_id is not None:
        body["session_id"] = session_id
    return body


def update(command_id: str = "cmd-1", session_id: str = "cs_1", **updates: Any):
    return command("update_session", command_id, session_id, updates=updates)


def fingerprint(payload: dict[str, Any]) -> str:
    return command_fingerprint(parse_command(payload))


def entry_of(payload: dict[str, Any], previous_status: str | None, *, written_at: str = "") -> str:
    """The ledger entry the service writes for `payload` when it applies (without its
    stamp unless `written_at` is given)."""
    return ledger_entry(
        payload["command_id"], fingerprint(payload), previous_status, written_at=written_at
    )


def unstamped(entry: str) -> str:
    """A newest entry without the digest of the `updated_at` it wrote."""
    return entry.rsplit(":", 1)[0] if entry.count(":") == 3 else entry


@pytest.fixture
def rig() -> Rig:
    return Rig()


# ─── Each command's event ───


def test_create_without_id_uses_the_id_factory_and_skips_the_read(rig: Rig) -> None:
    event = rig.handle(command("create_session", session_id=None))
    assert (event["type"], event["session_id"], event["version"]) == ("session.created", "cs_1", 1)
    assert event["previous_status"] is None
    assert rig.ids.asked == ["cmd-1"]  # the factory is given the command id
    assert rig.store.loads == []
    assert rig.store.version_of("cs_1") == 1


def test_the_default_session_id_is_derived_from_the_command_id() -> None:
    assert session_id_for("cmd-1") == session_id_for("cmd-1")
    assert session_id_for("cmd-1") != session_id_for("cmd-2")
    assert str(uuid.UUID(session_id_for("cmd-1"))) == session_id_for("cmd-1")


def test_a_create_without_id_applied_twice_finds_its_own_session() -> None:
    # With the default factory: the second delivery derives the same session id, so its
    # create meets its own session and replays, instead of making a second one.
    store, publisher = InMemorySessionStore(), ListEventPublisher()
    service = PublishingService(store, publisher, clock=FakeClock())
    payload = command("create_session", session_id=None)

    first = service.handle(payload)
    second = service.handle(payload)

    assert second.to_json() == first.to_json()
    assert (first.type, first.session_id) == ("session.created", session_id_for("cmd-1"))
    assert list(store.sessions) == [session_id_for("cmd-1")]
    assert store.version_of(session_id_for("cmd-1")) == 1


def test_create_snapshot_is_the_seeds_empty_session(rig: Rig) -> None:
    session = rig.create()["session"]
    assert session["status"] == "incomplete"
    assert session["created_at"] == session["updated_at"] == "2025-03-01T12:00:00.000Z"
    assert session["totals"] == {
        "subtotal": 0, "tax": 0, "shipping": 0, "discount": 0, "fee": 0, "total": 0,
        "currency": "USD",
    }  # fmt: skip
    assert [m["code"] for m in session["messages"]] == [
        "missing_line_items",
        "missing_buyer_email",
        "missing_shipping_address",
        "missing_payment",
    ]


def test_create_over_a_live_session_is_a_version_conflict_that_writes_nothing(rig: Rig) -> None:
    rig.create()
    before = rig.store.sessions["cs_1"]
    event = rig.handle(command("create_session", "again", "cs_1"))
    assert (event["type"], event["error"]["code"], event["version"]) == (
        "command.rejected",
        "version_conflict",
        1,
    )
    assert rig.store.sessions["cs_1"] == before  # session and ledger as they were
    assert find_applied(before.ledger, "again", "") is None


def test_create_over_an_expired_session_starts_again_at_version_1(rig: Rig) -> None:
    old = new_session("cs_1", "EUR", rig.clock())
    rig.store.put(old, version=7, expired=True)
    event = rig.handle(command("create_session", session_id="cs_1"))
    assert (event["type"], event["version"], event["session"]["currency"]) == (
        "session.created",
        1,
        "USD",
    )


def test_update_recomputes_totals_and_bumps_the_version(rig: Rig) -> None:
    rig.create()
    rig.clock.advance()
    event = rig.handle(update(line_items=READY_UPDATES["line_items"]))
    assert (event["type"], event["version"], event["previous_status"]) == (
        "session.updated",
        2,
        "incomplete",
    )
    totals = event["session"]["totals"]
    assert (totals["subtotal"], totals["tax"], totals["fee"], totals["total"]) == (
        1000,
        80,
        5,
        1085,
    )
    assert event["session"]["updated_at"] == "2025-03-01T12:00:01.000Z"
    assert event["session"]["line_items"][0]["sku"] == "W-1"


def test_update_that_completes_the_data_makes_the_session_ready(rig: Rig) -> None:
    event = rig.ready()
    assert event["session"]["status"] == "ready_for_complete"
    assert event["session"]["messages"] == []
    assert rig.store.sessions["cs_1"].session.status == "ready_for_complete"


def test_event_snapshot_redacts_payment_credentials_but_the_store_keeps_them(rig: Rig) -> None:
    event = rig.ready()
    assert event["session"]["payment_instruments"] == [
        {"type": "card", "token": REDACTED, "brand": "visa"}
    ]
    stored = rig.store.sessions["cs_1"].session.to_document()
    assert stored["payment_instruments"][0]["token"] == "tok_secret"


@pytest.mark.parametrize(
    ("kind", "event_type", "status"),
    [
        ("complete_session", "session.completed", "completed"),
        ("cancel_session", "session.canceled", "canceled"),
    ],
)
def test_lifecycle_commands_on_a_ready_session(
    rig: Rig, kind: str, event_type: str, status: str
) -> None:
    rig.ready()
    event = rig.handle(command(kind, "lifecycle"))
    assert (event["type"], event["version"], event["previous_status"]) == (
        event_type,
        3,
        "ready_for_complete",
    )
    assert event["session"]["status"] == status
    assert rig.store.sessions["cs_1"].session.status == status


def test_a_ready_session_allows_no_forced_transition(rig: Rig) -> None:
    rig.ready()
    event = rig.handle(command("transition_session", target="incomplete"))
    assert (event["error"]["code"], event["version"]) == ("invalid_transition", 2)


def test_transition_from_incomplete_reports_the_previous_status(rig: Rig) -> None:
    rig.create()
    event = rig.handle(command("transition_session", target="requires_escalation"))
    assert (event["type"], event["previous_status"], event["version"]) == (
        "session.status_changed",
        "incomplete",
        2,
    )


@pytest.mark.parametrize(
    ("setup", "payload", "code", "version"),
    [
        ("none", update(buyer={"email": "a@b.c"}), "session_not_found", None),
        ("created", command("complete_session"), "invalid_transition", 1),
        ("created", command("transition_session", target="completed"), "invalid_transition", 1),
        (
            "created",
            command("update_session", updates={"buyer": {"email": "a@b.c"}}, expected_version=5),
            "version_conflict",
            1,
        ),
        ("canceled", update(buyer={"email": "a@b.c"}), "session_closed", 2),
    ],
)
def test_rejections_write_nothing_and_leave_the_session_alone(
    rig: Rig, setup: str, payload: dict[str, Any], code: str, version: int | None
) -> None:
    if setup != "none":
        rig.create()
    if setup == "canceled":
        rig.handle(command("cancel_session", "cancel"))
    before = rig.store.sessions.get("cs_1")
    saves = len(rig.store.save_attempts)
    event = rig.handle(payload)
    assert (event["type"], event["error"]["code"], event["version"]) == (
        "command.rejected",
        code,
        version,
    )
    assert "session" not in event
    assert event["event_id"] == event_id_for("cmd-1", fingerprint(payload))
    assert rig.store.version_of("cs_1") == version
    assert rig.store.sessions.get("cs_1") == before  # ledger included: no record of it
    assert len(rig.store.save_attempts) == saves  # not even tried


# ─── Replays and idempotency ───


def test_a_replayed_command_republishes_the_identical_json(rig: Rig) -> None:
    rig.create()
    first = rig.service.handle(update(line_items=READY_UPDATES["line_items"]))
    rig.clock.advance(60)
    second = rig.service.handle(update(line_items=READY_UPDATES["line_items"]))
    assert second == first
    assert rig.publisher.events[-1] == rig.publisher.events[-2] == first.to_json()
    assert rig.store.version_of("cs_1") == 2


def test_a_replayed_create_republishes_the_identical_json(rig: Rig) -> None:
    first = rig.service.handle(command("create_session", "make", "cs_1", currency="EUR"))
    rig.clock.advance(60)
    second = rig.service.handle(command("create_session", "make", "cs_1", currency="EUR"))
    assert second.to_json() == first.to_json()
    assert (second.type, second.previous_status, second.version) == ("session.created", None, 1)
    assert len(rig.store.sessions["cs_1"].ledger) == 1


@pytest.mark.parametrize(
    ("ready", "payload", "previous", "version"),
    [
        (
            False,
            command("transition_session", "move", target="requires_escalation"),
            "incomplete",
            2,
        ),
        (True, command("cancel_session", "move"), "ready_for_complete", 3),
    ],
    ids=["transition", "cancel"],
)
def test_a_replayed_status_change_keeps_its_previous_status(
    rig: Rig, ready: bool, payload: dict[str, Any], previous: str, version: int
) -> None:
    if ready:
        rig.ready()
    else:
        rig.create()
    first = rig.service.handle(payload)
    rig.clock.advance(60)
    second = rig.service.handle(payload)
    assert first.type != "command.rejected"
    assert second.to_json() == first.to_json()
    assert (second.previous_status, second.version) == (previous, version)
    assert second.session["status"] != previous
    assert rig.store.version_of("cs_1") == version


def test_a_replay_after_later_commands_is_already_applied_with_the_same_event_id(
    rig: Rig,
) -> None:
    rig.create()
    payload = update(buyer={"email": "a@b.c"})
    first = rig.handle(payload)
    rig.handle(update("cmd-2", line_items=READY_UPDATES["line_items"]))
    rig.handle(update("cmd-3", shipping_address=READY_UPDATES["shipping_address"]))
    stored = rig.store.sessions["cs_1"]
    saves = len(rig.store.save_attempts)

    event = rig.handle(payload)

    assert (event["type"], event["error"]["code"]) == ("command.rejected", "already_applied")
    assert event["event_id"] == first["event_id"]
    assert (event["command_id"], event["session_id"], event["version"]) == ("cmd-1", "cs_1", 4)
    assert "2 later command(s)" in event["error"]["message"]
    assert "session" not in event
    assert rig.store.sessions["cs_1"] == stored
    assert len(rig.store.save_attempts) == saves


def test_a_replay_after_another_writer_changed_the_session_is_already_applied(
    rig: Rig,
) -> None:
    # The seed keeps the ledger through its writes but restamps `updated_at`: the item
    # is no longer what the command wrote, so its event cannot be rebuilt from it.
    rig.create()
    payload = update(buyer={"email": "a@b.c"})
    first = rig.handle(payload)
    rig.store.concurrent_change("cs_1", continue_url="https://seed.example")
    rig.store.before_save.pop(0)(rig.store)  # the seed's write, now
    assert rig.store.sessions["cs_1"].ledger[-1].startswith(unstamped(entry_of(payload, "")))
    saves = len(rig.store.save_attempts)

    event = rig.handle(payload)

    assert (event["type"], event["error"]["code"]) == ("command.rejected", "already_applied")
    assert event["event_id"] == first["event_id"]
    assert "another writer" in event["error"]["message"]
    assert len(rig.store.save_attempts) == saves


def test_a_command_older_than_the_ledger_applies_again(rig: Rig) -> None:
    # The documented limit: the ledger holds the last LEDGER_SIZE commands only (the
    # journal in Redis skips deliveries of finished commands before they get here).
    rig.create()
    payload = update(buyer={"email": "a@b.c"})
    rig.handle(payload)
    for n in range(LEDGER_SIZE):
        rig.handle(update(f"later-{n}", line_items=[{"type": "product", "total_amount": n}]))
    assert find_applied(rig.store.sessions["cs_1"].ledger, "cmd-1", fingerprint(payload)) is None
    event = rig.handle(payload)
    assert (event["type"], event["version"]) == ("session.updated", LEDGER_SIZE + 3)


def test_a_replay_reproduces_unicode_and_unusual_numbers_byte_for_byte(rig: Rig) -> None:
    rig.create()
    item = {"type": "product", "total_amount": 5, "name": "Café ☕", "w": 1e-07, "r": 2.0}
    first = rig.service.handle(update(line_items=[item])).to_json()
    rig.clock.advance()
    assert rig.service.handle(update(line_items=[item])).to_json() == first


def test_a_redelivered_rejection_is_decided_again(rig: Rig) -> None:
    # Rejections are not stored: a redelivery (which the journal normally skips once the
    # first result is published) decides on the session as it is now.
    first = rig.handle(update(buyer={"email": "a@b.c"}))
    rig.create()
    again = rig.handle(update(buyer={"email": "a@b.c"}))
    assert (first["type"], first["error"]["code"]) == ("command.rejected", "session_not_found")
    assert (again["type"], again["version"]) == ("session.updated", 2)
    assert again["event_id"] == first["event_id"]
    assert rig.store.version_of("cs_1") == 2


def test_an_applied_command_appends_its_entry_to_the_ledger(rig: Rig) -> None:
    create = command("create_session", "create-cs_1", "cs_1")
    change = update(buyer={"email": "a@b.c"})
    rig.handle(create)
    created_at = rig.store.sessions["cs_1"].session.updated_at
    rig.handle(change)
    written_at = rig.store.sessions["cs_1"].session.updated_at
    assert rig.store.save_attempts == [
        entry_of(create, None, written_at=created_at),
        entry_of(change, "incomplete", written_at=written_at),
    ]
    assert rig.store.sessions["cs_1"].ledger == (
        entry_of(create, None).rsplit(":", 1)[0],  # older entries drop status and stamp
        entry_of(change, "incomplete", written_at=written_at),
    )


def test_a_replayed_json_text_command_matches_its_mapping(rig: Rig) -> None:
    rig.create()
    first = rig.handle(update(buyer={"email": "a@b.c"}))
    assert rig.handle(json.dumps(update(buyer={"email": "a@b.c"}))) == first


@pytest.mark.parametrize("newest", [True, False], ids=["newest", "older"])
@pytest.mark.parametrize(
    "reuse",
    [update(buyer={"email": "other@b.c"}), command("cancel_session")],
    ids=["other-body", "other-type"],
)
def test_a_reused_command_id_is_an_idempotency_conflict(
    rig: Rig, reuse: dict[str, Any], newest: bool
) -> None:
    rig.create()
    rig.create("cs_2")
    original = rig.handle(update(buyer={"email": "a@b.c"}))
    if not newest:
        rig.handle(update("cmd-2", line_items=READY_UPDATES["line_items"]))
    sessions = dict(rig.store.sessions)

    event = rig.handle(reuse)

    assert (event["type"], event["error"]["code"]) == ("command.rejected", "idempotency_conflict")
    assert event["event_id"] != original["event_id"]
    assert event["event_id"] == event_id_for("cmd-1", fingerprint(reuse))
    assert event["version"] == rig.store.version_of("cs_1")
    assert rig.store.sessions == sessions  # both sessions and their ledgers untouched


def test_a_command_id_reused_on_another_session_applies_there(rig: Rig) -> None:
    # Each session has its own ledger: a command id reused on another session is not
    # detected (worker/domain/ledger.py says so); it applies there and the first is untouched.
    rig.create()
    rig.create("cs_2")
    original = rig.handle(update(buyer={"email": "a@b.c"}))
    first_session = rig.store.sessions["cs_1"]
    reuse = update(session_id="cs_2", buyer={"email": "a@b.c"})

    event = rig.handle(reuse)

    assert (event["type"], event["session_id"], event["version"]) == (
        "session.updated",
        "cs_2",
        2,
    )
    assert event["event_id"] != original["event_id"]  # the session is in the fingerprint
    assert rig.store.sessions["cs_1"] == first_session
    assert rig.store.sessions["cs_2"].session.buyer.email == "a@b.c"
    assert unstamped(rig.store.sessions["cs_2"].ledger[-1]) == entry_of(reuse, "incomplete")


# ─── Invalid payloads ───

INVALID_PAYLOADS = {
    "missing-command-id": ({"type": "create_session"}, "command_id"),
    "empty-command-id": ({"command_id": "", "type": "create_session"}, "command_id"),
    "unknown-type": ({"command_id": "c1", "type": "explode"}, "'type'"),
    "float-money": (
        update(line_items=[{"type": "product", "total_amount": 12.5}]),
        "updates.line_items.0.total_amount",
    ),
    "null-update": (update(buyer=None), "updates.buyer"),
    "unknown-field": (command("cancel_session", reason="x"), "reason"),
    "bad-session-id": (command("cancel_session", session_id="a/b"), "session_id"),
    "not-an-object": ([1, 2], "command: Input should be a valid dictionary"),
    "json-array": ("[1, 2]", "command: Input should be a valid dictionary"),
    "not-json": ("{not json", "command: Invalid JSON"),
}


@pytest.mark.parametrize(
    ("payload", "names"), INVALID_PAYLOADS.values(), ids=INVALID_PAYLOADS.keys()
)
def test_an_invalid_payload_is_rejected_naming_the_field(
    rig: Rig, payload: Any, names: str
) -> None:
    event = rig.handle(payload)
    assert (event["type"], event["error"]["code"]) == ("command.rejected", "validation_error")
    assert names in event["error"]["message"]
    assert event["version"] is None
    assert rig.store.loads == rig.store.save_attempts == []


@pytest.mark.parametrize("payload", [p for p, _ in INVALID_PAYLOADS.values()])
def test_an_invalid_payload_has_the_same_event_id_on_every_delivery(rig: Rig, payload: Any) -> None:
    first = rig.handle(payload)
    rig.clock.advance(30)
    second = rig.handle(payload)
    assert first["event_id"] == second["event_id"]
    assert first["occurred_at"] != second["occurred_at"]


@pytest.mark.parametrize("encode", [dict, json.dumps], ids=["mapping", "json-text"])
def test_an_invalid_payload_echoes_its_command_and_session_ids(rig: Rig, encode) -> None:
    payload = update("cmd-9", line_items=[{"type": "product", "total_amount": 1.5}])
    event = rig.handle(encode(payload))
    assert (event["command_id"], event["session_id"]) == ("cmd-9", "cs_1")


@pytest.mark.parametrize(
    "wrong",
    [Decimal("12.50"), datetime(2025, 3, 1, tzinfo=UTC)],
    ids=["decimal", "datetime"],
)
def test_a_payload_with_types_celerys_json_decodes_is_rejected_not_crashed(
    rig: Rig, wrong: Any
) -> None:
    # Celery's JSON (kombu.utils.json) turns {"__type__": "decimal", ...} markers into
    # Decimal and datetime objects, so a worker can receive them from any producer.
    sent = update(line_items=[{"type": "product", "total_amount": wrong}])
    payload = kombu_json.loads(kombu_json.dumps(sent))
    assert payload["updates"]["line_items"][0]["total_amount"] == wrong
    event = rig.handle(payload)
    assert event["error"]["code"] == "validation_error"
    assert "updates.line_items.0.total_amount" in event["error"]["message"]


def test_invalid_payloads_differing_in_content_have_different_event_ids(rig: Rig) -> None:
    a = rig.handle(update(line_items=[{"type": "product", "total_amount": 1.5}]))
    b = rig.handle(update(line_items=[{"type": "product", "total_amount": 2.5}]))
    assert a["event_id"] != b["event_id"]


def test_a_fixed_invalid_command_can_reuse_its_command_id(rig: Rig) -> None:
    rig.create()
    rig.handle(update(line_items=[{"type": "product", "total_amount": 1.5}]))
    event = rig.handle(update(line_items=[{"type": "product", "total_amount": 150}]))
    assert (event["type"], event["version"]) == ("session.updated", 2)


# ─── Concurrent writers ───


def test_a_conflict_is_decided_again_on_the_current_session(rig: Rig) -> None:
    rig.create()
    rig.store.concurrent_change("cs_1", buyer={"email": "concurrent@example.com"})
    event = rig.handle(update(line_items=READY_UPDATES["line_items"]))
    assert len(rig.store.save_attempts) == 3  # the create, then two tries
    assert (event["type"], event["version"], event["previous_status"]) == (
        "session.updated",
        3,
        "incomplete",
    )
    assert event["session"]["buyer"] == {"email": "concurrent@example.com"}
    assert event["session"]["totals"]["total"] == 1085
    assert "missing_buyer_email" not in [m["code"] for m in event["session"]["messages"]]
    assert rig.store.sessions["cs_1"].session.buyer.email == "concurrent@example.com"


def test_a_create_that_loses_a_race_is_a_version_conflict(rig: Rig) -> None:
    rig.store.before_save.append(
        lambda store: store.put(new_session("cs_1", "EUR", rig.clock()), version=1)
    )
    event = rig.handle(command("create_session", session_id="cs_1"))
    assert (event["error"]["code"], event["version"]) == ("version_conflict", 1)
    assert rig.store.sessions["cs_1"].session.currency == "EUR"


def test_a_conflict_with_a_cancel_turns_into_a_rejection(rig: Rig) -> None:
    rig.create()
    rig.store.concurrent_change("cs_1", status="canceled")
    event = rig.handle(update(line_items=READY_UPDATES["line_items"]))
    assert (event["error"]["code"], event["version"]) == ("session_closed", 2)
    assert rig.store.sessions["cs_1"].session.line_items == []


def test_constant_conflicts_exhaust_the_write_attempts(rig: Rig) -> None:
    rig.create()
    ledger = rig.store.sessions["cs_1"].ledger
    rig.store.contend("cs_1", times=rig.max_write_attempts)
    published = list(rig.publisher.events)
    with pytest.raises(ContentionExhausted) as raised:
        rig.service.handle(update(buyer={"email": "a@b.c"}))
    assert isinstance(raised.value, Transient)
    assert len(rig.store.save_attempts) == 1 + rig.max_write_attempts
    assert rig.store.sessions["cs_1"].ledger == ledger  # cmd-1 never made it in
    assert rig.store.sessions["cs_1"].session.buyer is None
    assert rig.publisher.events == published


def test_a_redelivery_after_contention_applies_the_command(rig: Rig) -> None:
    rig.create()
    rig.store.contend("cs_1", times=rig.max_write_attempts)
    with pytest.raises(ContentionExhausted):
        rig.service.handle(update(buyer={"email": "a@b.c"}))
    event = rig.handle(update(buyer={"email": "a@b.c"}))
    assert (event["type"], event["version"]) == ("session.updated", 2 + rig.max_write_attempts)


# ─── Failures around the store and the stream ───


def test_a_corrupt_stored_session_becomes_a_rejection_that_writes_nothing(rig: Rig) -> None:
    rig.store.load_error = CorruptSession("cs_1", "status: Field required")
    payload = update(buyer={"email": "a@b.c"})
    event = rig.handle(payload)
    assert (event["type"], event["error"]) == (
        "command.rejected",
        {
            "code": "corrupt_session",
            "message": "stored session cs_1 is corrupt: status: Field required",
        },
    )
    assert (event["session_id"], event["version"]) == ("cs_1", None)
    assert event["event_id"] == event_id_for("cmd-1", fingerprint(payload))
    assert rig.store.save_attempts == []


def test_a_failed_publish_is_retried_with_the_identical_event(rig: Rig) -> None:
    # The write landed, the publish failed: the redelivery finds the command as the
    # newest ledger entry and rebuilds the very event that could not be published.
    rig.create()
    attempted: list[str] = []
    publish = rig.publisher.publish

    def recording(event_json: str) -> None:
        attempted.append(event_json)
        publish(event_json)

    rig.publisher.publish = recording  # type: ignore[method-assign]
    rig.publisher.failures.append(EventsUnavailable("redis down"))
    with pytest.raises(EventsUnavailable):
        rig.service.handle(update(buyer={"email": "a@b.c"}))
    rig.clock.advance(5)
    event = rig.handle(update(buyer={"email": "a@b.c"}))
    assert rig.publisher.events[-1] == attempted[-2]  # byte for byte, not a newer stamp
    assert (event["type"], event["version"]) == ("session.updated", 2)
    assert event["occurred_at"] == rig.store.sessions["cs_1"].session.updated_at
    assert event["occurred_at"] < "2025-03-01T12:00:05"
    assert rig.store.version_of("cs_1") == 2


# ─── Event ids ───


def test_event_id_is_the_same_on_every_delivery() -> None:
    first, second = Rig(), Rig()
    second.clock.advance(3600)
    payload = command("create_session", session_id=None)
    assert first.handle(payload)["event_id"] == second.handle(payload)["event_id"]


@pytest.mark.parametrize(
    "other",
    [command("create_session", "cmd-2", None), command("create_session", currency="EUR")],
    ids=["other-command-id", "other-content"],
)
def test_event_id_differs_for_other_commands(other: dict[str, Any]) -> None:
    base = Rig().handle(command("create_session", session_id=None))
    assert Rig().handle(other)["event_id"] != base["event_id"]
