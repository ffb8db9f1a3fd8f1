"""Shared by `send`, `bulk-update` and `report`: progress output, waiting, the summary.

Progress goes to stderr: a rich bar on a terminal, a plain line every few seconds
otherwise (logs of batch jobs), nothing with `--quiet`. The summary goes to stdout;
with `--json` its last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from tasks.cli.arguments import seconds, whole_number
from tasks.cli.exit_codes import FAILED, OK, PENDING, REDIS
from worker.delivery.runs import RunSummary, wait_for_run

# A broker failure mid-way is a Redis failure like any other (not 2, a usage error).
EXIT_OK, EXIT_FAILURES, EXIT_BROKER, EXIT_PENDING = OK, FAILED, REDIS, PENDING
PLAIN_EVERY_SECONDS = 5.0
POLL_SECONDS = 0.25


def add_wait_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--wait", action="store_true", help="follow the run until every command has an outcome"
    )
    parser.add_argument(
        "--timeout",
        type=seconds(allow_zero=True),
        default=None,
        metavar="S",
        help="with --wait: give up after S s",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the summary as one JSON object (last line)"
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress output")


def add_per_message_option(parser: argparse.ArgumentParser, *, default: str) -> None:
    """`--per-message N`: commands per queue message (`enqueue_batched`), 1-100."""
    from worker.delivery.journal import MAX_COMMANDS_PER_MESSAGE

    parser.add_argument(
        "--per-message",
        type=whole_number(1, MAX_COMMANDS_PER_MESSAGE),
        default=None,
        metavar="N",
        help=f"commands per queue message, 1-{MAX_COMMANDS_PER_MESSAGE} (default: {default})",
    )


def run_id_arg(text: str) -> str:
    """argparse `type` of `--run-id` and RUN_ID: refused as a usage error, before Redis."""
    from schemas.ids import run_id_problem

    if problem := run_id_problem(text):
        raise argparse.ArgumentTypeError(problem)
    return text


class Progress:
    """Counts shown as a rich bar (terminal), periodic plain lines, or not at all."""

    def __init__(self, description: str, *, quiet: bool, total: int | None = None) -> None:
        self.description = description
        self.total = total
        self._bar: Any = None
        self._task: Any = None
        self._last_line = time.monotonic()
        self._quiet = quiet
        if not quiet and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TaskProgressColumn,
                TextColumn,
                TimeElapsedColumn,
            )
            from rich.progress import Progress as Bar

            columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
            more = (TaskProgressColumn(), TimeElapsedColumn())
            self._bar = Bar(*columns, *more, console=Console(stderr=True), transient=False)

    def __enter__(self) -> Progress:
        if self._bar is not None:
            self._bar.start()
            self._task = self._bar.add_task(self.description, total=self.total)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def update(self, done: int, *, total: int | None = None, note: str = "") -> None:
        if total is not None:
            self.total = total
        if self._bar is not None:
            self._bar.update(
                self._task, completed=done, total=self.total, description=self._label(note)
            )
        elif not self._quiet and time.monotonic() - self._last_line >= PLAIN_EVERY_SECONDS:
            self._last_line = time.monotonic()
            of = f"/{self.total}" if self.total is not None else ""
            print(f"{self._label(note)}: {done}{of}", file=sys.stderr, flush=True)

    def _label(self, note: str) -> str:
        return f"{self.description} ({note})" if note else self.description


def follow_run(read: Callable[[], RunSummary], args: argparse.Namespace) -> tuple[RunSummary, bool]:
    """With --wait, poll the run's counts (`read`: every shard's) until nothing is
    pending or the timeout."""
    if not args.wait:
        return read(), True
    with Progress("applying", quiet=args.quiet) as progress:

        def show(summary: RunSummary) -> None:
            failed = summary.finished - summary.applied
            progress.update(summary.finished, total=summary.sent, note=f"{failed} failed")

        return wait_for_run(
            read,
            timeout=args.timeout,
            interval=POLL_SECONDS,
            on_progress=show,
        )


def print_summary(
    summary: RunSummary, *, as_json: bool, extra: dict[str, Any] | None = None
) -> None:
    """The summary on stdout: text, or one JSON object on the last line."""
    if as_json:
        print(json.dumps({**summary.to_json(), **(extra or {})}), flush=True)
    else:
        print(summary.text(), flush=True)


def exit_code(summary: RunSummary, *, waited: bool, done: bool, invalid: int = 0) -> int:
    """0 all applied, 3 timed out with commands pending, 1 invalid lines or failures."""
    if waited and not done:
        return EXIT_PENDING
    failed = waited and summary.finished > summary.applied
    return EXIT_FAILURES if invalid or failed else EXIT_OK
