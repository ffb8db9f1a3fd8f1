"""bulk-update's patch and selection parsing, run and command ids, and RunSummary."""

from __future__ import annotations

import pytest

from tasks.bulk_select import (
    SelectionError,
    Where,
    bulk_run_id,
    command_id,
    parse_set,
    parse_where,
    scan_request,
    update_commands,
    validate_updates,
)
from tasks.producer import prepare
from worker.delivery.runs import RunSummary


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


def test_line_item_match_looks_at_each_items_id():
    where = Where(line_item="li-2")
    assert where.matches_line_items([{"id": "li-1"}, {"id": "li-2"}])
    assert not where.matches_line_items([{"id": "li-1"}])
    assert not where.matches_line_items(None)


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
