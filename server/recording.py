"""The serving path's ledger: recording never costs a completion.

A ledger that cannot be written (a full disk, a read-only or vanished home, an I/O error) loses
the record, not the request: completions go on unrecorded, the user is told once, and recording
resumes by itself, tried again every `RETRY_S`, reopening the ledger if it never opened. (A full
disk once failed 218 of 252 requests with -32603, and kept failing after space came back; a
read-only home stopped the server at start.)
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from rltab.feedback import rewards as R
from rltab.feedback.ledger import Ledger

log = logging.getLogger(__name__)

RETRY_S = 10.0
FAILURES = (sqlite3.Error, OSError)  # full, read-only, I/O, locked past the busy timeout, gone
T = TypeVar("T")


class Recording:
    def __init__(self, path: Path, retry_s: float = RETRY_S):
        self.path = path
        self.retry_s = retry_s
        self.tell: Callable[[str, bool], None] = lambda message, resumed: None  # set by the server
        self.problem: str | None = None  # why nothing is recorded now (None: recording)
        self._rewards = R.RewardConfig()
        self._ledger: Ledger | None = None
        self._next_try = 0.0
        self._lock = threading.Lock()
        self._available()

    @property
    def rewards(self) -> R.RewardConfig:
        return self._rewards

    @rewards.setter
    def rewards(self, config: R.RewardConfig) -> None:
        self._rewards = config
        if self._ledger is not None:
            self._ledger.rewards = config

    def write(self, action: Callable[[Ledger], T], default: T) -> T:
        """`action(ledger)`, or `default` while the ledger cannot be used. A write that goes
        through after a failure means recording has resumed."""
        return self._use(action, default, resumes=True)

    def read(self, action: Callable[[Ledger], T], default: T) -> T:
        """The same for a read (a full disk still reads: that says nothing of writing)."""
        return self._use(action, default, resumes=False)

    def close(self) -> None:
        if self._ledger is not None:
            self._ledger.close()

    # -- state ------------------------------------------------------------------------------
    def _use(self, action: Callable[[Ledger], T], default: T, resumes: bool) -> T:
        ledger = self._available()
        if ledger is None:
            return default
        try:
            result = action(ledger)
        except FAILURES as e:
            self._failed(e)
            return default
        if resumes:
            self._resumed()
        return result

    def _available(self) -> Ledger | None:
        if self.problem is not None and time.monotonic() < self._next_try:
            return None
        if self._ledger is None:
            with self._lock:
                if self._ledger is None:
                    try:
                        self._ledger = Ledger(self.path, self._rewards)
                    except FAILURES as e:
                        self._failed(e)
                        return None
        return self._ledger

    def _failed(self, e: BaseException) -> None:
        self._next_try = time.monotonic() + self.retry_s
        why = " ".join(str(e).split()) or type(e).__name__
        if why == self.problem:
            return
        first = self.problem is None
        self.problem = why
        log.warning("cannot record to %s (%s): completions go on unrecorded", self.path, why)
        if first:
            self.tell(self.notice() or "", False)

    def notice(self) -> str | None:
        """What the user is told while nothing is recorded (None: recording)."""
        if self.problem is None:
            return None
        return (
            f"rltab: cannot record to {self.path} ({self.problem}). Completions go on, unrecorded; "
            "recording resumes by itself once the ledger can be written."
        )

    def _resumed(self) -> None:
        if self.problem is not None:
            self.problem = None
            log.warning("recording to %s again", self.path)
            self.tell(f"rltab: recording to {self.path} again.", True)
