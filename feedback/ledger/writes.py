"""What the ledger is told: suggestions as served, their outcomes, retention checks and
demonstrations, updater cycles, characters written; and forgetting (rows deleted, then VACUUM)."""

from __future__ import annotations

import json
import time
from typing import Any

from .. import rewards as R
from .connection import Connection
from .records import OUTCOMES, SuggestionRecord


class Writes(Connection):
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
            "tokenizer": s.tokenizer,
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

    def mark_trained(self, suggestion_ids: list[str], version: str) -> None:
        with self._tx() as db:
            for i in range(0, len(suggestion_ids), 500):
                chunk = suggestion_ids[i : i + 500]
                db.execute(
                    f"update suggestion set trained_in = ? where id in ({','.join('?' * len(chunk))})",
                    [version, *chunk],
                )
        self._tally = None  # counted again on next use

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
