"""One updater per home: the lock file every `rltab train` takes before anything heavy loads.

Light on purpose (no torch): the server asks whether an updater runs before it starts one, and
`rltab train` takes the lock before it imports torch, so a burst of "train now" costs one
process, not one ~250 MB process each (four in a burst once ran at once: 918 MB).
"""

from __future__ import annotations

from pathlib import Path

from filelock import FileLock, Timeout

from rltab.policy.model.home import make_private

LOCK_FILE = "updater.lock"


class AlreadyRunning(Exception):
    pass


def lock(home: Path) -> FileLock:
    """The home's updater lock (one updater per home, on any OS), held until `.release()`."""
    home.mkdir(parents=True, exist_ok=True)
    make_private(home)
    held = FileLock(home / LOCK_FILE)
    try:
        held.acquire(timeout=0)
    except Timeout:
        raise AlreadyRunning(f"another updater holds {home / LOCK_FILE}") from None
    return held


def running(home: Path) -> bool:
    """Whether some process holds the home's updater lock now."""
    if not (home / LOCK_FILE).exists():
        return False
    probe = FileLock(home / LOCK_FILE)
    try:
        probe.acquire(timeout=0)
    except Timeout:
        return True
    probe.release()
    return False
