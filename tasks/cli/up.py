"""`checkout up`: the embedded services and a worker in the foreground, until Ctrl-C.

For trying the CLI by hand: it starts a redis-server (append-only file on, so a
restart of the worker loses nothing) and a moto DynamoDB server on free ports,
creates the tables, starts one worker, and prints the `export` lines that point
another shell at them. SIGINT or SIGTERM stops everything it started, by PID.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from types import FrameType

from tasks.cli.arguments import add_command, usage_error, whole_number
from tasks.cli.exit_codes import FAILED

# Settings another shell must not copy: they belong to this worker only.
WORKER_ONLY = {"CHECKOUT_METRICS_PORT", "CHECKOUT_LOG_FORMAT"}
AWS_LOCAL = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
CHECK_INTERVAL_SECONDS = 0.5


def register(commands: argparse._SubParsersAction) -> None:
    up = add_command(
        commands,
        "up",
        FAILED,
        help="run the embedded Redis, a moto DynamoDB and one worker until Ctrl-C",
        description="Exit 1: a service it started exited, or `checkout init` failed (the "
        "message names the log).",
    )
    up.add_argument(
        "--workdir", type=Path, default=None, help="data and logs (default: a new temp directory)"
    )
    up.add_argument("--concurrency", "-c", type=whole_number(1), default=2, help="worker processes")
    up.add_argument(
        "--metrics-port",
        type=whole_number(1, 65535),
        default=None,
        help="the worker's metrics port (default: free)",
    )
    up.set_defaults(run=run_up)


class _Stop(BaseException):
    """SIGTERM, handled like Ctrl-C."""


def run_up(args: argparse.Namespace) -> int:
    from tasks.embedded.stack import free_port

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="checkout-up-"))
    try:
        workdir.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        return usage_error("up", f"--workdir {workdir}: not a directory")
    except OSError as error:
        return usage_error("up", f"--workdir {workdir}: {error.strerror}")
    metrics_port = args.metrics_port or free_port()
    previous = signal.signal(signal.SIGTERM, _raise_stop)
    try:
        with ExitStack() as started:
            try:
                return _run(started, workdir, args.concurrency, metrics_port)
            except (KeyboardInterrupt, _Stop):
                return 0
            finally:
                # A second Ctrl-C must not cut the shutdown short and orphan a process.
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
                _say("stopping")
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, previous)


def _run(started: ExitStack, workdir: Path, concurrency: int, metrics_port: int) -> int:
    """Start the services (each stopped by `started`), then wait; returns the exit code."""
    from tasks.embedded.stack import start_moto, start_redis, start_worker

    redis, redis_url = start_redis(workdir, appendonly=True)
    started.callback(redis.stop)
    moto, dynamodb_url = start_moto(workdir)
    started.callback(moto.stop)
    env = _environment(redis_url, dynamodb_url)
    _create_tables(env, workdir)
    worker = start_worker(
        env,
        log=workdir / "worker.log",
        concurrency=concurrency,
        loglevel="INFO",
        extra_args=["--metrics-port", str(metrics_port)],
    )
    started.callback(worker.stop)
    for line in export_lines(env):
        print(line)
    sys.stdout.flush()
    _say(
        f"redis-server pid {redis.pid}, moto server pid {moto.pid}, checkout worker pid "
        f"{worker.pid}; metrics http://127.0.0.1:{metrics_port}/metrics; logs in {workdir}"
    )
    _say("paste the export lines above into another shell; Ctrl-C here stops everything")
    processes = (redis, moto, worker)
    while True:
        for process in processes:
            if process.process.poll() is not None:
                _say(f"{process.name} exited with {process.process.returncode}; see {process.log}")
                return 1
        time.sleep(CHECK_INTERVAL_SECONDS)


def _environment(redis_url: str, dynamodb_url: str) -> dict[str, str]:
    # Local endpoints accept any credentials; the user's real ones stay out of it.
    return {
        **os.environ,
        **AWS_LOCAL,
        "CHECKOUT_REDIS_URL": redis_url,
        "CHECKOUT_DYNAMODB_ENDPOINT_URL": dynamodb_url,
    }


def _create_tables(env: dict[str, str], workdir: Path) -> None:
    from tasks.cli.errors import Friendly
    from tasks.embedded.stack import CHECKOUT

    result = subprocess.run(
        [CHECKOUT, "init"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    (workdir / "init.log").write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise Friendly(f"`checkout init` failed; see {workdir / 'init.log'}", FAILED)


def export_lines(env: dict[str, str]) -> list[str]:
    """`export NAME=value` for every setting another shell needs to reach this stack."""
    names = sorted(
        name
        for name in env
        if (name.startswith("CHECKOUT_") and name not in WORKER_ONLY) or name in AWS_LOCAL
    )
    return [f"export {name}={shlex.quote(env[name])}" for name in names]


def _say(message: str) -> None:
    print(f"# {message}", file=sys.stderr, flush=True)


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop
