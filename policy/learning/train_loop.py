"""`rltab train`: run update cycles in this (separate, low-priority) process.

`--once` runs one cycle now. `--watch` (what `rltab serve` starts when learning is on) runs a
cycle whenever N new learnable events have arrived or T minutes have passed with some pending,
and exits when the server that started it is gone. One updater per home: a lock file.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from pathlib import Path

from filelock import FileLock

from rltab.feedback.ledger import LearnableRow, Ledger
from rltab.policy.model.formats import REQUEST_FILE
from rltab.policy.runtime.progress import PhaseBars

from .distributed import from_env, leave
from .lock import AlreadyRunning, lock
from .updater import UpdaterConfig, train_cycle


def be_background() -> None:
    """Lower priority and one thread, so serving keeps a core."""
    import torch

    with contextlib.suppress(OSError):
        os.nice(10)
    torch.set_num_threads(1)


def pending(home: Path) -> int:

    ledger = Ledger(home / "ledger.db")
    try:
        return ledger.pending_events()
    finally:
        ledger.close()


def run(
    home: Path,
    once: bool,
    every_events: int = 64,
    every_minutes: float = 30.0,
    parent_pid: int | None = None,
    cfg: UpdaterConfig | None = None,
    poll_s: float = 5.0,
    held: FileLock | None = None,
) -> int:
    """`held`: the home's updater lock, when the caller took it already (the CLI does, before
    torch loads)."""
    cfg = cfg or UpdaterConfig()
    if held is None:
        try:
            held = lock(home)
        except AlreadyRunning as e:
            print(f"rltab train: {e}", file=sys.stderr)
            return 0 if not once else 3
    be_background()
    try:
        if once:
            bars = PhaseBars("rltab train")  # on a terminal; a pipe or log file gets plain lines
            try:
                result = train_cycle(home, cfg, log=lambda m: bars.write(f"rltab train: {m}"), progress=bars)
            finally:
                bars.close()
            print(json.dumps(result.to_json()), flush=True)
            return 0
        last = time.monotonic()
        request = home / REQUEST_FILE
        while parent_pid is None or _alive(parent_pid):
            n = pending(home)
            asked = request.exists()
            due = n >= every_events or (n >= cfg.min_events and time.monotonic() - last >= every_minutes * 60)
            if asked:
                request.unlink(missing_ok=True)
                due = n > 0
            if due:
                try:
                    result = train_cycle(home, cfg, log=_log)
                    _log(json.dumps(result.to_json()))
                except Exception as e:  # one bad cycle must not end learning, nor touch serving
                    _log(f"update cycle failed: {type(e).__name__}: {e}")
                last = time.monotonic()
            for _ in range(int(poll_s * 10)):  # wake early when asked
                if request.exists():
                    break
                time.sleep(0.1)
        return 0
    finally:
        held.release()


def run_exports(home: Path, rows: list[LearnableRow], cfg: UpdaterConfig | None = None, repo: str | None = None) -> int:
    """`rltab train --events FILE...`: one cycle on exported events (`rltab export-ledger`, read
    back by feedback.export.learnable_rows), in this process or, under torchrun / accelerate
    launch, in each of its processes (distributed.py); rank 0 takes the home's lock, guards,
    publishes and prints the result."""

    world = from_env()
    held = None
    try:
        if world.leader:
            try:
                held = lock(home)
            except AlreadyRunning as e:
                print(f"rltab train: {e}", file=sys.stderr)
                return 3
        for i, r in enumerate(rows):  # one order over several exports
            r["seq"] = i
        log = _log if world.leader else (lambda m: None)
        log(f"{len(rows)} exported events; {world.size} process(es), steps on {world.device}")
        result = train_cycle(home, cfg or UpdaterConfig(), log=log, repo=repo, rows=rows, world=world)
        if world.leader:
            print(json.dumps(result.to_json()), flush=True)
        return 0
    finally:
        if held is not None:
            held.release()
        leave(world)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return os.getppid() == pid
    except OSError:
        return False


def _log(msg: str) -> None:
    print(f"rltab train: {msg}", file=sys.stderr, flush=True)
