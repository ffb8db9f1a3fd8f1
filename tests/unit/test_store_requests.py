"""DynamoDB requests the session store builds, checked on a stubbed low-level client.

botocore's `Stubber` answers every call and the client validates each request
against the DynamoDB model, so no request here is shaped wrongly. Expressions are
rendered with their placeholders resolved, so the tests read as the conditions do.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from botocore.stub import Stubber

from schemas.commands import parse_command
from schemas.session import CheckoutSession
from tests.support.fakes import DictCopies
from worker.domain.ledger import LEDGER_SIZE, appended, ledger_entry
from worker.domain.rules import Applied, Snapshot, decide, new_session
from worker.dynamodb.items import (
    LEDGER,
    STORE_ONLY_ATTRIBUTES,
    from_item,
    session_item,
    snapshot_from_item,
    to_attribute,
    to_item,
)
from worker.dynamodb.store import DynamoSessionStore
from worker.errors import (
    CorruptSession,
    SessionChanged,
    StoreUnavailable,
    Transient,
    WriteRefused,
)

SESSION_TTL = 86_400
CREATED = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
LATER = datetime(2025, 3, 1, 12, 5, tzinfo=UTC)
# A day after the stored stamps: too late for a seed write to carry the same updated_at.
NOW = int(CREATED.timestamp()) + 24 * 60 * 60
ENTRY = ledger_entry("cmd-1", "f" * 64, "incomplete")
EARLIER = ledger_entry("cmd-0", "e" * 64, None)  # the create that made the stored item


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
def copies() -> DictCopies:
    return DictCopies()


@pytest.fixture
def store(client: Any, copies: DictCopies) -> DynamoSessionStore:
    return DynamoSessionStore(
        client,
        sessions_table="sessions",
        session_ttl_seconds=SESSION_TTL,
        copies=copies,
        clock=lambda: NOW + 0.9,
    )


def stored_session(**extra: Any) -> CheckoutSession:
    session = new_session("cs_1", "USD", CREATED)
    return CheckoutSession.model_validate({**session.to_document(), **extra})


def item(
    *,
    version: int | None = 3,
    ttl: int | None = NOW + 600,
    ledger: list[str] | None = None,
    **extra: Any,
) -> dict:
    values = session_item(
        stored_session(**extra),
        version=version or 0,
        ttl=ttl or 0,
        ledger=[EARLIER] if ledger is None else ledger,
    )
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


def write(
    stub: Stubber, store: DynamoSessionStore, requests, before, change, entry: str = ENTRY
) -> tuple[str, dict[str, Any], str | None]:
    """Save `change` over `before`: the one request it sent, and the copy the store kept."""
    operation = "put_item" if before is None or before.expired else "update_item"
    stub.add_response(operation, {})
    store.save(before=before, applied=change, ledger_entry=entry)
    [(name, params)] = requests
    return name, params, store._copies.get(change.session.id)


def update_request(stub, store, requests, before, change, entry: str = ENTRY) -> dict[str, Any]:
    name, params, _ = write(stub, store, requests, before, change, entry)
    assert name == "UpdateItem"
    return params


def refuse(stub: Stubber, operation: str = "update_item", **returned: Any) -> None:
    """The write's condition failed; `returned` is what ALL_OLD handed back (if anything)."""
    stub.add_client_error(
        operation,
        service_error_code="ConditionalCheckFailedException",
        service_message="The conditional request failed",
        modeled_fields=returned,
    )


# ─── Updates ───


def test_an_update_is_one_update_item_request(stub, store, requests) -> None:
    name, params, _ = write(stub, store, requests, snapshot(), add_buyer(snapshot()))
    assert name == "UpdateItem"
    assert (params["TableName"], params["Key"]) == ("sessions", {"sessionId": {"S": "cs_1"}})


def test_an_update_sets_only_the_changed_attributes_plus_ttl_version_and_ledger(
    stub, store, requests
) -> None:
    update = update_request(stub, store, requests, snapshot(), add_buyer(snapshot()))
    sets = assignments(update)
    assert set(sets) == {"buyer", "messages", "updated_at", "ttl", "version", LEDGER}
    assert (sets["version"], sets["ttl"]) == (4, NOW + SESSION_TTL)
    assert sets["buyer"] == {"email": "buyer@example.com"}
    assert sets["updated_at"] == "2025-03-01T12:05:00.000Z"
    assert " REMOVE " not in update["UpdateExpression"]


def test_an_update_appends_its_entry_to_the_ledger_it_read(stub, store, requests) -> None:
    before = snapshot(ledger=[EARLIER])
    update = update_request(stub, store, requests, before, add_buyer(before))
    # The create's entry, now older, loses its (empty) status; the new one keeps its own.
    assert assignments(update)[LEDGER] == [EARLIER.removesuffix(":"), ENTRY]


def test_an_update_keeps_the_ledger_at_its_bound(stub, store, requests) -> None:
    full = [ledger_entry(f"cmd-old-{n}", "a" * 64, "incomplete") for n in range(LEDGER_SIZE)]
    before = snapshot(ledger=full)
    update = update_request(stub, store, requests, before, add_buyer(before))
    ledger = assignments(update)[LEDGER]
    assert len(ledger) == LEDGER_SIZE
    assert ledger == appended(full, ENTRY)
    assert ledger[-1] == ENTRY
    assert all(entry.count(":") == 1 for entry in ledger[:-1])  # only the newest keeps a status


def test_an_update_of_a_session_without_a_ledger_starts_one(stub, store, requests) -> None:
    # A session the seed created: no version, no ledger attribute.
    seed_made = item(version=None)
    del seed_made[LEDGER]
    before = snapshot_from_item(seed_made, now=NOW)
    assert before.ledger == ()
    update = update_request(stub, store, requests, before, add_buyer(before))
    assert assignments(update)[LEDGER] == [ENTRY]


def test_an_update_is_conditioned_on_the_version_and_updated_at_it_read(
    stub, store, requests
) -> None:
    update = update_request(stub, store, requests, snapshot(), add_buyer(snapshot()))
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
    update = update_request(stub, store, requests, before, add_buyer(before))
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
    update = update_request(stub, store, requests, before, add_buyer(before))
    assert render(update["ConditionExpression"], update) == (
        f"attribute_not_exists(version) AND updated_at = '2025-03-01T12:00:00.000Z' AND ttl > {NOW}"
    )
    assert assignments(update)["version"] == 2


def test_an_update_of_an_item_without_ttl_allows_it_to_stay_without(stub, store, requests) -> None:
    before = snapshot(ttl=None)
    update = update_request(stub, store, requests, before, add_buyer(before))
    condition = render(update["ConditionExpression"], update)
    assert condition.endswith(f"AND (attribute_not_exists(ttl) OR ttl > {NOW})")
    assert assignments(update)["ttl"] == NOW + SESSION_TTL


def test_an_update_carries_unknown_attributes_through_untouched(stub, store, requests) -> None:
    before = snapshot(loyalty={"tier": "gold", "points": 1.5})
    update = update_request(stub, store, requests, before, add_buyer(before))
    assert "loyalty" not in assignments(update)


def test_the_kept_copy_is_the_item_as_updated_with_its_ledger(stub, store, requests) -> None:
    before = snapshot(loyalty={"tier": "gold"})
    change = add_buyer(before)
    _, _, copy = write(stub, store, requests, before, change)
    reloaded = store.load("cs_1")  # from the copy: no request stubbed
    assert not reloaded.fresh
    assert reloaded.ledger == (EARLIER.removesuffix(":"), ENTRY)
    assert (reloaded.version, reloaded.session) == (4, change.session)
    assert from_item(json.loads(copy)["item"])["loyalty"] == {"tier": "gold"}


# ─── Creates ───


@pytest.mark.parametrize("before", [None, "expired"])
def test_a_create_puts_the_whole_item_if_the_id_is_free_or_expired(
    stub, store, requests, before
) -> None:
    previous = snapshot_from_item(item(ttl=NOW), now=NOW) if before else None
    change = applied(previous, "create_session")
    entry = ledger_entry("cmd-1", "f" * 64, None)
    name, put, copy = write(stub, store, requests, previous, change, entry)
    assert name == "PutItem"
    assert put["TableName"] == "sessions"
    assert render(put["ConditionExpression"], put) == (
        f"attribute_not_exists(sessionId) OR ttl <= {NOW}"
    )
    assert put["ReturnValuesOnConditionCheckFailure"] == "ALL_OLD"
    # An expired session's ledger is not carried over: the new session starts its own.
    assert from_item(put["Item"]) == {
        "sessionId": "cs_1",
        **change.session.to_document(),
        "ttl": NOW + SESSION_TTL,
        "version": 1,
        LEDGER: [entry],
    }
    assert copy is not None
    assert store.load("cs_1").ledger == (entry,)


# ─── Reads ───


def test_load_reads_the_ledger_with_the_session(stub, store) -> None:
    stub.add_response("get_item", {"Item": item(ledger=[EARLIER, ENTRY])})
    assert store.load("cs_1").ledger == (EARLIER, ENTRY)


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


# ─── Failed conditions and other failures ───


def test_a_failed_condition_returns_the_current_snapshot_with_its_ledger(stub, store) -> None:
    current = item(version=4, buyer={"email": "other@example.com"}, ledger=[EARLIER, ENTRY])
    refuse(stub, Item=current)
    with pytest.raises(SessionChanged) as raised:
        store.save(before=snapshot(), applied=add_buyer(snapshot()), ledger_entry=ENTRY)
    assert raised.value.current == snapshot_from_item(current, now=NOW)
    assert (raised.value.current.version, raised.value.current.ledger) == (4, (EARLIER, ENTRY))


def test_a_failed_create_returns_the_live_session(stub, store) -> None:
    current = item(version=2)
    refuse(stub, "put_item", Item=current)
    with pytest.raises(SessionChanged) as raised:
        store.save(before=None, applied=applied(None, "create_session"), ledger_entry=ENTRY)
    assert raised.value.current == snapshot_from_item(current, now=NOW)


def test_a_failed_condition_on_a_corrupt_item_is_corrupt_not_changed(stub, store) -> None:
    # Deciding again on it would fail the same condition: the caller must not retry.
    refuse(stub, Item=corrupted("version", {"S": "4"}))
    with pytest.raises(CorruptSession, match="attribute `version` is a string"):
        store.save(before=snapshot(), applied=add_buyer(snapshot()), ledger_entry=ENTRY)


def test_load_of_a_corrupt_item_is_corrupt_after_one_read(stub, store, requests) -> None:
    stub.add_response("get_item", {"Item": corrupted("ttl", {"S": "soon"})})
    with pytest.raises(CorruptSession, match="attribute `ttl` is a string"):
        store.load("cs_1")
    assert [name for name, _ in requests] == ["GetItem"]


def test_a_failed_condition_without_the_item_reads_it_consistently(stub, store) -> None:
    refuse(stub)
    stub.add_response(
        "get_item",
        {"Item": item(version=5)},
        {"TableName": "sessions", "Key": {"sessionId": {"S": "cs_1"}}, "ConsistentRead": True},
    )
    with pytest.raises(SessionChanged) as raised:
        store.save(before=snapshot(), applied=add_buyer(snapshot()), ledger_entry=ENTRY)
    assert raised.value.current.version == 5


def test_a_session_deleted_under_an_update_is_changed_to_none(stub, store) -> None:
    refuse(stub)
    stub.add_response("get_item", {})
    with pytest.raises(SessionChanged) as raised:
        store.save(before=snapshot(), applied=add_buyer(snapshot()), ledger_entry=ENTRY)
    assert raised.value.current is None


@pytest.mark.parametrize("operation", ["update_item", "put_item"])
@pytest.mark.parametrize(
    "code", ["ThrottlingException", "ProvisionedThroughputExceededException", "InternalServerError"]
)
def test_throttling_is_store_unavailable(stub, store, code, operation) -> None:
    stub.add_client_error(operation, service_error_code=code, http_status_code=400)
    before = snapshot() if operation == "update_item" else None
    change = add_buyer(before) if before else applied(None, "create_session")
    with pytest.raises(StoreUnavailable) as raised:
        store.save(before=before, applied=change, ledger_entry=ENTRY)
    assert isinstance(raised.value, Transient)


def test_another_client_error_is_not_taken_for_a_conflict(stub, store) -> None:
    stub.add_client_error("update_item", service_error_code="AccessDeniedException")
    with pytest.raises(ClientError) as raised:
        store.save(before=snapshot(), applied=add_buyer(snapshot()), ledger_entry=ENTRY)
    assert not isinstance(raised.value, SessionChanged | StoreUnavailable)


def test_an_unreachable_endpoint_is_store_unavailable(client, store) -> None:
    def refuse(**_: Any) -> None:
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1")

    client.meta.events.register("before-call.dynamodb.GetItem", refuse)
    with pytest.raises(StoreUnavailable, match="unreachable"):
        store.load("cs_1")


def test_an_item_dynamodb_refuses_is_a_rejection_not_a_retry(stub, store) -> None:
    stub.add_client_error(
        "update_item",
        service_error_code="ValidationException",
        service_message="Nesting Levels have exceeded supported limits",
    )
    with pytest.raises(WriteRefused) as refused:
        store.save(before=snapshot(), applied=add_buyer(snapshot()), ledger_entry=ENTRY)
    assert refused.value.code == "validation_error"
    assert refused.value.message == (
        "DynamoDB cannot store checkout session cs_1: Nesting Levels have exceeded supported limits"
    )


def test_a_number_beyond_38_digits_is_refused_before_any_request(stub, store, requests) -> None:
    before = snapshot()
    change = applied(before, updates={"buyer": {"email": "a@example.com", "ref": 1}})
    # No command brings such a number now (schemas/numbers.py); the store's own check
    # stays for whatever else might.
    change.session.buyer.ref = 10**40
    with pytest.raises(WriteRefused, match="more than 38 significant digits"):
        store.save(before=before, applied=change, ledger_entry=ENTRY)
    assert requests == []


# ─── Item layout (worker/dynamodb/items.py) ───


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
    stored = session_item(session, version=2, ttl=NOW + 1, ledger=[ENTRY])
    loaded = snapshot_from_item(stored, now=NOW)
    assert loaded.session.to_document() == session.to_document()
    assert loaded.session.to_document()["loyalty"]["history"][0]["rate"] == 0.5


def test_the_item_layout_is_the_seeds() -> None:
    values = from_item(session_item(stored_session(), version=2, ttl=NOW, ledger=[ENTRY]))
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
    assert not {"sessionId", "ttl", "version", LEDGER} & set(document)
    assert LEDGER == "applied_commands"
    assert LEDGER in STORE_ONLY_ATTRIBUTES


def test_an_item_that_is_not_a_session_is_corrupt() -> None:
    broken = item()
    del broken["status"]
    with pytest.raises(
        CorruptSession, match=r"^stored session cs_1 is corrupt: status: Field required"
    ):
        snapshot_from_item(broken, now=NOW)


def corrupted(name: str, attribute: dict[str, Any]) -> dict:
    """`item()` with `name` (`totals.tax`: inside the totals) stored as `attribute`."""
    values = item()
    if name.startswith("totals."):
        values["totals"]["M"][name.removeprefix("totals.")] = attribute
    else:
        values[name] = attribute
    return values


@pytest.mark.parametrize(
    ("name", "stored", "problem"),
    [
        ("version", {"S": "7"}, "attribute `version` is a string ('7'), expected an integer"),
        (
            "version",
            {"N": "7.5"},
            "attribute `version` is a number with a fraction (7.5), expected an integer",
        ),
        ("version", {"BOOL": True}, "attribute `version` is a boolean (true), expected an integer"),
        ("version", {"NULL": True}, "attribute `version` is null, expected an integer"),
        ("version", {"M": {}}, "attribute `version` is a map, expected an integer"),
        ("ttl", {"S": str(NOW)}, f"attribute `ttl` is a string ('{NOW}'), expected an integer"),
        (
            "ttl",
            {"N": f"{NOW}.25"},
            f"attribute `ttl` is a number with a fraction ({NOW}.25), expected an integer",
        ),
        ("ttl", {"L": []}, "attribute `ttl` is a list, expected an integer"),
        ("totals", {"S": "0"}, "attribute `totals` is a string ('0'), expected a map"),
        (
            "totals.subtotal",
            {"S": "100"},
            "attribute `totals.subtotal` is a string ('100'), expected an integer",
        ),
        (
            "totals.total",
            {"N": "10.5"},
            "attribute `totals.total` is a number with a fraction (10.5), expected an integer",
        ),
        ("totals.fee", {"NULL": True}, "attribute `totals.fee` is null, expected an integer"),
        ("totals.tax", {"B": b"\x01"}, "attribute `totals.tax` is binary, expected an integer"),
        ("currency", {"N": "840"}, "currency: Input should be a valid string"),  # the model's check
        ("totals.currency", {"BOOL": False}, "totals.currency: Input should be a valid string"),
    ],
)
def test_an_attribute_of_the_wrong_type_makes_the_item_corrupt_naming_it(
    name, stored, problem
) -> None:
    with pytest.raises(CorruptSession) as raised:
        snapshot_from_item(corrupted(name, stored), now=NOW)
    assert raised.value.code == "corrupt_session"
    assert raised.value.message == f"stored session cs_1 is corrupt: {problem}"


def test_a_corrupt_value_is_shown_escaped_and_cut_short() -> None:
    with pytest.raises(CorruptSession) as raised:
        snapshot_from_item(corrupted("version", {"S": "7\n" + "x" * 100}), now=NOW)
    shown = repr("7\n" + "x" * 38) + "..."
    assert raised.value.message.endswith(f"`version` is a string ({shown}), expected an integer")


@pytest.mark.parametrize("number", ["7", "7.0", "0.7E1", "-0"])
def test_an_integral_number_in_any_notation_is_readable(number) -> None:
    loaded = snapshot_from_item(corrupted("version", {"N": number}), now=NOW)
    assert loaded.version == int(float(number))


@pytest.mark.parametrize(
    ("stored", "ledger"),
    [
        ([EARLIER, ENTRY], (EARLIER, ENTRY)),
        ([], ()),
        (None, ()),  # a seed-created item: no ledger attribute
        ("not a list", ()),
        ([EARLIER, 7, ENTRY], (EARLIER, ENTRY)),  # only strings are entries
    ],
    ids=["entries", "empty", "absent", "not-a-list", "mixed"],
)
def test_the_ledger_is_read_from_the_item(stored, ledger) -> None:
    values = item()
    if stored is None:
        del values[LEDGER]
    else:
        values[LEDGER] = to_attribute(stored)
    assert snapshot_from_item(values, now=NOW).ledger == ledger


def test_the_ledger_is_stored_as_a_list_of_strings() -> None:
    values = session_item(stored_session(), version=1, ttl=NOW, ledger=[EARLIER, ENTRY])
    assert values[LEDGER] == {"L": [{"S": EARLIER}, {"S": ENTRY}]}
