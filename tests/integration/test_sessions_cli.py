"""`checkout sessions --where` and `checkout history` against the real moto server and
redis-server, over sessions the seed's own TypeScript store made (under node) and sessions
the pipeline made (the service, publishing its events as a worker does)."""

from __future__ import annotations

import json
import subprocess
import time

from tasks.embedded.stack import CHECKOUT
from tests.e2e.builders import seed_layout_item
from tests.integration.helpers import complete, create, new_id, transition, update
from tests.integration.seed_harness import op, seed, seed_harness  # noqa: F401
from worker.service.results import dead_letter_event

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


def test_sessions_without_the_table_prints_nothing_on_stdout_and_exits_6(env):
    result = checkout(env, "sessions")  # no `tables` fixture: the table was never created
    assert result.returncode == 6
    assert result.stdout == ""
    assert "run `checkout init`" in result.stderr


# ─── checkout history ───


def history(env, session_id: str) -> list[tuple]:
    lines = json_lines(checkout(env, "history", session_id, "--json"))
    return [
        (line["command_id"], line["outcome"], line["version"], line["sources"]) for line in lines
    ]


def test_history_lists_outcomes_oldest_first_from_stream_and_ledger(
    env, settings, service, publisher, redis_client
):
    session_id = new_id("hist")
    commands = [create(session_id), update(session_id, currency="EUR"), complete(session_id)]
    for command in commands:
        service.handle(command)
    dead = dead_letter_event(
        "d-1",
        command_id="c-dead",
        session_id=session_id,
        code="retries_exhausted",
        message="DynamoDB unreachable",
        error_type="StoreUnavailable",
    )
    publisher.publish(dead.to_json())
    escalate = transition(session_id, "requires_escalation")
    service.handle(escalate)
    service.handle(create(new_id("other")))  # another session's event: not listed
    created, updated, refused = (command["command_id"] for command in commands)

    both = ["stream", "ledger"]
    assert history(env, session_id) == [
        (created, "session.created", 1, both),
        (updated, "session.updated", 2, both),
        (refused, "rejected:invalid_transition", 2, ["stream"]),
        ("c-dead", "dead_lettered:retries_exhausted", None, ["stream"]),
        (escalate["command_id"], "session.status_changed", 3, both),
    ]

    # MAXLEN trims the oldest entries: the ledger still has the writes, not their ids.
    redis_client.xtrim(settings.events_stream, maxlen=3, approximate=False)
    assert history(env, session_id) == [
        (None, "applied", 1, ["ledger"]),
        (None, "applied", 2, ["ledger"]),
        ("c-dead", "dead_lettered:retries_exhausted", None, ["stream"]),
        (escalate["command_id"], "session.status_changed", 3, both),
    ]


def test_history_of_a_seed_made_session_and_what_it_says_of_its_sources(env, settings, service):
    (made,) = seed(env, [op("create", settings.sessions_table)])
    command = update(made["id"], currency="EUR")
    service.handle(command)

    result = checkout(env, "history", made["id"])

    assert result.returncode == 0, result.stderr
    header, line = result.stdout.splitlines()
    assert header.split("\t") == ["time", "command_id", "outcome", "version", "source"]
    time_, command_id, outcome, version, source = line.split("\t")
    assert (command_id, outcome, version, source) == (
        command["command_id"],
        "session.updated",
        "2",
        "stream+ledger",
    )
    assert time_.endswith("Z")
    # The seed's own create is in neither source; stderr says what each one covers.
    assert "1 of its 1 entries are this session's" in result.stderr
    assert "ledger: 1 applied commands (it keeps the last 8" in result.stderr
    assert "version 2 (incomplete)" in result.stderr


def test_history_of_an_unknown_session_is_one_line_and_exit_1(env, tables):
    result = checkout(env, "history", "nobody")
    assert result.returncode == 1
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert "no session 'nobody'" in result.stderr
