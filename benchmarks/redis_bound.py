"""Redis's cost per command when Redis is the bottleneck (`make bench-redis`).

What a command costs Redis, measured where only Redis works: the delivery layer's calls
for each command exactly as producers and workers make them, from processes that do
nothing else (no DynamoDB, no Celery, no service):

  enqueue   `Journal.enqueue`, batches of 100 (order flows: 7 commands a session,
            `tasks.bench.workloads`, sessions interleaved as `checkout bench` sends them)
  take      BRPOP of the Celery message (what kombu does), `claim`
  apply     the session copy's GET and SET (what the store does around its one write)
  finish    `finish` with a 1.2 kB event (an order-flow event's size)

`--consumers` processes drain the queue while Redis's CPU (INFO used_cpu) and calls (INFO
commandstats) are read before and after. At the order flow's 64 commands/s, every call
wakes an idle Redis, and its CPU per call is several times what it is under load: this
is the figure for capacity (`redis_ceiling_cps`), the order flow's is what a quiet
deployment pays.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from tasks.bench import workloads
from tasks.embedded.stack import start_redis

EVENT = json.dumps({"type": "session.updated", "session": {"pad": "x" * 1100}})
ITEM = json.dumps({"id": "s", "pad": "y" * 1800})  # a session copy's size (bench-memory)


def redis_cpu(client: Any) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def redis_calls(client: Any) -> int:
    return sum(stats["calls"] for stats in client.info("commandstats").values())


def settings_for(url: str) -> Any:
    os.environ["CHECKOUT_REDIS_URL"] = url
    os.environ.setdefault("CHECKOUT_KEY_PREFIX", "rb")
    from worker.settings import Settings

    return Settings()


def consume(url: str, queue: str, number: int, total: int, claimed_copies: bool) -> None:
    """One worker's Redis work, until the stream holds `total` events. `claimed_copies`:
    the session copy travels with claim and finish, as a worker's does; else the store's
    own GET and SET (how workers did it before)."""
    from worker.delivery.journal import Journal
    from worker.delivery.session_copies import RedisSessionCopies
    from worker.redis_client import make_redis_client

    settings = settings_for(url)
    client = make_redis_client(settings.redis_url, single_connection=True)
    journal = Journal(client, settings)
    copies = RedisSessionCopies(client, journal.keys, ttl=300)
    worker = f"rb-{number}-{os.getpid()}"
    while True:
        popped = client.brpop([queue], timeout=0.5)
        if popped is None:
            if client.xlen(settings.events_stream) >= total:
                return
            continue
        jid = json.loads(json.loads(popped[1])["body"])[1]["jid"]
        claim = journal.claim(jid, worker, with_copy=claimed_copies)
        if claim.verdict != "go":
            continue  # parked: its predecessor's finish pushes it again
        session_id = json.loads(claim.command)["session_id"]
        kept = None
        if claimed_copies:
            kept = (session_id, ITEM, 300)
        else:
            copies.get(session_id)
            copies.put(session_id, ITEM)
        journal.finish(jid, worker, event_json=EVENT, outcome="applied", session_copy=kept)


def enqueue(client: Any, settings: Any, commands: list[dict]) -> None:
    from tasks.producer import prepare
    from worker.delivery.journal import Journal

    journal = Journal(client, settings)
    pending = [prepare(command) for command in commands]
    batches = [pending[n : n + 100] for n in range(0, len(pending), 100)]
    for start in range(0, len(batches), 10):
        journal.enqueue(batches[start : start + 10], queue=settings.commands_queue)


def measure(url: str, sessions: int, consumers: int, claimed_copies: bool) -> dict[str, Any]:
    from worker.redis_client import make_redis_client

    settings = settings_for(url)
    client = make_redis_client(settings.redis_url)
    flows = [workloads.order_flow(f"rb-{n}") for n in range(sessions)]
    commands = workloads.interleave(flows, 32)
    count = len(commands)

    cpu0, calls0 = redis_cpu(client), redis_calls(client)
    enqueue(client, settings, commands)
    cpu1, calls1 = redis_cpu(client), redis_calls(client)
    context = multiprocessing.get_context("spawn")
    procs = [
        context.Process(
            target=consume, args=(url, settings.commands_queue, n, count, claimed_copies)
        )
        for n in range(consumers)
    ]
    started = time.monotonic()
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
    seconds = time.monotonic() - started
    cpu2, calls2 = redis_cpu(client), redis_calls(client)
    # Counted in: the consumers' XLEN polls once the queue is empty (a few per
    # consumer) and this process's INFO calls; both are small next to 4,200 commands.
    total_cpu = cpu2 - cpu0
    return {
        "commands": count,
        "consumers": consumers,
        "session_copies": "claimed" if claimed_copies else "separate",
        "drain_seconds": round(seconds, 2),
        "cps": round(count / seconds),
        "redis_calls_per_command": round((calls2 - calls0) / count, 2),
        "enqueue_calls_per_command": round((calls1 - calls0) / count, 2),
        "redis_us_per_command": round(total_cpu * 1e6 / count, 1),
        "enqueue_us_per_command": round((cpu1 - cpu0) * 1e6 / count, 1),
        "redis_busy_while_draining": round((cpu2 - cpu1) / seconds, 2),
        "redis_ceiling_cps": round(count / total_cpu),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1500, help="order flows of 7 commands")
    parser.add_argument("--consumers", type=int, default=3)
    parser.add_argument(
        "--copies",
        choices=["claimed", "separate"],
        default="claimed",
        help="session copies read by claim and kept by finish (workers' way), or the "
        "store's own GET and SET (before)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="checkout-bench-redis-"))
    redis, url = start_redis(workdir, appendonly=False)
    try:
        result = measure(url, args.sessions, args.consumers, args.copies == "claimed")
    finally:
        redis.stop()
    if args.json:
        print(json.dumps(result))
        return
    for name, value in result.items():
        print(f"{name:28s} {value}")


if __name__ == "__main__":
    main()
