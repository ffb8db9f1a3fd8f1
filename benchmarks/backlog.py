"""A backlog drained by one worker, in one run on the embedded services (`make bench-backlog`):

  enqueued      commands queued before any worker runs (sessions of 7 back to back)
  re-pushed     copies the reaper pushed again (queue positions given out past the
                enqueued messages): each one a second delivery of a command
  left queued   copies still on the queues once every command has its result
  deliveries    (enqueued + re-pushed) / enqueued; a parked command's wake-up is the
                ordering gate's own second message and is not counted
  longest reap  the longest `reap` script call, from Redis's SLOWLOG (calls over 1 ms)
  longest call  the longest call of any kind, the same way, and what it was

The visibility timeout is short (default 10 s) so that the backlog is older than it
for most of the run: the case where every queued entry used to look lost.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from tasks.embedded.stack import CHECKOUT, EmbeddedStack, start_worker
from worker.redis_client import make_redis_client

COMMANDS_PER_SESSION = 7
SCRIPT_CALLS = {"FCALL", "EVALSHA", "EVAL"}


def session_commands(session: str) -> list[dict]:
    create = {"type": "create_session", "command_id": f"{session}-0", "session_id": session}
    updates = [
        {
            "type": "update_session",
            "command_id": f"{session}-{n}",
            "session_id": session,
            "updates": {"continue_url": f"https://shop.example/cart/{n}"},
        }
        for n in range(1, COMMANDS_PER_SESSION)
    ]
    return [create, *updates]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=20_000)
    parser.add_argument("--visibility-timeout", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    sessions = max(1, args.commands // COMMANDS_PER_SESSION)
    with (
        tempfile.TemporaryDirectory(prefix="checkout-backlog-") as tmp,
        EmbeddedStack(Path(tmp)) as stack,
    ):
        env = {**stack.env(), "CHECKOUT_VISIBILITY_TIMEOUT": str(args.visibility_timeout)}
        client = make_redis_client(stack.redis_url)
        subprocess.run([CHECKOUT, "init"], env=env, check=True, capture_output=True)
        path = Path(tmp) / "backlog.jsonl"
        with path.open("w") as out:
            for s in range(sessions):
                for command in session_commands(f"s-{s}"):
                    out.write(json.dumps(command) + "\n")
        total = sessions * COMMANDS_PER_SESSION
        subprocess.run([CHECKOUT, "send", "-q", str(path)], env=env, check=True)
        client.config_set("slowlog-log-slower-than", 1000)
        client.config_set("slowlog-max-len", 10_000)
        client.slowlog_reset()
        started = time.monotonic()
        worker = start_worker(env, log=Path(tmp) / "worker.log", concurrency=2)
        try:
            deadline = started + args.timeout
            while client.xlen("checkout:events") < total and time.monotonic() < deadline:
                time.sleep(0.5)
            seconds = time.monotonic() - started
            time.sleep(2)  # copies pushed as the last results landed
            report = measure(client, total, seconds)
        finally:
            worker.stop()
    print(json.dumps(report))


def measure(client: Any, total: int, seconds: float) -> dict:
    pushed = int(client.get("checkout:qpos:checkout.commands") or 0)
    slow = client.slowlog_get(10_000)

    def longest(match: str) -> float:
        durations = [e["duration"] for e in slow if match in _text(e["command"])]
        return max(durations, default=0) / 1000

    def longest_named() -> str:
        """What the longest call was: its command and, for a script call, its operation."""
        if not slow:
            return ""
        words = _text(max(slow, key=lambda e: e["duration"])["command"]).split(" ")
        return " ".join(words[:1] + words[3:4]) if words[0].upper() in SCRIPT_CALLS else words[0]

    return {
        "enqueued": total,
        "results": client.xlen("checkout:events"),
        "seconds": round(seconds, 1),
        "re_pushed": pushed - total,
        "left_queued": client.llen("checkout.commands"),
        "deliveries_per_command": round(pushed / total, 4),
        "longest_reap_ms": longest(" reap "),
        "longest_call_ms": longest(""),
        "longest_call": longest_named(),
    }


def _text(command: object) -> str:
    if isinstance(command, list | tuple):
        return " ".join(str(part) for part in command)
    return str(command)


if __name__ == "__main__":
    main()
