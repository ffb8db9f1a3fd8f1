"""worker.dynamodb.http against the moto server: the same requests through botocore's
client and through ours give the same answers, and the same `error.response` fields
the store reads. Faults come from a real closed port and the fault proxy
(tests/faults/fault_proxy.py) in front of moto; nothing here mocks HTTP.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
)
from botocore.parsers import ResponseParserError
from prometheus_client import REGISTRY

from tasks.embedded.stack import free_port
from tests.faults.fault_proxy import FaultProxy
from tests.integration.helpers import create, new_id, raw_session, seed_rewrite, update
from worker.dynamodb.clients import make_http_client
from worker.dynamodb.http import DynamoDBHttpClient

pytestmark = pytest.mark.integration

BINARY = {
    "bin_value": {"B": b"\x00\x01\xfe\xff"},
    "bin_set": {"BS": [b"one", b"\x00two"]},
    "nested_map": {"M": {"inner": {"B": b"in"}, "list": {"L": [{"B": b"l0"}, {"S": "s"}]}}},
}


@pytest.fixture
def table(dynamodb) -> str:
    """A table of this test's own, key `pk` (S)."""
    name = f"http_{uuid.uuid4().hex[:10]}"
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return name


@pytest.fixture
def ours(settings) -> DynamoDBHttpClient:
    client = make_http_client(settings)
    yield client
    client.close()


def credentials() -> Any:
    """The test environment's credentials (the moto server takes any)."""
    return boto3.session.Session().get_credentials()


def item(key: str, **extra: Any) -> dict[str, Any]:
    return {"pk": {"S": key}, "version": {"N": "1"}, "item_title": {"S": "Widget"}, **extra}


def answer(response: dict[str, Any]) -> dict[str, Any]:
    """A response without what differs between any two answers (request id, date)."""
    return {name: value for name, value in response.items() if name != "ResponseMetadata"}


def both(dynamodb, ours, reset: Callable[[], None], call: Callable[[Any], Any]) -> tuple[Any, Any]:
    """`call` through botocore's client, then through ours, from the same table state."""
    results = []
    for client in (dynamodb, ours):
        reset()
        try:
            results.append(call(client))
        except ClientError as error:
            results.append(error)
    return results[0], results[1]


def same_metadata(botocore_response: dict, our_response: dict) -> None:
    theirs, mine = botocore_response["ResponseMetadata"], our_response["ResponseMetadata"]
    assert set(mine) == set(theirs)
    assert mine["HTTPStatusCode"] == theirs["HTTPStatusCode"]
    assert mine["RetryAttempts"] == theirs["RetryAttempts"] == 0
    assert set(mine["HTTPHeaders"]) == set(theirs["HTTPHeaders"])


# ─── Same request, same answer ───


def test_put_item_answers_as_botocore(dynamodb, ours, table) -> None:
    def reset() -> None:
        dynamodb.put_item(TableName=table, Item=item("a", **BINARY))

    def put(client: Any) -> dict:
        return client.put_item(
            TableName=table,
            Item=item("a", version={"N": "2"}),
            ConditionExpression="version = :v",
            ExpressionAttributeValues={":v": {"N": "1"}},
            ReturnValues="ALL_OLD",
            ReturnConsumedCapacity="TOTAL",
        )

    theirs, mine = both(dynamodb, ours, reset, put)
    assert answer(mine) == answer(theirs)
    assert mine["Attributes"]["bin_value"] == {"B": b"\x00\x01\xfe\xff"}
    same_metadata(theirs, mine)


def test_get_item_answers_as_botocore(dynamodb, ours, table) -> None:
    dynamodb.put_item(TableName=table, Item=item("a", **BINARY))
    for key in ("a", "missing"):
        request = {"TableName": table, "Key": {"pk": {"S": key}}, "ConsistentRead": True}
        theirs, mine = dynamodb.get_item(**request), ours.get_item(**request)
        assert answer(mine) == answer(theirs)
        same_metadata(theirs, mine)
    projected = {
        "TableName": table,
        "Key": {"pk": {"S": "a"}},
        "ProjectionExpression": "#t, bin_value",
        "ExpressionAttributeNames": {"#t": "item_title"},
    }
    assert answer(ours.get_item(**projected)) == answer(dynamodb.get_item(**projected))


def test_update_item_answers_as_botocore(dynamodb, ours, table) -> None:
    def reset() -> None:
        dynamodb.put_item(TableName=table, Item=item("a"))

    def update_(client: Any) -> dict:
        return client.update_item(
            TableName=table,
            Key={"pk": {"S": "a"}},
            UpdateExpression="SET #v = :next, bin_value = :bin, tag_set = :tags",
            ConditionExpression="#v = :current",
            ExpressionAttributeNames={"#v": "version"},
            ExpressionAttributeValues={
                ":next": {"N": "2"},
                ":current": {"N": "1"},
                ":bin": {"B": b"\xff\x00"},
                ":tags": {"SS": ["x", "y"]},
            },
            ReturnValues="ALL_NEW",
        )

    theirs, mine = both(dynamodb, ours, reset, update_)
    assert answer(mine) == answer(theirs)
    assert mine["Attributes"]["bin_value"] == {"B": b"\xff\x00"}
    same_metadata(theirs, mine)


# ─── Conditional failures: the fields the store reads ───


def the_store_reads(error: ClientError) -> dict[str, Any]:
    response = error.response
    return {
        "Error": response["Error"],
        "Item": response.get("Item"),
        "CancellationReasons": response.get("CancellationReasons"),
        "message": response.get("message"),
        "Message": response.get("Message"),
        "status": response["ResponseMetadata"]["HTTPStatusCode"],
        "retries": response["ResponseMetadata"]["RetryAttempts"],
        "keys": set(response),
    }


@pytest.mark.parametrize("operation", ["put", "update"])
def test_a_failed_condition_with_all_old_is_botocores(dynamodb, ours, table, operation) -> None:
    stored = item("a", version={"N": "7"}, **BINARY)
    condition = {
        "ConditionExpression": "version = :expected",
        "ExpressionAttributeValues": {":expected": {"N": "6"}},
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }
    put = {"TableName": table, "Item": item("a", version={"N": "8"}), **condition}
    update_ = {
        "TableName": table,
        "Key": {"pk": {"S": "a"}},
        "UpdateExpression": "SET item_title = :t",
        **condition,
        "ExpressionAttributeValues": {":expected": {"N": "6"}, ":t": {"S": "new"}},
    }
    calls = {
        "put": lambda client: client.put_item(**put),
        "update": lambda client: client.update_item(**update_),
    }

    theirs, mine = both(
        dynamodb,
        ours,
        lambda: dynamodb.put_item(TableName=table, Item=stored),
        calls[operation],
    )

    assert isinstance(theirs, ClientError) and isinstance(mine, ClientError)
    assert type(mine) is ClientError  # not botocore's generated subclass: catch ClientError
    assert the_store_reads(mine) == the_store_reads(theirs)
    assert mine.response["ResponseMetadata"].keys() == theirs.response["ResponseMetadata"].keys()
    assert mine.response["Item"] == stored
    assert str(mine) == str(theirs)


def test_binary_attributes_round_trip(dynamodb, ours, table) -> None:
    ours.put_item(TableName=table, Item=item("bin", **BINARY))
    request = {"TableName": table, "Key": {"pk": {"S": "bin"}}, "ConsistentRead": True}

    ours_read, botocore_read = ours.get_item(**request)["Item"], dynamodb.get_item(**request)
    assert ours_read == botocore_read["Item"] == item("bin", **BINARY)
    assert ours_read["bin_set"]["BS"][1] == b"\x00two"
    assert ours_read["nested_map"]["M"]["list"]["L"][0] == {"B": b"l0"}


# ─── The store on our client ───


def test_the_store_runs_on_our_client(tables, ours, publisher, dynamodb) -> None:
    from tests.support.publishing import PublishingService
    from worker.dynamodb.store import DynamoSessionStore

    service = PublishingService(DynamoSessionStore.from_settings(tables, client=ours), publisher)
    session_id = new_id("s")
    assert service.handle(create(session_id)).type == "session.created"
    sent: list[str] = []

    def seed_writes_first(operation: str) -> None:
        # A seed write lands between the store's read and its write: the write's
        # condition fails and the store re-decides on the item the failure returned
        # (`Item` of a failed PutItem or UpdateItem).
        if operation != "GetItem" and len(sent) == 1:
            seed_rewrite(dynamodb, tables, session_id, continue_url="https://seed/next")
        sent.append(operation)

    ours.add_request_listener(seed_writes_first)

    event = service.handle(update(session_id, buyer={"email": "a@example.com"}))

    assert event.type == "session.updated"
    write = sent[1]
    assert write in ("UpdateItem", "TransactWriteItems")
    assert sent == ["GetItem", write, write]  # no read after the conflict
    stored = raw_session(dynamodb, tables, session_id)
    assert stored["continue_url"] == {"S": "https://seed/next"}
    assert "a@example.com" in str(stored["buyer"])


def test_requests_are_counted_by_operation(ours, table) -> None:
    def count() -> float:
        sample = {"operation": "GetItem"}
        return REGISTRY.get_sample_value("checkout_dynamodb_requests_total", sample) or 0.0

    before = count()
    for _ in range(3):
        ours.get_item(TableName=table, Key={"pk": {"S": "a"}})
    assert count() == before + 3


# ─── Failures ───


def test_a_closed_port_is_a_botocore_error_after_five_attempts(settings) -> None:
    client = DynamoDBHttpClient(
        credentials(),
        "us-east-1",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        backoff_scale=0.0,
    )
    attempts: list[str] = []
    client.add_request_listener(attempts.append)

    with pytest.raises(BotoCoreError) as raised:
        client.update_item(TableName="t", Key={"pk": {"S": "a"}}, UpdateExpression="SET a = :a")

    assert type(raised.value).__name__ == "EndpointConnectionError"
    assert attempts == ["UpdateItem"] * 5


@pytest.fixture
def proxy(settings) -> Iterator[FaultProxy]:
    with FaultProxy(settings.dynamodb_endpoint_url) as running:
        yield running


def behind(proxy: FaultProxy, settings) -> tuple[DynamoDBHttpClient, list[str]]:
    """Our client through the proxy, retrying at once; and the attempts it made."""
    client = DynamoDBHttpClient(
        credentials(), "us-east-1", endpoint_url=proxy.url, backoff_scale=0.0
    )
    attempts: list[str] = []
    client.add_request_listener(attempts.append)
    return client, attempts


def heal_after(proxy: FaultProxy, attempts: list[str], failing: int) -> Callable[[str], None]:
    """A listener that lets requests through from attempt `failing` + 1 on."""

    def listener(_: str) -> None:
        if len(attempts) > failing:
            proxy.pass_through()

    return listener


def test_transient_throttling_is_absorbed_by_retries(proxy, settings, dynamodb, table) -> None:
    dynamodb.put_item(TableName=table, Item=item("a"))
    client, attempts = behind(proxy, settings)
    client.add_request_listener(heal_after(proxy, attempts, failing=2))
    proxy.throttle(1.0)

    response = client.get_item(TableName=table, Key={"pk": {"S": "a"}})

    assert response["Item"] == item("a")
    assert response["ResponseMetadata"]["RetryAttempts"] == 2
    assert attempts == ["GetItem"] * 3
    assert proxy.counts["throttled"] == 2


def test_lasting_throttling_is_a_throttling_client_error(proxy, settings, table) -> None:
    client, attempts = behind(proxy, settings)
    proxy.throttle(1.0)

    with pytest.raises(ClientError) as raised:
        client.put_item(TableName=table, Item=item("a"))

    response = raised.value.response
    assert response["Error"]["Code"] == "ThrottlingException"
    assert response["ResponseMetadata"]["MaxAttemptsReached"] is True
    assert response["ResponseMetadata"]["RetryAttempts"] == 4
    assert attempts == ["PutItem"] * 5


def test_connection_resets_are_retried(proxy, settings, dynamodb, table) -> None:
    client, attempts = behind(proxy, settings)
    client.add_request_listener(heal_after(proxy, attempts, failing=1))
    proxy.cut()

    client.put_item(TableName=table, Item=item("reset"))

    assert attempts == ["PutItem"] * 2
    assert dynamodb.get_item(TableName=table, Key={"pk": {"S": "reset"}})["Item"] == item("reset")


def test_lasting_resets_are_a_botocore_connection_error(proxy, settings, table) -> None:
    client, attempts = behind(proxy, settings)
    proxy.cut()

    # A reset lands while reading the answer, or (racing the connect) while connecting.
    with pytest.raises((ConnectionClosedError, EndpointConnectionError)):
        client.get_item(TableName=table, Key={"pk": {"S": "a"}})
    assert attempts == ["GetItem"] * 5


def test_an_unparseable_answer_is_no_botocore_error(proxy, settings, table) -> None:
    """The store treats it as a failed command, not an outage, as it does botocore's."""
    client, attempts = behind(proxy, settings)
    proxy.garbage_for("garbled")

    with pytest.raises(ResponseParserError):
        client.get_item(TableName=table, Key={"pk": {"S": "garbled"}})
    assert attempts == ["GetItem"]
