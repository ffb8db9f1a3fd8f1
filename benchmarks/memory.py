"""Redis memory per command and per session, in one run on the embedded services
(`make bench-memory`). Order flows (7 commands a session, `tasks.bench.workloads`) are
sent with `checkout send` before any worker runs, then applied by one worker:

  per queued command     used_memory gained by the send, per command: its Celery
                         message, journal entry, queue listing and session order
  per finished command   what its keys still hold once every command has its result
                         and the journal is empty (MEMORY USAGE by key), per command,
                         sessions' keys and the result events left out; then the event
                         itself (MEMORY USAGE of the stream), and used_memory's own gain
  per session            its ordering state (s:<id>, kept a day after its last
                         enqueue) and its copy (c:<id>, kept CHECKOUT_SESSION_COPY_TTL)

used_memory is Redis's own count (INFO memory), read after a MEMORY PURGE.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from tasks.bench.workloads import order_flow
from tasks.embedded.stack import CHECKOUT, EmbeddedStack, start_worker
from worker.delivery.journal import in_flight_count
from worker.delivery.keys import RedisKeys
from worker.redis_client import make_redis_client

# Keys of a session, not of a command (reported per session).
PER_SESSION = ("checkout:s", "checkout:c")


def used_memory(client: Any) -> int:
    client.execute_command("MEMORY", "PURGE")
    return int(client.info("memory")["used_memory"])


def average_usage(client: Any, keys: list[str]) -> float:
    sizes = [client.memory_usage(key, samples=0) or 0 for key in keys]
    return sum(sizes) / len(sizes) if sizes else 0.0


def by_kind(client: Any) -> dict[str, int]:
    """MEMORY USAGE summed by what a key is (`checkout:s`, `checkout:run`, a queue...)."""
    kinds: dict[str, int] = {}
    for key in client.scan_iter(count=1000):
        kind = ":".join(key.split(":")[:2]) if key.startswith("checkout:") else key
        kinds[kind] = kinds.get(kind, 0) + (client.memory_usage(key, samples=0) or 0)
    return dict(sorted(kinds.items(), key=lambda item: -item[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=300)
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="checkout-memory-") as tmp,
        EmbeddedStack(Path(tmp)) as stack,
    ):
        env = stack.env()
        client = make_redis_client(stack.redis_url)
        keys = RedisKeys("checkout")
        subprocess.run([CHECKOUT, "init"], env=env, check=True, capture_output=True)
        sessions = [f"mem-{n}" for n in range(args.sessions)]
        path = Path(tmp) / "flows.jsonl"
        with path.open("w") as out:
            for session in sessions:
                for command in order_flow(session):
                    out.write(json.dumps(command) + "\n")
        total = 7 * len(sessions)
        before = used_memory(client)
        subprocess.run([CHECKOUT, "send", "-q", str(path)], env=env, check=True)
        queued = used_memory(client)
        worker = start_worker(env, log=Path(tmp) / "worker.log", concurrency=2)
        try:
            deadline = time.monotonic() + args.timeout
            while time.monotonic() < deadline and (
                client.xlen("checkout:events") < total or in_flight_count(client, keys)
            ):
                time.sleep(0.5)
            finished = used_memory(client)
            stream = client.memory_usage("checkout:events", samples=0) or 0
            left = by_kind(client)
            report = {
                "commands": total,
                "sessions": len(sessions),
                "results": client.xlen("checkout:events"),
                "bytes_per_queued_command": round((queued - before) / total),
                # What a finished command leaves, its event aside: its run's outcome
                # (`checkout send` makes a run; kept a day) and nothing of the journal.
                "bytes_per_finished_command_without_event": round(
                    sum(v for k, v in left.items() if k not in (*PER_SESSION, "checkout:events"))
                    / total
                ),
                "used_memory_gained_per_finished_command": round((finished - before) / total),
                "bytes_per_result_event": round(stream / total),
                "bytes_per_session_order": round(
                    average_usage(client, [keys.session_order(s) for s in sessions])
                ),
                "bytes_per_session_copy": round(
                    average_usage(client, [keys.session_copy(s) for s in sessions])
                ),
                "finished_bytes_by_key_kind": left,
            }
        finally:
            worker.stop()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
