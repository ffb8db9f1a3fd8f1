"""One table of exit codes: `checkout --help`, README, and each subcommand's `--help` its codes."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tasks.cli import build_parser
from tasks.cli.exit_codes import MEANINGS, codes_help

README = Path(__file__).resolve().parents[2] / "README.md"
# What each subcommand can return, besides 0 and 2. A new subcommand must say here.
CODES = {
    "init": {5},
    "worker": {1},
    "send": {1, 3, 4},
    "get": {1, 5, 6},
    "events": {4},
    "schema": set(),
    "dlq": {1, 4},
    "dlq list": {4},
    "dlq show": {1, 4},
    "dlq replay": {1, 4},
    "dlq purge": {1, 4},
    "bulk-update": {1, 3, 4, 5, 6},
    "report": {1, 3, 4},
    "status": {4},
    "up": {1},
    "down": {1},
    "shards": {1, 4},
    "shards reset": {1, 4},
    "bench": {1, 4, 5},
    "sessions": {5, 6},
    "history": {1, 4, 5, 6},
}


def subcommands(
    parser: argparse.ArgumentParser, prefix: str = ""
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield f"{prefix}{name}", child
                yield from subcommands(child, f"{prefix}{name} ")


PARSERS = dict(subcommands(build_parser()))


def test_every_subcommand_is_listed_here():
    assert set(PARSERS) == set(CODES)


@pytest.mark.parametrize("name", sorted(CODES))
def test_each_subcommand_lists_the_codes_it_can_return(name):
    shown = PARSERS[name].format_help()
    assert shown.rstrip().endswith(codes_help(*CODES[name]))
    listed = {int(code) for code in re.findall(r"^  (\d)  ", shown, flags=re.MULTILINE)}
    assert listed == {0, 2, *CODES[name]}


def test_checkout_help_shows_the_whole_table_and_what_debug_does():
    shown = build_parser().format_help()
    assert codes_help(*MEANINGS) in shown
    assert "traceback of any error" in shown


def test_readme_has_the_same_table():
    table = README.read_text().split("| code | meaning |\n|---|---|\n", 1)[1].split("\n\n", 1)[0]
    rows = [row.split(" | ", 1) for row in table.removeprefix("| ").split(" |\n| ")]
    assert {int(code): meaning.removesuffix(" |") for code, meaning in rows} == MEANINGS


def test_redis_failing_mid_way_is_not_a_usage_error():
    from tasks.cli import exit_codes, progress

    assert progress.EXIT_BROKER == exit_codes.REDIS != exit_codes.USAGE
