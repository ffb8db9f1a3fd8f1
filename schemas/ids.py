"""The ids producers choose: what characters they may hold, so that no id can forge a log
line, reach a terminal as an escape sequence, or collide with another Redis key.

  command_id  a letter or digit, then letters, digits and `_ . : - @ / + = ~`; 1-255
  session_id  a letter or digit, then letters, digits and `_ . : -`; 1-255 (UUIDs, what
              the seed generates, and other URL-safe ids)
  run id      a letter or digit, then letters, digits and `_ . -`; 1-128. No `:`, so a
              run's keys (`run:<id>`, `run:<id>:n`, `run:<id>:ex`) cannot be another run's

ASCII only: no control characters, no lone surrogates, no look-alike letters. The
patterns are in the JSON Schema too (`schemas/json/commands.schema.json`), so the
TypeScript producer refuses what the Python one does; `pipeline.lua` checks run ids
again for clients that call it directly.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import StringConstraints

COMMAND_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@/+=~-]{0,254}$"
SESSION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,254}$"
RUN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"

CommandId = Annotated[str, StringConstraints(pattern=COMMAND_ID_PATTERN)]
SessionId = Annotated[str, StringConstraints(pattern=SESSION_ID_PATTERN)]

_RUN_ID = re.compile(RUN_ID_PATTERN.replace("$", r"\Z"))


def run_id_problem(run_id: str) -> str | None:
    """What is wrong with `run_id`, in the words every producer uses, or None."""
    if _RUN_ID.match(run_id):
        return None
    return (
        f"run id '{escaped(run_id)}': 1-128 characters, a letter or digit first, then "
        "letters, digits, '_', '.' or '-'"
    )


def escaped(text: str) -> str:
    """`text` safe to print on a terminal or a text log line: every character that is
    not printable (newlines, escape sequences, lone surrogates) as a `\\u`/`\\x` escape."""
    if text.isprintable() and text.isascii():
        return text
    return "".join(char if char.isprintable() else _escape(char) for char in text)


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
