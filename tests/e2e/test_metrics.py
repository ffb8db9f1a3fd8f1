"""A real worker's Prometheus endpoint after a handful of commands (README "Seeing it run")."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable

from prometheus_client.parser import text_string_to_metric_families

from tasks.embedded.stack import free_port, start_worker
from tests.e2e.builders import MUG, create, update

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str) -> float:
    return sum(v for (sample, _), v in samples.items() if sample == name)


def scrape_until(port: int, done: Callable[[Samples], bool], timeout: float = 60.0) -> Samples:
    """Counters land just after the event is published: poll until they are all in."""
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(port)
        if done(samples) or time.monotonic() > deadline:
            return samples
        time.sleep(0.1)


def test_a_worker_counts_outcomes_retries_latency_and_dynamodb_requests(
    env, tables, send, events, tmp_path
):
    port = free_port()
    worker = start_worker(
        env, log=tmp_path / "worker.log", concurrency=2, extra_args=["--metrics-port", str(port)]
    )
    try:
        send(
            [
                create("m-1", "s-a"),
                create("m-2", "s-b"),
                update("m-3", "s-a", line_items=[MUG]),
                create("m-4", "s-a"),  # exists already: rejected version_conflict
                # No such session: retried (its create may be in flight), then rejected.
                update("m-5", "s-missing", line_items=[MUG]),
            ]
        )
        events(5)
        samples = scrape_until(port, lambda s: total(s, "checkout_commands_total") >= 5)
    finally:
        worker.stop()

    commands = "checkout_commands_total"
    assert value(samples, commands, type="create_session", outcome="session.created") == 2
    assert value(samples, commands, type="update_session", outcome="session.updated") == 1
    assert value(samples, commands, type="create_session", outcome="version_conflict") == 1
    assert value(samples, commands, type="update_session", outcome="session_not_found") == 1
    assert total(samples, commands) == 5
    assert value(samples, "checkout_retries_total") == 3  # MISSING_SESSION_RETRIES
    assert total(samples, "checkout_dead_letters_total") == 0
    # One latency per command, all across the pool's processes (multiprocess mode).
    assert value(samples, "checkout_command_seconds_count", type="create_session") == 3
    assert value(samples, "checkout_command_seconds_count", type="update_session") == 2
    assert total(samples, "checkout_command_seconds_sum") > 0
    # One write per applied command: a PutItem per create (the refused m-4 tries one too),
    # an UpdateItem per update; no transactions.
    requests = "checkout_dynamodb_requests_total"
    assert value(samples, requests, operation="PutItem") >= 3
    assert value(samples, requests, operation="UpdateItem") >= 1
    assert value(samples, requests, operation="TransactWriteItems") == 0
    assert total(samples, "checkout_dynamodb_requests_total") >= 5
