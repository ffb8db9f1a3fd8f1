"""What `checkout bench` runs on: services, fresh names, worker processes and their meters.

Everything here measures from outside the workers: CPU and peak RSS from /proc, DynamoDB
requests from the workers' own Prometheus files (multiprocess mode, in a directory this
run chooses), result times from the Redis stream entry ids (Redis's clock).
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks.embedded.stack import EmbeddedStack, ManagedProcess, free_port, start_worker
from worker.redis_client import as_text

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Bench:
    """The run's environment (services and names of its own) and its worker processes."""

    env: dict[str, str]
    workdir: Path
    metrics_dir: Path
    embedded: bool
    workers: list[ManagedProcess] = field(default_factory=list)
    concurrency: int = 1
    pool: str | None = None  # None: the worker's default (CHECKOUT_WORKER_POOL, or solo)
    # The embedded moto server's pid (None for a configured DynamoDB): its CPU per
    # command is reported next to the workers', so no work moves there unseen.
    moto_pid: int | None = None

    @property
    def settings(self) -> Any:
        from worker.settings import Settings

        return Settings()

    def add_workers(self, count: int) -> None:
        """Start `count` more `checkout worker` processes, in parallel (each waits for a ping)."""
        started: list[ManagedProcess] = []
        errors: list[BaseException] = []

        def one(number: int) -> None:
            log = self.workdir / f"worker-{number}.log"
            try:
                started.append(
                    start_worker(
                        self.env,
                        log=log,
                        concurrency=self.concurrency,
                        extra_args=[
                            "--metrics-port",
                            str(free_port()),
                            *(["--pool", self.pool] if self.pool else []),
                        ],
                    )
                )
            except BaseException as error:  # reported below, after every thread is done
                errors.append(error)

        base = len(self.workers)
        threads = [threading.Thread(target=one, args=(base + n,)) for n in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.workers += started
        if errors:
            raise errors[0]

    def stop_workers(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.workers.clear()


@contextmanager
def bench_environment(*, concurrency: int = 1, pool: str | None = None) -> Iterator[Bench]:
    """Configured services when CHECKOUT_REDIS_URL or CHECKOUT_DYNAMODB_ENDPOINT_URL is
    set, else the embedded redis-server and moto server; fresh tables and keys either way."""
    # Our own process must not write into the workers' metric files.
    os.environ.pop(MULTIPROC_ENV, None)
    workdir = Path(tempfile.mkdtemp(prefix="checkout-bench-"))
    configured = any(
        os.environ.get(name) for name in ("CHECKOUT_REDIS_URL", "CHECKOUT_DYNAMODB_ENDPOINT_URL")
    )
    with ExitStack() as stack:
        moto_pid = None
        if configured:
            base = dict(os.environ)
        else:
            services = stack.enter_context(EmbeddedStack(workdir / "services"))
            base, moto_pid = services.env(), services.moto.pid if services.moto else None
        suffix = uuid.uuid4().hex[:10]
        names = {
            "CHECKOUT_SESSIONS_TABLE": f"bench_sessions_{suffix}",
            "CHECKOUT_EVENTS_STREAM": f"checkout:bench:events:{suffix}",
            "CHECKOUT_COMMANDS_QUEUE": f"checkout.bench.commands.{suffix}",
            "CHECKOUT_BULK_QUEUE": f"checkout.bench.bulk.{suffix}",
            "CHECKOUT_KEY_PREFIX": f"checkout-bench-{suffix}",
        }
        os.environ.update({**base, **names})
        metrics_dir = workdir / "metrics"
        metrics_dir.mkdir()
        env = {**base, **names, MULTIPROC_ENV: str(metrics_dir)}
        bench = Bench(
            env,
            workdir,
            metrics_dir,
            not configured,
            concurrency=concurrency,
            pool=pool,
            moto_pid=moto_pid,
        )
        _create_tables(bench.settings)
        stack.callback(bench.stop_workers)
        yield bench


def _create_tables(settings: Any) -> None:
    from worker.dynamodb.clients import make_dynamodb_client
    from worker.dynamodb.tables import ensure_tables

    ensure_tables(make_dynamodb_client(settings), settings)


# ─── Worker meters: /proc ───


def process_tree(pid: int) -> list[int]:
    """`pid` and its live descendants (Linux /proc)."""
    found = [pid]
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except FileNotFoundError:
        return found
    for task in tasks:
        try:
            children = (task / "children").read_text().split()
        except FileNotFoundError:
            continue
        for child in map(int, children):
            found += process_tree(child)
    return found


def moto_cpu_seconds(bench: Bench) -> float | None:
    """The embedded moto server's CPU so far (None for a configured DynamoDB)."""
    return tree_cpu_seconds(bench.moto_pid) if bench.moto_pid else None


def tree_cpu_seconds(pid: int) -> float:
    """user + system CPU of a process tree; the root's reaped children included."""
    total = 0
    for number, each in enumerate(process_tree(pid)):
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
        if number == 0:
            total += int(fields[13]) + int(fields[14])  # cutime, cstime: exited children
    return total / CLOCK_TICKS


def _status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0


def workers_cpu_seconds(workers: Sequence[ManagedProcess]) -> float:
    return sum(tree_cpu_seconds(worker.pid) for worker in workers)


def workers_peak_rss_mb(workers: Sequence[ManagedProcess]) -> dict[str, float]:
    """Peak RSS (VmHWM): the largest single process, and the largest worker's whole tree."""
    per_process = [
        _status_kb(each, "VmHWM") for worker in workers for each in process_tree(worker.pid)
    ]
    per_tree = [
        sum(_status_kb(each, "VmHWM") for each in process_tree(worker.pid)) for worker in workers
    ]
    return {
        "process_max_mb": round(max(per_process, default=0) / 1024, 1),
        "worker_tree_max_mb": round(max(per_tree, default=0) / 1024, 1),
    }


def workers_rss_mb(workers: Sequence[ManagedProcess]) -> float:
    """Current RSS (VmRSS) of every worker process, summed."""
    kb = sum(_status_kb(each, "VmRSS") for w in workers for each in process_tree(w.pid))
    return kb / 1024


# ─── Worker meters: Prometheus multiprocess files ───


def read_metrics(directory: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every counter sample the workers wrote, summed over their processes."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))
    samples = {}
    for family in registry.collect():
        for sample in family.samples:
            if sample.name.endswith("_total"):
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def ddb_requests(metrics: dict) -> dict[str, float]:
    """DynamoDB requests by operation from `read_metrics`."""
    found: dict[str, float] = {}
    for (name, labels), value in metrics.items():
        if name == "checkout_dynamodb_requests_total":
            operation = dict(labels).get("operation", "unknown")
            found[operation] = found.get(operation, 0.0) + value
    return found


def metric_total(metrics: dict, name: str) -> float:
    return sum(value for (sample, _), value in metrics.items() if sample == name)


def diff(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {
        key: after[key] - before.get(key, 0.0) for key in after if after[key] != before.get(key)
    }


# ─── Redis meters ───


def redis_calls(client: Any) -> int:
    """Commands Redis has executed (INFO commandstats), scripts' inner calls included."""
    return sum(stats["calls"] for stats in client.info("commandstats").values())


def redis_calls_by_name(client: Any) -> dict[str, int]:
    """INFO commandstats' calls per command name, e.g. {"fcall": 2301, "brpop": 1150}."""
    return {
        name.removeprefix("cmdstat_"): stats["calls"]
        for name, stats in client.info("commandstats").items()
    }


def redis_cpu_seconds(client: Any) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def redis_command_seconds(client: Any, name: str) -> float:
    """Redis's time in one command (INFO commandstats), e.g. the watcher's own XRANGE."""
    return client.info("commandstats").get(f"cmdstat_{name}", {}).get("usec", 0) / 1e6


# ─── Sending commands and collecting their result events ───


class EventWatcher:
    """Result events of the commands we sent, timed by their stream entry ids."""

    def __init__(self, client: Any, stream: str) -> None:
        self._client = client
        self._stream = stream
        last = client.xrevrange(stream, count=1)
        self._cursor = last[0][0] if last else "0-0"
        self.enqueued: dict[str, float] = {}  # command id -> time.time() at send
        self.latencies_ms: dict[str, float] = {}
        self.outcomes: dict[str, int] = {}
        self.last_event_ms = 0
        # Our own XRANGE calls, left out of the Redis calls per command (and their time,
        # of its CPU). Entry ids time the events, so polling less often changes no figure.
        self.polls = 0

    def expect(self, command_ids: Iterable[str], at: float) -> None:
        for command_id in command_ids:
            self.enqueued[command_id] = at

    def poll(self) -> int:
        """Read what the stream has gained; returns how many of ours are still missing."""
        while True:
            entries = self._client.xrange(self._stream, min=f"({self._cursor}", count=5000)
            self.polls += 1
            if not entries:
                break
            for entry_id, fields in entries:
                self._take(entry_id, fields)
            self._cursor = entries[-1][0]
        return len(self.enqueued) - len(self.latencies_ms)

    def _take(self, entry_id: Any, fields: dict) -> None:
        event = json.loads(fields[b"event"] if b"event" in fields else fields["event"])
        command_id = event.get("command_id")
        sent = self.enqueued.get(command_id)
        if sent is None or command_id in self.latencies_ms:
            return
        entry_ms = int(as_text(entry_id).split("-")[0])
        self.latencies_ms[command_id] = entry_ms - sent * 1000
        self.last_event_ms = max(self.last_event_ms, entry_ms)
        outcome = event["error"]["code"] if event.get("error") else event.get("type", "?")
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    def wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while (missing := self.poll()) > 0:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{missing} result events missing after {timeout:.0f}s")
            time.sleep(0.1)


def send_batches(
    producer: Any, watcher: EventWatcher, commands: Sequence[dict], *, batch: int = 100
) -> None:
    """Enqueue `commands` in batches, stamping each command with its batch's send time."""
    from tasks.producer import prepare

    for start in range(0, len(commands), batch):
        pending = [prepare(command) for command in commands[start : start + batch]]
        at = time.time()
        watcher.expect((p.command_id for p in pending), at)
        producer.send_prepared(pending)


def send_paced(
    producer: Any, watcher: EventWatcher, commands: Sequence[dict], *, rate: float
) -> None:
    """Enqueue at `rate` commands/s in 10 ms ticks, so latency is measured below saturation."""
    from tasks.producer import prepare

    prepared = [prepare(command) for command in commands]
    started = time.monotonic()
    sent = 0
    while sent < len(prepared):
        due = min(len(prepared), int((time.monotonic() - started) * rate) + 1)
        if due > sent:
            batch = prepared[sent:due]
            watcher.expect((p.command_id for p in batch), time.time())
            producer.send_prepared(batch)
            sent = due
        time.sleep(0.01)


def percentiles(values: Iterable[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {"p50_ms": 0.0, "p95_ms": 0.0, "p99_ms": 0.0}

    def at(fraction: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))], 2)

    return {"p50_ms": at(0.50), "p95_ms": at(0.95), "p99_ms": at(0.99)}
