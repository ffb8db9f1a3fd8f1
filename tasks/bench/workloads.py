"""The commands each workload sends, and the in-process baselines that apply them directly.

The order flow per session (7 commands): create; update line items, buyer, shipping
address; a forced transition to `ready_for_complete` (allowed from `incomplete`); update
payment instruments (status stays `ready_for_complete`, every field now present); complete.

Baselines run in `workers` processes (spawned: each builds its own clients), each
applying its share of the sessions in order, all starting at one barrier:
  direct  the service in process, publishing each event: the same DynamoDB and event work
          as a worker (it decides on the session as it last wrote it, as a worker does with
          the copy the journal keeps), without the queue, the journal or Celery
  seed    the seed's store: GetItem (eventually consistent, as its GetCommand) and an
          unconditional PutItem of the whole item per command; PutItem alone for a create
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

BASELINE_TIMEOUT_SECONDS = 900

BUYER = {"email": "bench@example.com", "first_name": "Bench"}
ADDRESS = {"line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"}
CARD = {"id": "pi-1", "type": "card", "credential": {"type": "token", "token": "tok_bench"}}


def cart(size: int, salt: int = 0) -> list[dict[str, Any]]:
    return [
        {"id": f"li-{n}", "type": "product", "total_amount": 1250 + n + salt, "title": f"Item {n}"}
        for n in range(size)
    ]


def order_flow(session_id: str) -> list[dict[str, Any]]:
    """One session's seven commands, in the order they must apply."""

    def base(step: str, kind: str) -> dict[str, Any]:
        return {"type": kind, "command_id": f"{session_id}.{step}", "session_id": session_id}

    def update(step: str, **updates: Any) -> dict[str, Any]:
        return {**base(step, "update_session"), "updates": updates}

    return [
        base("create", "create_session"),
        update("items", line_items=cart(3)),
        update("buyer", buyer=BUYER),
        update("address", shipping_address=ADDRESS),
        {**base("ready", "transition_session"), "target": "ready_for_complete"},
        update("payment", payment_instruments=[CARD]),
        base("complete", "complete_session"),
    ]


def interleave(flows: Sequence[Sequence[dict]], inflight: int) -> list[dict]:
    """Groups of `inflight` sessions, each group step by step: that many sessions are in
    flight at once and consecutive commands belong to different sessions."""
    ordered = []
    for start in range(0, len(flows), inflight):
        group = flows[start : start + inflight]
        for step in range(max(len(flow) for flow in group)):
            ordered += [flow[step] for flow in group if step < len(flow)]
    return ordered


def updates_on(session_ids: Sequence[str], count: int, tag: str) -> list[dict[str, Any]]:
    """`count` cart updates spread round-robin over `session_ids`, each changing the cart."""
    commands = []
    for number in range(count):
        session_id = session_ids[number % len(session_ids)]
        commands.append(
            {
                "type": "update_session",
                "command_id": f"{tag}.{number}",
                "session_id": session_id,
                "updates": {"line_items": cart(3, salt=number)},
            }
        )
    return commands


def creates(session_ids: Sequence[str]) -> list[dict[str, Any]]:
    return [
        {"type": "create_session", "command_id": f"{s}.create", "session_id": s}
        for s in session_ids
    ]


# ─── Baselines in processes of their own ───


def run_baseline(mode: str, shares: Sequence[Sequence[dict]]) -> dict[str, Any]:
    """Apply each share in its own spawned process; `mode` is `direct` or `seed`."""
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(len(shares)), context.Queue()
    processes = [
        context.Process(target=_run_share, args=(mode, list(share), barrier, results))
        for share in shares
    ]
    for process in processes:
        process.start()
    try:
        parts = [results.get(timeout=BASELINE_TIMEOUT_SECONDS) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
    failed = [part["error"] for part in parts if "error" in part]
    if failed:
        raise RuntimeError(f"{mode} baseline failed: {failed[0]}")
    count = sum(part["commands"] for part in parts)
    elapsed = max(p["ended"] for p in parts) - min(p["started"] for p in parts)
    return {
        "commands": count,
        "seconds": round(elapsed, 3),
        "cps": round(count / elapsed, 1) if elapsed else 0.0,
        "cpu_ms_per_command": round(sum(p["cpu"] for p in parts) * 1000 / count, 3),
        "ddb_requests_per_command": round(sum(p["requests"] for p in parts) / count, 3),
        "ddb_requests": _merge([p["operations"] for p in parts]),
        "latencies_ms": [ms for p in parts for ms in p["latencies_ms"]],
    }


def _merge(counts: list[dict[str, int]]) -> dict[str, int]:
    merged: dict[str, int] = {}
    for each in counts:
        for key, value in each.items():
            merged[key] = merged.get(key, 0) + value
    return merged


def _run_share(mode: str, commands: list[dict], barrier: Any, results: Any) -> None:
    try:
        results.put(_apply_share(mode, commands, barrier))
    except Exception as error:  # reported by the parent, which would otherwise wait
        barrier.abort()
        results.put({"error": f"{type(error).__name__}: {error}"})


def _apply_share(mode: str, commands: list[dict], barrier: Any) -> dict[str, Any]:
    from worker.settings import Settings

    settings = Settings()
    apply, client = _direct(settings) if mode == "direct" else _seed(settings)
    operations: dict[str, int] = {}

    def count_operation(name: str) -> None:
        operations[name] = operations.get(name, 0) + 1

    def count(request: Any = None, **_: Any) -> None:  # None: the request goes out unchanged
        target = request.headers.get("X-Amz-Target", b"")
        target = target.decode() if isinstance(target, bytes) else target
        count_operation(target.rpartition(".")[2])

    if hasattr(client, "add_request_listener"):  # the store's own client
        client.add_request_listener(count_operation)
    else:  # botocore (the seed's)
        client.meta.events.register("before-send.dynamodb", count)
    barrier.wait()
    latencies = []
    started, cpu = time.time(), time.process_time()
    for command in commands:
        begun = time.perf_counter()
        apply(command)
        latencies.append((time.perf_counter() - begun) * 1000)
    return {
        "commands": len(commands),
        "started": started,
        "ended": time.time(),
        "cpu": time.process_time() - cpu,
        "requests": sum(operations.values()),
        "operations": operations,
        "latencies_ms": latencies,
    }


def _direct(settings: Any) -> tuple[Any, Any]:
    """The service in process, with the worker's session copies in Redis, publishing
    each event with one XADD: the same DynamoDB and Redis work as a worker's service."""
    from worker.delivery.journal import Journal
    from worker.redis_client import make_redis_client
    from worker.runtime.bootstrap import build_service

    client = make_redis_client(settings.redis_url, single_connection=True)
    service = build_service(settings, Journal(client, settings))
    stream, maxlen = settings.events_stream, settings.events_maxlen

    def apply(payload: dict) -> None:
        event = service.apply(payload)
        client.xadd(stream, {"event": event.to_json()}, maxlen=maxlen, approximate=True)

    return apply, service._store._client


def _seed(settings: Any) -> tuple[Any, Any]:
    """The seed's store: read the item, decide, put the whole item back unconditionally."""
    from schemas.commands import parse_command
    from worker.domain.rules import decide
    from worker.dynamodb.clients import make_dynamodb_client
    from worker.dynamodb.items import SESSION_KEY, TTL, snapshot_from_item, to_item

    client = make_dynamodb_client(settings)
    table = settings.sessions_table

    def apply(payload: dict) -> None:
        command = parse_command(payload)
        now = datetime.now(UTC)
        snapshot = None
        if payload["type"] != "create_session":
            key = {SESSION_KEY: {"S": command.session_id}}
            item = client.get_item(TableName=table, Key=key).get("Item")
            snapshot = snapshot_from_item(item, now=int(time.time())) if item else None
        applied = decide(command, snapshot, now=now, session_id=command.session_id)
        ttl = int(time.time()) + settings.session_ttl_seconds
        document = {SESSION_KEY: applied.session.id, **applied.session.to_document(), TTL: ttl}
        client.put_item(TableName=table, Item=to_item(document))

    return apply, client


def shares_by_session(commands: Sequence[dict], processes: int) -> list[list[dict]]:
    """Each session's commands to one process, in order (as the ordering gate keeps them)."""
    shares: list[list[dict]] = [[] for _ in range(processes)]
    owner: dict[str, int] = {}
    for command in commands:
        index = owner.setdefault(command["session_id"], len(owner) % processes)
        shares[index].append(command)
    return shares
