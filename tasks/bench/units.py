"""DynamoDB capacity units as DynamoDB would bill them, from the sizes of stored items.

Item size (AWS rules): per attribute, the UTF-8 length of its name plus its value: a
string its UTF-8 length, binary its length, a number 1 byte per two significant digits
plus 1, BOOL and NULL 1 byte, a list or map 3 bytes plus its elements (a map's elements
with their names, a list's plus 1 byte each).
Units: a write 1 WCU per 1 KB of the larger of the old and new item; a strongly
consistent read 1 RCU per 4 KB, an eventually consistent one half that; transactional
reads and writes count double.
"""

from __future__ import annotations

import math
from typing import Any

KB = 1024


def value_size(value: dict[str, Any]) -> int:
    (kind, content), *_ = value.items()
    if kind == "S":
        return len(content.encode("utf-8"))
    if kind == "N":
        digits = content.lstrip("-").replace(".", "").strip("0") or "0"
        return math.ceil(len(digits) / 2) + 1
    if kind == "B":
        return len(content)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + item_size(content)
    if kind == "L":
        return 3 + sum(value_size(element) + 1 for element in content)
    if kind in ("SS", "NS", "BS"):
        return sum(value_size({kind[0]: element}) for element in content)
    raise ValueError(f"unknown attribute type {kind}")


def item_size(item: dict[str, dict[str, Any]]) -> int:
    return sum(len(name.encode("utf-8")) + value_size(value) for name, value in item.items())


def wcu(size: int) -> int:
    return max(1, math.ceil(size / KB))


def rcu(size: int, *, consistent: bool = True) -> float:
    units = max(1, math.ceil(size / (4 * KB)))
    return units if consistent else units / 2


def probe_flow(settings: Any, commands: list[dict], *, seed: bool) -> list[dict[str, Any]]:
    """Apply one session's commands (service, or the seed's way) and read the stored
    session around each: the sizes every unit figure uses."""
    from tasks.bench.workloads import _seed
    from worker.dynamodb.clients import make_dynamodb_client
    from worker.dynamodb.items import SESSION_KEY
    from worker.runtime.bootstrap import build_service

    client = make_dynamodb_client(settings)
    apply = _seed(settings)[0] if seed else build_service(settings).apply

    def stored(key: dict) -> int:
        table = settings.sessions_table
        item = client.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
        return item_size(item) if item else 0

    steps = []
    for command in commands:
        session_key = {SESSION_KEY: {"S": command["session_id"]}}
        before = stored(session_key)
        apply(command)
        steps.append({"type": command["type"], "before": before, "after": stored(session_key)})
    return steps


def pipeline_units(steps: list[dict], requests_per_command: dict[str, float]) -> dict[str, float]:
    """Units per command for the pipeline's measured request mix over these item sizes.

    A write (applied, or refused by its condition: DynamoDB bills both) is billed on
    the larger of the item before and after; a read is a strongly consistent GetItem
    of the session as it was before the command.
    """
    reads = [rcu(s["before"]) for s in steps if s["before"]]
    writes = [wcu(max(s["before"], s["after"])) for s in steps]
    mean = lambda values: sum(values) / len(values) if values else 0.0  # noqa: E731
    per_operation = {
        "GetItem": mean(reads),
        "BatchGetItem": mean(reads),
        "TransactGetItems": 2 * mean(reads),
        "TransactWriteItems": 2 * mean(writes),
        "UpdateItem": mean(writes),
        "PutItem": mean(writes),
    }
    read_ops = {"GetItem", "BatchGetItem", "TransactGetItems", "Query", "Scan"}
    rcu_total = wcu_total = 0.0
    for operation, count in requests_per_command.items():
        units = count * per_operation.get(operation, 1.0)
        if operation in read_ops:
            rcu_total += units
        else:
            wcu_total += units
    return {"rcu_per_command": round(rcu_total, 3), "wcu_per_command": round(wcu_total, 3)}


def seed_units(steps: list[dict]) -> dict[str, float]:
    """The seed per command: an eventually consistent GetItem (not for a create) and a PutItem."""
    reads = [rcu(s["before"], consistent=False) for s in steps if s["type"] != "create_session"]
    writes = [wcu(max(s["before"], s["after"])) for s in steps]
    return {
        "rcu_per_command": round(sum(reads) / len(steps), 3),
        "wcu_per_command": round(sum(writes) / len(steps), 3),
    }


def update_wcu(steps: list[dict]) -> float:
    """Write units of one update of a typical session (the mean over the flow's updates):
    one write, billed on the larger of the item before and after."""
    units = [wcu(max(s["before"], s["after"])) for s in steps if s["type"] == "update_session"]
    return round(sum(units) / len(units), 3)
