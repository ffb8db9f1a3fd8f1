"""The store's session copy: decided on instead of a read, never trusted blindly.

Against the real moto server: the copy saves the GetItem, a stale copy costs one failed
conditional write and loses nothing, and a rejection is never decided on a copy alone.
The Redis adapter of the copies is tested beside the worker (`test_journal.py`).
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from tests.integration.helpers import create, new_id, raw_session, seed_rewrite, update
from tests.support.fakes import DictCopies
from worker.dynamodb.clients import make_dynamodb_client
from worker.dynamodb.store import DynamoSessionStore
from worker.service.apply import CheckoutService

MUG = {"id": "li-mug", "type": "product", "total_amount": 1250}
TEE = {"id": "li-tee", "type": "product", "total_amount": 2000}


@pytest.fixture
def counted(tables):
    """A service whose store keeps copies in a dict and counts requests by operation."""
    client = make_dynamodb_client(tables)
    counts: Counter[str] = Counter()

    def count(model, **_):  # a hook that returns a value would replace the request
        counts[model.name] += 1

    client.meta.events.register("before-call.dynamodb", count)
    copies = DictCopies()
    store = DynamoSessionStore.from_settings(tables, client=client, copies=copies)
    return CheckoutService(store), counts, copies


def test_a_command_decided_on_the_copy_needs_no_read(counted):
    service, counts, copies = counted
    session_id = new_id("s")
    service.apply(create(session_id))
    counts.clear()

    updated = service.apply(update(session_id, line_items=[MUG]))

    assert updated.type == "session.updated"
    assert counts == {"UpdateItem": 1}
    assert copies.item(session_id)["version"] == {"N": "2"}


def test_the_copy_is_the_item_as_stored(counted, dynamodb, settings):
    service, _, copies = counted
    session_id = new_id("s")
    service.apply(create(session_id))
    assert copies.item(session_id) == raw_session(dynamodb, settings, session_id)
    service.apply(update(session_id, line_items=[MUG, TEE]))

    assert copies.item(session_id) == raw_session(dynamodb, settings, session_id)


def test_a_stale_copy_costs_one_failed_write_and_keeps_the_seeds_change(
    counted, dynamodb, settings
):
    service, counts, _ = counted
    session_id = new_id("s")
    service.apply(create(session_id))
    seed_rewrite(dynamodb, settings, session_id, continue_url="https://shop.example/seed")
    counts.clear()

    updated = service.apply(update(session_id, line_items=[MUG]))

    assert updated.type == "session.updated"
    assert counts == {"UpdateItem": 2}  # the stale one, refused, then the real one
    stored = raw_session(dynamodb, settings, session_id)
    assert stored["continue_url"] == {"S": "https://shop.example/seed"}
    assert stored["line_items"]["L"][0]["M"]["id"] == {"S": "li-mug"}


def test_a_rejection_is_checked_against_a_read_not_the_copy(counted):
    service, counts, copies = counted
    session_id = new_id("s")
    service.apply(create(session_id))
    # The copy says canceled; DynamoDB does not. Only a write would catch the difference,
    # and a rejection writes no session.
    stale = json.loads(copies.texts[session_id])
    stale["item"]["status"] = {"S": "canceled"}
    stale["item"]["closed_status"] = {"S": "canceled"}
    copies.put(session_id, json.dumps(stale))
    counts.clear()

    updated = service.apply(update(session_id, line_items=[MUG]))

    assert updated.type == "session.updated"
    assert counts["GetItem"] == 1


def test_a_create_needs_no_read_even_when_its_session_exists(counted):
    service, counts, _ = counted
    session_id = new_id("s")

    assert service.apply(create(session_id)).type == "session.created"
    assert counts == {"PutItem": 1}
    counts.clear()

    again = service.apply(create(session_id))
    # The refused Put hands back the live session: rejected without a GetItem.
    assert (again.type, again.error.code) == ("command.rejected", "version_conflict")
    assert "GetItem" not in counts
