"""Progress for long commands, on stderr and only when a person is watching.

Scripts and cron jobs read stdout and redirect stderr to logs; a progress line full
of carriage returns there is noise, so nothing is written unless stderr is a TTY.
"""

from __future__ import annotations

import sys
from typing import TextIO


class Progress:
    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty()
        self._shown = False

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        share = f" {100 * done // total:3d}%" if total else ""
        self.stream.write(f"\r{self.label}: {done}/{total}{share}")
        self.stream.flush()
        self._shown = True

    def finish(self) -> None:
        if self._shown:
            self.stream.write("\n")
            self.stream.flush()
