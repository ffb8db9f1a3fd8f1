"""The wheel, installed as the Docker image installs it, applies a command end to end.

Builds the project's wheel, installs it into a fresh virtualenv outside the checkout,
and runs that virtualenv's `checkout init`, `checkout worker` and `checkout send`
(from a directory with no project files, so nothing is imported from the checkout)
against a real redis-server and moto server, until the command's session is stored.
The services come from the checkout's own environment (`tasks.embedded.stack`).

    .venv/bin/python .ci/wheel_check.py      (make wheel-check)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tasks.embedded.stack import EmbeddedStack, ManagedProcess  # noqa: E402

COMMAND = {
    "type": "create_session",
    "command_id": "wheel-check-1",
    "session_id": "cs_wheel_check",
    "currency": "EUR",
}


def build_and_install(workdir: Path) -> Path:
    """The wheel built from the checkout, installed into a new virtualenv; its bin/."""
    dist = workdir / "dist"
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(dist), str(ROOT)])
    (wheel,) = dist.glob("checkout_pipeline-*.whl")
    venv = workdir / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    run([str(venv / "bin" / "pip"), "install", "--quiet", str(wheel)])
    return venv / "bin"


def run(args: list[str], **options: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, capture_output=True, text=True, **options)  # type: ignore[call-overload]
    if result.returncode != 0:
        sys.exit(f"wheel check: {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
    return result


def stored_currency(bin_dir: Path, env: dict[str, str], cwd: Path) -> str | None:
    got = subprocess.run(
        [str(bin_dir / "checkout"), "get", COMMAND["session_id"]],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
    )
    return json.loads(got.stdout).get("currency") if got.returncode == 0 else None


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="wheel-check-") as tmp:
        workdir = Path(tmp)
        bin_dir = build_and_install(workdir)
        elsewhere = workdir / "elsewhere"  # no project files: the wheel's code only
        elsewhere.mkdir()
        with EmbeddedStack(workdir / "services") as stack:
            env = {**stack.env(), "PYTHONPATH": "", "PYTHONSAFEPATH": "1"}
            checkout = str(bin_dir / "checkout")
            run([checkout, "init"], env=env, cwd=elsewhere)
            # Celery puts the working directory on sys.path: the worker runs from one
            # with no project files, so everything it imports comes from the wheel.
            os.chdir(elsewhere)
            worker = ManagedProcess(
                "wheel worker",
                [checkout, "worker", "--concurrency", "1"],
                log=workdir / "worker.log",
                env=env,
            )
            try:
                run(
                    [checkout, "send", "-"],
                    input=json.dumps(COMMAND) + "\n",
                    env=env,
                    cwd=elsewhere,
                )
                deadline = time.monotonic() + 60
                while stored_currency(bin_dir, env, elsewhere) != "EUR":
                    if worker.process.poll() is not None or time.monotonic() > deadline:
                        log = (workdir / "worker.log").read_text()[-3000:]
                        sys.exit(f"wheel check: the wheel's worker applied nothing:\n{log}")
                    time.sleep(0.2)
            finally:
                worker.stop()
    print("wheel check: the installed wheel's worker applied a command end to end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
