"""`checkout init` and `checkout worker`: tables and worker processes."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time

from tasks.cli.arguments import add_command, whole_number
from tasks.cli.exit_codes import DYNAMODB, FAILED, USAGE
from worker.settings import Settings, get_settings

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
SHARD_RETRY_SECONDS = 1.0


def register(commands: argparse._SubParsersAction) -> None:
    init = add_command(
        commands, "init", DYNAMODB, help="create the tables and enable TTL (idempotent)"
    )
    init.set_defaults(run=run_init)

    worker = add_command(
        commands,
        "worker",
        FAILED,
        help="run a Celery worker that applies commands",
        description="Runs until SIGTERM or Ctrl-C. An unreachable Redis is retried, not an "
        "exit: the worker connects once it can. Exit 1: Celery stopped on an error.",
    )
    worker.add_argument(
        "--concurrency", "-c", type=whole_number(1), default=None, help="worker processes"
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


def run_init(args: argparse.Namespace) -> int:
    from worker.dynamodb.clients import make_dynamodb_client
    from worker.dynamodb.tables import ensure_tables

    settings = get_settings()
    report = ensure_tables(make_dynamodb_client(settings), settings)
    for action in report.done:
        print(action)
    ready = f"table ready: {settings.sessions_table}"
    if report.ttl_unsupported:
        ready += (
            f"; this DynamoDB does not support TTL ({report.ttl_unsupported}): expired "
            "sessions are still treated as gone by the pipeline"
        )
    print(ready)
    return 0


def run_worker(args: argparse.Namespace) -> int:
    settings = _serve_one_shard(get_settings(), args.shard)
    # Before anything imports prometheus_client: it picks multiprocess mode on import,
    # and the pool's processes inherit the directory when they fork.
    created = _ensure_metrics_dir()
    try:
        from worker.runtime.app import app, worker_queues
        from worker.runtime.signals import install_logging, serve_metrics_when_ready

        json_logs = settings.log_format == "json"
        install_logging(json_lines=json_logs)
        _quiet_celery_task_lines(args.loglevel)
        port = args.metrics_port if args.metrics_port is not None else settings.metrics_port
        if port is not None:
            serve_metrics_when_ready(port, settings.metrics_host)
        queues = args.queues or ",".join(worker_queues(settings))
        argv = ["worker", f"--loglevel={args.loglevel}", "-Q", queues]
        # A unique node name per process, so several workers on one host do not collide.
        argv += ["--hostname", f"checkout-{os.getpid()}@%h"]
        # Mingle asks every other worker for its revoked tasks at start (a second of
        # waiting for answers) and gossip follows their events: this pipeline revokes
        # nothing and does not read other workers' events, so both only slow a start down.
        argv += ["--without-mingle", "--without-gossip"]
        # Celery's own worker-heartbeat event (for Flower and `celery events`) every 10 s,
        # not 2: a Redis PUBLISH each, idle or not. Flower allows twice that.
        argv += ["--heartbeat-interval", "10"]
        if args.concurrency:
            argv.append(f"--concurrency={args.concurrency}")
        if args.events or settings.task_events:
            argv.append("--task-events")
        if json_logs:
            argv.insert(0, "--quiet")  # no startup banner: every line is for the log pipeline
        app.worker_main(argv)
    finally:
        if created:
            shutil.rmtree(created, ignore_errors=True)
    return 0


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
