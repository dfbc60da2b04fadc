"""The local SQLite ledger: suggestions, what became of them, and their rewards (architecture.md §5).

One connection shared by the server's threads behind a lock; every write is one transaction, so
an acknowledged event is on disk (WAL) even if the process is killed right after.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict, cast

from filelock import FileLock
from sqlite_utils import Database

from . import rewards as R
from .migrations import migrations

OUTCOMES = (R.ACCEPTED, R.PARTIAL, R.REJECTED)


@dataclass
class SuggestionRecord:
    """A suggestion as served. Token ids and text are kept only when learning is on."""

    model_version: str
    kind: str
    completion_chars: int
    latency_ms: float
    confidence: float = 0.0
    repo: str = ""
    file: str = ""
    language: str = ""
    prompt_ids: list[int] | None = None
    completion_ids: list[int] | None = None
    logprobs: list[float] | None = None
    prefix_text: str | None = None
    suffix_text: str | None = None
    completion_text: str | None = None
    prompt_tokens: int | None = None
    prefill_tokens: int | None = None
    healed: int = 0
    syntax_error: bool = False  # dropped by compiler feedback: never shown, an automatic reward
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    time: float = field(default_factory=time.time)


def _resolved(path: str) -> str:
    return str(Path(path).expanduser().resolve())


def _create_private(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)


OPEN_TIMEOUT_S = 60.0  # how long a process waits for another one's migrations


class SuggestionRow(TypedDict):
    """A row of the `suggestion` table (feedback/migrations.py), as reads return it. JSON columns
    (token ids, log-probs) are text; learning-only columns are None while learning is off."""

    id: str
    time: float
    model_version: str
    repo: str | None
    file: str | None
    language: str | None
    kind: str
    completion_chars: int
    latency_ms: float
    confidence: float | None
    prompt_ids: str | None
    completion_ids: str | None
    logprobs: str | None
    prefix_text: str | None
    suffix_text: str | None
    completion_text: str | None
    outcome: str | None
    accepted_chars: int | None
    retention: float | None
    reward: float | None
    demonstration: str | None
    outcome_source: str | None
    prompt_tokens: int | None
    prefill_tokens: int | None
    trained_in: str | None
    healed: int | None


class LearnableRow(SuggestionRow):
    seq: int  # the row's insertion order (rowid)


class Ledger:
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

    # -- writes ----------------------------------------------------------------------------
    def record_suggestion(self, s: SuggestionRecord) -> str:
        row: dict[str, Any] = {
            "id": s.id,
            "time": s.time,
            "model_version": s.model_version,
            "repo": s.repo,
            "file": s.file,
            "language": s.language,
            "kind": s.kind,
            "completion_chars": s.completion_chars,
            "latency_ms": round(s.latency_ms, 3),
            "confidence": s.confidence,
            "prompt_ids": json.dumps(s.prompt_ids) if s.prompt_ids is not None else None,
            "completion_ids": json.dumps(s.completion_ids) if s.completion_ids is not None else None,
            "logprobs": json.dumps([round(x, 5) for x in s.logprobs]) if s.logprobs is not None else None,
            "prefix_text": s.prefix_text,
            "suffix_text": s.suffix_text,
            "completion_text": s.completion_text,
            "prompt_tokens": s.prompt_tokens,
            "prefill_tokens": s.prefill_tokens,
            "healed": s.healed,
        }
        settled = R.INVALID if s.syntax_error else R.SILENT if s.completion_chars == 0 else None
        row["outcome"] = settled
        row["reward"] = R.reward(settled, cfg=self.rewards) if settled else None
        with self._tx() as db:
            db["suggestion"].insert(row)
            if self._tally is not None:
                self._tally.recorded(s.model_version, settled, s.prompt_ids is not None)
        return s.id

    def record_outcome(
        self, suggestion_id: str, kind: str, accepted_chars: int = 0, source: str = "inferred", now: float | None = None
    ) -> bool:
        """Settle a suggestion as accepted / partial / rejected. An explicit outcome (a client
        command) overrides an earlier one, except that a rejection never undoes text that was
        accepted; an inferred outcome (from didChange) never overrides anything."""
        if kind not in OUTCOMES:
            raise ValueError(f"unknown outcome {kind!r}")
        now = time.time() if now is None else now
        with self._tx() as db:
            row = self._row(suggestion_id)
            if row is None or row["outcome"] in (R.SILENT, R.INVALID):  # never shown: nothing to settle
                return False
            settled = row["outcome"] is not None
            undoes_accept = kind == R.REJECTED and row["outcome"] in (R.ACCEPTED, R.PARTIAL)
            if settled and (source != "explicit" or undoes_accept):
                # Already settled; keep the event for the record only.
                db["event"].insert(
                    {
                        "suggestion_id": suggestion_id,
                        "kind": kind,
                        "accepted_chars": accepted_chars,
                        "time": now,
                        "source": source,
                    }
                )
                return True
            n = row["completion_chars"] or 0
            chars = n if kind == R.ACCEPTED else (min(accepted_chars, n) if kind == R.PARTIAL else 0)
            db["event"].insert(
                {"suggestion_id": suggestion_id, "kind": kind, "accepted_chars": chars, "time": now, "source": source}
            )
            db["suggestion"].update(
                suggestion_id,
                {
                    "outcome": kind,
                    "outcome_source": source,
                    "accepted_chars": chars,
                    "reward": R.reward(kind, chars, n, row["retention"], self.rewards),
                },
            )
            if self._tally is not None:
                self._tally.settled(row, kind)
        return True

    def record_retention(
        self, suggestion_id: str, retention: float, text: str | None = None, now: float | None = None
    ) -> bool:
        """A retention check of accepted text; `text` (what stands there now) only while learning."""
        now = time.time() if now is None else now
        with self._tx() as db:
            row = self._row(suggestion_id)
            if row is None or row["outcome"] not in (R.ACCEPTED, R.PARTIAL):
                return False
            db["event"].insert(
                {
                    "suggestion_id": suggestion_id,
                    "kind": "retention",
                    "retention": retention,
                    "time": now,
                    "text": text,
                    "source": "inferred",
                }
            )
            changes: dict[str, Any] = {
                "retention": retention,
                "reward": R.reward(
                    row["outcome"], row["accepted_chars"] or 0, row["completion_chars"] or 0, retention, self.rewards
                ),
            }
            if text is not None and retention < 1.0 and row["demonstration"] is None:
                changes["demonstration"] = text  # the edited text, unless the place's own demonstration came first
            db["suggestion"].update(suggestion_id, changes)
        return True

    def record_demonstration(self, suggestion_id: str, text: str, now: float | None = None) -> bool:
        """What the user wrote at a suggestion's place, whatever became of it (only while learning)."""
        now = time.time() if now is None else now
        with self._tx() as db:
            if self._row(suggestion_id) is None:
                return False
            db["event"].insert(
                {
                    "suggestion_id": suggestion_id,
                    "kind": "demonstration",
                    "time": now,
                    "text": text,
                    "source": "inferred",
                }
            )
            db["suggestion"].update(suggestion_id, {"demonstration": text})
        return True

    def record_cycle(
        self,
        repo: str | None,
        parent: str,
        version: str | None,
        reason: str,
        events: int,
        seconds: float,
        report: dict,
        now: float | None = None,
    ) -> None:
        """One updater cycle: `version` published from `parent`, or refused (None) for `reason`."""
        with self._tx() as db:
            db["update_cycle"].insert(
                {
                    "time": now or time.time(),
                    "repo": repo,
                    "parent": parent,
                    "version": version,
                    "reason": reason,
                    "events": events,
                    "seconds": seconds,
                    "report": json.dumps(report, default=str),
                }
            )

    def cycles(self, repo: str | None = None) -> list[dict]:
        """Updater cycles, oldest first (of one repository, or all); `report` decoded."""
        where, args = self._of_repo("update_cycle", repo)
        with self._lock:
            rows = [dict(row) for row in self.db["update_cycle"].rows_where(where, args, order_by="id")]
        for row in rows:
            row["report"] = json.loads(row["report"] or "{}")
        return rows

    def last_cycle(self) -> dict | None:
        """The newest updater cycle (its report left out: the status line reads this often)."""
        with self._lock:
            rows = list(
                self.db.query(
                    "select id, time, repo, parent, version, reason from update_cycle order by id desc limit 1"
                )
            )
        return rows[0] if rows else None

    def add_typing(self, counts: dict[tuple[str, str], int], now: float | None = None) -> None:
        """Characters written since the last call, per (model version, repository), into this hour."""
        hour = int((now or time.time()) // 3600)
        with self._tx() as db:
            for (version, repo), chars in counts.items():
                db.execute(
                    "insert into typing (hour, model_version, repo, chars) values (?, ?, ?, ?) "
                    "on conflict (hour, model_version, repo) do update set chars = chars + excluded.chars",
                    [hour, version, repo, chars],
                )

    def timeline(self, repo: str | None = None) -> list[dict]:
        """Per hour and model version: suggestions shown, taken (accepted or partly), silent,
        characters accepted and characters written: what the stats plot draws over time."""
        mine, args = ("1", []) if repo is None else self._repo_where(repo)
        typed_where, typed_args = self._of_repo("typing", repo)
        with self._lock:
            rows = [
                dict(r)
                for r in self.db.query(
                    f"""select cast(time / 3600 as integer) as hour, model_version,
                        sum(outcome is null or outcome not in ('silent', 'invalid')) as shown,
                        sum(outcome in ('accepted', 'partial')) as taken, sum(outcome = 'silent') as silent,
                        coalesce(sum(accepted_chars), 0) as chars_accepted
                    from suggestion where ({mine}) group by hour, model_version order by hour""",
                    args,
                )
            ]
            typed = {
                (h, v): n
                for h, v, n in self.db.execute(
                    f"select hour, model_version, sum(chars) from typing where {typed_where} "
                    "group by hour, model_version",
                    typed_args,
                )
            }
        for r in rows:
            r["chars_typed"] = typed.pop((r["hour"], r["model_version"]), 0)
        rows += [
            {"hour": h, "model_version": v, "shown": 0, "taken": 0, "silent": 0, "chars_accepted": 0, "chars_typed": n}
            for (h, v), n in typed.items()
        ]
        return sorted(rows, key=lambda r: r["hour"])

    def version_starts(self, repo: str | None = None) -> list[tuple[float, str]]:
        """(time, version) of each version's first suggestion: where the stats plot marks a change."""
        mine, args = ("1", []) if repo is None else self._repo_where(repo)
        with self._lock:
            rows = self.db.execute(
                f"select min(time) as t, model_version from suggestion where ({mine}) group by model_version order by t",
                args,
            ).fetchall()
        return [(t, v) for t, v in rows]

    def set_state(self, key: str, value: Any) -> None:
        with self._tx() as db:
            db["state"].upsert({"key": key, "value": json.dumps(value)}, pk="key")

    # -- reads -----------------------------------------------------------------------------
    def _row(self, suggestion_id: str) -> SuggestionRow | None:
        rows = list(self.db["suggestion"].rows_where("id = ?", [suggestion_id]))
        return cast(SuggestionRow, rows[0]) if rows else None

    def suggestion(self, suggestion_id: str) -> SuggestionRow | None:
        with self._lock:
            return self._row(suggestion_id)

    def get_state(self, key: str, default: Any = None) -> Any:
        with self._lock:
            rows = list(self.db["state"].rows_where("key = ?", [key]))
        return json.loads(rows[0]["value"]) if rows else default

    def events(self, suggestion_id: str | None = None) -> list[dict]:
        with self._lock:
            if suggestion_id is None:
                return list(self.db["event"].rows_where(order_by="id"))
            return list(self.db["event"].rows_where("suggestion_id = ?", [suggestion_id], order_by="id"))

    LEARNABLE = "prompt_ids is not null and outcome is not null and trained_in is null"

    def pending_events(self) -> int:
        """Settled suggestions recorded for learning that no published version has used yet."""
        with self._lock:
            return self.db.execute(f"select count(*) from suggestion where {self.LEARNABLE}").fetchone()[0]

    def pending_by_repo(self) -> dict[str | None, int]:
        """Learnable suggestions not yet used, per repository (each learns its own chain)."""
        with self._lock:
            return dict(self.db.execute(f"select repo, count(*) from suggestion where {self.LEARNABLE} group by repo"))

    def learnable(
        self, limit: int, repo: str | None = None, complete_before: float | None = None
    ) -> list[LearnableRow]:
        """The most recent `limit` learnable suggestions (of `repo`, else of any), oldest first.
        With `complete_before`, a row without its demonstration yet waits until it was recorded
        before that time: what the user writes at its place may still come."""
        args: list[Any]
        where, args = (self.LEARNABLE, []) if repo is None else (f"{self.LEARNABLE} and repo = ?", [repo])
        if complete_before is not None:
            where, args = f"{where} and (demonstration is not null or time < ?)", [*args, complete_before]
        with self._lock:
            rows = list(
                self.db.query(
                    f"select rowid as seq, * from suggestion where {where} order by rowid desc limit ?", [*args, limit]
                )
            )
        return cast(list[LearnableRow], rows[::-1])

    def mark_trained(self, suggestion_ids: list[str], version: str) -> None:
        with self._tx() as db:
            for i in range(0, len(suggestion_ids), 500):
                chunk = suggestion_ids[i : i + 500]
                db.execute(
                    f"update suggestion set trained_in = ? where id in ({','.join('?' * len(chunk))})",
                    [version, *chunk],
                )
        self._tally = None  # counted again on next use

    def status_counts(self, version: str | None) -> tuple[float, int]:
        """(accept rate of `version`, pending events), kept as running counts: the ledger is
        scanned once, then every write of this process updates them (`recount` after another
        process's writes, e.g. when the updater has published)."""
        with self._lock:
            if self._tally is None:  # the one scan: the same figures as `stats` and `pending_events`
                rows = self.stats()
                self._tally = Tally(
                    shown={r["model_version"]: r["shown"] for r in rows},
                    taken={r["model_version"]: (r["accepted"] or 0) + (r["partial"] or 0) for r in rows},
                    pending=self.pending_events(),
                )
            t = self._tally
            shown = t.shown.get(version or "", 0)
            return (round(t.taken.get(version or "", 0) / shown, 4) if shown else 0.0), t.pending

    def recount(self) -> None:
        with self._lock:
            self._tally = None

    def stats(self, repo: str | None = None) -> list[dict]:
        """Per model version (of one repository's rows, or all): shown, accepted, partial, rejected,
        accept rate, chars accepted. accept_rate = (accepted + partial) / shown; silent answers and
        suggestions dropped for breaking the syntax (`invalid`) are not shown."""
        mine, args = ("1", []) if repo is None else (self._repo_where(repo))
        sql = f"""
            select model_version, count(*) as shown,
                   sum(outcome = 'accepted') as accepted, sum(outcome = 'partial') as partial,
                   sum(outcome = 'rejected') as rejected, coalesce(sum(accepted_chars), 0) as chars_accepted,
                   min(time) as first_time
            from suggestion where (outcome is null or outcome not in ('silent', 'invalid')) and ({mine})
            group by model_version order by first_time"""
        with self._lock:
            rows = [dict(r) for r in self.db.query(sql, args)]
            unshown = self.db.execute(
                "select model_version, outcome, count(*) from suggestion "
                f"where outcome in ('silent', 'invalid') and ({mine}) "
                "group by model_version, outcome",
                args,
            ).fetchall()
        typed = {v: n for v, n in self._typed_per_version(repo)}
        hidden: dict[str, dict] = {}
        for version, outcome, n in unshown:
            hidden.setdefault(version, {"silent": 0, "invalid": 0})[outcome] = n
        for r in rows:
            r["accept_rate"] = (
                round(((r["accepted"] or 0) + (r["partial"] or 0)) / r["shown"], 4) if r["shown"] else 0.0
            )
            r.update(hidden.pop(r["model_version"], {"silent": 0, "invalid": 0}))
            r.pop("first_time")
        rows += [
            {
                "model_version": v,
                "shown": 0,
                "accepted": 0,
                "partial": 0,
                "rejected": 0,
                "chars_accepted": 0,
                "accept_rate": 0.0,
                **n,
            }
            for v, n in hidden.items()
        ]
        for r in rows:  # of every 100 characters written while it served, how many it wrote
            r["chars_typed"] = typed.get(r["model_version"], 0)
            r["chars_saved_per_100"] = (
                round(100 * r["chars_accepted"] / r["chars_typed"], 2) if r["chars_typed"] else None
            )
        return rows

    def _typed_per_version(self, repo: str | None) -> list[tuple[str, int]]:
        where, args = self._of_repo("typing", repo)
        with self._lock:
            return list(
                self.db.execute(
                    f"select model_version, sum(chars) from typing where {where} group by model_version", args
                )
            )

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {t: self.db[t].count for t in ("suggestion", "event")}

    # -- forgetting ------------------------------------------------------------------------
    def forget(self, repo: str | None = None) -> tuple[int, set[str]]:
        """Delete everything (repo None) or one repository's rows, then VACUUM and truncate the
        WAL, so that no deleted text survives in `ledger.db` or `ledger.db-wal`. Returns the rows
        deleted and the model versions that had learned from them."""
        with self._tx() as db:
            where, args = ("1", []) if repo is None else self._repo_where(repo)
            ids_sql = f"select id from suggestion where {where}"
            trained = {
                r[0]
                for r in db.execute(
                    f"select distinct trained_in from suggestion where ({where}) and trained_in is not null", args
                )
            }
            n_events = db.execute(f"delete from event where suggestion_id in ({ids_sql})", args).rowcount
            n_sugg = db.execute(f"delete from suggestion where id in ({ids_sql})", args).rowcount
            for table in ("update_cycle", "typing"):  # counts only, but of the forgotten repository
                of_repo, repos = self._of_repo(table, repo)
                db.execute(f"delete from {table} where {of_repo}", repos)
        with self._lock:
            self.db.conn.execute("VACUUM")
            self._truncate_wal()
        return n_events + n_sugg, trained

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

    def recorded_for_learning(self, repo: str | None = None) -> list[dict]:
        """Settled rows recorded while learning was on (what `export-ledger` writes), oldest first."""
        where = "prompt_ids is not null and outcome is not null"
        args: list[Any] = []
        if repo is not None:
            mine, args = self._repo_where(repo)
            where = f"{where} and ({mine})"
        return self.rows(where, args)

    def rows(self, where: str = "1", args: Iterable = ()) -> list[dict]:
        with self._lock:
            return list(self.db["suggestion"].rows_where(where, list(args), order_by="time"))


@dataclass
class Tally:
    """Per model version, suggestions shown and taken (accepted or partly); learnable rows pending."""

    shown: dict[str, int]
    taken: dict[str, int]
    pending: int

    def recorded(self, version: str, outcome: str | None, learnable: bool) -> None:
        """A new suggestion: shown (outcome None), or settled at once (silent, invalid)."""
        if outcome is None:
            self.shown[version] = self.shown.get(version, 0) + 1
        elif learnable:
            self.pending += 1

    def settled(self, row: SuggestionRow, kind: str) -> None:
        """`row` (as it was) now has outcome `kind`."""
        was, version = row["outcome"], row["model_version"]
        taken = (kind in (R.ACCEPTED, R.PARTIAL)) - (was in (R.ACCEPTED, R.PARTIAL))
        self.taken[version] = self.taken.get(version, 0) + taken
        if was is None and row["prompt_ids"] is not None and row["trained_in"] is None:
            self.pending += 1
