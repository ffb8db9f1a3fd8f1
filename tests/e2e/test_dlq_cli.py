"""`checkout dlq` against a real worker: a poison message is set aside and purged, a
dead-lettered command is replayed and applied once, and the worker keeps going."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import time
from collections.abc import Callable

import pytest

from tasks.embedded.stack import CHECKOUT
from tasks.producer import prepare
from tests.e2e.builders import BUYER, create, update
from worker.delivery.journal import DeadLetter, Journal
from worker.redis_client import make_redis_client
from worker.service.results import dead_letter_event

DEADLINE = 120.0


@pytest.fixture
def one_retry(env) -> dict[str, str]:
    """Workers started after this give up after one retry (the CLI reads it too)."""
    env["CHECKOUT_MAX_RETRIES"] = "1"
    return env


def wait_for(events: Callable[..., list[dict]], match: Callable[[dict], bool]) -> list[dict]:
    """All events, once one of them matches."""
    deadline = time.monotonic() + DEADLINE
    count = 1
    while True:
        received = events(count, timeout=max(deadline - time.monotonic(), 0.1))
        if any(match(event) for event in received):
            return received
        count = len(received) + 1


def dlq_entries(checkout) -> list[dict]:
    listed = checkout("dlq", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    return [json.loads(line) for line in listed.stdout.splitlines()]


def test_a_raw_message_is_dead_lettered_cannot_be_replayed_and_is_purged(
    one_retry, start_workers, checkout, send, events, redis_client, settings
):
    (worker,) = start_workers(1)
    redis_client.lpush(settings.commands_queue, "this is not JSON {")

    received = wait_for(events, lambda e: e["type"] == "command.dead_lettered")

    (event,) = received
    assert event["error"]["code"] == "undeliverable"
    (entry,) = dlq_entries(checkout)
    assert entry["raw"] == "this is not JSON {" and entry["command"] is None
    assert entry["error"]["code"] == "undeliverable" and entry["attempts"] == 0

    replay = checkout("dlq", "replay", entry["id"])
    assert replay.returncode == 1
    assert "not a command" in replay.stderr and "purge" in replay.stderr
    assert [e["id"] for e in dlq_entries(checkout)] == [entry["id"]]

    purge = checkout("dlq", "purge", entry["id"])
    assert purge.returncode == 0 and entry["id"] in purge.stdout
    assert dlq_entries(checkout) == []
    assert checkout("dlq", "purge", entry["id"]).returncode == 1

    # The worker is still there and applies the next command.
    assert worker.process.poll() is None
    send([create("dlq-after-raw", "s-after-raw")])
    received = wait_for(events, lambda e: e.get("command_id") == "dlq-after-raw")
    assert received[-1]["type"] == "session.created"


def dead_letter_without_running(settings, command: dict) -> str:
    """Enqueue `command` and dead-letter it as a worker would, without applying it."""
    journal = Journal(make_redis_client(settings.redis_url), settings)
    try:
        ((jid,),) = journal.enqueue([[prepare(command)]], queue=settings.commands_queue)
        assert journal.claim(jid, "ghost-worker").verdict == "go"
        reason = DeadLetter("retries_exhausted", "StoreUnavailable", "DynamoDB unreachable")
        event = dead_letter_event(
            jid,
            command_id=command["command_id"],
            session_id=command["session_id"],
            code=reason.code,
            message=reason.message,
            error_type=reason.error_type,
        )
        finished = journal.finish(
            jid,
            "ghost-worker",
            event_json=event.to_json(),
            outcome="dead_lettered",
            dead_letter=reason,
        )
        assert finished
        return jid
    finally:
        journal.client.close()


def test_a_dead_lettered_command_is_replayed_and_applied_once(
    one_retry, start_workers, checkout, send, events, settings
):
    held = update("dlq-replay", "s-replay", buyer=BUYER)
    jid = dead_letter_without_running(settings, held)
    # Its original message is still queued: the worker skips it (its entry is finished).
    start_workers(1, concurrency=1)
    send([create("dlq-create", "s-replay")])  # after it in the session: not held back
    wait_for(events, lambda e: e.get("command_id") == "dlq-create")

    (entry,) = dlq_entries(checkout)
    assert entry["id"] == jid and entry["command"] == held  # the JSON forms show the body
    assert entry["error"] == {
        "code": "retries_exhausted",
        "type": "StoreUnavailable",
        "message": "DynamoDB unreachable",
    }
    shown = checkout("dlq", "show", "dlq-replay")  # by command id
    assert shown.returncode == 0 and json.loads(shown.stdout)["id"] == jid
    for listing in (checkout("dlq", "list").stdout, list_on_a_terminal(one_retry)):
        assert all(text in listing for text in (jid, "dlq-replay", "update_session", "s-replay"))
        assert "retries_exhausted" in listing and BUYER["email"] not in listing

    replay = checkout("dlq", "replay", jid)
    assert replay.returncode == 0, replay.stderr
    assert jid in replay.stdout
    wait_for(events, lambda e: e.get("command_id") == "dlq-replay" and "session" in e)
    again = checkout("dlq", "replay", jid)
    assert again.returncode == 1 and "no dead-letter entry" in again.stderr
    assert dlq_entries(checkout) == []

    # A later command of the session, applied after anything the replay could have left.
    send([update("dlq-next", "s-replay", continue_url="https://shop.example/cart")])
    received = wait_for(events, lambda e: e.get("command_id") == "dlq-next")

    mine = [e["type"] for e in received if e.get("command_id") == "dlq-replay"]
    assert mine == ["command.dead_lettered", "session.updated"]
    assert received[-1]["type"] == "session.updated" and received[-1]["version"] == 3
    session = json.loads(checkout("get", "s-replay").stdout)
    assert session["version"] == 3 and session["buyer"]["email"] == BUYER["email"]


def list_on_a_terminal(env: dict[str, str]) -> str:
    """`checkout dlq list` with stdout on a pseudo-terminal: the rich table."""
    primary, secondary = pty.openpty()
    try:
        result = subprocess.run(
            [CHECKOUT, "dlq", "list"],
            env={**env, "COLUMNS": "250"},
            stdout=secondary,
            stderr=subprocess.PIPE,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        os.close(secondary)
        secondary = -1
        return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", _read_all(primary))
    finally:
        os.close(primary)
        if secondary >= 0:
            os.close(secondary)


def _read_all(fd: int) -> str:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the terminal's other side is closed and drained
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode()
