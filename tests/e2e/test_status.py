"""`checkout status --json` against a real stack with a known backlog."""

from __future__ import annotations

import json

from tests.e2e.builders import create, update


def test_status_counts_a_backlog_nobody_works_on(env, checkout, send, redis_client, settings):
    # No worker runs: everything sent stays queued and journaled.
    send([create("st-1", "s-1"), create("st-2", "s-2"), update("st-3", "s-1", currency="EUR")])
    # A downstream consumer group that has read nothing of two events yet.
    for number in range(2):
        redis_client.xadd(settings.events_stream, {"event": json.dumps({"n": number})})
    redis_client.xgroup_create(settings.events_stream, "billing", id="0")

    result = checkout("status", "--json", "--ping-timeout", "0.5")

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["queues"] == {settings.commands_queue: 3, settings.bulk_queue: 0}
    assert report["in_flight"] == 3
    assert report["in_flight_by_state"] == {"queued": 3}
    assert report["dead_letters"] == 0
    assert report["stream_length"] == 2
    assert report["consumer_groups"] == [
        {
            "name": "billing",
            "consumers": 0,
            "pending": 0,
            "lag": 2,
            "last_delivered_id": "0-0",
        }
    ]
    # Other tests' workers may answer the ping on the shared Redis; none beats in our prefix.
    assert report["workers"]["processes_heartbeating"] == 0
    assert isinstance(report["workers"]["nodes"], list)


def test_status_sees_a_running_worker(env, checkout, start_workers, send, events):
    (worker,) = start_workers(1, concurrency=1)
    send([create("st-live", "s-live")])
    events(1)  # its process heartbeats from its first command on

    report = json.loads(checkout("status", "--json").stdout)

    assert any(node.startswith(f"checkout-{worker.pid}@") for node in report["workers"]["nodes"])
    assert report["workers"]["processes_heartbeating"] >= 1
    text = checkout("status").stdout
    assert f"checkout-{worker.pid}@" in text and "in flight: 0" in text
