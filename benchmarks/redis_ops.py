"""What one delivery operation and one bare round trip cost a quiet Redis (`make bench-redis-ops`).

Two figures that bound `redis_us_per_command` from below, on an otherwise idle
redis-server of its own:

  round trip  a PING or a 1.2 kB SET, one at a time (and PINGs 20 ms apart, as a
              quiet pipeline's calls come): Redis's CPU per call (INFO used_cpu),
              nearly all of it the connection's read and write system calls
  operation   `enqueue` (batches of 100), `claim` and `finish` of order flows (7
              commands a session) as a worker calls them, one at a time: each FCALL's
              own time (INFO commandstats `usec`, inner calls included) per command

A command through the pipeline costs at least its round trips (under a backlog one: the
finish with the next message's take pipelined behind it; three when idle: BRPOP, claim,
finish) plus the operations' time: that sum, not the number of calls inside the scripts,
is what `redis_us_per_command` can come down to on a quiet Redis.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tasks.bench import workloads
from tasks.embedded.stack import start_redis

EVENT = json.dumps({"type": "session.updated", "session": {"pad": "x" * 1100}})
ITEM = json.dumps({"id": "s", "pad": "y" * 1800})  # a session copy's size (bench-memory)


def redis_cpu(client: Any) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def fcall_usec(client: Any) -> int:
    return client.info("commandstats").get("cmdstat_fcall", {}).get("usec", 0)


def round_trip_us(client: Any, call: Callable[[], Any], count: int, *, gap: float = 0.0) -> float:
    """Redis CPU per call, us, for `count` calls one at a time, `gap` seconds apart (a
    Redis woken from idle for each call pays more per call than a busy one)."""
    before = redis_cpu(client)
    for _ in range(count):
        call()
        if gap:
            time.sleep(gap)  # the spacing being measured, not a wait for anything
    return round((redis_cpu(client) - before) * 1e6 / count, 1)


def operations_us(url: str, sessions: int) -> dict[str, float]:
    """FCALL time per command of enqueue, claim and finish, us (medians of commands)."""
    os.environ["CHECKOUT_REDIS_URL"] = url
    os.environ.setdefault("CHECKOUT_KEY_PREFIX", "ro")
    from tasks.producer import prepare
    from worker.delivery.journal import Journal
    from worker.redis_client import make_redis_client
    from worker.settings import Settings

    settings = Settings()
    client = make_redis_client(url, single_connection=True)
    journal = Journal(client, settings)
    journal.heartbeat("ro-worker")
    flows = [workloads.order_flow(f"ro-{n}") for n in range(sessions)]
    pending = [prepare(c) for c in workloads.interleave(flows, 32)]
    before = fcall_usec(client)
    for start in range(0, len(pending), 100):
        journal.enqueue([pending[start : start + 100]], queue=settings.commands_queue)
    enqueue = (fcall_usec(client) - before) / len(pending)
    jids = []
    while (item := client.rpop(settings.commands_queue)) is not None:
        jids.append(json.loads(json.loads(item)["body"])[1]["jid"])
    claims, finishes = [], []
    while jids:  # a parked successor is claimed again on the next pass, as a wake-up does
        parked = []
        for jid in jids:
            before = fcall_usec(client)
            claim = journal.claim(jid, "ro-worker", with_copy=True)
            claims.append(fcall_usec(client) - before)
            if claim.verdict != "go":
                parked.append(jid)
                continue
            session_id = json.loads(claim.command)["session_id"]
            before = fcall_usec(client)
            journal.finish(
                jid,
                "ro-worker",
                event_json=EVENT,
                outcome="applied",
                session_copy=(session_id, ITEM, 300),
                claimed=claim,
            )
            finishes.append(fcall_usec(client) - before)
        while client.rpop(settings.commands_queue) is not None:
            pass  # the woken successors' messages: claimed from `parked` instead
        jids = parked
    return {
        "enqueue_us_per_command": round(enqueue, 1),
        "claim_us_median": statistics.median(claims),
        "finish_us_median": statistics.median(finishes),
        "claims_per_command": round(len(claims) / len(pending), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=100, help="order flows of 7 commands")
    parser.add_argument("--calls", type=int, default=5000, help="round trips of each kind")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="checkout-bench-redis-ops-"))
    redis, url = start_redis(workdir, appendonly=False)
    try:
        from worker.redis_client import make_redis_client

        client = make_redis_client(url, single_connection=True)
        result = {
            "ping_round_trip_us": round_trip_us(client, client.ping, args.calls),
            # As far apart as an order flow's calls at 75 commands/s on two workers.
            "ping_round_trip_us_20ms_apart": round_trip_us(client, client.ping, 250, gap=0.02),
            "set_1k_round_trip_us": round_trip_us(
                client, lambda: client.set("ro:k", EVENT), args.calls
            ),
            **operations_us(url, args.sessions),
        }
    finally:
        redis.stop()
    if args.json:
        print(json.dumps(result))
        return
    for name, value in result.items():
        print(f"{name:28s} {value}")


if __name__ == "__main__":
    main()
