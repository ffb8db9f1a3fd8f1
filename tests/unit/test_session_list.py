"""`checkout sessions`' rows and its Scan request."""

from __future__ import annotations

from tasks.bulk_select import Where
from tasks.session_list import listing_request, mask_email, session_row

NOW = 1_800_000_000


def test_a_row_holds_ids_times_and_amounts_and_the_buyer_email_masked():
    values = {
        "sessionId": "s-1",
        "status": "requires_escalation",
        "version": 4,
        "created_at": "2026-11-01T00:00:00.000Z",
        "updated_at": "2026-11-02T00:00:00.000Z",
        "currency": "USD",
        "ttl": NOW + 60,
        "totals": {"total": 1085},
        "buyer": {"email": "mary@example.com"},
    }
    row = session_row(values, now=NOW)
    assert row.to_json() == {
        "id": "s-1",
        "status": "requires_escalation",
        "version": 4,
        "created_at": "2026-11-01T00:00:00.000Z",
        "updated_at": "2026-11-02T00:00:00.000Z",
        "currency": "USD",
        "total": 1085,
        "buyer_email": "m***@example.com",
        "expires_at": "2027-01-15T08:01:00.000Z",
        "expired": False,
    }
    assert row.cells() == (
        "s-1",
        "requires_escalation",
        "4",
        "2026-11-02T00:00:00.000Z",
        "1085",
        "USD",
        "m***@example.com",
        "2027-01-15T08:01:00.000Z",
    )


def test_a_seed_only_session_reads_as_version_1_and_a_passed_ttl_as_expired():
    row = session_row({"sessionId": "s-2", "ttl": NOW}, now=NOW)
    assert (row.version, row.expired, row.total, row.buyer_email) == (1, True, None, None)
    assert row.cells()[3] == "-"


def test_a_corrupt_item_is_listed_as_stored():
    row = session_row({"sessionId": "s-3", "version": "7", "ttl": 10**20, "totals": "x"}, now=NOW)
    assert (row.version, row.expires_at, row.expired, row.total) == ("7", None, False, None)


def test_emails_are_masked_down_to_their_first_character_and_domain():
    assert mask_email("a@b.example") == "a***@b.example"
    assert mask_email("first.last+tag@example.com") == "f***@example.com"
    assert mask_email("not-an-email") == "***"
    assert mask_email("@example.com") == "***"
    assert mask_email("") is None
    assert mask_email(None) is None


def test_the_listing_scan_filters_as_bulk_update_and_projects_only_row_attributes():
    where = Where(status="incomplete", updated_after="2026-11-01T00:00:00.000Z")
    request = listing_request("sessions", where, 2, 3)
    assert request["FilterExpression"] == "#status = :status AND #updated_at > :updated_after"
    names = request["ExpressionAttributeNames"]
    projected = [
        ".".join(names[part] for part in path.strip().split("."))
        for path in request["ProjectionExpression"].split(",")
    ]
    assert projected == [
        "sessionId",
        "status",
        "version",
        "created_at",
        "updated_at",
        "currency",
        "ttl",
        "totals.total",
        "buyer.email",
    ]
    assert (request["Segment"], request["TotalSegments"]) == (2, 3)
