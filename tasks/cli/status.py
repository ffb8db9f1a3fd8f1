"""`checkout status`: queues, commands in flight, dead letters, the event stream, workers.

Everything is read from Redis in a few round trips, plus one Celery ping; nothing
is changed, so it is safe to run against production as often as you like.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from tasks.cli.arguments import add_command, seconds
from tasks.cli.exit_codes import REDIS
from worker.delivery.journal import entry_states, in_flight_count
from worker.redis_client import as_text
from worker.settings import Settings, get_settings

# Splitting in-flight commands by state reads one field per entry: skip it past this.
STATE_SPLIT_LIMIT = 10_000
PING_TIMEOUT_SECONDS = 1.0


def register(commands: argparse._SubParsersAction) -> None:
    status = add_command(
        commands,
        "status",
        REDIS,
        help="queue depths, commands in flight, dead letters, stream lag, workers",
    )
    status.add_argument("--json", action="store_true", help="print one JSON object")
    status.add_argument(
        "--ping-timeout",
        type=seconds(allow_zero=False),
        default=PING_TIMEOUT_SECONDS,
        help="seconds to wait for workers to answer Celery's ping (default: %(default)s)",
    )
    status.set_defaults(run=run_status)


def run_status(args: argparse.Namespace) -> int:
    settings = get_settings()
    if len(settings.shard_urls) == 1:
        report = _collect_shard(settings, ping_timeout=args.ping_timeout)
        print(json.dumps(report, indent=2) if args.json else render(report))
        return 0
    return _run_sharded(settings, args)


def _collect_shard(settings: Settings, *, ping_timeout: float) -> dict[str, Any]:
    from worker.redis_client import make_redis_client

    client = make_redis_client(settings.redis_url)
    try:
        return collect(client, settings, ping_timeout=ping_timeout)
    finally:
        client.close()


def _run_sharded(settings: Settings, args: argparse.Namespace) -> int:
    """Each shard's report and their totals; a shard that does not answer is named
    (exit 4) and the others still shown."""
    import redis

    from worker.delivery.shard_records import shown_url

    shards: list[dict[str, Any]] = []
    for shard, url in enumerate(settings.shard_urls):
        entry: dict[str, Any] = {"shard": shard, "redis": shown_url(url)}
        try:
            entry.update(_collect_shard(settings.for_shard(shard), ping_timeout=args.ping_timeout))
        except (redis.ConnectionError, redis.TimeoutError) as error:
            entry["error"] = f"unreachable: {error}"
        shards.append(entry)
    report = {"shards": shards, "totals": totals([s for s in shards if "error" not in s])}
    print(json.dumps(report, indent=2) if args.json else render_sharded(report))
    return REDIS if any("error" in s for s in shards) else 0


def totals(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """The reachable shards' reports added up (consumer groups stay per shard)."""
    queues: dict[str, int] = {}
    states: dict[str, int] = {}
    for report in reports:
        for name, depth in report["queues"].items():
            queues[name] = queues.get(name, 0) + depth
        for state, count in (report["in_flight_by_state"] or {}).items():
            states[state] = states.get(state, 0) + count
    summed = ("in_flight", "dead_letters", "dead_letters_evicted", "stream_length")
    return {
        "queues": queues,
        **{name: sum(r[name] for r in reports) for name in summed},
        "in_flight_by_state": states,
        "workers": {
            "nodes": sorted(n for r in reports for n in r["workers"]["nodes"]),
            "processes_heartbeating": sum(r["workers"]["processes_heartbeating"] for r in reports),
        },
    }


def collect(client: Any, settings: Settings, *, ping_timeout: float) -> dict[str, Any]:
    """The whole report as one JSON-ready dict."""
    from worker.delivery.keys import RedisKeys

    keys = RedisKeys(settings.key_prefix)
    queues = [settings.commands_queue, settings.bulk_queue]
    pipe = client.pipeline(transaction=False)
    for queue in queues:
        pipe.llen(queue)
    pipe.zcard(keys.dead_letters)
    pipe.get(keys.dead_letters_evicted)
    pipe.xlen(settings.events_stream)
    pipe.time()
    *depths, dead_letters, evicted, stream_length, (seconds, micros) = pipe.execute()
    in_flight = in_flight_count(client, keys)
    now_ms = seconds * 1000 + micros // 1000
    return {
        "queues": dict(zip(queues, depths, strict=True)),
        "in_flight": in_flight,
        "in_flight_by_state": _states(client, keys, in_flight),
        "dead_letters": dead_letters,
        "dead_letters_evicted": int(evicted or 0),
        "stream": settings.events_stream,
        "stream_length": stream_length,
        "consumer_groups": _groups(client, settings.events_stream),
        "workers": _workers(client, keys, settings, now_ms, ping_timeout),
    }


def _states(client: Any, keys: Any, in_flight: int) -> dict[str, int] | None:
    """queued / running / waiting (a retry's backoff) / parked (behind its predecessor)."""
    if not in_flight or in_flight > STATE_SPLIT_LIMIT:
        return None if in_flight else {}
    return entry_states(client, keys)


def _groups(client: Any, stream: str) -> list[dict[str, Any]]:
    import redis

    try:
        groups = client.xinfo_groups(stream)
    except redis.ResponseError:  # no stream yet: no groups either
        return []
    return [
        {
            "name": as_text(group["name"]),
            "consumers": group["consumers"],
            "pending": group["pending"],
            # Redis 7: entries not yet delivered to the group (None when Redis cannot tell).
            "lag": group.get("lag"),
            "last_delivered_id": as_text(group["last-delivered-id"]),
        }
        for group in groups
    ]


def _workers(
    client: Any, keys: Any, settings: Settings, now_ms: int, ping_timeout: float
) -> dict[str, Any]:
    """Celery nodes answering a ping, and worker processes with a fresh heartbeat."""
    fresh_since = now_ms - int(settings.heartbeat_timeout * 1000)
    beating = client.zcount(keys.workers, fresh_since, "+inf")
    return {
        "nodes": _ping(settings, ping_timeout),
        "processes_heartbeating": beating,
    }


def _ping(settings: Settings, timeout: float) -> list[str]:
    """Names of the Celery nodes that answer on this broker (every deployment sharing it)."""
    from celery import Celery

    with Celery(broker=settings.redis_url) as probe:
        probe.conf.broker_connection_retry_on_startup = False
        probe.conf.broker_connection_max_retries = 0
        replies = probe.control.ping(timeout=timeout) or []
    return sorted(name for reply in replies for name in reply)


def render_sharded(report: dict[str, Any]) -> str:
    """Each shard's report, indented under its name, then the totals."""
    lines: list[str] = []
    for shard in report["shards"]:
        lines.append(f"shard {shard['shard']} ({shard['redis']}):")
        body = shard["error"] if "error" in shard else render(shard)
        lines += [f"  {line}" for line in body.splitlines()]
    total = report["totals"]
    queues = ", ".join(f"{name} {depth}" for name, depth in total["queues"].items())
    workers = total["workers"]
    lines += [
        "all shards:",
        f"  queues: {queues}; in flight: {total['in_flight']}; dead letters: "
        f"{total['dead_letters']}; stream entries: {total['stream_length']}",
        f"  workers: {len(workers['nodes'])} answering ping; "
        f"{workers['processes_heartbeating']} processes heartbeating",
    ]
    return "\n".join(lines)


def render(report: dict[str, Any]) -> str:
    """The report for a terminal."""
    lines = ["queues:"]
    lines += [f"  {name}: {depth}" for name, depth in report["queues"].items()]
    states = report["in_flight_by_state"]
    split = f" ({', '.join(f'{s} {n}' for s, n in sorted(states.items()))})" if states else ""
    lines.append(f"in flight: {report['in_flight']}{split}")
    evicted = report["dead_letters_evicted"]
    evicted_note = f" ({evicted} evicted, oldest first)" if evicted else ""
    lines.append(f"dead letters: {report['dead_letters']}{evicted_note}")
    lines.append(f"events stream {report['stream']}: {report['stream_length']} entries")
    for group in report["consumer_groups"]:
        lines.append(
            f"  group {group['name']}: lag {group['lag']}, pending {group['pending']}, "
            f"{group['consumers']} consumers"
        )
    workers = report["workers"]
    beating = workers["processes_heartbeating"]
    # A pool process beats from its first command on: a worker just started has none yet.
    idle_note = " (a worker's processes beat from their first command)" if not beating else ""
    lines.append(
        f"workers: {len(workers['nodes'])} answering ping"
        f"{': ' + ', '.join(workers['nodes']) if workers['nodes'] else ''}; "
        f"{beating} processes heartbeating{idle_note}"
    )
    return "\n".join(lines)
