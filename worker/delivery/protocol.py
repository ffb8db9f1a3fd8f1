"""The delivery protocol's one spec (`protocol.json`): keys, hash fields, operations.

`pipeline.lua` names each operation's arguments at its top in the spec's order; this
module (and `clients/typescript/src/protocol.ts`) builds every call from those names,
so an argument can neither be forgotten nor sent in another's place.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from importlib import resources
from typing import Any

SPEC: dict[str, Any] = json.loads(
    resources.files("worker.delivery").joinpath("protocol.json").read_text(encoding="utf-8")
)
OPERATIONS: dict[str, dict[str, list[str]]] = SPEC["operations"]
KEYS: dict[str, str] = SPEC["keys"]
LIMITS: dict[str, int] = SPEC["limits"]


def arguments(
    operation: str,
    values: Mapping[str, Any],
    *,
    repeated: Iterable[Mapping[str, Any]] = (),
    optional: Mapping[str, Any] | None = None,
) -> list[Any]:
    """The arguments of one call of `operation` after its name and the key prefix.

    Raises `ValueError` naming what is missing or unknown.
    """
    spec = OPERATIONS[operation]
    _check(operation, spec["arguments"], values)
    args = [values[name] for name in spec["arguments"]]
    for row in repeated:
        args += [row[name] for name in spec["repeated"]]
    if optional is not None:
        _check(operation, spec["optional"], optional)
        args += [optional[name] for name in spec["optional"]]
    return args


def _check(operation: str, names: list[str], values: Mapping[str, Any]) -> None:
    if len(values) != len(names) or not values.keys() <= set(names):
        missing = sorted(set(names) - values.keys())
        unknown = sorted(values.keys() - set(names))
        raise ValueError(f"{operation}: missing arguments {missing}, unknown {unknown}")
