"""What each shard records of the deployment it belongs to: `<prefix>:shard` = "k/n".

A session's shard is its hash modulo the number of shards (`worker.delivery.shards`),
so a producer or worker with another shard list would send a session's commands to a
Redis that does not hold its journal and ordering: per-session order and exactly-once
would silently end. Each process checks the list it was given against the shards' own
records before it sends or serves anything, and refuses to start on a disagreement.
Changing the count is `checkout shards reset` once every shard has drained (README
"Scaling out"). No script reads the record: it is not part of the delivery protocol.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

RECORD = "shard"


class ShardMismatch(Exception):
    """The shard list in the settings disagrees with what the shards record."""


def record_key(prefix: str) -> str:
    return f"{prefix}:{RECORD}"


def expected(shard: int, shards: int) -> str:
    return f"{shard}/{shards}"


def check(clients: Sequence[Any], urls: Sequence[str], prefix: str) -> None:
    """Record each shard's place on first use, and refuse a list that disagrees.
    Called with several shards only: a deployment of one Redis keeps no record."""
    for shard, (client, url) in enumerate(zip(clients, urls, strict=True)):
        check_one(client, url, shard=shard, shards=len(clients), prefix=prefix)


def check_one(client: Any, url: str, *, shard: int, shards: int, prefix: str) -> None:
    """`check` for one shard (a worker serves one: the others may be down meanwhile)."""
    want = expected(shard, shards)
    client.set(record_key(prefix), want, nx=True)
    found = client.get(record_key(prefix))
    found = found.decode() if isinstance(found, bytes) else found
    if found is not None and found != want:
        raise ShardMismatch(_disagreement(url, found, shard, shards))


def reset(clients: Sequence[Any], prefix: str) -> None:
    """Record the new shard list (after every shard drained: `checkout shards reset`)."""
    shards = len(clients)
    for shard, client in enumerate(clients):
        if shards > 1:
            client.set(record_key(prefix), expected(shard, shards))
        else:
            client.delete(record_key(prefix))


def _disagreement(url: str, found: str, shard: int, shards: int) -> str:
    place = f"shard {shard} of {shards}"
    recorded = found.replace("/", " of ", 1)
    return (
        f"the shard list disagrees with the shards: it has {shown_url(url)} as {place}, but that "
        f"Redis records being shard {recorded}. Use the list the shards were set up with, or "
        'drain every shard and run `checkout shards reset` (README "Scaling out")'
    )


def shown_url(url: str) -> str:
    """The URL without its password (a message shows where, never the secret)."""
    parts = urlsplit(url)
    if not parts.hostname:
        return parts.path or "a unix socket"
    return f"{parts.hostname}:{parts.port or 6379}{parts.path or ''}"
