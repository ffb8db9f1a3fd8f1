"""What a run (one `checkout send` or `bulk-update`) has done so far, read from Redis.

The pipeline's script keeps, per run id, the counts (`run:<run>:n`: sent, applied,
rejected:<code>, dead_lettered) and the first failures (`run:<run>:ex`). Reading
them is two small commands, cheap enough to poll a few times a second while a
big run drains.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis

from schemas.ids import escaped
from worker.delivery.keys import RedisKeys
from worker.redis_client import as_text

REJECTED = "rejected:"
EXAMPLES_SHOWN = 5


@dataclass(frozen=True)
class RunSummary:
    """Counts of one run; `pending` is what was sent and has no final outcome yet."""

    run_id: str
    sent: int = 0
    applied: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    dead_lettered: int = 0
    failures: tuple[tuple[str, str], ...] = ()  # (outcome, command_id), first ones only

    @property
    def finished(self) -> int:
        return self.applied + sum(self.rejected.values()) + self.dead_lettered

    @property
    def pending(self) -> int:
        return max(self.sent - self.finished, 0)

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "sent": self.sent,
            "applied": self.applied,
            "rejected": dict(sorted(self.rejected.items())),
            "dead_lettered": self.dead_lettered,
            "pending": self.pending,
            "failures": [{"outcome": o, "command_id": c} for o, c in self.failures],
        }

    def text(self) -> str:
        """The summary for people, a few lines; ids and codes escaped (they may come
        from a foreign client: a newline or an escape sequence must not reach a terminal)."""
        lines = [
            f"run {escaped(self.run_id)}: {self.sent} sent, {self.applied} applied, "
            f"{sum(self.rejected.values())} rejected, {self.dead_lettered} dead-lettered, "
            f"{self.pending} pending"
        ]
        for code, count in sorted(self.rejected.items(), key=lambda item: -item[1]):
            lines.append(f"  rejected {escaped(code)}: {count}")
        if self.failures:
            shown = self.failures[:EXAMPLES_SHOWN]
            listed = ", ".join(f"{escaped(c)} ({escaped(o)})" for o, c in shown)
            lines.append("  first failures: " + listed)
        return "\n".join(lines)


def read_run(client: redis.Redis, keys: RedisKeys, run_id: str) -> RunSummary:
    """The run's summary now (all zeros for a run Redis does not know)."""
    pipe = client.pipeline(transaction=False)
    pipe.hgetall(keys.run_counts(run_id))
    pipe.lrange(keys.run_examples(run_id), 0, -1)
    counts, examples = pipe.execute()
    counts = {as_text(k): int(v) for k, v in counts.items()}
    failures = tuple(tuple(as_text(e).split(" ", 1)) for e in examples)
    return RunSummary(
        run_id=run_id,
        sent=counts.get("sent", 0),
        applied=counts.get("applied", 0),
        rejected={k[len(REJECTED) :]: n for k, n in counts.items() if k.startswith(REJECTED) and n},
        dead_lettered=counts.get("dead_lettered", 0),
        failures=failures,  # type: ignore[arg-type]
    )


def wait_for_run(
    read: Callable[[], RunSummary],
    *,
    timeout: float | None,
    interval: float = 0.25,
    on_progress: Callable[[RunSummary], None] | None = None,
) -> tuple[RunSummary, bool]:
    """Poll `read` until nothing is pending or `timeout` passes; (summary, done)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        summary = read()
        if on_progress:
            on_progress(summary)
        if not summary.pending:
            return summary, True
        if deadline is not None and time.monotonic() >= deadline:
            return summary, False
        time.sleep(interval)
