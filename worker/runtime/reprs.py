"""What Celery shows of a task's arguments: the command's id, never its body.

Celery puts `argsrepr` and `kwargsrepr` into message headers, the worker's `Task ...
received` log record, `task-received` events and Flower; by default they are reprs of the
arguments, and a command carries buyer emails and payment credentials. The project's
producers write the forms below (`pipeline.lua` `argsrepr()`, `RedactingAMQP`), and the
worker rewrites every message it runs to them, whatever client sent it
(`worker.runtime.consumer`).
"""

from __future__ import annotations

import re
from typing import Any

REDACTED_KWARGSREPR = "{}"
# Ids the delivery script writes unquoted (`quoted` in pipeline.lua): nothing to escape.
_PLAIN_ID = re.compile(r"[A-Za-z0-9_.:-]{1,255}")
MAX_SHOWN_ID_CHARS = 255  # a valid command id's maximum


def command_argsrepr(args: Any, kwargs: Any) -> str:
    """`(command <id>)`: what `checkout.apply_command(command, jid)` shows."""
    command = _argument(args, kwargs, 0, "command")
    command_id = command.get("command_id") if isinstance(command, dict) else None
    return f"(command {shown_id(command_id)})"


def commands_argsrepr(args: Any, kwargs: Any) -> str:
    """`(<n> commands)`: what `checkout.apply_commands(commands, jids)` shows."""
    commands = _argument(args, kwargs, 0, "commands")
    return f"({len(commands) if isinstance(commands, list | tuple) else '?'} commands)"


def shown_id(command_id: Any) -> str:
    """A command id as logs may show it: as written when it is plain (what
    `pipeline.lua` writes), else its escaped repr, so a foreign client's id cannot put
    newlines or terminal escapes into a log line; `?` when it is not a string (it
    could be an object holding anything)."""
    if not isinstance(command_id, str):
        return "?"
    if _PLAIN_ID.fullmatch(command_id):
        return command_id
    if len(command_id) > MAX_SHOWN_ID_CHARS:
        return repr(command_id[:MAX_SHOWN_ID_CHARS]) + "..."
    return repr(command_id)


def _argument(args: Any, kwargs: Any, position: int, name: str) -> Any:
    if isinstance(args, list | tuple) and len(args) > position:
        return args[position]
    return kwargs.get(name) if isinstance(kwargs, dict) else None
