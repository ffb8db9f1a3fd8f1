"""`checkout sessions --where` against the real moto server, over sessions the seed's own
TypeScript store made (under node) and sessions the pipeline made (the service)."""

from __future__ import annotations

import json
import subprocess
import time

from tasks.embedded.stack import CHECKOUT
from tests.e2e.builders import seed_layout_item
from tests.integration.helpers import create, transition, update
from tests.integration.seed_harness import op, seed, seed_harness  # noqa: F401

BUYER_EMAIL = "mary.buyer@example.com"
CARD_TOKEN = "tok_never_listed"
TWO_DAYS_AGO = "2026-11-30T10:00:00.000Z"
YESTERDAY = "2026-12-01T10:00:00.000Z"
SINCE_YESTERDAY = "2026-12-01T00:00:00Z"


def checkout(env, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI as an operator runs it, stdout piped."""
    return subprocess.run(
        [CHECKOUT, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def json_lines(result: subprocess.CompletedProcess[str]) -> list[dict]:
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def escalated_by_the_seed(env, table: str) -> tuple[str, str, str]:
    """Three seed-made sessions: escalated two days ago, escalated yesterday, incomplete.
    Created now (the seed's clock sets their ttl too), escalated at the past instants."""
    made = seed(env, [op("create", table) for _ in range(3)])
    old, recent, untouched = (session["id"] for session in made)
    seed(
        env,
        [
            op("transition", table, id=old, target="requires_escalation", clock=TWO_DAYS_AGO),
            op("transition", table, id=recent, target="requires_escalation", clock=YESTERDAY),
        ],
    )
    return old, recent, untouched


def escalated_by_the_pipeline(service, session_id: str) -> None:
    """Created, given a buyer and a card, then escalated: updated_at is now."""
    service.handle(create(session_id))
    card = {"id": "pi_1", "type": "card", "credential": {"type": "token", "token": CARD_TOKEN}}
    service.handle(update(session_id, buyer={"email": BUYER_EMAIL}, payment_instruments=[card]))
    service.handle(transition(session_id, "requires_escalation"))


def test_sessions_where_finds_the_stuck_ones_of_both_writers(env, settings, service, dynamodb):
    table = settings.sessions_table
    old, recent, untouched = escalated_by_the_seed(env, table)
    escalated_by_the_pipeline(service, "pipe-stuck")
    expired = seed_layout_item("gone", ttl=int(time.time()) - 60)
    dynamodb.put_item(TableName=table, Item=expired | {"status": {"S": "requires_escalation"}})

    def ids(*where: str, extra: tuple[str, ...] = ()) -> set[str]:
        args = [arg for condition in where for arg in ("--where", condition)]
        return {row["id"] for row in json_lines(checkout(env, "sessions", *args, *extra, "--json"))}

    stuck = "status=requires_escalation"
    assert ids(stuck) == {old, recent, "pipe-stuck"}
    assert ids(stuck, f"updated_after={SINCE_YESTERDAY}") == {recent, "pipe-stuck"}
    assert ids(stuck, f"updated_before={SINCE_YESTERDAY}") == {old}
    assert ids(stuck, extra=("--include-expired",)) == {old, recent, "pipe-stuck", "gone"}
    assert ids() == {old, recent, untouched, "pipe-stuck"}
    assert ids("status=incomplete", "updated_after=2020-01-01") == {untouched}


def test_sessions_json_rows_carry_ids_times_and_amounts_never_the_buyer_or_payment(
    env, settings, service
):
    (seed_made,) = seed(env, [op("create", settings.sessions_table, currency="EUR")])
    escalated_by_the_pipeline(service, "pipe-row")

    result = checkout(env, "sessions", "--json")
    rows = {row["id"]: row for row in json_lines(result)}

    assert BUYER_EMAIL not in result.stdout
    assert CARD_TOKEN not in result.stdout and "pi_1" not in result.stdout
    piped = rows["pipe-row"]
    assert piped["buyer_email"] == "m***@example.com"
    assert (piped["status"], piped["version"], piped["currency"]) == (
        "requires_escalation",
        3,
        "USD",
    )
    assert piped["expired"] is False and piped["expires_at"] > piped["updated_at"]
    seeded = rows[seed_made["id"]]
    assert seeded == {
        "id": seed_made["id"],
        "status": "incomplete",
        "version": 1,  # the seed stores none: read as 1, as commands' expected_version does
        "created_at": seed_made["created_at"],
        "updated_at": seed_made["updated_at"],
        "currency": "EUR",
        "total": seed_made["totals"]["total"],
        "buyer_email": None,
        "expires_at": seeded["expires_at"],
        "expired": False,
    }


def test_sessions_piped_is_tab_separated_whole_values_and_limit_stops_early(env, settings, service):
    long_id = "pipe-" + "x" * 200  # far wider than any terminal column
    service.handle(create(long_id))
    for n in range(4):
        service.handle(create(f"pipe-{n}"))

    listed = checkout(env, "sessions")
    limited = checkout(env, "sessions", "--limit", "2")

    assert listed.returncode == 0, listed.stderr
    header, *rows = listed.stdout.splitlines()
    assert header.split("\t") == [
        "id",
        "status",
        "version",
        "updated_at",
        "total",
        "currency",
        "buyer",
        "expires_at",
    ]
    assert long_id in {row.split("\t")[0] for row in rows}
    assert len(rows) == 5 and all(len(row.split("\t")) == 8 for row in rows)
    assert len(limited.stdout.splitlines()) == 1 + 2


def test_sessions_refuses_a_bad_where_in_one_line(env, tables):
    result = checkout(env, "sessions", "--where", "updated_after=yesterday")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "checkout sessions: --where updated_after=yesterday: not an ISO 8601 time"
    ]
