"""The `checkout` CLI's exit codes: one table for every subcommand (README, `--help`).

A code says which kind of thing went wrong, the same kind in every subcommand: a
usage error is never also a service failure. Each subcommand's `--help` lists the
codes it can return (`codes_help`).
"""

from __future__ import annotations

import textwrap

OK = 0
FAILED = 1  # the command's own outcome: not found, invalid input lines, rejected commands
USAGE = 2  # bad arguments (also a FILE it cannot read), or a CHECKOUT_* setting not valid
PENDING = 3  # --wait --timeout passed with commands still pending, or `report` of such a run
REDIS = 4  # Redis unreachable, or refusing us (also mid-way through a send)
DYNAMODB = 5  # DynamoDB unreachable, no region or no credentials
TABLES_MISSING = 6  # the sessions table is missing: run `checkout init`

HELP_WIDTH = 88  # `--help` epilogs are not wrapped by argparse (they are tables)

MEANINGS = {
    OK: "done",
    FAILED: "the command's own failure (a session not found, invalid input lines, "
    "commands rejected or dead-lettered)",
    USAGE: "usage error: bad arguments (a value of the wrong form, a FILE that cannot be "
    "read), or a CHECKOUT_* setting that is not valid; nothing was done",
    PENDING: "commands still pending: --timeout passed (see `checkout report RUN_ID`), or "
    "the run `checkout report` shows is not finished",
    REDIS: "Redis unreachable or refusing us (CHECKOUT_REDIS_URL), also mid-way: the "
    "message says what was sent",
    DYNAMODB: "DynamoDB unreachable or not configured (CHECKOUT_DYNAMODB_ENDPOINT_URL, "
    "AWS_DEFAULT_REGION, AWS credentials)",
    TABLES_MISSING: "tables missing: run `checkout init`",
}


def codes_help(*codes: int) -> str:
    """An `epilog` listing `codes` (0 and 2 always), for a subcommand's `--help`."""
    shown = sorted({OK, USAGE, *codes})
    lines = [
        textwrap.fill(
            MEANINGS[code],
            HELP_WIDTH,
            initial_indent=f"  {code}  ",
            subsequent_indent=" " * 5,
            break_on_hyphens=False,
        )
        for code in shown
    ]
    return "exit codes:\n" + "\n".join(lines)
