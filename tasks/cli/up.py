"""`checkout up` and `checkout down`: the embedded services and a worker, for trying
the CLI by hand.

`up` starts a redis-server (append-only file on, so a restart of the worker loses
nothing) and a moto DynamoDB server on free ports, creates the tables, starts one
worker, and prints the `export` lines that point another shell at them. In the
foreground it shows the worker's output (`--quiet`: not) until Ctrl-C; with
`--detach` it returns once everything is ready and `checkout down` stops it. Either
way SIGINT or SIGTERM stops everything it started, by PID.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from types import FrameType
from typing import Any

from tasks.cli.arguments import add_command, usage_error, whole_number
from tasks.cli.exit_codes import FAILED
from tasks.embedded import background

# Settings another shell must not copy: they belong to this worker only.
WORKER_ONLY = {"CHECKOUT_METRICS_PORT", "CHECKOUT_LOG_FORMAT"}
AWS_LOCAL = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
CHECK_INTERVAL_SECONDS = 0.5
START_TIMEOUT_SECONDS = 180.0
STOP_TIMEOUT_SECONDS = 60.0
WORKER_PREFIX = "worker | "


def register(commands: argparse._SubParsersAction) -> None:
    state_dir = background.default_state_dir()
    up = add_command(
        commands,
        "up",
        FAILED,
        help="run the embedded Redis, a moto DynamoDB and one worker (until Ctrl-C, "
        "or in the background with --detach)",
        description="Exit 1: a service it started exited, `checkout init` failed (the "
        "message names the log), or a stack already runs from the --workdir.",
    )
    up.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="data and logs, kept (default: a temporary directory removed on exit; "
        f"with --detach: {state_dir})",
    )
    up.add_argument("--concurrency", "-c", type=whole_number(1), default=2, help="worker processes")
    up.add_argument(
        "--metrics-port",
        type=whole_number(1, 65535),
        default=None,
        help="the worker's metrics port (default: free)",
    )
    up.add_argument(
        "--shards",
        type=whole_number(1, 16),
        default=1,
        help="Redis servers, each a shard with a worker of its own (default: 1; see README "
        '"Scaling out")',
    )
    up.add_argument(
        "--quiet", "-q", action="store_true", help="do not show the worker's output (only its log)"
    )
    up.add_argument(
        "--detach",
        "-d",
        action="store_true",
        help="start in the background, print the export lines once ready, and return; "
        "`checkout down` stops it",
    )
    up.set_defaults(run=run_up)
    down = add_command(
        commands,
        "down",
        FAILED,
        help="stop the stack `checkout up --detach` started",
        description="Exit 0 also when nothing runs from the --workdir; 1: it did not stop "
        f"within {STOP_TIMEOUT_SECONDS:.0f}s.",
    )
    down.add_argument(
        "--workdir",
        type=Path,
        default=state_dir,
        help=f"the stack's --workdir (default: {state_dir})",
    )
    down.set_defaults(run=run_down)


class _Stop(BaseException):
    """SIGTERM, handled like Ctrl-C."""


def run_up(args: argparse.Namespace) -> int:
    from tasks.cli.errors import Friendly

    temporary = args.workdir is None and not args.detach
    workdir = args.workdir or (
        background.default_state_dir()
        if args.detach
        else Path(tempfile.mkdtemp(prefix="checkout-up-"))
    )
    try:
        workdir.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        return usage_error("up", f"--workdir {workdir}: not a directory")
    except OSError as error:
        return usage_error("up", f"--workdir {workdir}: {error.strerror}")
    pid = background.running_pid(workdir)
    if pid is not None:
        raise Friendly(
            f"a stack already runs from {workdir} (pid {pid}): use it, stop it with "
            f"`checkout down --workdir {workdir}`, or give another --workdir",
            FAILED,
        )
    if args.detach:
        return _detach(args, workdir)
    code = FAILED
    try:
        code = _foreground(args, workdir, temporary=temporary)
        return code
    finally:
        if temporary and code == 0:  # after a failure its logs are what says why: kept
            shutil.rmtree(workdir, ignore_errors=True)


def run_down(args: argparse.Namespace) -> int:
    from tasks.cli.errors import Friendly

    pid = background.running_pid(args.workdir)
    if pid is None:
        print(f"nothing runs from {args.workdir}")
        return 0
    if not background.stop(pid, timeout=STOP_TIMEOUT_SECONDS):
        raise Friendly(
            f"`checkout up` (pid {pid}) still running after {STOP_TIMEOUT_SECONDS:.0f}s; "
            f"see {args.workdir / 'up.log'}",
            FAILED,
        )
    print(f"stopped the stack from {args.workdir} (pid {pid})")
    return 0


def _detach(args: argparse.Namespace, workdir: Path) -> int:
    """Start `checkout up` in the foreground as a background process; return once ready."""
    from tasks.cli.errors import Friendly
    from tasks.embedded.stack import CHECKOUT

    argv = [CHECKOUT, "up", "--quiet", "--workdir", str(workdir), "-c", str(args.concurrency)]
    argv += ["--shards", str(args.shards)]
    if args.metrics_port:
        argv += ["--metrics-port", str(args.metrics_port)]
    background.clear(workdir)
    log = workdir / "up.log"
    with log.open("ab") as output:
        child = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=output, stderr=output, start_new_session=True
        )
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while (exports := background.ready_exports(workdir)) is None:
        if child.poll() is not None:
            raise Friendly(f"`checkout up` exited with {child.returncode}; see {log}", FAILED)
        if time.monotonic() > deadline:
            background.stop(child.pid, timeout=STOP_TIMEOUT_SECONDS)
            raise Friendly(f"not ready after {START_TIMEOUT_SECONDS:.0f}s; see {log}", FAILED)
        time.sleep(CHECK_INTERVAL_SECONDS)
    for line in exports:
        print(line)
    sys.stdout.flush()
    _say(f"running in the background (pid {child.pid}); logs in {workdir}")
    _say(f"`checkout down{_workdir_flag(args)}` stops it")
    return 0


def _workdir_flag(args: argparse.Namespace) -> str:
    return f" --workdir {shlex.quote(str(args.workdir))}" if args.workdir else ""


def _foreground(args: argparse.Namespace, workdir: Path, *, temporary: bool) -> int:
    from tasks.embedded.stack import free_port

    metrics_port = args.metrics_port or free_port()
    previous = signal.signal(signal.SIGTERM, _raise_stop)
    background.claim(workdir)
    try:
        with ExitStack() as started:
            try:
                return _run(started, workdir, args, metrics_port, temporary=temporary)
            except (KeyboardInterrupt, _Stop):
                return 0
            finally:
                # A second Ctrl-C must not cut the shutdown short and orphan a process.
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
                _say("stopping")
    finally:
        background.clear(workdir)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, previous)


def _run(
    started: ExitStack,
    workdir: Path,
    args: argparse.Namespace,
    metrics_port: int,
    *,
    temporary: bool,
) -> int:
    """Start the services (each stopped by `started`), then wait; returns the exit code."""
    from tasks.embedded.stack import start_moto

    redises, redis_urls = _start_shards(started, workdir, args.shards)
    moto, dynamodb_url = start_moto(workdir)
    started.callback(moto.stop)
    env = _environment(redis_urls, dynamodb_url)
    _create_tables(env, workdir)
    workers = _start_workers(started, env, redis_urls, workdir, args, metrics_port)
    exports = export_lines(env)
    for line in exports:
        print(line)
    sys.stdout.flush()
    background.announce(workdir, exports)
    kept = "removed on exit; --workdir keeps them" if temporary else "kept"
    pids = ", ".join(str(w.pid) for w in workers)
    _say(
        f"redis-server pid {', '.join(str(r.pid) for r in redises)}, moto server pid {moto.pid}, "
        f"checkout worker pid {pids}; metrics http://127.0.0.1:{metrics_port}/metrics; logs in "
        f"{workdir} ({kept})"
    )
    _say("paste the export lines above into another shell; Ctrl-C here stops everything")
    processes = (*redises, moto, *workers)
    while True:
        for process in processes:
            if process.process.poll() is not None:
                _say(f"{process.name} exited with {process.process.returncode}; see {process.log}")
                return 1
        time.sleep(CHECK_INTERVAL_SECONDS)


def _start_shards(started: ExitStack, workdir: Path, shards: int) -> tuple[list[Any], list[str]]:
    """One redis-server (in `workdir`), or one per shard (in `workdir/redis-K`)."""
    from tasks.embedded.stack import start_redis

    redises, urls = [], []
    for shard in range(shards):
        place = workdir if shards == 1 else workdir / f"redis-{shard}"
        place.mkdir(exist_ok=True)
        redis, url = start_redis(place, appendonly=True)
        started.callback(redis.stop)
        redises.append(redis)
        urls.append(url)
    return redises, urls


def _start_workers(
    started: ExitStack,
    env: dict[str, str],
    redis_urls: list[str],
    workdir: Path,
    args: argparse.Namespace,
    metrics_port: int,
) -> list[Any]:
    """A worker (one per shard), its output shown prefixed unless --quiet."""
    from tasks.embedded.follow import LogFollower
    from tasks.embedded.stack import free_port, start_worker

    sharded = len(redis_urls) > 1
    workers = []
    for shard, url in enumerate(redis_urls):
        name = f"worker-{shard}" if sharded else "worker"
        log = workdir / f"{name}.log"
        if not args.quiet:  # stopped last: it prints the worker's last lines
            started.callback(LogFollower(log, f"{name} | ").start().stop)
        extra = ["--metrics-port", str(metrics_port if shard == 0 else free_port())]
        if sharded:
            extra += ["--shard", str(shard)]
        worker = start_worker(
            {**env, "CHECKOUT_REDIS_URL": url},  # where it answers the ping
            log=log,
            concurrency=args.concurrency,
            loglevel="INFO",
            extra_args=extra,
        )
        started.callback(worker.stop)
        workers.append(worker)
    return workers


def _environment(redis_urls: list[str], dynamodb_url: str) -> dict[str, str]:
    # Local endpoints accept any credentials; the user's real ones stay out of it.
    env = {
        **os.environ,
        **AWS_LOCAL,
        "CHECKOUT_REDIS_URL": redis_urls[0],
        "CHECKOUT_DYNAMODB_ENDPOINT_URL": dynamodb_url,
    }
    env.pop("CHECKOUT_REDIS_URLS", None)
    if len(redis_urls) > 1:
        env["CHECKOUT_REDIS_URLS"] = ",".join(redis_urls)
    return env


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
