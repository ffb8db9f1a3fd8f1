"""`checkout worker`: a Celery worker process that applies commands."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time

from tasks.cli.arguments import add_command, whole_number
from tasks.cli.exit_codes import FAILED, USAGE
from worker.settings import Settings, get_settings

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
POOLS = ("prefork", "solo")
SHARD_RETRY_SECONDS = 1.0


def register(commands: argparse._SubParsersAction) -> None:
    worker = add_command(
        commands,
        "worker",
        FAILED,
        help="run a Celery worker that applies commands",
        description="Runs until SIGTERM or Ctrl-C. An unreachable Redis is retried, not an "
        "exit: the worker connects once it can. Exit 1: Celery stopped on an error.",
    )
    worker.add_argument(
        "--concurrency",
        "-c",
        type=whole_number(1),
        default=None,
        help="processes that apply commands (default: one per core)",
    )
    worker.add_argument(
        "--pool",
        choices=POOLS,
        default=None,
        help="solo: --concurrency processes that each take messages and apply them; "
        "prefork: a main process hands each message to one of --concurrency pool processes "
        '(default: CHECKOUT_WORKER_POOL, else solo; README "Worker pools")',
    )
    worker.add_argument(
        "--loglevel",
        "-l",
        type=str.upper,  # Celery takes either case, and refuses others with a traceback
        choices=LOG_LEVELS,
        default="INFO",
    )
    worker.add_argument(
        "--queues",
        "-Q",
        default=None,
        help="comma-separated queues, first first (default: the interactive queue, then "
        "the bulk queue; `-Q checkout.bulk` makes a dedicated bulk worker)",
    )
    worker.add_argument(
        "--metrics-port",
        type=whole_number(1, 65535),
        default=None,
        help="serve Prometheus metrics on this port (default: CHECKOUT_METRICS_PORT; unset: none)",
    )
    worker.add_argument(
        "--shard",
        type=whole_number(0),
        default=None,
        metavar="K",
        help="serve shard K of CHECKOUT_REDIS_URLS (0 first): its queues, journal and "
        "reaper; one worker (or more) per shard",
    )
    worker.add_argument(
        "--events",
        "-E",
        action="store_true",
        help="send Celery task events (Flower, `celery events`) from the start "
        "(default: CHECKOUT_TASK_EVENTS; otherwise only while Flower asks, see README)",
    )
    worker.set_defaults(run=run_worker)


def run_worker(args: argparse.Namespace) -> int:
    settings = _use_pool(_serve_one_shard(get_settings(), args.shard), args.pool)
    # Before anything imports prometheus_client: it picks multiprocess mode on import,
    # and the pool's processes inherit the directory when they fork.
    created = _ensure_metrics_dir()
    try:
        from worker.runtime.signals import install_logging

        install_logging(json_lines=settings.log_format == "json")
        _quiet_celery_task_lines(args.loglevel)
        port = args.metrics_port if args.metrics_port is not None else settings.metrics_port
        argv = _celery_argv(args, settings)
        processes = _solo_processes(args, settings)
        if processes > 1:
            return _run_solo_group(processes, argv, port, settings.metrics_host)
        if port is not None:
            from worker.runtime.signals import serve_metrics_when_ready

            serve_metrics_when_ready(port, settings.metrics_host)
        return _run_celery(argv, f"checkout-{os.getpid()}@%h")
    finally:
        if created:
            shutil.rmtree(created, ignore_errors=True)


def _celery_argv(args: argparse.Namespace, settings: Settings) -> list[str]:
    """Celery's `worker` arguments, without the node name (`_run_celery` adds it)."""
    from worker.runtime.app import worker_queues

    queues = args.queues or ",".join(worker_queues(settings))
    argv = ["worker", f"--loglevel={args.loglevel}", "-Q", queues]
    # Mingle asks every other worker for its revoked tasks at start (a second of
    # waiting for answers) and gossip follows their events: this pipeline revokes
    # nothing and does not read other workers' events, so both only slow a start down.
    argv += ["--without-mingle", "--without-gossip"]
    argv.append(f"--pool={settings.worker_pool}")
    if args.concurrency and settings.worker_pool == "prefork":
        argv.append(f"--concurrency={args.concurrency}")
    # Celery's own worker-heartbeat event, how Flower and `celery events` see a worker
    # online (also when Flower turns events on remotely): a Redis PUBLISH each, idle or
    # not, so every 30 s rather than 2. Each event carries the interval, and monitors
    # allow twice it. (The journal's heartbeats, which the reaper reads, are not these.)
    argv += ["--heartbeat-interval", "30"]
    if args.events or settings.task_events:
        argv.append("--task-events")
    if settings.log_format == "json":
        argv.insert(0, "--quiet")  # no startup banner: every line is for the log pipeline
    return argv


def _run_celery(argv: list[str], hostname: str) -> int:
    """One Celery worker in this process, until it stops. `hostname`: a node name unique
    per process, so several workers on one host do not collide."""
    from worker.runtime.app import app

    app.worker_main([*argv, "--hostname", hostname])
    return 0


def _solo_processes(args: argparse.Namespace, settings: Settings) -> int:
    """How many solo worker processes to run: --concurrency, else one per core, as
    prefork sizes its pool; prefork itself is one process here (Celery forks its pool)."""
    if settings.worker_pool != "solo":
        return 1
    return args.concurrency or os.cpu_count() or 1


def _run_solo_group(processes: int, argv: list[str], port: int | None, host: str) -> int:
    """`processes` solo workers under this process (`worker.runtime.solo_group`), which
    serves their metrics. The first is node `checkout-<pid>@host`, as one worker is."""
    from worker.runtime.app import preload_for_fork
    from worker.runtime.solo_group import SoloGroup

    preload_for_fork()
    parent = os.getpid()

    def start(slot: int) -> int:
        return _run_celery(argv, f"checkout-{parent}{f'.{slot}' if slot else ''}@%h")

    group = SoloGroup(processes, start)
    if port is not None:
        from worker.observability.metrics import serve

        try:
            serve(port, host)
        except OSError as error:  # port taken: keep applying commands, say so loudly
            logging.getLogger("checkout.metrics").error(
                "metrics endpoint not started on port %d: %s", port, error
            )
    return group.run()


def _use_pool(settings: Settings, pool: str | None) -> Settings:
    """The settings with `--pool` in them, made this process's environment: the tasks
    read it (`worker.runtime.tasks`), in this process or a pool process it forks."""
    if pool is None or pool == settings.worker_pool:
        return settings
    os.environ["CHECKOUT_WORKER_POOL"] = pool
    get_settings.cache_clear()
    return get_settings()


def _serve_one_shard(settings: Settings, shard: int | None) -> Settings:
    """The settings of the one shard this worker serves (`--shard`), made this process's
    (and its pool's) environment, once that shard's record agrees with the list."""
    from tasks.cli.errors import Friendly

    urls = settings.shard_urls
    if shard is None and len(urls) > 1:
        choices = ", ".join(f"--shard {n}" for n in range(len(urls)))
        raise Friendly(
            f"CHECKOUT_REDIS_URLS lists {len(urls)} shards: a worker serves one; start one "
            f"(or more) per shard with {choices}",
            USAGE,
        )
    shard = shard or 0
    if shard >= len(urls):
        raise Friendly(
            f"--shard {shard}: there are {len(urls)} shards (0 to {len(urls) - 1}) in "
            "CHECKOUT_REDIS_URLS",
            USAGE,
        )
    if len(urls) == 1:
        return settings  # one Redis: as always, no record
    _check_own_record(urls[shard], shard, len(urls), settings.key_prefix)
    os.environ["CHECKOUT_REDIS_URL"] = urls[shard]
    os.environ.pop("CHECKOUT_REDIS_URLS", None)
    # Every jid and dead-letter id this worker makes carries its shard's tag.
    os.environ["CHECKOUT_SHARD_TAG"] = settings.for_shard(shard).shard_tag
    get_settings.cache_clear()
    return get_settings()


def _check_own_record(url: str, shard: int, shards: int, prefix: str) -> None:
    """Its own shard's record only (another shard may be down meanwhile); a shard not
    reachable yet is waited for, as the worker waits for its broker."""
    import redis

    from worker.delivery import shard_records
    from worker.redis_client import make_redis_client

    client = make_redis_client(url)
    said = False
    try:
        while True:
            try:
                shard_records.check_one(client, url, shard=shard, shards=shards, prefix=prefix)
                return
            except (redis.ConnectionError, redis.TimeoutError):
                if not said:
                    print(f"shard {shard} not reachable yet: waiting for it", file=sys.stderr)
                    said = True
                time.sleep(SHARD_RETRY_SECONDS)
    finally:
        client.close()


# Celery logs "Task ... received" (main process) and "Task ... succeeded" (pool
# process) at INFO for every message: two more lines per command next to the worker's
# own outcome line (ids, session, outcome, version), and 5.7% of the main process's and
# 2.5% of the pool process's py-spy samples. Shown again with --loglevel=DEBUG; failures
# still log.
CELERY_TASK_LINE_LOGGERS = ("celery.worker.strategy", "celery.app.trace")


def _quiet_celery_task_lines(loglevel: str) -> None:
    if logging.getLevelName(loglevel.upper()) == logging.DEBUG:
        return
    for name in CELERY_TASK_LINE_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def _ensure_metrics_dir() -> str | None:
    """Point `PROMETHEUS_MULTIPROC_DIR` at a fresh directory unless the operator set one.

    Returns the directory created here (removed when the worker exits). A directory
    the operator chose must be emptied between runs, or old counts carry over.
    """
    chosen = os.environ.get(MULTIPROC_ENV)
    if chosen:
        os.makedirs(chosen, exist_ok=True)
        return None
    created = tempfile.mkdtemp(prefix="checkout-metrics-")
    os.environ[MULTIPROC_ENV] = created
    return created
