"""A stored item no code path can read is answered once, `corrupt_session`, over the
real store (moto server): no retries, no writes, the item left as it is.

Before, a string or fractional `version` (or `ttl`) failed every conditional write as
if another writer had just changed the item: 50 writes an attempt, retried as
contention for 10-25 minutes before the command was dead-lettered.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from prometheus_client import REGISTRY

from tests.integration.helpers import create, new_id, put_raw, raw_session, stream_events, update
from tests.integration.test_journal import enqueue
from worker.delivery.processor import CommandProcessor

WRITES = ("PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem")
REQUESTS = "checkout_dynamodb_requests_total"


def requests_sent() -> dict[str, float]:
    """DynamoDB requests this process has sent, by operation (the store's own counter,
    `checkout_dynamodb_requests`, which counts every HTTP request, retries included)."""
    return {
        sample.labels["operation"]: sample.value
        for metric in REGISTRY.collect()
        for sample in metric.samples
        if sample.name == REQUESTS
    }


def requests_during(call: Any) -> tuple[Any, dict[str, float]]:
    before = requests_sent()
    result = call()
    after = requests_sent()
    sent = {name: after[name] - before.get(name, 0.0) for name in after}
    return result, {name: count for name, count in sent.items() if count}


def corrupt(dynamodb, tables, session_id: str, name: str, attribute: dict[str, Any]) -> dict:
    """Store the session's item with `name` (`totals.tax`: inside the totals) replaced
    by `attribute`, written directly with boto3; returns the item as written."""
    item = raw_session(dynamodb, tables, session_id)
    if name.startswith("totals."):
        item["totals"]["M"][name.removeprefix("totals.")] = attribute
    else:
        item[name] = attribute
    put_raw(dynamodb, tables, item)
    return item


CORRUPTIONS = [
    ("version", {"S": "7"}, "attribute `version` is a string ('7'), expected an integer"),
    (
        "version",
        {"N": "7.5"},
        "attribute `version` is a number with a fraction (7.5), expected an integer",
    ),
    ("ttl", {"S": "4102444800"}, "attribute `ttl` is a string ('4102444800'), expected an integer"),
    (
        "totals.subtotal",
        {"S": "0"},
        "attribute `totals.subtotal` is a string ('0'), expected an integer",
    ),
    (
        "totals.total",
        {"N": "0.5"},
        "attribute `totals.total` is a number with a fraction (0.5), expected an integer",
    ),
]


@pytest.mark.parametrize(
    ("name", "stored", "problem"),
    CORRUPTIONS,
    ids=["version-string", "version-fraction", "ttl-string", "subtotal-string", "total-fraction"],
)
def test_a_corrupt_item_is_rejected_once_with_no_write(
    service, dynamodb, tables, redis_client, name, stored, problem
):
    session_id = new_id("s")
    service.handle(create(session_id))
    written = corrupt(dynamodb, tables, session_id, name, stored)
    command = update(session_id, buyer={"email": "ann@example.com"})

    event, sent = requests_during(lambda: service.handle(command))

    assert event.type == "command.rejected"
    assert event.error.code == "corrupt_session"
    assert event.error.message == f"stored session {session_id} is corrupt: {problem}"
    assert sent == {"GetItem": 1}  # one read, no conditional write
    assert raw_session(dynamodb, tables, session_id) == written
    published = [
        e for e in stream_events(redis_client, tables) if e["command_id"] == command["command_id"]
    ]
    assert [e["error"]["code"] for e in published] == ["corrupt_session"]


def test_a_create_over_a_corrupt_item_is_rejected_after_its_one_failed_put(
    service, dynamodb, tables
):
    # A create reads nothing first (its condition finds a live session): the put that
    # fails hands the corrupt item back, which is answered, not decided on again.
    session_id = new_id("s")
    service.handle(create(session_id))
    # (A string `ttl` here would make moto fail the put's `ttl <= :now` with a 500.)
    written = corrupt(dynamodb, tables, session_id, "version", {"S": "1"})

    event, sent = requests_during(lambda: service.handle(create(session_id)))

    assert (event.type, event.error.code) == ("command.rejected", "corrupt_session")
    assert "attribute `version` is a string ('1')" in event.error.message
    assert sent == {"PutItem": 1}
    assert raw_session(dynamodb, tables, session_id) == written


def test_the_sessions_next_command_goes_on_after_the_rejection(
    service, journal, settings, dynamodb, tables, redis_client
):
    """Through the journal, as a worker applies them: the rejection finishes its
    command, so the session's next one is not parked behind it, and nothing is retried."""
    session_id = new_id("s")
    service.handle(create(session_id))
    corrupt(dynamodb, tables, session_id, "version", {"S": "2"})
    queue = settings.commands_queue
    commands = [update(session_id, currency="EUR"), update(session_id, currency="GBP")]
    jids = enqueue(journal, queue, *commands)
    processor = CommandProcessor(service.service, journal, settings, f"w-{uuid.uuid4().hex[:8]}")

    def apply_in_order() -> list[str]:
        return [
            processor.process(c, jid=jid, task_id=f"t-{n}", queue=queue)
            for n, (c, jid) in enumerate(zip(commands, jids, strict=True))
        ]

    outcomes, sent = requests_during(apply_in_order)

    assert outcomes == ["rejected:corrupt_session"] * 2
    assert not set(sent) & set(WRITES)
    assert redis_client.zcard(journal.keys.due) == 0  # no retry scheduled
    published = [e for e in stream_events(redis_client, tables) if e["session_id"] == session_id]
    assert [e["type"] for e in published][-2:] == ["command.rejected"] * 2
