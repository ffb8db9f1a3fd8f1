"""The Python producer's half of bench/enqueue_rate.ts: the same commands, the same Redis.

    python bench/python_enqueue_rate.py COUNT   # with CHECKOUT_REDIS_URL, _KEY_PREFIX, ...

Reads the commands as JSON lines on stdin (so both producers send identical ones),
validates them with `prepare` and enqueues them with `CommandProducer.send_prepared`;
prints {"validate_s": ..., "send_s": ...}.
"""

from __future__ import annotations

import json
import sys
import time

from tasks.producer import CommandProducer, prepare
from worker.settings import Settings


def main() -> None:
    commands = [json.loads(line) for line in sys.stdin if line.strip()]
    producer = CommandProducer.from_settings(Settings())
    started = time.perf_counter()
    pending = [prepare(command) for command in commands]
    validated = time.perf_counter()
    sent = producer.send_prepared(pending)
    finished = time.perf_counter()
    assert sent == len(commands), sent
    print(json.dumps({"validate_s": validated - started, "send_s": finished - validated}))


if __name__ == "__main__":
    main()
