"""The updater process, seen from the server: started when learning is on, stopped when it is
off or the server exits. The server never imports torch; it only starts `rltab train`."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

from rltab.policy.learning import lock as updater_lock
from rltab.policy.model.formats import REQUEST_FILE
from rltab.policy.runtime import hugepages

log = logging.getLogger(__name__)


class UpdaterProcess:
    def __init__(self, home: Path, every_events: int = 64, every_minutes: float = 30.0):
        self.home = home
        self.every_events = every_events
        self.every_minutes = every_minutes
        self.proc: subprocess.Popen | None = None  # the watching updater (learning on)
        self.once: subprocess.Popen | None = None  # the last one-off cycle ("train now")

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _spawn(self, *args: str) -> subprocess.Popen:
        self.home.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "rltab.server.cli", "train", "--home", str(self.home), *args]
        with open(self.home / "updater.log", "ab") as logf:  # the child keeps its own copy
            # Training goes without the server's huge pages (torch is slower on them: hugepages.without).
            return subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, close_fds=True, env=hugepages.without()
            )

    def ensure(self, enabled: bool) -> None:
        """Match the process to the learning setting (every_events <= 0: someone else, e.g. the
        replay benchmark, runs the updater)."""
        if self.every_events <= 0:
            return
        if enabled and not self.running:
            self.proc = self._spawn(
                "--every-events",
                str(self.every_events),
                "--every-minutes",
                str(self.every_minutes),
                "--parent-pid",
                str(os.getpid()),
            )
            log.info("updater started (pid %d)", self.proc.pid)
        elif not enabled and self.running:
            self.stop()

    def train_now(self, learning: bool) -> dict:
        """rltab.train: ask the watching updater for a cycle, or run one cycle on its own; never
        a second updater, and none while learning is off (nothing is recorded to train on)."""
        if not learning:
            return {"started": False, "how": "learning is off: nothing is recorded to train on"}
        if self.running:
            (self.home / REQUEST_FILE).touch()
            return {"started": True, "how": "the running updater"}
        if (self.once is not None and self.once.poll() is None) or updater_lock.running(self.home):
            return {"started": False, "how": "an update cycle is running already"}
        self.once = self._spawn("--once")
        return {"started": True, "how": "a one-off updater"}

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
