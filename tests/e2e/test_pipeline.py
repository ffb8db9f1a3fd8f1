"""The pipeline end to end: CLI -> Redis queue -> real `checkout worker` processes -> DynamoDB
(moto server) -> result events on the Redis stream."""

from __future__ import annotations

import json
import subprocess
import time

from tests.e2e.builders import (
    ADDRESS,
    BUYER,
    CARD,
    MUG,
    create,
    seed_layout_item,
    transition,
    update,
)


def test_order_flow_from_create_to_completed(start_workers, send, events, checkout):
    (worker,) = start_workers(1)
    steps = [
        create("flow-1", "s-flow"),
        update("flow-2", "s-flow", line_items=[MUG]),
        update("flow-3", "s-flow", buyer=BUYER, shipping_address=ADDRESS),
        transition("flow-4", "s-flow", "requires_escalation"),
        update("flow-5", "s-flow", payment_instruments=[CARD]),
        {"type": "complete_session", "command_id": "flow-6", "session_id": "s-flow"},
        update("flow-7", "s-flow", continue_url="https://shop.example/cart"),
    ]
    # One at a time: this tier does not rely on ordering across worker processes.
    for count, step in enumerate(steps, start=1):
        send([step])
        received = events(count)

    assert [e["type"] for e in received] == [
        "session.created",
        "session.updated",
        "session.updated",
        "session.status_changed",
        "session.updated",
        "session.completed",
        "command.rejected",
    ]
    assert [e["version"] for e in received[:6]] == [1, 2, 3, 4, 5, 6]
    assert received[3]["previous_status"] == "incomplete"
    assert received[4]["session"]["status"] == "ready_for_complete"
    assert received[6]["error"]["code"] == "session_closed"

    shown = json.loads(checkout("get", "s-flow").stdout)
    assert shown["status"] == "completed"
    assert shown["version"] == 6
    # Buyer and payment data stay out of the worker's log.
    log = worker.log.read_text()
    assert "flow-5" in log and "tok_abc" not in log and "ann@example.com" not in log
    assert shown["totals"] == {
        "subtotal": 2500,
        "tax": 200,
        "shipping": 0,
        "discount": 0,
        "fee": 13,  # Math.round(12.5): halves go up
        "total": 2713,
        "currency": "USD",
    }


def test_a_command_sent_three_times_has_one_effect(start_workers, send, events, checkout):
    start_workers(1)
    send([create("dup-create", "s-dup")])
    events(1)

    send([update("dup-update", "s-dup", line_items=[MUG])] * 3)
    received = events(4)[1:]

    assert len({e["event_id"] for e in received}) == 1
    assert received[0] == received[1] == received[2]
    assert json.loads(checkout("get", "s-dup").stdout)["version"] == 2


def test_a_reused_command_id_with_another_body_is_rejected(start_workers, send, events, checkout):
    start_workers(1)
    send([create("reuse-create", "s-reuse")])
    events(1)
    send([update("reuse-1", "s-reuse", line_items=[MUG])])
    events(2)

    send([update("reuse-1", "s-reuse", currency="EUR")])
    rejected = events(3)[2]

    assert rejected["type"] == "command.rejected"
    assert rejected["error"]["code"] == "idempotency_conflict"
    session = json.loads(checkout("get", "s-reuse").stdout)
    assert (session["currency"], session["version"]) == ("USD", 2)


def test_concurrent_updates_over_two_workers_lose_nothing(start_workers, send, events, store):
    sessions = [f"s-many-{n}" for n in range(40)]
    start_workers(2, concurrency=2)
    send([create(f"many-create-{s}", s) for s in sessions])
    events(40)

    # Four updates per session, each to a different field, all in flight at once.
    fields = {
        "line_items": [MUG],
        "buyer": BUYER,
        "shipping_address": ADDRESS,
        "payment_instruments": [CARD],
    }
    send([update(f"many-{f}-{s}", s, **{f: v}) for f, v in fields.items() for s in sessions])
    received = events(200, timeout=120)

    assert [e["type"] for e in received].count("session.updated") == 160
    for session_id in sessions:
        snapshot = store.load(session_id)
        assert snapshot.version == 5, session_id
        assert snapshot.session.status == "ready_for_complete", session_id
        assert snapshot.session.totals.total == 2713, session_id


def test_a_session_in_the_seed_layout_keeps_its_unknown_fields(
    start_workers, send, events, dynamodb, settings
):
    item = seed_layout_item("s-seed", ttl=int(time.time()) + 3600)
    dynamodb.put_item(TableName=settings.sessions_table, Item=item)
    start_workers(1)

    send([update("seed-1", "s-seed", buyer={"email": "new@example.com", "phone": "+100"})])
    (event,) = events(1)

    assert event["type"] == "session.updated"
    stored = dynamodb.get_item(
        TableName=settings.sessions_table, Key={"sessionId": {"S": "s-seed"}}
    )
    stored = stored["Item"]
    assert stored["version"] == {"N": "2"}
    assert stored["ts_only_field"] == item["ts_only_field"]
    assert stored["line_items"] == item["line_items"]
    assert stored["shipping_address"] == item["shipping_address"]
    assert stored["payment_instruments"] == item["payment_instruments"]
    assert stored["buyer"]["M"]["email"] == {"S": "new@example.com"}
    assert stored["status"] == {"S": "ready_for_complete"}


def test_checkout_send_reports_invalid_lines_and_enqueues_the_rest(checkout, start_workers, events):
    start_workers(1)
    lines = "\n".join(
        [
            json.dumps(create("ok-1", "s-ok")),
            '{"type": "create_session"}',
            "not json",
            json.dumps(update("bad-money", "s-ok", line_items=[{**MUG, "total_amount": 1.5}])),
        ]
    )
    result = checkout("send", "-", input=lines)

    assert result.returncode == 1
    assert "-:2: command_id: Field required" in result.stderr
    assert "-:3: command: Invalid JSON" in result.stderr
    assert (
        "-:4: updates.line_items.0.total_amount: Input should be a valid integer" in result.stderr
    )
    assert "enqueued 1 commands, 3 invalid lines" in result.stderr
    assert [e["command_id"] for e in events(1)] == ["ok-1"]


def test_checkout_events_prints_the_stream_as_json_lines(checkout, start_workers, send, events):
    start_workers(1)
    send([create("events-1", "s-events"), transition("events-2", "s-missing", "incomplete")])
    events(2)

    printed = [json.loads(line) for line in checkout("events").stdout.splitlines()]

    assert sorted(e["command_id"] for e in printed) == ["events-1", "events-2"]
    rejected = next(e for e in printed if e["command_id"] == "events-2")
    assert rejected["error"] == {
        "code": "session_not_found",
        "message": "Checkout session not found: s-missing",
    }


def test_checkout_send_says_what_was_not_enqueued_when_the_broker_is_down(env, tmp_path):
    from tasks.embedded.stack import CHECKOUT, free_port

    commands = tmp_path / "commands.jsonl"
    commands.write_text(json.dumps(create("down-1", "s-down")) + "\n")
    down = {**env, "CHECKOUT_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}

    result = subprocess.run(
        [CHECKOUT, "send", str(commands)], env=down, capture_output=True, text=True, timeout=120
    )

    # Found before anything is sent: one line naming the URL and what to do (exit 4).
    assert result.returncode == 4
    assert result.stderr.count("\n") == 1
    assert f"cannot reach Redis at {down['CHECKOUT_REDIS_URL']}" in result.stderr


def test_a_command_that_fails_transiently_is_retried_until_it_applies(
    env, settings, dynamodb, send, events, tmp_path
):
    from tasks.embedded.stack import start_worker
    from worker.dynamodb.tables import ensure_tables

    # No tables yet: every attempt fails with ResourceNotFoundException (StoreUnavailable).
    log = tmp_path / "worker.log"
    quick_retries = {**env, "CHECKOUT_RETRY_BACKOFF_MAX": "2"}
    worker = start_worker(quick_retries, log=log, concurrency=1, loglevel="INFO")
    try:
        send([create("retry-1", "s-retry")])
        deadline = time.monotonic() + 60
        while "retrying in" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)

        ensure_tables(dynamodb, settings)
        (event,) = events(1, timeout=120)
    finally:
        worker.stop()

    assert (event["type"], event["session_id"], event["version"]) == (
        "session.created",
        "s-retry",
        1,
    )


def test_updates_sent_with_their_creates_wait_for_them(start_workers, send, events, store):
    sessions = [f"s-race-{n}" for n in range(20)]
    start_workers(2, concurrency=2)

    # Each update races its create across four worker processes.
    send(
        [
            command
            for s in sessions
            for command in (create(f"race-create-{s}", s), update(f"race-{s}", s, line_items=[MUG]))
        ]
    )
    received = events(40, timeout=120)

    assert [e for e in received if e["type"] == "command.rejected"] == []
    assert {store.load(s).version for s in sessions} == {2}


def test_a_command_survives_a_redis_that_refuses_its_result(
    env, events, redis_client, store, tables, tmp_path
):
    from tasks.embedded.stack import CHECKOUT, start_worker

    # Short timeouts, so the journal's redelivery comes within seconds, not a minute.
    quick = {
        **env,
        "CHECKOUT_VISIBILITY_TIMEOUT": "3",
        "CHECKOUT_HEARTBEAT_TIMEOUT": "2",
        "CHECKOUT_REAP_INTERVAL": "0.2",
    }
    worker = start_worker(quick, log=tmp_path / "worker.log", concurrency=1, loglevel="INFO")
    # The worker's Redis user may no longer publish events (XADD) nor enqueue (LPUSH):
    # the session write lands but its result cannot be recorded. The command must stay
    # journaled, not be acked away, and apply once Redis accepts writes again.
    # The producer enqueues as another user.
    redis_client.execute_command("ACL", "SETUSER", "producer", "on", ">pw", "~*", "&*", "+@all")
    producer_url = env["CHECKOUT_REDIS_URL"].replace("redis://", "redis://producer:pw@")
    redis_client.execute_command("ACL", "SETUSER", "default", "-xadd", "-lpush")
    try:
        subprocess.run(
            [CHECKOUT, "send", "-"],
            env={**env, "CHECKOUT_REDIS_URL": producer_url},
            input=json.dumps(create("refused-1", "s-refused")),
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )
        deadline = time.monotonic() + 60
        while "Redis refused the journal" not in worker.log.read_text():
            assert time.monotonic() < deadline, worker.log.read_text()
            time.sleep(0.1)
    finally:
        redis_client.execute_command("ACL", "SETUSER", "default", "+@all")
        redis_client.execute_command("ACL", "DELUSER", "producer")

    try:
        (event,) = events(1, timeout=120)
    finally:
        worker.stop()
    assert (event["command_id"], event["version"]) == ("refused-1", 1)
    assert store.load("s-refused").version == 1
