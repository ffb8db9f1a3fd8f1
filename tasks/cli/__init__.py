"""`checkout`: set up tables, run a worker, send commands, read sessions and events.

One module per command group; each exposes `register(commands)`, which adds its
subcommands to the parser and binds each to a `run(args) -> exit code` function.
"""

from __future__ import annotations

import argparse
import sys

from tasks.cli import (
    bench,
    bulk,
    dlq,
    read,
    schema,
    send,
    sessions,
    setup,
    shards,
    status,
    up,
    worker,
)
from tasks.cli.arguments import Parser
from tasks.cli.errors import EPILOG, run_friendly

GROUPS = (setup, worker, send, read, sessions, schema, dlq, bulk, status, shards, up, bench)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_friendly(args.run, args)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="checkout",
        description=__doc__.splitlines()[0],
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show the traceback of any error instead of its one line (the exit code is then 1)",
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND", dest="command")
    for group in GROUPS:
        group.register(commands)
    return parser


if __name__ == "__main__":
    sys.exit(main())
