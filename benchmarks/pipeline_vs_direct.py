"""Update commands three ways, side by side in one run, on the embedded services.

  direct    what the seed does per update: a GetItem and an unconditional PutItem of the
            whole session (same boto3 client settings): no queue, no idempotency
  service   CheckoutService.handle in this process: consistent read, decide, one
            TransactWriteItems (session + command record), XADD of the result event
  pipeline  the same commands through Redis and one `checkout worker --concurrency 1`

Prints the median per update for each, the service's CPU and DynamoDB requests per
command, and the worker's CPU per command. The moto server's own CPU dominates the
wall times here: compare the ratios, not the absolute numbers.

    make bench        # python -m benchmarks.pipeline_vs_direct --updates 300
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tasks.embedded import CHECKOUT, EmbeddedStack, start_worker

CART = [{"id": f"li-{n}", "type": "product", "total_amount": 1250 + n} for n in range(3)]
UPDATES = {"line_items": CART, "buyer": {"email": "bench@example.com"}}


def main() -> None:
    parser = argparse.ArgumentParser(description="update commands: direct, service, pipeline")
    parser.add_argument("--updates", type=int, default=300)
    count = parser.parse_args().updates
    with EmbeddedStack() as stack:
        os.environ.update(stack.env())
        subprocess.run([CHECKOUT, "init"], check=True, capture_output=True)
        direct = bench_direct(count)
        service, cpu, requests = bench_service(count)
        pipeline, worker_cpu = bench_pipeline(count, stack.workdir)
    print(f"{count} updates per column (3-item cart + buyer), moto server and redis-server here")
    print(f"  direct    {direct * 1e3:6.2f} ms/update (median)")
    print(
        f"  service   {service * 1e3:6.2f} ms/update (median, {service / direct:.2f}x direct); "
        f"CPU {cpu * 1e3:.2f} ms and {requests:.2f} DynamoDB requests per command"
    )
    print(
        f"  pipeline  {pipeline * 1e3:6.2f} ms/update (mean over the batch, "
        f"{pipeline / direct:.2f}x direct); worker CPU {worker_cpu * 1e3:.2f} ms per command"
    )


def command(kind: str, command_id: str, session_id: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "command_id": command_id, "session_id": session_id, **fields}


def create_sessions(prefix: str, count: int) -> list[str]:
    from worker.bootstrap import get_service

    ids = [f"{prefix}-{n}" for n in range(count)]
    for session_id in ids:
        get_service().outcome(command("create_session", f"create-{session_id}", session_id))
    return ids


def bench_direct(count: int) -> float:
    """The seed's update: read the item, recompute, put the whole item back."""
    from schemas.commands import SessionUpdates
    from worker.domain import apply_updates
    from worker.settings import get_settings
    from worker.store import make_dynamodb_client
    from worker.store_items import session_item, snapshot_from_item

    settings = get_settings()
    client = make_dynamodb_client(settings)
    changes = SessionUpdates.model_validate(UPDATES).given()
    timings = []
    for session_id in create_sessions("direct", count):
        started = time.perf_counter()
        key = {"sessionId": {"S": session_id}}
        item = client.get_item(TableName=settings.sessions_table, Key=key, ConsistentRead=True)
        snapshot = snapshot_from_item(item["Item"], now=int(time.time()))
        session = apply_updates(snapshot.session, changes, datetime.now(UTC))
        ttl = int(time.time()) + 86400
        client.put_item(
            TableName=settings.sessions_table, Item=session_item(session, version=2, ttl=ttl)
        )
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def bench_service(count: int) -> tuple[float, float, float]:
    from worker.bootstrap import get_service

    service = get_service()
    requests = 0

    def count_request(**_: Any) -> None:  # returns None: the request goes out unchanged
        nonlocal requests
        requests += 1

    service._store._client.meta.events.register("before-send.dynamodb", count_request)
    walls, cpus = [], []
    for session_id in create_sessions("service", count):
        requests_before = requests
        wall, cpu = time.perf_counter(), time.process_time()
        service.handle(
            command("update_session", f"update-{session_id}", session_id, updates=UPDATES)
        )
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        assert requests - requests_before == 2
    return statistics.median(walls), statistics.median(cpus), 2.0


def bench_pipeline(count: int, workdir: Path) -> tuple[float, float]:
    from tasks.producer import enqueue_many
    from worker.events import make_redis_client
    from worker.settings import get_settings

    settings = get_settings()
    redis = make_redis_client(settings.redis_url)
    ids = create_sessions("pipeline", count)
    worker = start_worker(os.environ.copy(), log=workdir / "bench-worker.log", concurrency=1)
    try:
        before_events = redis.xlen(settings.events_stream)
        cpu_before = tree_cpu_seconds(worker.pid)
        started = time.perf_counter()
        enqueue_many(command("update_session", f"q-{s}", s, updates=UPDATES) for s in ids)
        wait_until(lambda: redis.xlen(settings.events_stream) >= before_events + count, 600)
        elapsed = time.perf_counter() - started
        cpu = tree_cpu_seconds(worker.pid) - cpu_before
    finally:
        worker.stop()
    return elapsed / count, cpu / count


def wait_until(condition: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not done after {timeout:.0f}s")
        time.sleep(0.02)


def tree_cpu_seconds(pid: int) -> float:
    """user + system CPU of a process and its children (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    pids = [pid, *_children(pid)]
    total = 0
    for each in pids:
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        for child in map(int, children):
            found += [child, *_children(child)]
    return found


if __name__ == "__main__":
    main()
