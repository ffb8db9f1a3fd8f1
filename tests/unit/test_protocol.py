"""One spec of the delivery protocol (`worker/delivery/protocol.json`), held to by the
Lua script, the Python journal and keys, and (tests/e2e/test_typescript_producer.py)
the TypeScript producer."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from worker.delivery.keys import RedisKeys
from worker.delivery.protocol import KEYS, OPERATIONS, SPEC, arguments

LUA = (Path(__file__).resolve().parents[2] / "worker/delivery/pipeline.lua").read_text()
NAMED = re.compile(r"^\s*local ([\w, ]+?) = (argv\[\d+\](?:, argv\[\d+\])*)\s*$", re.M)


def body(operation: str) -> str:
    start = LUA.index(f"local function {operation}()")
    return LUA[start : LUA.index("\nend\n", start)]


def named_arguments(operation: str) -> list[tuple[str, int]]:
    """Each `local a, b = argv[i], argv[j]` of the operation: (name, index), in order."""
    found = []
    for names, indexes in NAMED.findall(body(operation)):
        found += zip(
            [n.strip() for n in names.split(",")],
            [int(i) for i in re.findall(r"\d+", indexes)],
            strict=True,
        )
    return found


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_each_operation_names_its_arguments_at_its_top_in_the_specs_order(operation) -> None:
    spec = OPERATIONS[operation]
    expected = spec["arguments"] + spec.get("optional", [])
    # argv[1] is the operation, argv[2] the key prefix.
    assert named_arguments(operation) == [(name, n + 3) for n, name in enumerate(expected)]


@pytest.mark.parametrize("operation", [op for op in OPERATIONS if "repeated" in OPERATIONS[op]])
def test_repeated_arguments_start_right_after_the_named_ones(operation) -> None:
    first = 3 + len(OPERATIONS[operation]["arguments"])
    assert re.search(rf"\b{first}\b", body(operation))


def test_only_the_named_locals_read_argv() -> None:
    positional = [
        line
        for line in LUA.splitlines()
        if "argv[" in line and not NAMED.match(line) and "argv[i" not in line
    ]
    assert positional == []  # the repeated tails are read as argv[i + ...]
    assert "argv, prefix = args, args[2]" in LUA  # set by `run`, the one entry point


def test_the_script_uses_exactly_the_specs_keys() -> None:
    used = set(re.findall(r"key\('([a-z]+)'", LUA))
    assert used == {template.split(":")[0] for template in KEYS.values()}


def test_journal_fields_in_the_script_are_the_specs() -> None:
    read = set()
    for names in re.findall(r"fields\(e, ([^)]*)\)|fields\(key\('j', jid\), ([^)]*)\)", LUA):
        read |= set(re.findall(r"'(\w+)'", "".join(names)))
    written = set(re.findall(r"'(\w+)', ", " ".join(re.findall(r"HSET', e, ([^\n]*)", LUA))))
    assert read and read <= set(SPEC["journal_fields"])
    assert written - {"queued", "running", "waiting", "parked", "new"} <= set(
        SPEC["journal_fields"]
    )


def test_python_keys_follow_the_spec() -> None:
    keys = RedisKeys("p")
    assert keys.journal("1-2") == "p:j:1-2"
    assert keys.session_order("cs") == "p:s:cs"
    assert keys.run_examples("r") == "p:run:r:ex"
    assert keys.dead_letter("d") == "p:dlq:d"


def test_a_call_missing_or_inventing_an_argument_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"missing arguments \['jid'\], unknown \['job'\]"):
        arguments("beat", {"worker": "w", "job": "x"})
