"""Dependency direction: schemas <- worker.domain <- worker.service <- adapters <- tasks.

Imports are read with `ast`, including imports inside functions, so a lazy import
cannot slip an SDK into a layer that must not depend on it.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("schemas", "worker", "tasks")
SDKS = {"boto3", "botocore", "redis", "celery", "kombu"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


# Each package's modules, and those of its subpackages at any depth.
PATHS = [path for package in PACKAGES for path in (ROOT / package).rglob("*.py")]
MODULES = {module_name(path): path for path in PATHS}


@cache
def imports(module: str) -> frozenset[str]:
    """Every module `module` names in an import statement, resolved to absolute names."""
    tree = ast.parse(MODULES[module].read_text(), filename=str(MODULES[module]))
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, package)
            found.add(base)
            # `from worker import store` imports the module worker.dynamodb.store
            found.update(f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES)
    return frozenset(found)


def _absolute(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module or ""
    parent = package.split(".")[: len(package.split(".")) - node.level + 1]
    return ".".join([*parent, *([node.module] if node.module else [])])


def roots(module: str) -> set[str]:
    return {name.split(".")[0] for name in imports(module)}


def project_imports(module: str) -> set[str]:
    return {name for name in imports(module) if name in MODULES}


def closure(module: str) -> set[str]:
    """`module` and every project module it imports, directly or through others."""
    seen, todo = set(), [module]
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo.extend(project_imports(current))
    return seen


def in_package(package: str) -> list[str]:
    return sorted(name for name in MODULES if name.split(".")[0] == package)


def test_the_modules_are_found() -> None:
    assert {
        "schemas.session",
        "worker.domain.rules",
        "worker.service.apply",
        "tasks.producer",
    } <= set(MODULES)
    assert {"worker.dynamodb.http", "worker.dynamodb.http.client"} <= set(MODULES)
    assert {"tasks.cli", "tasks.cli.send", "tasks.cli.errors"} <= set(MODULES)
    assert "boto3" in roots("worker.dynamodb.store")  # the parser sees what is there
    assert "botocore" in roots("worker.dynamodb.http.client")


@pytest.mark.parametrize("module", in_package("schemas"))
def test_schemas_are_data_shapes_only(module: str) -> None:
    assert not roots(module) & (SDKS | {"worker", "tasks"})


def test_the_domain_is_pure() -> None:
    forbidden = SDKS | {"time", "random", "uuid", "os", "socket", "threading", "tasks"}
    assert not roots("worker.domain.rules") & forbidden
    assert project_imports("worker.domain.rules") <= {
        "schemas",
        "schemas.commands",
        "schemas.session",
        "worker.errors",
    }


def test_the_ledger_is_pure() -> None:
    assert not roots("worker.domain.ledger") & (SDKS | {"time", "random", "os", "tasks"})
    assert project_imports("worker.domain.ledger") == set()


def test_the_domain_does_not_read_the_clock() -> None:
    tree = ast.parse(MODULES["worker.domain.rules"].read_text())
    calls = {
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    }
    assert not calls & {"now", "utcnow", "today", "time", "monotonic"}


def test_the_service_knows_no_adapter() -> None:
    assert not roots("worker.service.apply") & (SDKS | {"tasks"})
    allowed = {
        "schemas.commands",
        "schemas.events",
        "worker.domain.rules",
        "worker.errors",
        "worker.domain.ledger",
    }
    assert project_imports("worker.service.apply") <= allowed


@pytest.mark.parametrize("module", sorted(MODULES))
def test_only_the_store_modules_import_the_aws_sdk(module: str) -> None:
    # worker.dynamodb.http and its modules: the store's hot-path DynamoDB client
    # (botocore's exceptions, boto3's credentials). tasks.cli.errors turns botocore's
    # errors into the command line's messages.
    store_module = module == "worker.dynamodb" or module.startswith("worker.dynamodb.")
    allowed = store_module or module == "tasks.cli.errors"
    assert allowed or not roots(module) & {"boto3", "botocore"}


@pytest.mark.parametrize("module", in_package("worker"))
def test_only_the_redis_adapters_import_redis_in_the_worker(module: str) -> None:
    adapters = {
        "worker.streams.publisher",
        "worker.streams.consumer",
        "worker.delivery.journal",
        "worker.delivery.deadletters",
        "worker.delivery.runs",
        "worker.runtime.transport",  # kombu's Redis transport, subclassed
    }
    assert module in adapters or "redis" not in roots(module)


@pytest.mark.parametrize("module", in_package("worker"))
def test_the_worker_never_imports_tasks(module: str) -> None:
    assert "tasks" not in roots(module)


def test_producers_do_not_load_the_aws_sdk_or_worker_internals() -> None:
    loaded = closure("tasks.producer")
    assert not loaded & {
        "worker.dynamodb.store",
        "worker.dynamodb.items",
        "worker.runtime.bootstrap",
    }
    assert not set().union(*(roots(module) for module in loaded)) & {"boto3", "botocore"}


def test_the_closure_follows_imports_through_other_modules() -> None:
    # The worker task reaches the store (via the bootstrap): the check above can fail.
    assert {
        "worker.runtime.bootstrap",
        "worker.dynamodb.store",
        "worker.dynamodb.items",
    } <= closure("worker.runtime.tasks")
