"""The CLI's parser and the argument types its commands share.

A wrong argument is a usage error (exit 2) in one line: what is wrong, and where
to read how to call the command. argparse's own error prints the whole usage
first, which buries the one line that says what to change.
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from collections.abc import Callable
from typing import Any, NoReturn

from schemas.ids import SESSION_ID_PATTERN, escaped
from tasks.cli.exit_codes import HELP_WIDTH, USAGE, codes_help

# XREAD and XGROUP CREATE take `<ms>-<seq>`, `<ms>` (sequence 0) or `$` (the last entry).
_STREAM_ID = re.compile(r"(\d{1,20})(?:-(\d{1,20}))?\Z")
_SESSION_ID = re.compile(SESSION_ID_PATTERN.replace("$", r"\Z"))
STREAM_ID_FORM = "<ms>-<seq> as `checkout events` prints it, <ms>, 0 (the start) or $ (now)"
SESSION_ID_FORM = (
    "1-255 characters, a letter or digit first, then letters, digits, '_', '.', ':' or '-'"
)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr, and exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE, f"{self.prog}: {message}; see `{self.prog} --help`\n")


def add_command(
    commands: argparse._SubParsersAction, name: str, *codes: int, **options: Any
) -> argparse.ArgumentParser:
    """A subcommand whose `--help` ends with the exit codes it can return (0 and 2 always)."""
    if "description" in options:  # the raw formatter keeps the table, and wraps nothing
        options["description"] = textwrap.fill(
            options["description"], HELP_WIDTH, break_on_hyphens=False
        )
    return commands.add_parser(
        name,
        epilog=codes_help(*codes),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        **options,
    )


def whole_number(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """argparse `type`: a whole number from `minimum` (to `maximum`)."""
    wanted = f"from {minimum} to {maximum}" if maximum is not None else f"≥ {minimum}"

    def parse(text: str) -> int:
        value = int(text) if re.fullmatch(r"-?\d{1,18}", text.strip()) else None
        if value is None or value < minimum or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(
                f"expected a whole number {wanted}, not {_shown(text)}"
            )
        return value

    return parse


def seconds(*, allow_zero: bool) -> Callable[[str], float]:
    """argparse `type`: a number of seconds, > 0 (or ≥ 0)."""
    wanted = "≥ 0" if allow_zero else "> 0"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not (value >= 0 if allow_zero else value > 0) or value == float("inf"):
            raise argparse.ArgumentTypeError(f"expected seconds {wanted}, not {_shown(text)}")
        return value

    return parse


def stream_id(text: str) -> str:
    """argparse `type` of `--after`: a stream entry id Redis takes, refused before Redis."""
    match = _STREAM_ID.match(text)
    if text == "$" or (match and all(int(part or 0) < 2**64 for part in match.groups())):
        return text
    raise argparse.ArgumentTypeError(f"{_shown(text)} is not a stream entry id: {STREAM_ID_FORM}")


def stream_position(text: str) -> str:
    """argparse `type` of `events --after`: a stream entry id (every shard), or with
    several shards `K:ID,K:ID,...`, each shard's last printed `stream_id` (its `shard`)."""
    if ":" not in text:
        return stream_id(text)
    for part in text.split(","):
        shard, _, entry = part.partition(":")
        if not shard.isdigit() or not entry:
            raise argparse.ArgumentTypeError(
                f"{_shown(part)} is not K:ID (a shard number, then a stream entry id)"
            )
        stream_id(entry)
    return text


def session_id(text: str) -> str:
    """argparse `type` of SESSION_ID: the form every producer's session ids have."""
    if _SESSION_ID.match(text):
        return text
    raise argparse.ArgumentTypeError(f"session id {_shown(text)}: {SESSION_ID_FORM}")


def _shown(text: str) -> str:
    return f"'{escaped(text)}'"


def usage_error(command: str, message: str) -> int:
    """A usage error a command finds itself (after parsing): one line, exit 2."""
    print(f"checkout {command}: {message}", file=sys.stderr)
    return USAGE
