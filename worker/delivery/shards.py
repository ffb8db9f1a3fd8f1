"""Which Redis shard a command goes to: a stable function of its session id.

Every command of a session goes to one shard, so per-session order, the journal and
exactly-once all stay inside one Redis. The function is documented (README "Scaling
out") and computed identically by every producer (`clients/typescript/src/shards.ts`;
a test pins both on fixed ids):

    shard = (first 8 bytes of SHA-256(session_id as UTF-8), big-endian) mod shards

A `create_session` without a `session_id` is routed by the id the worker will give
it (`session_id_for(command_id)`), so its later commands, which name that id, follow it.
"""

from __future__ import annotations

import hashlib

from worker.service.apply import session_id_for


def shard_of(session_id: str, shards: int) -> int:
    """The shard (0 to `shards` - 1) of the session `session_id`."""
    if shards < 1:
        raise ValueError(f"shards must be at least 1, not {shards}")
    digest = hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") % shards


def routing_session(session_id: str | None, command_id: str) -> str:
    """The session id a command is routed by: its own, or the one its create makes."""
    return session_id if session_id else session_id_for(command_id)


def shard_for(session_id: str | None, command_id: str, shards: int) -> int:
    """The shard of a command (its session's; see `routing_session`)."""
    if shards == 1:
        return 0
    return shard_of(routing_session(session_id, command_id), shards)
