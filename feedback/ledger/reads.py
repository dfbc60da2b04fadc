"""What the ledger answers: one suggestion, events, what is learnable, the status counts, the
stats and timeline per version, updater cycles, the rows an export writes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .connection import Connection
from .records import (
    CycleRow,
    EventRow,
    LastCycle,
    LearnableRow,
    SuggestionRow,
    cycle_row,
    event_row,
    last_cycle_row,
    learnable_row,
    suggestion_row,
)
from .tally import Tally


class Reads(Connection):
    def suggestion(self, suggestion_id: str) -> SuggestionRow | None:
        with self._lock:
            return self._row(suggestion_id)

    def events(self, suggestion_id: str | None = None) -> list[EventRow]:
        with self._lock:
            if suggestion_id is None:
                return [event_row(r) for r in self.db["event"].rows_where(order_by="id")]
            return [
                event_row(r) for r in self.db["event"].rows_where("suggestion_id = ?", [suggestion_id], order_by="id")
            ]

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
        return [learnable_row(r) for r in rows[::-1]]

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

    def cycles(self, repo: str | None = None) -> list[CycleRow]:
        """Updater cycles, oldest first (of one repository, or all); `report` decoded."""
        where, args = self._of_repo("update_cycle", repo)
        with self._lock:
            return [cycle_row(row) for row in self.db["update_cycle"].rows_where(where, args, order_by="id")]

    def last_cycle(self) -> LastCycle | None:
        """The newest updater cycle (its report left out: the status line reads this often)."""
        with self._lock:
            rows = list(
                self.db.query(
                    "select id, time, repo, parent, version, reason from update_cycle order by id desc limit 1"
                )
            )
        return last_cycle_row(rows[0]) if rows else None

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

    def recorded_for_learning(self, repo: str | None = None) -> list[SuggestionRow]:
        """Settled rows recorded while learning was on (what `export-ledger` writes), oldest first."""
        where = "prompt_ids is not null and outcome is not null"
        args: list[Any] = []
        if repo is not None:
            mine, args = self._repo_where(repo)
            where = f"{where} and ({mine})"
        return self.rows(where, args)

    def rows(self, where: str = "1", args: Iterable = ()) -> list[SuggestionRow]:
        with self._lock:
            return [suggestion_row(r) for r in self.db["suggestion"].rows_where(where, list(args), order_by="time")]
