"""Journal ids (jids) and dead-letter ids that stay unique across shards.

A jid is `<Redis ms>-<n>`: the shard's clock and its own `jid` counter (`new_jid` and
`enqueue_commands` in pipeline.lua). Two shards have two clocks and two counters, so
they can make the same one; and the jid is also the Celery task id, the start of every
delivery tag (`<jid>.<queue position>`) and the id of its dead letter. So with several
shards every id the delivery makes carries the shard's tag first:

    s<K>:<ms>-<n>        a jid (enqueue, replay) of shard K
    s<K>:T<task id>      a message sent around the producer API, adopted on shard K
    s<K>:raw-<digest>    an undeliverable message dead-lettered on shard K

With one Redis (CHECKOUT_REDIS_URL, or CHECKOUT_REDIS_URLS of one URL) there is no tag:
`<ms>-<n>`, `T<task id>` and `raw-<digest>` exactly as before. The tag comes first, after
none of the characters the rest is split on: a delivery tag is still split at its last
'.', an adopted jid is still told by its 'T' (after the tag), and `<ms>-<n>` stays whole.
The script learns the tag from its caller (`shard_tag`, protocol.json), who knows its
shard: a producer routes per shard, a worker serves `--shard K`.
"""

from __future__ import annotations

import re

SEPARATOR = ":"
_TAGGED = re.compile(r"s(\d+):")


def shard_tag(shard: int, shards: int) -> str:
    """The tag of shard `shard` of `shards`: '' for a deployment of one Redis."""
    if not 0 <= shard < shards:
        raise ValueError(f"shard {shard} is not one of {shards} (0 to {shards - 1})")
    return "" if shards == 1 else f"s{shard}"


def tagged(tag: str, local_id: str) -> str:
    """`local_id` as the shard with tag `tag` names it ('' tag: unchanged)."""
    return f"{tag}{SEPARATOR}{local_id}" if tag else local_id


def shard_named(entry_id: str) -> int | None:
    """The shard whose tag starts `entry_id` (a jid or dead-letter id), None if untagged."""
    found = _TAGGED.match(entry_id)
    return int(found.group(1)) if found else None


def untagged(entry_id: str) -> str:
    """`entry_id` without its shard tag, if it has one."""
    found = _TAGGED.match(entry_id)
    return entry_id[found.end() :] if found else entry_id


def task_id_of(jid: str) -> str:
    """The Celery task id of journal entry `jid`'s messages (`task_id_of` in pipeline.lua):
    the jid, or for an entry adopted from a plain `send_task` ('T' + its id, after the
    shard's tag if any) that id."""
    local = untagged(jid)
    return local[1:] if local.startswith("T") else jid


def adopted_jid(tag: str, task_id: str) -> str:
    """The jid a worker of the shard tagged `tag` journals a plain `send_task` under."""
    return tagged(tag, f"T{task_id}")
