"""What an idle deployment costs Redis, by worker processes (`make bench-idle`).

For each shape (workers x processes each), on the embedded services: Redis calls/s by
name (INFO commandstats) and Redis CPU ms/s over a window with nothing queued, once
fresh and once after every process has applied commands and made its first idle beat
(an order flow of 8 sessions per process, then 7 s). The target is at most 5 calls/s
however many processes; the per-process part is what grows with them.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

from tasks.bench import suite, workloads
from tasks.bench.harness import EventWatcher, bench_environment, send_batches

SHAPES = ((1, 1), (2, 1), (1, 4), (1, 8))


def measure(workers: int, processes: int, window: float) -> dict[str, Any]:
    from tasks.producer import CommandProducer
    from worker.redis_client import make_redis_client

    with bench_environment(concurrency=processes) as bench:
        bench.add_workers(workers)
        time.sleep(3)  # the processes' own start-up calls, not idling
        fresh = suite.idle(bench, window)
        redis = make_redis_client(bench.settings.redis_url)
        watcher = EventWatcher(redis, bench.settings.events_stream)
        flows = [workloads.order_flow(f"idle-{n}") for n in range(8 * workers * processes)]
        send_batches(
            CommandProducer.from_settings(bench.settings),
            watcher,
            workloads.interleave(flows, 32),
        )
        watcher.wait(300)
        time.sleep(7)  # past each process's first idle beat after work
        after = suite.idle(bench, window)
    return {"workers": workers, "processes": processes, "fresh": fresh, "after_work": after}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=float, default=30.0, help="seconds measured (30)")
    args = parser.parse_args()
    for workers, processes in SHAPES:
        saved = dict(os.environ)  # bench_environment points it at its own services
        try:
            result = measure(workers, processes, args.window)
        finally:
            os.environ.clear()
            os.environ.update(saved)
        print(json.dumps(result), flush=True)
        after, fresh = result["after_work"], result["fresh"]
        print(
            f"{workers} worker(s) x {processes} process(es): "
            f"{fresh['redis_calls_per_s']} calls/s fresh, {after['redis_calls_per_s']} after work",
            flush=True,
        )


if __name__ == "__main__":
    main()
