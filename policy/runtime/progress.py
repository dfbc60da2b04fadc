"""Progress bars for the long commands (`rltab train --once`, `rltab replay`): tqdm on a
terminal, nothing in a log file or a pipe (the updater started by the server writes updater.log)."""

from __future__ import annotations

import sys
from typing import Any, Protocol


class Progress(Protocol):
    def __call__(self, phase: str, done: int, total: int | None = None, note: str = "") -> None: ...


def silent(phase: str, done: int, total: int | None = None, note: str = "") -> None:
    """The default: report nothing."""


class PhaseBars:
    """One bar per phase (an update cycle's: events, steps, export, guard), each left on screen."""

    def __init__(self, desc: str, unit: str = "it", enabled: bool | None = None):
        self.desc = desc
        self.unit = unit
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.phase: str | None = None
        self.bar: Any = None  # a tqdm bar while a phase runs

    def __call__(self, phase: str, done: int, total: int | None = None, note: str = "") -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        if phase != self.phase or self.bar is None:
            self.close()
            self.phase = phase
            self.bar = tqdm(
                total=total, desc=f"{self.desc}: {phase}", unit=self.unit, file=sys.stderr, dynamic_ncols=True
            )
        self.bar.n = done
        if note:
            self.bar.set_postfix_str(note, refresh=False)
        self.bar.refresh()

    def write(self, message: str) -> None:
        """A log line that does not tear the bar."""
        from tqdm import tqdm

        tqdm.write(message, file=sys.stderr) if self.enabled else print(message, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
