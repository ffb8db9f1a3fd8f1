"""Where a worker's CPU per command goes, by phase (`make bench-profile`).

One `checkout worker` (`--pool`, default the worker's own) on the embedded Redis and moto
applies an order flow (`--sessions` x 7 commands) while py-spy samples each of its
processes in `--gil` mode: only the thread holding the GIL, so a sample is Python code
running, never a thread waiting on a socket. The table gives each phase's share of those
samples and the milliseconds per command that share is of the process tree's /proc CPU
time; what the GIL samples miss (system calls, the kernel's loopback TCP work, C code
that released the GIL) is the last row.

Needs py-spy (`pip install py-spy`; it reads the workers' memory: root, or
ptrace_scope 0). Phases are matched on function names along each sample's stack, the
first matching phase wins, in the order below.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

from tasks.bench import harness, workloads
from tasks.bench.suite import measure_pipeline

RATE_HZ = 250
# (phase, what a stack frame's function is called) -- first match wins, outermost first.
PHASES = (
    ("service: decide (domain rules, totals, messages)", r"CheckoutService\._decide"),
    ("service: load the session", r"CheckoutService\._load"),
    ("service: DynamoDB client", r"DynamoDBHttpClient\."),
    ("service: build the item and the rest", r"CheckoutService\."),
    ("journal: claim", r"Journal\.claim"),
    ("journal: finish", r"Journal\.finish"),
    ("outcome log line and metrics", r"_log_outcome|observe_outcome|count_"),
    ("processor: the rest", r"CommandProcessor\."),
    ("Celery: task request and trace", r"trace_task|Request\.|task_message_handler"),
    ("kombu: BRPOP, read and decode", r"_brpop|on_poll_start|on_readable|_deliver|loads"),
    ("heartbeat and reaper threads", r"Heartbeat\.|Reaper\."),
)
OTHER = "everything else (event loop, timers)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", choices=("prefork", "solo"), default=None)
    parser.add_argument("--sessions", type=int, default=300)
    options = parser.parse_args()
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        sys.exit("benchmarks.worker_profile: needs py-spy on PATH (pip install py-spy)")
    samples, cpu_ms, count, pool = profile(py_spy, options.pool, options.sessions)
    print_table(samples, cpu_ms, count, pool)


def profile(py_spy: str, pool: str | None, sessions: int) -> tuple[Counter, float, int, str]:
    """Per-phase GIL samples, the worker tree's CPU ms per command, commands, pool."""
    out = Path(tempfile.mkdtemp(prefix="worker-profile-"))
    with harness.bench_environment(pool=pool) as bench:
        bench.add_workers(1)
        pids = harness.process_tree(bench.workers[0].pid)
        spies = [
            subprocess.Popen(
                [*spy_command(py_spy), "--pid", str(pid), "--output", str(out / f"{pid}.txt")],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for pid in pids
        ]
        time.sleep(1.0)  # py-spy attached before the first command
        flows = [workloads.order_flow(str(uuid.uuid4())) for _ in range(sessions)]
        commands = workloads.interleave(flows, 32)
        result = measure_pipeline(bench, commands, harness.send_batches)
        for spy in spies:
            spy.send_signal(2)  # SIGINT: py-spy writes its file and exits
        for spy in spies:
            spy.wait(timeout=60)
        samples: Counter = Counter()
        for path in out.glob("*.txt"):
            samples.update(phases_of(path.read_text()))
        used = pool or bench.settings.worker_pool
    shutil.rmtree(out, ignore_errors=True)
    return samples, result["worker_cpu_ms_per_command"], len(commands), used


def spy_command(py_spy: str) -> list[str]:
    """py-spy sampling the GIL holder only, without pausing the process, as raw stacks."""
    return [py_spy, "record", "--rate", str(RATE_HZ), "--gil", "--nonblocking", "--format", "raw"]


def phases_of(raw: str) -> Counter:
    """GIL samples per phase of one py-spy raw file (`frame;frame;... count` lines)."""
    found: Counter = Counter()
    patterns = [(name, re.compile(pattern)) for name, pattern in PHASES]
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        found[phase_of(stack.split(";"), patterns)] += int(count)
    return found


def phase_of(frames: list[str], patterns: list[tuple[str, re.Pattern]]) -> str:
    for name, pattern in patterns:
        if any(pattern.search(frame.split(" (", 1)[0]) for frame in frames):
            return name
    return OTHER


def print_table(samples: Counter, cpu_ms: float, count: int, pool: str) -> None:
    total = sum(samples.values())
    gil_ms = total / RATE_HZ * 1000 / count
    print(f"pool {pool}, {count} order-flow commands, worker CPU {cpu_ms:.2f} ms per command")
    print(f"{'phase':<52} {'GIL samples':>11} {'ms/command':>10}")
    for name in [name for name, _ in PHASES] + [OTHER]:
        share = samples[name] / total if total else 0.0
        print(f"{name:<52} {share:>10.1%} {share * gil_ms:>10.3f}")
    outside = "outside Python (system calls, kernel, C code)"
    print(f"{outside:<52} {'':>11} {cpu_ms - gil_ms:>10.3f}")


if __name__ == "__main__":
    main()
