"""`checkout schema commands|events`: print the JSON Schema of a contract."""

from __future__ import annotations

import argparse
import sys

from schemas.jsonschema import SCHEMAS, render
from tasks.cli.arguments import add_command


def register(commands: argparse._SubParsersAction) -> None:
    schema = add_command(
        commands,
        "schema",
        help="print the JSON Schema (draft 2020-12) of the commands or the events",
    )
    schema.add_argument("contract", choices=sorted(SCHEMAS), help="which contract")
    schema.set_defaults(run=run_schema)


def run_schema(args: argparse.Namespace) -> int:
    sys.stdout.write(render(SCHEMAS[args.contract]()))
    return 0
