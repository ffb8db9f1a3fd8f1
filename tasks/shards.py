"""The deployment's Redis shards, as producers and the CLI use them.

One URL (`CHECKOUT_REDIS_URL`) is one shard: everything works as it always has.
Several (`CHECKOUT_REDIS_URLS`) are checked against what each shard records of its
place (`worker.delivery.shard_records`) before anything is sent or read, and the
views that span shards (a run's summary, status) add up what each shard holds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from functools import cached_property
from typing import Any

from worker.delivery import shard_records
from worker.delivery.keys import RedisKeys
from worker.delivery.runs import RunSummary, read_run
from worker.redis_client import make_redis_client
from worker.settings import Settings


class ShardSet:
    """The shards of a deployment: their URLs, a client each, their checked records."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.urls = settings.shard_urls
        self.keys = RedisKeys(settings.key_prefix)

    @property
    def count(self) -> int:
        return len(self.urls)

    @cached_property
    def clients(self) -> list[Any]:
        return [make_redis_client(url) for url in self.urls]

    def check(self) -> None:
        """Raise `ShardMismatch` if the shards record another list than this one."""
        shard_records.check(self.clients, self.urls, self.settings.key_prefix)

    def read_run(self, run_id: str) -> RunSummary:
        """A run's summary over every shard (each counts the commands it was sent)."""
        return combined(run_id, [read_run(client, self.keys, run_id) for client in self.clients])


def combined(run_id: str, summaries: Sequence[RunSummary]) -> RunSummary:
    """One summary of a run's parts (a shard's each)."""
    rejected: Counter[str] = Counter()
    for summary in summaries:
        rejected.update(summary.rejected)
    return RunSummary(
        run_id=run_id,
        sent=sum(s.sent for s in summaries),
        applied=sum(s.applied for s in summaries),
        rejected=dict(rejected),
        dead_lettered=sum(s.dead_lettered for s in summaries),
        failures=tuple(failure for s in summaries for failure in s.failures),
    )
