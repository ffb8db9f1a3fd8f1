"""Bulk numbers in one run, on the embedded services (`make bench-bulk`):

  send          `checkout send FILE` of N update commands (default 100,000): commands/s
  apply_async   a plain loop of one Celery `apply_async` per command, same commands: commands/s
  ratio         send / apply_async
  peak RSS      of `checkout send` on a 1,000,000-line file (constant memory: it streams)
  bulk-update   a 10,000-session `checkout bulk-update --ids FILE --wait` through two
                `checkout worker` processes: end-to-end seconds and commands/s

Both machines' cores are shared by redis-server, the moto server and the workers.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import tempfile
import time
from pathlib import Path

from tasks.embedded.stack import CHECKOUT, EmbeddedStack, start_worker


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=100_000)
    parser.add_argument("--rss-lines", type=int, default=1_000_000)
    parser.add_argument("--apply-async", type=int, default=20_000)
    parser.add_argument("--sessions", type=int, default=10_000)
    options = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-bulk-"))
    with EmbeddedStack(workdir / "services") as stack:
        os.environ.update(stack.env())
        subprocess.run([CHECKOUT, "init"], check=True, capture_output=True)
        send_rate = bench_send(workdir, options.commands)
        loop_rate = bench_apply_async(options.apply_async)
        rss_kb = bench_send_rss(workdir, options.rss_lines)
        forget_send_benchmarks()
        seconds = bench_bulk_update(workdir, options.sessions)
    print(f"send         {send_rate:10,.0f} commands/s ({options.commands:,} lines)")
    print(f"apply_async  {loop_rate:10,.0f} commands/s ({options.apply_async:,} calls)")
    print(f"ratio        {send_rate / loop_rate:10.1f}x")
    print(f"peak RSS     {rss_kb / 1024:10.1f} MiB (checkout send, {options.rss_lines:,} lines)")
    print(
        f"bulk-update  {seconds:10.1f} s end to end for {options.sessions:,} sessions, "
        f"{options.sessions / seconds:,.0f} commands/s (2 workers x 2 processes)"
    )


def write_updates(path: Path, count: int, prefix: str) -> None:
    with path.open("w") as out:
        for n in range(count):
            command = {
                "type": "update_session",
                "command_id": f"{prefix}-{n}",
                "session_id": f"{prefix}-s{n % 5000}",
                "updates": {"currency": "EUR", "continue_url": f"https://shop.example/{n}"},
            }
            out.write(json.dumps(command) + "\n")


# The send benchmarks enqueue to a queue no worker reads, under their own key prefix,
# and are deleted before the bulk-update part (which must not wait behind them).
SEND_ONLY = {"CHECKOUT_COMMANDS_QUEUE": "bench.send", "CHECKOUT_KEY_PREFIX": "bench-send"}


def run_send(path: Path, *extra: str) -> tuple[float, int]:
    """(seconds, peak RSS KiB) of one `checkout send` process."""
    started = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    env = {**os.environ, **SEND_ONLY}
    subprocess.run([CHECKOUT, "send", str(path), "--quiet", *extra], check=True, env=env)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return time.perf_counter() - started, max(peak, before)


def bench_send(workdir: Path, count: int) -> float:
    path = workdir / "send.jsonl"
    write_updates(path, count, "send")
    seconds, _ = run_send(path, "--run-id", "bench-send")
    return count / seconds


def bench_apply_async(count: int) -> float:
    """The baseline the issue names: one `apply_async` per command, same command shape."""
    from worker.runtime.tasks import apply_command

    commands = [
        {
            "type": "update_session",
            "command_id": f"loop-{n}",
            "session_id": f"loop-s{n % 5000}",
            "updates": {"currency": "EUR", "continue_url": f"https://shop.example/{n}"},
        }
        for n in range(count)
    ]
    started = time.perf_counter()
    for command in commands:
        apply_command.apply_async(args=[command], queue="bench.apply_async")
    return count / (time.perf_counter() - started)


def forget_send_benchmarks() -> None:
    """Drop what the send benchmarks left in Redis (no worker reads it)."""
    from worker.redis_client import make_redis_client

    make_redis_client(os.environ["CHECKOUT_REDIS_URL"]).flushdb(asynchronous=True)


def bench_send_rss(workdir: Path, lines: int) -> int:
    path = workdir / "rss.jsonl"
    write_updates(path, lines, "rss")
    _, peak = run_send(path, "--run-id", "bench-rss")
    path.unlink()
    return peak


def bench_bulk_update(workdir: Path, sessions: int) -> float:
    """Creates the sessions first (not timed), then times bulk-update --wait."""
    ids = [f"bulk-{n:06d}" for n in range(sessions)]
    creates = workdir / "creates.jsonl"
    with creates.open("w") as out:
        for session_id in ids:
            command = {"type": "create_session", "command_id": f"c-{session_id}"}
            out.write(json.dumps({**command, "session_id": session_id}) + "\n")
    env = dict(os.environ)
    workers = [start_worker(env, log=workdir / f"worker-{n}.log") for n in range(2)]
    try:
        subprocess.run([CHECKOUT, "send", str(creates), "--quiet", "--wait"], check=True)
        id_file = workdir / "ids.txt"
        id_file.write_text("\n".join(ids) + "\n")
        started = time.perf_counter()
        subprocess.run(
            [CHECKOUT, "bulk-update", "--set", "currency=EUR", "--ids", str(id_file), "--wait"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        return time.perf_counter() - started
    finally:
        for worker in workers:
            worker.stop()


if __name__ == "__main__":
    main()
