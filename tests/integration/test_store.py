"""DynamoSessionStore against a moto server: conditional writes, tables, failures."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from schemas import command_fingerprint, parse_command
from tasks.embedded import free_port
from tests.integration.helpers import (
    create,
    expire,
    new_id,
    raw_command,
    raw_session,
    seed_rewrite,
    update,
)
from worker.domain import Snapshot, decide
from worker.errors import AlreadyRecorded, SessionChanged, StoreUnavailable
from worker.service import CheckoutService, CommandRecord
from worker.settings import Settings
from worker.store import DynamoSessionStore, make_dynamodb_client
from worker.store_tables import ensure_tables


def decided(payload: dict, snapshot: Snapshot | None, session_id: str):
    """The record and the effect a worker would save for `payload` over `snapshot`."""
    command = parse_command(payload)
    applied = decide(command, snapshot, now=datetime.now(UTC), session_id=session_id)
    record = CommandRecord(command.command_id, command_fingerprint(command), session_id, "{}")
    return record, applied


def test_save_over_a_seed_write_raises_session_changed(service, store, dynamodb, tables):
    session_id = new_id("s")
    service.handle(create(session_id))
    snapshot = store.load(session_id)
    seed_written = seed_rewrite(dynamodb, tables, session_id, continue_url="https://seed/next")
    record, applied = decided(update(session_id, buyer={"email": "a@x"}), snapshot, session_id)

    with pytest.raises(SessionChanged) as changed:
        store.save(record, before=snapshot, applied=applied)

    current = changed.value.current
    assert current.session.continue_url == "https://seed/next"
    assert current.session.updated_at == seed_written["updated_at"]["S"]
    assert current.version == 1
    assert raw_session(dynamodb, tables, session_id) == seed_written
    assert raw_command(dynamodb, tables, record.command_id) is None


def test_seed_transition_under_a_stale_snapshot_is_detected(service, store, dynamodb, tables):
    session_id = new_id("s")
    service.handle(create(session_id))
    snapshot = store.load(session_id)
    # The seed's `transition`: an UpdateCommand of status and updated_at, nothing else.
    dynamodb.update_item(
        TableName=tables.sessions_table,
        Key={"sessionId": {"S": session_id}},
        UpdateExpression="SET #status = :status, updated_at = :now",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues={
            ":status": {"S": "requires_escalation"},
            ":now": {"S": "2999-01-01T00:00:00.000Z"},
        },
    )
    record, applied = decided(update(session_id, buyer={"email": "a@x"}), snapshot, session_id)

    with pytest.raises(SessionChanged) as changed:
        store.save(record, before=snapshot, applied=applied)

    assert changed.value.current.session.status == "requires_escalation"


class SeedWritesAfterFirstLoad:
    """A store whose first read is immediately overtaken by the seed's unconditional put."""

    def __init__(self, inner: DynamoSessionStore, seed_write) -> None:
        self.inner = inner
        self.seed_write = seed_write
        self.saves = 0

    def load(self, session_id: str):
        snapshot = self.inner.load(session_id)
        if self.seed_write:
            self.seed_write, write = None, self.seed_write
            write()
        return snapshot

    def save(self, record, *, before, applied):
        self.saves += 1
        return self.inner.save(record, before=before, applied=applied)


def test_service_keeps_both_the_seed_write_and_the_command(
    service, store, publisher, dynamodb, tables
):
    session_id = new_id("s")
    service.handle(create(session_id))
    racing = SeedWritesAfterFirstLoad(
        store,
        lambda: seed_rewrite(dynamodb, tables, session_id, buyer={"email": "seed@example.com"}),
    )
    address = {"line1": "1 Main St", "country": "US"}

    event = CheckoutService(racing, publisher).handle(update(session_id, shipping_address=address))

    item = raw_session(dynamodb, tables, session_id)
    assert racing.saves == 2  # the first save met the seed's write and was re-decided
    assert item["buyer"] == {"M": {"email": {"S": "seed@example.com"}}}
    assert item["shipping_address"]["M"]["line1"] == {"S": "1 Main St"}
    assert item["version"] == {"N": "2"}
    assert event.version == 2
    assert event.session["buyer"] == {"email": "seed@example.com"}
    codes = [m["M"]["code"]["S"] for m in item["messages"]["L"]]
    assert codes == ["missing_line_items", "missing_payment"]


def test_two_writers_from_one_snapshot_exactly_one_wins(service, store, dynamodb, tables):
    session_id = new_id("s")
    service.handle(create(session_id))
    snapshot = store.load(session_id)
    barrier = threading.Barrier(2)

    def write(email: str):
        record, applied = decided(update(session_id, buyer={"email": email}), snapshot, session_id)
        barrier.wait()
        try:
            store.save(record, before=snapshot, applied=applied)
        except SessionChanged as changed:
            return email, changed
        return email, None

    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(write, ["one@x", "two@x"]))

    winners = [email for email, conflict in outcomes if conflict is None]
    losers = [conflict for _, conflict in outcomes if conflict is not None]
    assert len(winners) == 1
    assert len(losers) == 1
    assert losers[0].current.version == 2
    assert losers[0].current.session.buyer.email == winners[0]
    item = raw_session(dynamodb, tables, session_id)
    assert item["version"] == {"N": "2"}
    assert item["buyer"]["M"]["email"] == {"S": winners[0]}


def test_second_save_from_the_same_snapshot_raises_session_changed(service, store, tables):
    session_id = new_id("s")
    service.handle(create(session_id))
    snapshot = store.load(session_id)
    first = decided(update(session_id, buyer={"email": "one@x"}), snapshot, session_id)
    second = decided(update(session_id, buyer={"email": "two@x"}), snapshot, session_id)

    store.save(first[0], before=snapshot, applied=first[1])
    with pytest.raises(SessionChanged):
        store.save(second[0], before=snapshot, applied=second[1])

    assert store.load(session_id).session.buyer.email == "one@x"


def test_a_landed_write_retried_from_its_stale_snapshot_is_already_recorded(service, store, tables):
    # A save whose response was lost and is tried again fails both conditions: it is a
    # duplicate to replay, not a conflict to re-decide.
    session_id = new_id("s")
    service.handle(create(session_id))
    snapshot = store.load(session_id)
    command = update(session_id, buyer={"email": "once@x"})
    first = service.handle(command)
    record, applied = decided(command, snapshot, session_id)

    with pytest.raises(AlreadyRecorded) as duplicate:
        store.save(record, before=snapshot, applied=applied)

    assert duplicate.value.record.event_json == first.to_json()
    assert store.load(session_id).version == 2


def test_load_reports_an_expired_item_still_in_the_table(service, store, dynamodb, tables):
    session_id = new_id("s")
    service.handle(create(session_id))
    assert store.load(session_id).expired is False

    expire(dynamodb, tables, session_id)

    snapshot = store.load(session_id)
    assert snapshot.expired is True
    assert snapshot.session.id == session_id
    assert store.load(new_id("absent")) is None


def test_ensure_tables_is_idempotent_and_enables_ttl(dynamodb, tables):
    assert ensure_tables(dynamodb, tables) == []

    for table, key in ((tables.sessions_table, "sessionId"), (tables.commands_table, "commandId")):
        description = dynamodb.describe_table(TableName=table)["Table"]
        assert description["KeySchema"] == [{"AttributeName": key, "KeyType": "HASH"}]
        ttl = dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
        assert ttl["TimeToLiveStatus"] == "ENABLED"
        assert ttl["AttributeName"] == "ttl"


def test_ensure_tables_reports_what_it_created(settings, dynamodb):
    done = ensure_tables(dynamodb, settings)

    assert done == [
        f"created table {settings.sessions_table}",
        f"enabled TTL on {settings.sessions_table}.ttl",
        f"created table {settings.commands_table}",
        f"enabled TTL on {settings.commands_table}.ttl",
    ]


def test_unreachable_dynamodb_is_store_unavailable(settings):
    closed = Settings(dynamodb_endpoint_url=f"http://127.0.0.1:{free_port()}")
    unreachable = DynamoSessionStore.from_settings(closed, client=make_dynamodb_client(closed))

    with pytest.raises(StoreUnavailable):
        unreachable.load("any-session")
