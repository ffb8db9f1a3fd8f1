"""Copy a log file's lines, as they are written, to a terminal with a prefix (`tail -f`).

`checkout up` runs its worker with output to a file (kept in the working directory
for later); this shows the same lines in the `up` terminal as they come.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import TextIO

POLL_SECONDS = 0.2


class LogFollower:
    """A thread printing every line of `path`, `prefix` first, until `stop()`."""

    def __init__(self, path: Path, prefix: str, out: TextIO | None = None) -> None:
        self._path = path
        self._prefix = prefix
        self._out = out or sys.stderr
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._follow, name=f"follow {path}", daemon=True)

    def start(self) -> LogFollower:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Print what is left, then stop."""
        self._stopped.set()
        self._thread.join(timeout=5)

    def _follow(self) -> None:
        while not self._path.exists():
            if self._stopped.wait(POLL_SECONDS):
                return
        with self._path.open("rb") as log:
            pending = b""
            while True:
                chunk = log.read(65536)
                if chunk:
                    pending = self._print_lines(pending + chunk)
                    continue
                # A file has no "written" event to wait on: look again shortly, as tail -f.
                if self._stopped.wait(POLL_SECONDS):
                    tail = pending + log.read()
                    if tail:
                        self._print_lines(tail if tail.endswith(b"\n") else tail + b"\n")
                    return

    def _print_lines(self, data: bytes) -> bytes:
        *lines, rest = data.split(b"\n")
        for line in lines:
            self._out.write(f"{self._prefix}{line.decode('utf-8', 'replace')}\n")
        if lines:
            self._out.flush()
        return rest
