"""Redis's cost per command on 1, 2 and 3 shards (`make bench-shards`).

The Redis-bound workload of `benchmarks.redis_bound` (enqueue, BRPOP, claim, finish with
the session copy; no DynamoDB, no Celery), routed by `worker.delivery.shards` over N
redis-servers with one consumer process per shard. Per shard: its commands, Redis CPU
and calls per command (INFO, before and after). The claim being checked: a shard's cost
per command stays flat as shards are added, so capacity grows with the shard count until
something else binds (here: the machine's 2 cores run every Redis and every consumer).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.redis_bound import consume, enqueue, redis_calls, redis_cpu
from tasks.bench import workloads
from tasks.embedded.stack import start_redis
from worker.delivery.shards import shard_for


def measure(urls: list[str], sessions: int) -> dict[str, Any]:
    from worker.redis_client import make_redis_client
    from worker.settings import Settings

    os.environ.setdefault("CHECKOUT_KEY_PREFIX", "rb")
    flows = [workloads.order_flow(f"rb-{n}") for n in range(sessions)]
    commands = workloads.interleave(flows, 32)
    parts: list[list[dict]] = [[] for _ in urls]
    for command in commands:
        parts[shard_for(command.get("session_id"), command["command_id"], len(urls))].append(
            command
        )
    clients = [make_redis_client(url) for url in urls]
    # Each shard's own settings, its tag in them, so jids look as a deployment's do.
    deployment = Settings(redis_urls=tuple(urls))
    settings = [deployment.for_shard(n) for n in range(len(urls))]
    before = [(redis_cpu(c), redis_calls(c)) for c in clients]
    for client, shard_settings, part in zip(clients, settings, parts, strict=True):
        enqueue(client, shard_settings, part)
    context = multiprocessing.get_context("spawn")
    procs = [
        context.Process(target=consume, args=(url, s.commands_queue, n, len(part), True))
        for n, (url, s, part) in enumerate(zip(urls, settings, parts, strict=True))
    ]
    started = time.monotonic()
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
    seconds = time.monotonic() - started
    per_shard = []
    for client, part, (cpu0, calls0) in zip(clients, parts, before, strict=True):
        cpu, calls = redis_cpu(client) - cpu0, redis_calls(client) - calls0
        per_shard.append(
            {
                "commands": len(part),
                "redis_us_per_command": round(cpu * 1e6 / len(part), 1),
                "redis_calls_per_command": round(calls / len(part), 2),
                "redis_ceiling_cps": round(len(part) / cpu),
            }
        )
    return {
        "shards": len(urls),
        "commands": len(commands),
        "drain_seconds": round(seconds, 2),
        "cps": round(len(commands) / seconds),
        "spread": [s["commands"] for s in per_shard],
        "per_shard": per_shard,
        # What the shards together carry, each Redis on a core of its own.
        "redis_ceiling_cps": sum(s["redis_ceiling_cps"] for s in per_shard),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1500, help="order flows of 7 commands")
    parser.add_argument("--max-shards", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = []
    for shards in range(1, args.max_shards + 1):
        workdir = Path(tempfile.mkdtemp(prefix="checkout-bench-shards-"))
        servers = [start_redis(_dir(workdir, n)) for n in range(shards)]
        try:
            results.append(measure([url for _, url in servers], args.sessions))
        finally:
            for server, _ in servers:
                server.stop()
            shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        print(json.dumps(results))
        return
    print("shards  commands  spread             cps   us/cmd per shard       ceiling cps")
    for r in results:
        us = ", ".join(str(s["redis_us_per_command"]) for s in r["per_shard"])
        print(
            f"{r['shards']:>6}  {r['commands']:>8}  {r['spread']!s:<17} {r['cps']:>5}   "
            f"{us:<22} {r['redis_ceiling_cps']}"
        )


def _dir(workdir: Path, shard: int) -> Path:
    place = workdir / f"redis-{shard}"
    place.mkdir()
    return place


if __name__ == "__main__":
    main()
