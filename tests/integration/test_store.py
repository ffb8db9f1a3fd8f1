"""DynamoSessionStore against a moto server: conditional writes, tables, failures."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from schemas import command_fingerprint, event_id_for, parse_command
from schemas.events import public_snapshot
from tasks.embedded.stack import free_port
from tests.integration.helpers import (
    create,
    decided,
    expire,
    ledger_holds,
    new_id,
    raw_ledger,
    raw_session,
    seed_rewrite,
    stream_entries,
    update,
)
from tests.support.publishing import PublishingService
from worker.domain.ledger import find_applied
from worker.dynamodb.clients import make_dynamodb_client
from worker.dynamodb.store import DynamoSessionStore
from worker.dynamodb.tables import ensure_tables
from worker.errors import SessionChanged, StoreUnavailable
from worker.settings import Settings


@pytest.fixture(params=["http", "botocore"])
def store(request, tables, monkeypatch):
    """Every test here runs on both of the store's clients (`CHECKOUT_DYNAMODB_CLIENT`)."""
    monkeypatch.setenv("CHECKOUT_DYNAMODB_CLIENT", request.param)
    return DynamoSessionStore.from_settings(Settings())


def test_save_over_a_seed_write_raises_session_changed(service, store, dynamodb, tables):
    session_id = new_id("s")
    service.handle(create(session_id))
    snapshot = store.load(session_id)
    seed_written = seed_rewrite(dynamodb, tables, session_id, continue_url="https://seed/next")
    command = update(session_id, buyer={"email": "a@x"})
    entry, applied = decided(command, snapshot, session_id)

    with pytest.raises(SessionChanged) as changed:
        store.save(before=snapshot, applied=applied, ledger_entry=entry)

    current = changed.value.current
    assert current.session.continue_url == "https://seed/next"
    assert current.session.updated_at == seed_written["updated_at"]["S"]
    assert current.version == 1
    assert current.ledger == snapshot.ledger  # the seed carried it through, unchanged
    assert raw_session(dynamodb, tables, session_id) == seed_written
    assert not ledger_holds(raw_ledger(dynamodb, tables, session_id), command)


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
    entry, applied = decided(update(session_id, buyer={"email": "a@x"}), snapshot, session_id)

    with pytest.raises(SessionChanged) as changed:
        store.save(before=snapshot, applied=applied, ledger_entry=entry)

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

    def save(self, *, before, applied, ledger_entry):
        self.saves += 1
        return self.inner.save(before=before, applied=applied, ledger_entry=ledger_entry)


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

    racer = PublishingService(racing, publisher)
    event = racer.handle(update(session_id, shipping_address=address))

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
        entry, applied = decided(update(session_id, buyer={"email": email}), snapshot, session_id)
        barrier.wait()
        try:
            store.save(before=snapshot, applied=applied, ledger_entry=entry)
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

    store.save(before=snapshot, applied=first[1], ledger_entry=first[0])
    with pytest.raises(SessionChanged):
        store.save(before=snapshot, applied=second[1], ledger_entry=second[0])

    assert store.load(session_id).session.buyer.email == "one@x"


def test_a_landed_write_retried_is_session_changed_with_its_entry_newest(
    service, store, dynamodb, tables, redis_client
):
    # A save whose response was lost and is sent again fails its condition: the item
    # handed back already holds the write, and its ledger shows the entry as the newest.
    session_id = new_id("s")
    service.handle(create(session_id))
    snapshot = store.load(session_id)
    command = update(session_id, buyer={"email": "once@x"})
    entry, applied = decided(command, snapshot, session_id)

    store.save(before=snapshot, applied=applied, ledger_entry=entry)  # landed; reply "lost"
    with pytest.raises(SessionChanged) as retried:
        store.save(before=snapshot, applied=applied, ledger_entry=entry)

    current = retried.value.current
    assert current.version == 2
    assert current.ledger[-1] == entry
    assert current.ledger[:-1] == tuple(":".join(e.split(":")[:2]) for e in snapshot.ledger)
    fingerprint = command_fingerprint(parse_command(command))
    found = find_applied(current.ledger, command["command_id"], fingerprint)
    assert (found.same_content, found.newest, found.previous_status) == (True, True, "incomplete")
    item = raw_session(dynamodb, tables, session_id)

    # The service, given the command again, replays it from the item: no second write.
    event = service.handle(command)

    assert raw_session(dynamodb, tables, session_id) == item
    assert (event.type, event.version, event.previous_status) == (
        "session.updated",
        2,
        "incomplete",
    )
    assert event.event_id == event_id_for(command["command_id"], fingerprint)
    assert event.session == public_snapshot(applied.session.to_document())
    assert event.occurred_at == applied.session.updated_at
    assert service.handle(command).to_json() == event.to_json()


class LosesTheFirstReply:
    """A store whose first save lands but whose reply is lost: botocore sends it again."""

    def __init__(self, inner: DynamoSessionStore) -> None:
        self.inner, self.lost = inner, False

    def load(self, session_id: str, **options):
        return self.inner.load(session_id, **options)

    def save(self, **write):
        if not self.lost:
            self.lost = True
            self.inner.save(**write)  # the write lands; its response never arrives
        return self.inner.save(**write)


def test_the_service_replays_a_write_whose_reply_was_lost(
    service, store, publisher, dynamodb, tables, redis_client
):
    session_id = new_id("s")
    service.handle(create(session_id))
    command = update(session_id, buyer={"email": "once@x"})
    retrying = PublishingService(LosesTheFirstReply(store), publisher)

    event = retrying.handle(command)

    assert (event.type, event.version, event.previous_status) == (
        "session.updated",
        2,
        "incomplete",
    )
    assert event.session["buyer"] == {"email": "once@x"}
    item = raw_session(dynamodb, tables, session_id)
    assert item["version"] == {"N": "2"}
    assert len(raw_ledger(dynamodb, tables, session_id)) == 2
    # What it published is what any later delivery publishes: byte for byte.
    assert service.handle(command).to_json() == event.to_json()
    entries = [fields["event"] for _, fields in stream_entries(redis_client, tables)]
    assert entries[-2] == entries[-1] == event.to_json()


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
    assert ensure_tables(dynamodb, tables).done == []

    table = tables.sessions_table
    description = dynamodb.describe_table(TableName=table)["Table"]
    assert description["KeySchema"] == [{"AttributeName": "sessionId", "KeyType": "HASH"}]
    ttl = dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    assert ttl["TimeToLiveStatus"] == "ENABLED"
    assert ttl["AttributeName"] == "ttl"


def test_ensure_tables_reports_what_it_created(settings, dynamodb):
    report = ensure_tables(dynamodb, settings)

    assert report.ttl_unsupported is None
    assert report.done == [
        f"created table {settings.sessions_table}",
        f"enabled TTL on {settings.sessions_table}.ttl",
    ]
    suffix = settings.sessions_table.removeprefix("sessions_")
    pages = dynamodb.get_paginator("list_tables").paginate()
    names = [name for page in pages for name in page["TableNames"]]
    assert [name for name in names if suffix in name] == [settings.sessions_table]


def test_unreachable_dynamodb_is_store_unavailable(settings):
    closed = Settings(dynamodb_endpoint_url=f"http://127.0.0.1:{free_port()}")
    unreachable = DynamoSessionStore.from_settings(closed, client=make_dynamodb_client(closed))

    with pytest.raises(StoreUnavailable):
        unreachable.load("any-session")
