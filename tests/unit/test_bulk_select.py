"""bulk-update's patch and selection parsing, run and command ids, and RunSummary."""

from __future__ import annotations

import threading

import pytest

from tasks.bulk_select import (
    SelectionError,
    Where,
    bulk_run_id,
    command_id,
    parallel_scan,
    parse_set,
    parse_where,
    scan_request,
    update_commands,
    validate_updates,
)
from tasks.producer import prepare
from worker.delivery.runs import RunSummary
from worker.dynamodb.items import from_item, to_item


def test_set_values_are_json_else_strings():
    updates = parse_set(["currency=EUR", 'buyer={"email": "a@example.com"}', "continue_url=1x"])
    assert updates == {
        "currency": "EUR",
        "buyer": {"email": "a@example.com"},
        "continue_url": "1x",
    }


def test_set_without_equals_is_refused():
    with pytest.raises(SelectionError, match="expected field=value"):
        parse_set(["currency"])


@pytest.mark.parametrize(
    ("updates", "message"),
    [
        ({"currency": "euro"}, "currency"),
        ({"colour": "red"}, "colour"),
        ({"buyer": None}, "must not be null"),
        ({}, "empty"),
    ],
)
def test_updates_are_validated_as_update_session_takes_them(updates, message):
    with pytest.raises(SelectionError, match=message):
        validate_updates(updates)


def test_where_conditions_are_parsed_and_times_normalised_to_the_seed_format():
    where = parse_where(
        [
            "status=ready_for_complete",
            "currency=USD",
            "updated_before=2026-11-01T00:00:00Z",
            "line_item=li-1",
        ]
    )
    assert where == Where("ready_for_complete", "USD", "2026-11-01T00:00:00.000Z", "li-1")
    # The same instant with an offset is the same bound.
    assert parse_where(["updated_before=2026-11-01T01:00:00+01:00"]).updated_before == (
        "2026-11-01T00:00:00.000Z"
    )


@pytest.mark.parametrize(
    "condition", ["colour=red", "status=shipped", "updated_before=yesterday", "currency="]
)
def test_bad_where_conditions_are_refused(condition):
    with pytest.raises(SelectionError):
        parse_where([condition])


def test_scan_request_filters_in_dynamodb_what_it_can():
    where = Where(status="incomplete", updated_before="2026-11-01T00:00:00.000Z", line_item="x")
    request = scan_request("sessions", where, 1, 4)
    assert request["FilterExpression"] == "#status = :status AND #updated_at < :updated_at"
    assert request["ExpressionAttributeValues"] == {
        ":status": {"S": "incomplete"},
        ":updated_at": {"S": "2026-11-01T00:00:00.000Z"},
    }
    assert (request["Segment"], request["TotalSegments"], request["ConsistentRead"]) == (1, 4, True)
    assert request["ProjectionExpression"] == "#id, #li"
    assert "FilterExpression" not in scan_request("sessions", Where(), 0, 1)


def test_updated_after_is_a_lower_bound_beside_updated_before():
    where = parse_where(["updated_after=2026-11-01T01:00:00+01:00", "updated_before=2026-11-02"])
    assert where.updated_after == "2026-11-01T00:00:00.000Z"
    request = scan_request("sessions", where, 0, 1)
    assert request["FilterExpression"] == (
        "#updated_at < :updated_at AND #updated_at > :updated_after"
    )
    assert request["ExpressionAttributeValues"] == {
        ":updated_at": {"S": "2026-11-02T00:00:00.000Z"},
        ":updated_after": {"S": "2026-11-01T00:00:00.000Z"},
    }
    with pytest.raises(SelectionError, match="updated_after=soon: not an ISO 8601 time"):
        parse_where(["updated_after=soon"])


def test_a_selection_without_updated_after_keeps_the_run_id_it_had_before_the_key():
    # The canonical text (and so the default run id of a bulk-update) from before.
    assert Where(status="incomplete").canonical() == (
        '{"currency": null, "line_item": null, "status": "incomplete", "updated_before": null}'
    )
    assert "updated_after" in Where(updated_after="2026-11-01T00:00:00.000Z").canonical()


def test_line_item_match_looks_at_each_items_id():
    where = Where(line_item="li-2")
    assert where.matches_line_items([{"id": "li-1"}, {"id": "li-2"}])
    assert not where.matches_line_items([{"id": "li-1"}])
    assert not where.matches_line_items(None)


class PagedClient:
    """A Scan client serving `pages` pages of one item to each segment, counting calls."""

    def __init__(self, pages: int) -> None:
        self.pages = pages
        self.calls = 0
        self.threads: set[threading.Thread] = set()
        self._lock = threading.Lock()

    def scan(self, **request):
        with self._lock:
            self.calls += 1
            self.threads.add(threading.current_thread())
        page = request.get("ExclusiveStartKey", {}).get("n", {}).get("N", "0")
        number = int(page)
        reply = {"Items": [to_item({"sessionId": f"{request['Segment']}-{number}"})]}
        if number + 1 < self.pages:
            reply["LastEvaluatedKey"] = {"n": {"N": str(number + 1)}}
        return reply


def test_a_parallel_scan_reads_every_page_of_every_segment():
    client = PagedClient(pages=5)
    items = parallel_scan(client, lambda n: {"Segment": n}, 3)
    ids = {from_item(item)["sessionId"] for item in items}
    assert ids == {f"{segment}-{page}" for segment in range(3) for page in range(5)}


def test_closing_a_parallel_scan_early_stops_its_scans():
    client = PagedClient(pages=10_000)
    items = parallel_scan(client, lambda n: {"Segment": n}, 4)
    assert len([next(items) for _ in range(3)]) == 3
    items.close()  # what --limit does once it has its rows; returns once every thread has
    # At most: the pages read, those queued (2 per segment), each thread's page in hand
    # and the one it may have started before it saw the stop. Not 40,000.
    assert client.calls <= 3 + 4 * 2 + 4 + 4
    # And no thread is left blocked on the full queue.
    for thread in client.threads:
        thread.join(timeout=10)
        assert not thread.is_alive()


def test_run_id_depends_on_patch_and_selection_only():
    first = bulk_run_id({"currency": "EUR"}, "where:a")
    assert first == bulk_run_id({"currency": "EUR"}, "where:a")
    assert first != bulk_run_id({"currency": "GBP"}, "where:a")
    assert first != bulk_run_id({"currency": "EUR"}, "where:b")


def test_commands_are_valid_update_session_commands_with_derived_ids():
    (command,) = update_commands(["s-1"], {"currency": "EUR"}, "bulk-r")
    assert command["command_id"] == "bulk-r:s-1"
    assert prepare(command).session_id == "s-1"
    long_id = "s" * 250
    assert len(command_id("bulk-r", long_id)) <= 255
    assert command_id("bulk-r", long_id) != command_id("bulk-r", long_id[:-1])


def test_run_summary_pending_and_text():
    summary = RunSummary(
        "r",
        sent=10,
        applied=6,
        rejected={"session_closed": 2},
        dead_lettered=1,
        failures=(("rejected:session_closed", "c-3"),),
    )
    assert summary.pending == 1
    assert summary.to_json()["rejected"] == {"session_closed": 2}
    text = summary.text()
    assert "10 sent, 6 applied, 2 rejected, 1 dead-lettered, 1 pending" in text
    assert "c-3 (rejected:session_closed)" in text
