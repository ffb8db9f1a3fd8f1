"""`checkout init` and `checkout worker`: tables and worker processes."""

from __future__ import annotations

import argparse
import os

from worker.settings import get_settings


def register(commands: argparse._SubParsersAction) -> None:
    init = commands.add_parser("init", help="create the tables and enable TTL (idempotent)")
    init.set_defaults(run=run_init)

    worker = commands.add_parser("worker", help="run a Celery worker that applies commands")
    worker.add_argument("--concurrency", "-c", type=int, default=None, help="worker processes")
    worker.add_argument("--loglevel", "-l", default="INFO")
    worker.add_argument(
        "--queues",
        "-Q",
        default=None,
        help="comma-separated queues, first first (default: the interactive queue, then "
        "the bulk queue; `-Q checkout.bulk` makes a dedicated bulk worker)",
    )
    worker.set_defaults(run=run_worker)


def run_init(args: argparse.Namespace) -> int:
    from worker.store import make_dynamodb_client
    from worker.store_tables import ensure_tables

    settings = get_settings()
    for action in ensure_tables(make_dynamodb_client(settings), settings):
        print(action)
    print(f"tables ready: {settings.sessions_table}, {settings.commands_table}")
    return 0


def run_worker(args: argparse.Namespace) -> int:
    from worker.celery_app import app, worker_queues

    queues = args.queues or ",".join(worker_queues(get_settings()))
    argv = ["worker", f"--loglevel={args.loglevel}", "-Q", queues]
    # A unique node name per process, so several workers on one host do not collide.
    argv += ["--hostname", f"checkout-{os.getpid()}@%h"]
    if args.concurrency:
        argv.append(f"--concurrency={args.concurrency}")
    app.worker_main(argv)
    return 0
