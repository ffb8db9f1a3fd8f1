"""The seed's own TypeScript store under node, for tests that need seed-made sessions.

tests/seed/seed_driver.mjs transpiles the verbatim seed (tests/seed/checkout_session_store.ts)
and runs its `DynamoSessionStore` with the AWS document client against the test's moto
server and table. Each `seed(...)` call is one node process (a few hundred ms), so batch
what you can. `make seed-harness` installs the node packages. A test module imports
`seed_harness` too (an autouse fixture: a missing harness fails, never skips).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

SEED_DIR = Path(__file__).resolve().parents[1] / "seed"
DRIVER = SEED_DIR / "seed_driver.mjs"
PINNED = json.loads((SEED_DIR / "package.json").read_text())["dependencies"]
SEED_CALL_TIMEOUT = 60


class SeedError(Exception):
    """Raised when the seed's own code threw; the message is the seed's error text."""


@pytest.fixture(scope="module", autouse=True)
def seed_harness() -> None:
    """Node and the pinned packages must be there: a missing harness fails, never skips."""
    fix = "run `make seed-harness` (npm ci --prefix tests/seed)"
    if shutil.which("node") is None:
        pytest.fail(f"node is not on PATH; the seed interop tests need node 20+, then {fix}")
    for package, version in PINNED.items():
        manifest = SEED_DIR / "node_modules" / package / "package.json"
        if not manifest.exists():
            pytest.fail(f"{package} is not installed in tests/seed/node_modules: {fix}")
        installed = json.loads(manifest.read_text())["version"]
        if installed != version:
            pytest.fail(f"{package} {installed} installed, package.json pins {version}: {fix}")


def seed(env: dict[str, str], operations: dict | list[dict]) -> Any:
    """Run operations on the seed's store in one node process; SeedError if the seed threw."""
    try:
        done = subprocess.run(
            ["node", str(DRIVER)],
            input=json.dumps(operations),
            env=env,
            capture_output=True,
            text=True,
            timeout=SEED_CALL_TIMEOUT,
            check=False,
        )
    except FileNotFoundError:
        pytest.fail("node is not on PATH: run `make seed-harness` on a machine with node 20+")
    if done.returncode == 1:
        raise SeedError(json.loads(done.stdout)["error"])
    if done.returncode != 0:
        pytest.fail(
            f"seed driver failed (exit {done.returncode}); try `make seed-harness`\n{done.stderr}"
        )
    return json.loads(done.stdout)


def op(name: str, table: str, **fields: Any) -> dict[str, Any]:
    return {"op": name, "table": table, **fields}
