"""The layout's rules, checked on every import, lazy and by string alike.

    schemas <- worker.domain <- worker.service <- adapters <- worker.runtime <- tasks

The adapters are `worker.dynamodb`, `worker.delivery` and `worker.streams`; beside
them `worker.observability`, and the kernel every layer may use: `worker.errors`,
`worker.settings`, `worker.redis_client`. `benchmarks/` depends on the project, never
the reverse. Imports are read with `ast`, inside functions too, and so are strings
that name a module (`include=["worker.runtime.tasks"]`, `"worker.runtime.consumer:X"`,
`-m tasks.embedded.moto`): Celery, kombu and subprocesses import those, so they count.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("schemas", "worker", "tasks", "benchmarks")
SDKS = {"boto3", "botocore", "redis", "celery", "kombu"}
KERNEL = {"worker.errors", "worker.settings", "worker.redis_client"}

# What each room may import from the project (its own modules always).
ALLOWED: dict[str, set[str]] = {
    "worker": set(),  # the package's map: a docstring
    "schemas": set(),
    "worker.errors": set(),
    "worker.settings": set(),
    "worker.redis_client": set(),
    "worker.domain": {"schemas", "worker.errors"},
    "worker.service": {"schemas", "worker.errors", "worker.domain"},
    # The schemas' closed sets are its metric labels (`worker.observability.metrics`).
    "worker.observability": {"schemas", "worker.settings"},
    "worker.dynamodb": {"schemas", "worker.domain", "worker.observability", *KERNEL},
    "worker.streams": {"schemas", *KERNEL},
    "worker.delivery": {
        "schemas",
        "worker.domain",
        "worker.service",
        "worker.observability",
        *KERNEL,
    },
    "worker.runtime": {"schemas", "worker"},
    "tasks": {"schemas", "worker", "tasks"},
    "benchmarks": {"schemas", "worker", "tasks", "benchmarks"},
}
# Where each SDK may be imported.
SDK_HOMES = {
    "boto3": {"worker.dynamodb", "benchmarks"},
    "botocore": {"worker.dynamodb", "tasks.cli.errors", "benchmarks"},
    "redis": {
        "worker.delivery",
        "worker.streams",
        "worker.redis_client",
        "worker.runtime",
        "tasks",
    },
    "celery": {"worker.runtime", "tasks"},
    "kombu": {"worker.runtime", "tasks.cli.errors"},
}
MODULE_STRING = re.compile(r"^(?:-m )?((?:schemas|worker|tasks|benchmarks)(?:\.\w+)+)(?::\w+)?$")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {
    module_name(path): path for package in PACKAGES for path in (ROOT / package).rglob("*.py")
}


@cache
def imports(module: str) -> frozenset[str]:
    """Every module `module` names in an import statement or a module string."""
    tree = ast.parse(MODULES[module].read_text(), filename=str(MODULES[module]))
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, package)
            found.add(base)
            # `from worker.domain import ledger` imports the module worker.domain.ledger
            found.update(f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES)
        elif isinstance(node, ast.Constant) and (match := _module_string(node.value)):
            found.add(match)
    return frozenset(found)


def _module_string(value: object) -> str | None:
    match = MODULE_STRING.match(value) if isinstance(value, str) else None
    return match.group(1) if match else None


def _absolute(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module or ""
    parent = package.split(".")[: len(package.split(".")) - node.level + 1]
    return ".".join([*parent, *([node.module] if node.module else [])])


def room(module: str) -> str:
    """`worker.delivery.journal` -> `worker.delivery`; `tasks.cli.send` -> `tasks`."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "worker" and len(parts) > 1 else parts[0]


def within(module: str, rooms: set[str]) -> bool:
    return any(module == r or module.startswith(r + ".") for r in rooms)


def roots(module: str) -> set[str]:
    return {name.split(".")[0] for name in imports(module)}


def project_imports(module: str) -> set[str]:
    return {name for name in imports(module) if name.split(".")[0] in PACKAGES}


def closure(module: str) -> set[str]:
    """`module` and every project module it imports, directly or through others."""
    seen, todo = set(), [module]
    while todo:
        current = todo.pop()
        if current not in seen and current in MODULES:
            seen.add(current)
            todo.extend(project_imports(current))
    return seen


def test_the_modules_and_their_arrows_are_found() -> None:
    assert {"worker.domain.rules", "worker.delivery.journal", "worker.runtime.app"} <= set(MODULES)
    assert "boto3" in roots("worker.dynamodb.clients")  # the parser sees what is there
    # Strings naming modules count: Celery imports these.
    assert {"worker.runtime.tasks", "worker.runtime.consumer", "worker.runtime.transport"} <= (
        imports("worker.runtime.app")
    )
    assert "tasks.embedded.moto" in imports("tasks.embedded.stack")


def test_every_module_lives_in_a_room() -> None:
    assert {room(module) for module in MODULES} <= set(ALLOWED)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_dependencies_point_one_way(module: str) -> None:
    allowed = ALLOWED[room(module)] | {room(module)}
    wrong = {name for name in project_imports(module) if not within(name, allowed)}
    assert not wrong, f"{module} may not import {sorted(wrong)}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_each_sdk_is_imported_only_in_its_rooms(module: str) -> None:
    wrong = {sdk for sdk in roots(module) & SDKS if not within(module, SDK_HOMES[sdk])}
    assert not wrong, f"{module} may not import {sorted(wrong)}"


def test_nothing_imports_the_benchmarks() -> None:
    importers = {
        module
        for module in MODULES
        if room(module) != "benchmarks" and any(room(n) == "benchmarks" for n in imports(module))
    }
    assert not importers


def test_the_domain_is_pure_and_reads_no_clock() -> None:
    forbidden = SDKS | {"time", "random", "uuid", "os", "socket", "threading"}
    for module in (m for m in MODULES if room(m) == "worker.domain"):
        assert not roots(module) & forbidden, module
        tree = ast.parse(MODULES[module].read_text())
        calls = {
            node.func.attr
            for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        }
        assert not calls & {"now", "utcnow", "today", "time", "monotonic"}, module


def test_producers_do_not_load_the_aws_sdk_or_worker_internals() -> None:
    loaded = closure("tasks.producer")
    assert not {room(module) for module in loaded} & {"worker.dynamodb", "worker.runtime"}
    assert not set().union(*(roots(module) for module in loaded)) & {"boto3", "botocore"}


def test_the_closure_follows_imports_through_other_modules() -> None:
    # The worker's task does reach the store (via the bootstrap): the check above can fail.
    reached = {"worker.runtime.bootstrap", "worker.dynamodb.store", "worker.dynamodb.items"}
    assert reached <= closure("worker.runtime.tasks")
