"""DynamoDB requests the session store builds, checked on a stubbed low-level client.

botocore's `Stubber` answers every call and the client validates each request
against the DynamoDB model, so no request here is shaped wrongly. Expressions are
rendered with their placeholders resolved, so the tests read as the conditions do.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber

from schemas.commands import parse_command
from schemas.session import CheckoutSession
from worker.domain import Applied, Snapshot, decide, new_session
from worker.errors import (
    AlreadyRecorded,
    SessionChanged,
    StoredSessionInvalid,
    StoreUnavailable,
    Transient,
    WriteRefused,
)
from worker.service import CommandRecord
from worker.store import DynamoSessionStore
from worker.store_items import (
    from_item,
    record_from_item,
    record_item,
    session_item,
    snapshot_from_item,
    to_attribute,
    to_item,
)

SESSION_TTL = 86_400
COMMAND_TTL = 604_800
CREATED = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
LATER = datetime(2025, 3, 1, 12, 5, tzinfo=UTC)
# A day after the stored stamps: too late for a seed write to carry the same updated_at.
NOW = int(CREATED.timestamp()) + 24 * 60 * 60
RECORD = CommandRecord("cmd-1", "f" * 64, "cs_1", '{"event_id":"e1"}')


# ─── Builders ───


@pytest.fixture
def client() -> Any:
    return boto3.client(
        "dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )


@pytest.fixture
def stub(client: Any) -> Iterator[Stubber]:
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def requests(client: Any) -> list[tuple[str, dict[str, Any]]]:
    """(operation, params) of every call the store makes, as the client received them."""
    seen: list[tuple[str, dict[str, Any]]] = []

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        seen.append((model.name, params))  # returns None: the request is left unchanged

    client.meta.events.register("provide-client-params.dynamodb.*", record)
    return seen


@pytest.fixture
def store(client: Any) -> DynamoSessionStore:
    return DynamoSessionStore(
        client,
        sessions_table="sessions",
        commands_table="commands",
        session_ttl_seconds=SESSION_TTL,
        command_ttl_seconds=COMMAND_TTL,
        clock=lambda: NOW + 0.9,
    )


def stored_session(**extra: Any) -> CheckoutSession:
    session = new_session("cs_1", "USD", CREATED)
    return CheckoutSession.model_validate({**session.to_document(), **extra})


def item(*, version: int | None = 3, ttl: int | None = NOW + 600, **extra: Any) -> dict:
    values = session_item(stored_session(**extra), version=version or 0, ttl=ttl or 0)
    if version is None:
        del values["version"]
    if ttl is None:
        del values["ttl"]
    return values


def snapshot(**options: Any) -> Snapshot:
    return snapshot_from_item(item(**options), now=NOW)


def applied(before: Snapshot | None, kind: str = "update_session", **fields: Any) -> Applied:
    body = {"command_id": "cmd-1", "type": kind, "session_id": "cs_1", **fields}
    return decide(parse_command(body), before, now=LATER, session_id="cs_1")


def add_buyer(before: Snapshot) -> Applied:
    return applied(before, updates={"buyer": {"email": "buyer@example.com"}})


def value(attribute: dict[str, Any]) -> Any:
    return from_item({"v": attribute})["v"]


def render(expression: str, request: dict[str, Any]) -> str:
    names = request.get("ExpressionAttributeNames", {})
    values = request.get("ExpressionAttributeValues", {})
    expression = re.sub(r"#\w+", lambda m: names[m.group()], expression)
    return re.sub(r":\w+", lambda m: repr(value(values[m.group()])), expression)


def assignments(update: dict[str, Any]) -> dict[str, Any]:
    """The SET clause of an UpdateExpression as {attribute: value}."""
    sets, _, _ = update["UpdateExpression"].removeprefix("SET ").partition(" REMOVE ")
    pairs = (part.split(" = ") for part in sets.split(", "))
    return {
        update["ExpressionAttributeNames"][name]: value(update["ExpressionAttributeValues"][v])
        for name, v in pairs
    }


def transact(stub: Stubber, store: DynamoSessionStore, requests, before, change) -> list[dict]:
    stub.add_response("transact_write_items", {})
    store.save(RECORD, before=before, applied=change)
    [(operation, params)] = requests
    assert operation == "TransactWriteItems"
    return params["TransactItems"]


def cancel(stub: Stubber, *reasons: dict[str, Any]) -> None:
    stub.add_client_error(
        "transact_write_items",
        service_error_code="TransactionCanceledException",
        service_message="Transaction cancelled",
        modeled_fields={"CancellationReasons": list(reasons)},
    )


NONE = {"Code": "None"}


# ─── Updates ───


def test_an_update_sets_only_the_changed_attributes_plus_ttl_and_version(
    stub, store, requests
) -> None:
    update = transact(stub, store, requests, snapshot(), add_buyer(snapshot()))[0]["Update"]
    sets = assignments(update)
    assert set(sets) == {"buyer", "messages", "updated_at", "ttl", "version"}
    assert (sets["version"], sets["ttl"]) == (4, NOW + SESSION_TTL)
    assert sets["buyer"] == {"email": "buyer@example.com"}
    assert sets["updated_at"] == "2025-03-01T12:05:00.000Z"
    assert " REMOVE " not in update["UpdateExpression"]
    assert (update["TableName"], update["Key"]) == ("sessions", {"sessionId": {"S": "cs_1"}})


def test_an_update_is_conditioned_on_the_version_and_updated_at_it_read(
    stub, store, requests
) -> None:
    update = transact(stub, store, requests, snapshot(), add_buyer(snapshot()))[0]["Update"]
    assert render(update["ConditionExpression"], update) == (
        f"version = 3 AND updated_at = '2025-03-01T12:00:00.000Z' AND ttl > {NOW}"
    )
    assert update["ReturnValuesOnConditionCheckFailure"] == "ALL_OLD"


def test_an_update_of_a_recently_written_item_also_compares_every_decision_input(
    stub, store, requests
) -> None:
    # Loaded the second it was written: a seed write could carry the very same stamp.
    before = snapshot_from_item(
        item(buyer={"email": "a@example.com"}), now=int(CREATED.timestamp())
    )
    update = transact(stub, store, requests, before, add_buyer(before))[0]["Update"]
    assert render(update["ConditionExpression"], update) == (
        "version = 3 AND updated_at = '2025-03-01T12:00:00.000Z' AND status = 'incomplete' "
        "AND currency = 'USD' AND line_items = [] AND buyer = {'email': 'a@example.com'} "
        "AND attribute_not_exists(shipping_address) AND attribute_not_exists(billing_address) "
        f"AND payment_instruments = [] AND attribute_not_exists(continue_url) AND ttl > {NOW}"
    )


def test_an_update_of_a_seed_created_session_requires_it_still_has_no_version(
    stub, store, requests
) -> None:
    before = snapshot(version=None)
    assert (before.version, before.token.version) == (1, None)
    update = transact(stub, store, requests, before, add_buyer(before))[0]["Update"]
    assert render(update["ConditionExpression"], update) == (
        f"attribute_not_exists(version) AND updated_at = '2025-03-01T12:00:00.000Z' AND ttl > {NOW}"
    )
    assert assignments(update)["version"] == 2


def test_an_update_of_an_item_without_ttl_allows_it_to_stay_without(stub, store, requests) -> None:
    before = snapshot(ttl=None)
    update = transact(stub, store, requests, before, add_buyer(before))[0]["Update"]
    condition = render(update["ConditionExpression"], update)
    assert condition.endswith(f"AND (attribute_not_exists(ttl) OR ttl > {NOW})")
    assert assignments(update)["ttl"] == NOW + SESSION_TTL


def test_an_update_carries_unknown_attributes_through_untouched(stub, store, requests) -> None:
    before = snapshot(loyalty={"tier": "gold", "points": 1.5})
    update = transact(stub, store, requests, before, add_buyer(before))[0]["Update"]
    assert "loyalty" not in assignments(update)


def test_the_command_record_commits_in_the_same_transaction(stub, store, requests) -> None:
    items = transact(stub, store, requests, snapshot(), add_buyer(snapshot()))
    put = items[1]["Put"]
    assert put["TableName"] == "commands"
    assert from_item(put["Item"]) == {
        "commandId": "cmd-1",
        "fingerprint": RECORD.fingerprint,
        "event": RECORD.event_json,
        "sessionId": "cs_1",
        "ttl": NOW + COMMAND_TTL,
    }
    assert render(put["ConditionExpression"], put) == (
        f"attribute_not_exists(commandId) OR ttl <= {NOW}"
    )
    assert put["ReturnValuesOnConditionCheckFailure"] == "ALL_OLD"


# ─── Creates and record-only writes ───


@pytest.mark.parametrize("before", [None, "expired"])
def test_a_create_puts_the_whole_item_if_the_id_is_free_or_expired(
    stub, store, requests, before
) -> None:
    previous = snapshot_from_item(item(ttl=NOW), now=NOW) if before else None
    change = applied(previous, "create_session")
    put = transact(stub, store, requests, previous, change)[0]["Put"]
    assert render(put["ConditionExpression"], put) == (
        f"attribute_not_exists(sessionId) OR ttl <= {NOW}"
    )
    assert from_item(put["Item"]) == {
        "sessionId": "cs_1",
        **change.session.to_document(),
        "ttl": NOW + SESSION_TTL,
        "version": 1,
    }


def test_a_rejection_writes_only_its_record(stub, store, requests) -> None:
    stub.add_response("put_item", {})
    store.save(RECORD, before=snapshot(), applied=None)
    [(operation, params)] = requests
    assert (operation, params["TableName"]) == ("PutItem", "commands")
    assert from_item(params["Item"])["commandId"] == "cmd-1"
    assert render(params["ConditionExpression"], params) == (
        f"attribute_not_exists(commandId) OR ttl <= {NOW}"
    )


def test_a_rejection_already_recorded_replays_the_returned_record(stub, store) -> None:
    stub.add_client_error(
        "put_item",
        service_error_code="ConditionalCheckFailedException",
        modeled_fields={"Item": record_item(RECORD, ttl=NOW + 5)},
    )
    with pytest.raises(AlreadyRecorded) as raised:
        store.save(RECORD, before=None, applied=None)
    assert raised.value.record == RECORD


def test_a_rejection_already_recorded_without_the_item_reads_the_record(stub, store) -> None:
    stub.add_client_error("put_item", service_error_code="ConditionalCheckFailedException")
    stub.add_response(
        "get_item",
        {"Item": record_item(RECORD, ttl=NOW + 5)},
        {"TableName": "commands", "Key": {"commandId": {"S": "cmd-1"}}, "ConsistentRead": True},
    )
    with pytest.raises(AlreadyRecorded) as raised:
        store.save(RECORD, before=None, applied=None)
    assert raised.value.record == RECORD


# ─── Reads ───


def test_load_is_a_consistent_read_of_the_session(stub, store) -> None:
    expected = {"TableName": "sessions", "Key": {"sessionId": {"S": "cs_1"}}}
    stub.add_response("get_item", {"Item": item()}, {**expected, "ConsistentRead": True})
    loaded = store.load("cs_1")
    assert (loaded.version, loaded.expired, loaded.session) == (3, False, stored_session())


def test_load_of_a_missing_item_is_none(stub, store) -> None:
    stub.add_response("get_item", {})
    assert store.load("cs_1") is None


def test_load_of_an_item_past_its_ttl_is_expired(stub, store) -> None:
    stub.add_response("get_item", {"Item": item(ttl=NOW)})
    assert store.load("cs_1").expired


# ─── Transaction outcomes ───


def test_a_recorded_command_wins_over_a_failed_session_condition(stub, store) -> None:
    cancel(
        stub,
        {"Code": "ConditionalCheckFailed", "Item": item(version=4)},
        {"Code": "ConditionalCheckFailed", "Item": record_item(RECORD, ttl=NOW + 5)},
    )
    with pytest.raises(AlreadyRecorded) as raised:
        store.save(RECORD, before=snapshot(), applied=add_buyer(snapshot()))
    assert raised.value.record == RECORD


def test_a_failed_session_condition_returns_the_current_snapshot(stub, store) -> None:
    current = item(version=4, buyer={"email": "other@example.com"})
    cancel(stub, {"Code": "ConditionalCheckFailed", "Item": current}, NONE)
    with pytest.raises(SessionChanged) as raised:
        store.save(RECORD, before=snapshot(), applied=add_buyer(snapshot()))
    assert raised.value.current == snapshot_from_item(current, now=NOW)
    assert raised.value.current.version == 4


@pytest.mark.parametrize("code", ["ConditionalCheckFailed", "TransactionConflict"])
def test_a_session_conflict_without_the_item_reloads_it(stub, store, code) -> None:
    cancel(stub, {"Code": code}, NONE)
    stub.add_response("get_item", {"Item": item(version=5)})
    with pytest.raises(SessionChanged) as raised:
        store.save(RECORD, before=snapshot(), applied=add_buyer(snapshot()))
    assert raised.value.current.version == 5


def test_a_session_deleted_under_an_update_is_changed_to_none(stub, store) -> None:
    cancel(stub, {"Code": "ConditionalCheckFailed"}, NONE)
    stub.add_response("get_item", {})
    with pytest.raises(SessionChanged) as raised:
        store.save(RECORD, before=snapshot(), applied=add_buyer(snapshot()))
    assert raised.value.current is None


@pytest.mark.parametrize(
    "reasons",
    [
        ({"Code": "ThrottlingError"}, NONE),
        (NONE, {"Code": "ProvisionedThroughputExceeded"}),
    ],
)
def test_a_transaction_canceled_for_capacity_is_store_unavailable(stub, store, reasons) -> None:
    cancel(stub, *reasons)
    with pytest.raises(StoreUnavailable):
        store.save(RECORD, before=snapshot(), applied=add_buyer(snapshot()))


@pytest.mark.parametrize(
    "code", ["ThrottlingException", "ProvisionedThroughputExceededException", "InternalServerError"]
)
def test_throttling_is_store_unavailable(stub, store, code) -> None:
    stub.add_client_error("transact_write_items", service_error_code=code, http_status_code=400)
    with pytest.raises(StoreUnavailable) as raised:
        store.save(RECORD, before=snapshot(), applied=add_buyer(snapshot()))
    assert isinstance(raised.value, Transient)


def test_an_unreachable_endpoint_is_store_unavailable(client, store) -> None:
    def refuse(**_: Any) -> None:
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1")

    client.meta.events.register("before-call.dynamodb.GetItem", refuse)
    with pytest.raises(StoreUnavailable, match="unreachable"):
        store.load("cs_1")


def test_an_item_dynamodb_refuses_is_a_rejection_not_a_retry(stub, store) -> None:
    stub.add_client_error(
        "transact_write_items",
        service_error_code="ValidationException",
        service_message="Nesting Levels have exceeded supported limits",
    )
    with pytest.raises(WriteRefused) as refused:
        store.save(RECORD, before=snapshot(), applied=add_buyer(snapshot()))
    assert refused.value.code == "validation_error"
    assert refused.value.message == (
        "DynamoDB cannot store checkout session cs_1: Nesting Levels have exceeded supported limits"
    )


def test_a_number_beyond_38_digits_is_refused_before_any_request(stub, store) -> None:
    before = snapshot()
    change = applied(before, updates={"buyer": {"email": "a@example.com", "ref": 10**40}})
    with pytest.raises(WriteRefused, match="more than 38 significant digits"):
        store.save(RECORD, before=before, applied=change)


# ─── Item layout (worker/store_items.py) ───


@pytest.mark.parametrize(
    ("plain", "attribute"),
    [
        (1.5, {"N": "1.5"}),
        (0.1, {"N": "0.1"}),
        (1250, {"N": "1250"}),
        (-3, {"N": "-3"}),
        ([1, 2.25], {"L": [{"N": "1"}, {"N": "2.25"}]}),
        ({"a": {"b": 0.5}}, {"M": {"a": {"M": {"b": {"N": "0.5"}}}}}),
        (None, {"NULL": True}),
        (True, {"BOOL": True}),
    ],
)
def test_numbers_are_stored_as_decimals_and_read_back_as_python_numbers(plain, attribute) -> None:
    assert to_attribute(plain) == attribute
    assert value(attribute) == plain
    assert type(value(attribute)) is type(plain)


def test_ints_stay_ints_and_fractions_floats_through_the_item() -> None:
    values = from_item(to_item({"amount": 1250, "rate": 0.08}))
    assert (values["amount"], type(values["amount"])) == (1250, int)
    assert (values["rate"], type(values["rate"])) == (0.08, float)


def test_a_decimal_from_the_deserializer_becomes_an_int_or_a_float() -> None:
    assert from_item({"a": {"N": "7"}, "b": {"N": "7.25"}}) == {"a": 7, "b": 7.25}
    assert to_attribute(Decimal("7.25")) == {"N": "7.25"}


def test_a_session_round_trips_with_unknown_nested_attributes() -> None:
    session = stored_session(
        line_items=[{"type": "product", "total_amount": 1250, "meta": {"weight": 1.25}}],
        loyalty={"tier": "gold", "history": [{"points": 10, "rate": 0.5}]},
    )
    loaded = snapshot_from_item(session_item(session, version=2, ttl=NOW + 1), now=NOW)
    assert loaded.session.to_document() == session.to_document()
    assert loaded.session.to_document()["loyalty"]["history"][0]["rate"] == 0.5


def test_the_item_layout_is_the_seeds() -> None:
    values = from_item(session_item(stored_session(), version=2, ttl=NOW))
    assert (values["sessionId"], values["ttl"], values["version"]) == ("cs_1", NOW, 2)
    assert values["totals"]["currency"] == "USD"
    assert "buyer" not in values


@pytest.mark.parametrize(("ttl", "expired"), [(NOW - 1, True), (NOW, True), (NOW + 1, False)])
def test_a_snapshot_is_expired_once_its_ttl_has_passed(ttl, expired) -> None:
    assert snapshot_from_item(item(ttl=ttl), now=NOW).expired is expired


def test_an_item_without_ttl_never_expires() -> None:
    loaded = snapshot_from_item(item(ttl=None), now=NOW)
    assert (loaded.expired, loaded.token.has_ttl) == (False, False)


def test_a_seed_created_item_without_version_is_at_version_1() -> None:
    loaded = snapshot_from_item(item(version=None), now=NOW)
    assert (loaded.version, loaded.token.version) == (1, None)
    assert loaded.token.updated_at == "2025-03-01T12:00:00.000Z"


def test_store_only_attributes_stay_out_of_the_session() -> None:
    document = snapshot_from_item(item(), now=NOW).session.to_document()
    assert not {"sessionId", "ttl", "version"} & set(document)


def test_an_item_that_is_not_a_session_is_stored_session_invalid() -> None:
    broken = item()
    del broken["status"]
    with pytest.raises(StoredSessionInvalid, match=r"cs_1 .*status: Field required"):
        snapshot_from_item(broken, now=NOW)


@pytest.mark.parametrize("session_id", ["cs_1", None])
def test_a_command_record_round_trips(session_id) -> None:
    record = CommandRecord("cmd-7", "ab" * 32, session_id, '{"event_id":"x","version":2}')
    stored = record_item(record, ttl=NOW)
    assert ("sessionId" in stored) is (session_id is not None)
    assert record_from_item(stored) == record
