"""The workloads of `checkout bench`, each measured through the workers and its baselines.

Every pipeline measurement brackets the workload with the same meters: worker CPU
(/proc), the workers' DynamoDB request counters (Prometheus files), Redis commands
and CPU (INFO), and times every result event by its stream entry id.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from tasks.bench import harness, units, workloads
from tasks.bench.harness import Bench, EventWatcher


@dataclass(frozen=True)
class Sizes:
    sessions: int = 300  # order flow sessions (7 commands each)
    inflight: int = 32  # order flow sessions in flight at once
    paced_seconds: float = 15.0  # the half-saturation latency run
    hot_sessions: int = 4
    contention: int = 800  # contention commands
    bulk: int = 10_000  # bulk update commands
    backlog: int = 2_000  # commands held in Redis to weigh one in-flight command


# Three minutes on a shared 2-core machine where moto applies ~30 order-flow commands/s.
QUICK = Sizes(sessions=40, paced_seconds=4.0, contention=100, bulk=500, backlog=500)


def idle(bench: Bench, seconds: float = 10.0) -> dict[str, float]:
    """What idle workers cost (Celery's polling, heartbeats, the reaper): a window of
    `seconds` with nothing queued, so a slow run's per-command CPU can be read net of it.
    Their CPU ms/s, and Redis's calls/s and CPU ms/s (INFO commandstats and cpu)."""
    from worker.redis_client import make_redis_client

    redis = make_redis_client(bench.settings.redis_url)
    cpu_before, started = harness.workers_cpu_seconds(bench.workers), time.monotonic()
    calls_before, redis_before = harness.redis_calls(redis), harness.redis_cpu_seconds(redis)
    by_name_before = harness.redis_calls_by_name(redis)
    time.sleep(seconds)  # the measurement window itself, not a wait for anything
    by_name = harness.redis_calls_by_name(redis)
    # Less the two INFO calls that read the counters at the end.
    calls = harness.redis_calls(redis) - calls_before - 2
    redis_cpu = harness.redis_cpu_seconds(redis) - redis_before
    window = time.monotonic() - started
    cpu = harness.workers_cpu_seconds(bench.workers) - cpu_before
    return {
        "worker_cpu_ms_per_s": round(cpu * 1000 / window, 2),
        "redis_calls_per_s": round(calls / window, 2),
        "redis_cpu_ms_per_s": round(redis_cpu * 1000 / window, 3),
        "redis_calls_per_s_by_name": {
            name: round((n - by_name_before.get(name, 0)) / window, 2)
            for name, n in sorted(by_name.items())
            if n != by_name_before.get(name, 0)
        },
    }


def _service(bench: Bench) -> Any:
    from worker.runtime.bootstrap import build_service

    return build_service(bench.settings)


def create_sessions(bench: Bench, session_ids: Sequence[str]) -> None:
    """Create sessions in this process (not measured): the setup of a workload."""
    service = _service(bench)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(service.apply, workloads.creates(session_ids)))


def measure_pipeline(
    bench: Bench,
    commands: Sequence[dict],
    send: Callable[[Any, EventWatcher, Sequence[dict]], None],
    *,
    bulk: bool = False,
    timeout: float = 900.0,
) -> dict[str, Any]:
    """Send `commands` through the workers and measure until every result event is in."""
    from tasks.producer import CommandProducer
    from worker.redis_client import make_redis_client

    settings = bench.settings
    redis = make_redis_client(settings.redis_url)
    producer = CommandProducer.from_settings(settings, bulk=bulk)
    watcher = EventWatcher(redis, settings.events_stream)
    metrics_before = harness.read_metrics(bench.metrics_dir)
    cpu_before = harness.workers_cpu_seconds(bench.workers)
    moto_before = harness.moto_cpu_seconds(bench)
    calls_before, redis_cpu_before = harness.redis_calls(redis), harness.redis_cpu_seconds(redis)
    by_name_before = harness.redis_calls_by_name(redis)
    watching_before = harness.redis_command_seconds(redis, "xrange")
    started = time.time()
    send(producer, watcher, commands)
    watcher.wait(timeout)
    elapsed = watcher.last_event_ms / 1000 - started
    metrics = _settled_metrics(bench, metrics_before, len(commands))
    cpu = harness.workers_cpu_seconds(bench.workers) - cpu_before
    moto_after = harness.moto_cpu_seconds(bench)
    window = time.time() - started
    calls = harness.redis_calls(redis) - calls_before - watcher.polls
    by_name = harness.redis_calls_by_name(redis)
    watching = harness.redis_command_seconds(redis, "xrange") - watching_before
    redis_cpu = harness.redis_cpu_seconds(redis) - redis_cpu_before - watching
    count = len(commands)
    requests = harness.diff(harness.ddb_requests(metrics), harness.ddb_requests(metrics_before))
    retries = harness.metric_total(metrics, "checkout_retries_total") - harness.metric_total(
        metrics_before, "checkout_retries_total"
    )
    return {
        "workers": len(bench.workers),
        "commands": count,
        "seconds": round(elapsed, 3),
        "cps": round(count / elapsed, 1),
        **harness.percentiles(watcher.latencies_ms.values()),
        "outcomes": watcher.outcomes,
        "ddb_requests_per_command": round(sum(requests.values()) / count, 3),
        "ddb_requests_by_operation": {op: round(v / count, 3) for op, v in requests.items() if v},
        "worker_cpu_ms_per_command": round(cpu * 1000 / count, 3),
        "worker_cpu_window_s": round(window, 3),
        "moto_cpu_ms_per_command": (
            round((moto_after - moto_before) * 1000 / count, 3)
            if moto_after is not None and moto_before is not None
            else None
        ),
        "redis_commands_per_command": round(calls / count, 2),
        "redis_cpu_ms_per_command": round(redis_cpu * 1000 / count, 3),
        # Which calls they are (the meters' own INFO and XRANGE included here).
        "redis_calls_per_command_by_name": {
            name: round((n - by_name_before.get(name, 0)) / count, 2)
            for name, n in sorted(by_name.items())
            if n != by_name_before.get(name, 0)
        },
        "retries_per_command": round(retries / count, 4),
        "worker_peak_rss": harness.workers_peak_rss_mb(bench.workers),
        "latencies_ms": sorted(watcher.latencies_ms.values()),
    }


def _settled_metrics(bench: Bench, before: dict, count: int) -> dict:
    """The workers count a command just after its event is out: wait for the last few."""
    wanted = harness.metric_total(before, "checkout_commands_total") + count
    deadline = time.monotonic() + 10
    while True:
        metrics = harness.read_metrics(bench.metrics_dir)
        if harness.metric_total(metrics, "checkout_commands_total") >= wanted:
            return metrics
        if time.monotonic() > deadline:
            return metrics
        time.sleep(0.05)


def _with_baselines(
    pipeline: dict[str, Any], direct: dict[str, Any], seed: dict[str, Any] | None
) -> dict[str, Any]:
    result = {"pipeline": pipeline, "direct": _summarised(direct)}
    result["ratio_to_direct"] = round(pipeline["cps"] / direct["cps"], 3)
    result["cpu_ratio_to_direct"] = round(
        pipeline["worker_cpu_ms_per_command"] / direct["cpu_ms_per_command"], 3
    )
    if seed is not None:
        result["seed"] = _summarised(seed)
        result["ratio_to_seed"] = round(pipeline["cps"] / seed["cps"], 3)
    return result


def _summarised(baseline: dict[str, Any]) -> dict[str, Any]:
    latencies = baseline.pop("latencies_ms")
    return {**baseline, **harness.percentiles(latencies)}


# ─── 1. Order flow ───


def order_flow(
    bench: Bench, sizes: Sizes, tag: str = "of", modes: Sequence[str] = ("direct", "seed")
) -> dict[str, Any]:
    """S sessions through the workers, then through each baseline in `modes`."""
    flows = [workloads.order_flow(f"{tag}p-{n}") for n in range(sizes.sessions)]
    pipeline = measure_pipeline(
        bench, workloads.interleave(flows, sizes.inflight), harness.send_batches
    )
    baselines = {}
    for mode in modes:
        own = [workloads.order_flow(f"{tag}{mode[0]}-{n}") for n in range(sizes.sessions)]
        shares = workloads.shares_by_session(
            workloads.interleave(own, sizes.inflight), len(bench.workers)
        )
        baselines[mode] = workloads.run_baseline(mode, shares)
    result = _with_baselines(pipeline, baselines["direct"], baselines.get("seed"))
    return {**result, "kind": "order_flow"}


def paced_latency(bench: Bench, rate: float, seconds: float) -> dict[str, Any]:
    """Order flows sent at `rate` commands/s (half the saturation rate): the latency target."""
    sessions = max(2, int(rate * seconds / 7))
    flows = [workloads.order_flow(f"pace-{n}") for n in range(sessions)]
    commands = workloads.interleave(flows, max(1, int(rate / 7)))

    def send(producer: Any, watcher: EventWatcher, batch: Sequence[dict]) -> None:
        harness.send_paced(producer, watcher, batch, rate=rate)

    result = measure_pipeline(bench, commands, send)
    result["rate"] = round(rate, 1)
    return result


def flow_units(bench: Bench) -> dict[str, Any]:
    """Item sizes along one typical session's flow, through the service and the seed's way."""
    settings = bench.settings
    service_steps = units.probe_flow(settings, workloads.order_flow("probe-svc"), seed=False)
    seed_steps = units.probe_flow(settings, workloads.order_flow("probe-seed"), seed=True)
    return {"service_steps": service_steps, "seed_steps": seed_steps}


# ─── 2. Contention ───


def contention(bench: Bench, sizes: Sizes) -> dict[str, Any]:
    """Many updates on a few hot sessions: conflicts (failed conditional writes) and retries."""
    hot = [f"hot-p-{n}" for n in range(sizes.hot_sessions)]
    direct_hot = [f"hot-d-{n}" for n in range(sizes.hot_sessions)]
    create_sessions(bench, hot + direct_hot)
    pipeline = measure_pipeline(
        bench, workloads.updates_on(hot, sizes.contention, "hot-p"), harness.send_batches
    )
    processes = len(bench.workers)
    # Every process cycles through every hot session, so their writes race.
    shares = [
        workloads.updates_on(direct_hot, sizes.contention // processes, f"hot-d{n}")
        for n in range(processes)
    ]
    direct = workloads.run_baseline("direct", shares)
    for side, result in (("pipeline", pipeline), ("direct", direct)):
        # Each conflict costs one more (refused) write: writes beyond one per command.
        key = "ddb_requests_by_operation" if side == "pipeline" else "ddb_requests"
        per = sum(result[key].get(op, 0) for op in ("UpdateItem", "PutItem", "TransactWriteItems"))
        per = per if side == "pipeline" else per / result["commands"]
        result["conflicts_per_command"] = round(max(0.0, per - 1.0), 4)
    result = _with_baselines(pipeline, direct, None)
    result["hot_sessions"] = sizes.hot_sessions
    result["per_session_cps"] = round(pipeline["cps"] / sizes.hot_sessions, 1)
    return result


# ─── 3. Bulk ───


def bulk(bench: Bench, sizes: Sizes) -> dict[str, Any]:
    """Updates on the bulk queue, 1,000 per send as `checkout send --bulk` sends them."""
    session_ids = [f"bulk-{n}" for n in range(max(1, sizes.bulk // 10))]
    create_sessions(bench, session_ids)

    def send(producer: Any, watcher: EventWatcher, commands: Sequence[dict]) -> None:
        harness.send_batches(producer, watcher, commands, batch=1000)

    pipeline = measure_pipeline(
        bench, workloads.updates_on(session_ids, sizes.bulk, "bulk-p"), send, bulk=True
    )
    direct, seed = (
        workloads.run_baseline(
            mode,
            workloads.shares_by_session(
                workloads.updates_on(session_ids, sizes.bulk, f"bulk-{mode}"), len(bench.workers)
            ),
        )
        for mode in ("direct", "seed")
    )
    return _with_baselines(pipeline, direct, seed)


# ─── Redis: memory per in-flight command ───


def redis_backlog_bytes(bench: Bench, count: int) -> float:
    """Redis memory per enqueued, not yet applied command (a prefix and queue no worker reads)."""
    from tasks.producer import CommandProducer
    from worker.delivery.journal import Journal
    from worker.redis_client import make_redis_client
    from worker.settings import Settings

    settings = Settings(key_prefix=f"{bench.settings.key_prefix}-backlog")
    redis = make_redis_client(settings.redis_url)
    queue = f"{bench.settings.commands_queue}.backlog"
    producer = CommandProducer(Journal(redis, settings), queue=queue)
    commands = workloads.updates_on([f"backlog-{n}" for n in range(count)], count, "backlog")
    before = redis.info("memory")["used_memory"]
    producer.enqueue_many(commands)
    grown = redis.info("memory")["used_memory"] - before
    for key in redis.scan_iter(match=f"{settings.key_prefix}:*", count=1000):
        redis.delete(key)
    redis.delete(queue)
    return round(grown / count, 1)


# ─── Worker RSS across many commands ───


def soak(bench: Bench, count: int, batch: int = 5_000) -> dict[str, Any]:
    """Send `count` updates in batches and sample the workers' RSS after each."""
    session_ids = [f"soak-{n}" for n in range(500)]
    create_sessions(bench, session_ids)
    samples = [round(harness.workers_rss_mb(bench.workers), 1)]
    done = 0
    started = time.monotonic()
    while done < count:
        size = min(batch, count - done)
        commands = workloads.updates_on(session_ids, size, f"soak-{done}")
        measure_pipeline(bench, commands, harness.send_batches)
        done += size
        samples.append(round(harness.workers_rss_mb(bench.workers), 1))
    # The first batch warms caches and pools up; flat means flat after it.
    baseline = samples[1] if len(samples) > 2 else samples[0]
    growth = (samples[-1] - baseline) / baseline if baseline else 0.0
    return {
        "commands": count,
        "batch": batch,
        "seconds": round(time.monotonic() - started, 1),
        "rss_mb_samples": samples,
        "growth_after_first_batch": round(growth, 4),
    }
