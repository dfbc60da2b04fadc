"""The ledger's file: opened private, migrated, one connection shared by the server's threads
behind a lock; every write one transaction (WAL), so an acknowledged event is on disk even if the
process is killed right after. Also how a repository's rows are selected, however its path was
spelled."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from filelock import FileLock
from sqlite_utils import Database

from .. import rewards as R
from ..migrations import migrations
from .records import SuggestionRow, suggestion_row
from .tally import Tally

OPEN_TIMEOUT_S = 60.0  # how long a process waits for another one's migrations


def _resolved(path: str) -> str:
    return str(Path(path).expanduser().resolve())


def _create_private(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)


class Connection:
    def __init__(self, path: str | Path, reward_config: R.RewardConfig = R.RewardConfig()):
        self.path = Path(path)
        if self.path.is_dir():
            raise IsADirectoryError(21, "is a directory, not a ledger", str(self.path))
        self.rewards = reward_config
        self._lock = threading.RLock()
        self._tally: Tally | None = None  # running status counts (status()), loaded on first use
        # Two processes opening a new home at once (two editor windows) would race on the WAL
        # switch and the migrations: one file lock makes the second wait, then find them done.
        with FileLock(str(self.path) + ".lock", timeout=OPEN_TIMEOUT_S, mode=0o600):
            _create_private(self.path)
            conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=10.0, isolation_level=None)
            try:
                conn.execute("PRAGMA busy_timeout=10000")
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("PRAGMA foreign_keys=ON")
                conn.execute("PRAGMA secure_delete=ON")  # deleted text is overwritten, not left in free pages
                self.db = Database(conn)
                migrations.apply(self.db)
            except BaseException:
                conn.close()
                raise

    def close(self) -> None:
        with self._lock:
            self.db.conn.close()

    def _tx(self):
        """A write transaction (BEGIN IMMEDIATE: other processes wait on busy_timeout)."""
        ledger = self

        class _Tx:
            def __enter__(self):
                ledger._lock.acquire()
                try:
                    ledger.db.conn.execute("BEGIN IMMEDIATE")
                except BaseException:
                    ledger._lock.release()
                    raise
                return ledger.db

            def __exit__(self, exc_type, exc, tb):
                conn = ledger.db.conn
                try:
                    conn.execute("ROLLBACK" if exc_type else "COMMIT")
                except sqlite3.Error:
                    # A COMMIT that failed (a full disk) leaves the transaction open: close it, or
                    # every later BEGIN fails, even after space comes back.
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    if not exc_type:
                        raise
                finally:
                    ledger._lock.release()
                return False

        return _Tx()

    def _row(self, suggestion_id: str) -> SuggestionRow | None:
        rows = list(self.db["suggestion"].rows_where("id = ?", [suggestion_id]))
        return suggestion_row(rows[0]) if rows else None

    def get_state(self, key: str, default: Any = None) -> Any:
        with self._lock:
            rows = list(self.db["state"].rows_where("key = ?", [key]))
        return json.loads(rows[0]["value"]) if rows else default

    def set_state(self, key: str, value: Any) -> None:
        with self._tx() as db:
            db["state"].upsert({"key": key, "value": json.dumps(value)}, pk="key")

    def _repo_where(self, repo: str) -> tuple[str, list]:
        """SQL selecting one repository's rows, however its path was spelled, and files under it."""
        repos = self.repos_at(repo)
        root = _resolved(repo)
        where = (f"repo in ({','.join('?' * len(repos))}) or " if repos else "") + "file like ? escape '\\'"
        return where, [*repos, root.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "/%"]

    def repos_at(self, path: str) -> list[str]:
        """The repository values recorded for `path`, however it was spelled (a symlink, `..`)."""
        return self._repos_in("suggestion", path)

    def _of_repo(self, table: str, repo: str | None) -> tuple[str, list[str]]:
        """SQL selecting `table`'s rows of `repo` (however its path was spelled), or all for None."""
        if repo is None:
            return "1", []
        repos = self._repos_in(table, repo)
        return f"repo in ({','.join('?' * len(repos))})", repos

    def _repos_in(self, table: str, path: str) -> list[str]:
        want = _resolved(path)
        with self._lock:
            recorded = [r[0] for r in self.db.execute(f"select distinct repo from {table} where repo is not null")]
        return [r for r in recorded if r == want or _resolved(r) == want]

    def _truncate_wal(self, timeout_s: float = 30.0) -> None:
        """Checkpoint every WAL frame into the database and truncate the WAL to zero bytes; a
        reader in another process can hold it back, so retry until it lets go."""
        deadline = time.monotonic() + timeout_s
        while True:
            busy, _, _ = self.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if not busy:
                return
            if time.monotonic() > deadline:
                raise sqlite3.OperationalError("another process keeps the ledger's WAL open; try again")
            time.sleep(0.05)
