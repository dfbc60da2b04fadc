import json
import os
import sqlite3
import stat
import subprocess
import sys

import pytest

from rltab.feedback import rewards as R
from rltab.feedback.ledger import Ledger, SuggestionRecord
from rltab.feedback.migrations import migrations


def rec(**kw):
    return SuggestionRecord(**{"model_version": "v1", "kind": "line", "completion_chars": 10, "latency_ms": 3.0, **kw})


def test_blank_database_migrates_wal_0600(tmp_path):
    db = tmp_path / "ledger.db"
    Ledger(db).close()
    assert stat.S_IMODE(os.stat(db).st_mode) == 0o600
    conn = sqlite3.connect(db)
    assert conn.execute("pragma journal_mode").fetchone()[0] == "wal"
    applied = [r[0] for r in conn.execute("select name from _sqlite_migrations order by rowid")]
    assert applied == [m.name for m in migrations._migrations]


def test_upgrading_an_old_schema_keeps_its_rows(tmp_path):
    from sqlite_utils import Database

    path = tmp_path / "ledger.db"
    old = Database(path)
    migrations.apply(old, stop_before="m002_outcome_and_reward")  # a ledger from the first release
    old["suggestion"].insert(
        {
            "id": "old1",
            "time": 1.0,
            "model_version": "starter",
            "kind": "line",
            "completion_chars": 5,
            "latency_ms": 2.0,
        }
    )
    old["event"].insert({"suggestion_id": "old1", "kind": "accepted", "accepted_chars": 5, "time": 2.0})
    old.conn.close()
    ledger = Ledger(path)
    assert ledger.suggestion("old1")["completion_chars"] == 5
    assert [e["kind"] for e in ledger.events("old1")] == ["accepted"]
    assert ledger.record_outcome("old1", "accepted")  # and the new columns work on old rows
    assert ledger.suggestion("old1")["reward"] == R.reward("accepted", 5, 5)
    assert not migrations.pending(ledger.db)


def test_outcome_precedence(tmp_path):
    L = Ledger(tmp_path / "l.db")
    sid = L.record_suggestion(rec())
    assert L.record_outcome(sid, "rejected", source="inferred")
    L.record_outcome(sid, "accepted", source="inferred")  # inferred never overrides
    assert L.suggestion(sid)["outcome"] == "rejected"
    L.record_outcome(sid, "partial", 4, source="explicit")  # the client's word wins
    assert (L.suggestion(sid)["outcome"], L.suggestion(sid)["accepted_chars"]) == ("partial", 4)
    L.record_outcome(sid, "rejected", source="explicit")  # but never undoes accepted text
    assert L.suggestion(sid)["outcome"] == "partial"
    assert not L.record_outcome("nope", "accepted")
    with pytest.raises(ValueError):
        L.record_outcome(sid, "meh")
    silent = L.record_suggestion(rec(completion_chars=0))
    assert L.suggestion(silent)["outcome"] == "silent" and L.suggestion(silent)["reward"] == 0.0
    assert not L.record_outcome(silent, "accepted")


def test_stats_and_pending(tmp_path):
    L = Ledger(tmp_path / "l.db")
    a, b, c = (L.record_suggestion(rec(model_version=v)) for v in ("v1", "v1", "v2"))
    L.record_suggestion(rec(completion_chars=0))
    L.record_outcome(a, "accepted")
    L.record_outcome(b, "partial", 3)
    L.record_outcome(c, "rejected")
    stats = {r["model_version"]: r for r in L.stats()}
    assert stats["v1"]["shown"] == 2 and stats["v1"]["accept_rate"] == 1.0 and stats["v1"]["chars_accepted"] == 13
    assert stats["v1"]["silent"] == 1 and stats["v2"]["rejected"] == 1
    assert L.pending_events() == 0  # nothing was recorded for learning
    d = L.record_suggestion(rec(prompt_ids=[1, 2], completion_ids=[3], logprobs=[-0.1]))
    e = L.record_suggestion(rec(prompt_ids=[1, 2], completion_ids=[4], logprobs=[-0.2]))
    L.record_outcome(d, "accepted")
    assert L.pending_events() == 1 and [r["id"] for r in L.learnable(10)] == [d]
    L.record_outcome(e, "rejected")
    assert [r["id"] for r in L.learnable(10)] == [d, e] and [r["id"] for r in L.learnable(1)] == [e]
    L.mark_trained([d, e], "v0001")
    assert L.pending_events() == 0
    # Characters written while each version served: what "saved per 100 written" divides by.
    L.add_typing({("v1", ""): 40, ("v2", ""): 10}, now=7200.0)
    L.add_typing({("v1", ""): 60}, now=7300.0)
    stats = {r["model_version"]: r for r in L.stats()}
    assert (stats["v1"]["chars_typed"], stats["v1"]["chars_saved_per_100"]) == (100, 23.0)
    assert stats["v2"]["chars_saved_per_100"] == 0.0
    hourly = {(r["hour"], r["model_version"]): r["chars_typed"] for r in L.timeline()}
    assert hourly[(2, "v1")] == 100 and hourly[(2, "v2")] == 10
    assert [v for _, v in L.version_starts()] == ["v1", "v2"]


def test_status_counts_run_alongside_the_ledger(tmp_path):
    """The status line's counts, kept as running counts after one scan, always equal a fresh scan:
    through first outcomes, explicit overrides, silent and invalid answers, and rows used by training."""
    import random

    L = Ledger(tmp_path / "l.db")
    rng = random.Random(0)
    ids = []

    def fresh(version):
        rate = next((r["accept_rate"] for r in L.stats() if r["model_version"] == version), 0.0)
        return rate, L.pending_events()

    L.record_suggestion(rec())
    assert L.status_counts("v1") == fresh("v1")  # loaded once, by a scan...
    for step in range(300):  # ...then kept by every write of this process
        action = rng.random()
        if action < 0.35 or not ids:
            chars = rng.choice([0, 5, 10])
            ids.append(
                L.record_suggestion(
                    rec(
                        model_version=rng.choice(["v1", "v2"]),
                        completion_chars=chars,
                        syntax_error=rng.random() < 0.1,
                        prompt_ids=[1] if rng.random() < 0.7 else None,
                    )
                )
            )
        elif action < 0.95:
            kind = rng.choice(["accepted", "partial", "rejected"])
            L.record_outcome(rng.choice(ids), kind, rng.randrange(6), source=rng.choice(["inferred", "explicit"]))
        else:
            L.mark_trained(rng.sample(ids, min(5, len(ids))), "v0001")
        for v in ("v1", "v2"):
            assert L.status_counts(v) == fresh(v), step


def test_forget_repo_and_all_leave_no_row(tmp_path):
    repo = tmp_path / "proj"
    L = Ledger(tmp_path / "l.db")
    mine = L.record_suggestion(rec(repo=str(repo), file=str(repo / "a.py"), completion_text="secret sauce"))
    other = L.record_suggestion(rec(repo="/elsewhere", file="/elsewhere/b.py"))
    L.record_outcome(mine, "accepted")
    L.record_cycle(str(repo), "starter", None, "guard: held-out loss 3.6 > parent 3.5 + 1%", 64, 9.5, {"passed": False})
    L.record_cycle("/elsewhere", "starter", "v0001", "published", 64, 9.0, {"passed": True})
    assert [c["reason"][:5] for c in L.cycles(str(tmp_path / ".." / tmp_path.name / "proj"))] == ["guard"]
    assert L.last_cycle()["version"] == "v0001"
    L.forget(str(repo))
    assert L.suggestion(mine) is None and L.events(mine) == [] and L.suggestion(other) is not None
    assert [c["repo"] for c in L.cycles()] == ["/elsewhere"]  # the forgotten repository's updates go too
    L.forget()
    assert L.counts() == {"suggestion": 0, "event": 0} and L.cycles() == [] and L.last_cycle() is None
    L.close()
    assert b"secret sauce" not in (tmp_path / "l.db").read_bytes()


def _cli(*args, home):
    return subprocess.run(
        [sys.executable, "-m", "rltab.server.cli", *args, "--home", str(home)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_stats_and_forget_commands(tmp_path):
    home = tmp_path / "home"
    assert _cli("stats", home=home).returncode == 0  # no ledger yet: an empty table
    L = Ledger(home / "ledger.db")
    sid = L.record_suggestion(rec(repo=str(tmp_path / "r"), file=str(tmp_path / "r/x.py")))
    L.record_outcome(sid, "accepted")
    L.close()
    r = _cli("stats", "--json", "--plot", str(tmp_path / "s.png"), home=home)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)[0]["accepted"] == 1
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"
    assert _cli("forget", home=home).returncode == 2  # --repo or --all is required
    r = _cli("forget", "--repo", str(tmp_path / "r"), home=home)
    assert r.returncode == 0 and "deleted 2 rows" in r.stdout
    assert json.loads(_cli("stats", "--json", home=home).stdout) == []


def test_versions_and_rollback_commands(tmp_path):
    home = tmp_path / "home"
    assert "* starter" in _cli("versions", home=home).stdout
    (row,) = json.loads(_cli("versions", "--json", home=home).stdout)
    assert row["version"] == "starter" and row["current"] and row["shown"] == 0 and row["date"] is None
    r = _cli("rollback", home=home)
    assert r.returncode == 2 and "nothing to roll back" in r.stderr
    assert _cli("rollback", "v9", home=home).returncode == 2
    bad = _cli("use", "v9", home=home)
    assert bad.returncode == 2 and "no published version" in bad.stderr and "Traceback" not in bad.stderr
    assert _cli("use", "starter", home=home).stdout.strip() == "current: starter"


def test_stats_on_a_new_home_is_empty_not_an_error(tmp_path):
    home = tmp_path / "new-home"
    r = _cli("stats", "--json", home=home)
    assert r.returncode == 0 and json.loads(r.stdout) == []
    r = _cli("stats", home=home)
    assert r.returncode == 0 and "model version" in r.stdout


def test_learnable_rows_per_repository_and_waiting_for_their_demonstration(tmp_path):
    L = Ledger(tmp_path / "l.db")
    learnable = dict(prompt_ids=[1, 2], completion_ids=[3], logprobs=[-0.1])
    old = L.record_suggestion(rec(repo="/a", time=100.0, **learnable))
    shown = L.record_suggestion(rec(repo="/a", time=200.0, **learnable))
    told = L.record_suggestion(rec(repo="/a", time=200.0, **learnable))
    other = L.record_suggestion(rec(repo="/b", time=100.0, **learnable))
    for sid in (old, shown, told, other):
        L.record_outcome(sid, "rejected")
    L.record_demonstration(told, "x = 1\n")
    assert L.pending_by_repo() == {"/a": 3, "/b": 1}
    assert [r["id"] for r in L.learnable(10, "/a")] == [old, shown, told]
    # At time 150 the demonstration of `shown` may still come; `told` already has its own.
    assert [r["id"] for r in L.learnable(10, "/a", complete_before=150.0)] == [old, told]
    assert [r["id"] for r in L.learnable(10, "/b", complete_before=150.0)] == [other]
    assert {r["model_version"] for r in L.stats("/b")} == {"v1"} and L.stats("/b")[0]["rejected"] == 1


def test_export_ledger_writes_only_learning_rows_and_reads_back_as_the_updater_rows(tmp_path, starter):
    """`rltab export-ledger`: what a team's trainer gets, and that the updater reads it unchanged."""
    from rltab.feedback.export import learnable_rows
    from rltab.policy.learning.config import UpdaterConfig
    from rltab.policy.learning.examples import from_rows, stop_sets_for
    from rltab.policy.learning.synthetic import QUOTE_CONTEXTS, serve_round

    home, repo = tmp_path / "home", tmp_path / "proj"
    serve_round(home, QUOTE_CONTEXTS[:2], lambda t: t.lstrip().startswith("'"), n=2, repo=str(repo))
    L = Ledger(home / "ledger.db")
    kept_out = L.record_suggestion(rec(repo=str(repo), file=str(repo / "pkg" / "a.py")))  # learning was off
    L.record_outcome(kept_out, "accepted")
    L.record_suggestion(rec(repo=str(repo), prompt_ids=[1], completion_ids=[2], logprobs=[-0.1]))  # not settled
    settled = L.rows("prompt_ids is not null and outcome is not null")
    L.close()
    assert settled

    out = tmp_path / "events.jsonl"
    r = _cli("export-ledger", str(out), "--repo", str(repo), home=home)
    assert r.returncode == 0, r.stderr
    exported = [json.loads(line) for line in out.read_text().splitlines()]
    assert [e["id"] for e in exported] == [s["id"] for s in settled] and kept_out not in out.read_text()
    assert all(isinstance(e["prompt_ids"], list) and e["prompt_ids"] for e in exported)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    # Read back, the updater's own decoding gives the same examples as from the ledger.
    tok = starter.tokenizer
    cfg, stops = UpdaterConfig(), stop_sets_for(starter.path, tok)
    direct = from_rows(settled, tok, cfg, stops)
    again = from_rows(learnable_rows(out), tok, cfg, stops)
    assert [(e.prompt, e.completion, e.reward, e.rewarded) for e in again] == [
        (e.prompt, e.completion, e.reward, e.rewarded) for e in direct
    ]
    assert _cli("export-ledger", str(tmp_path / "events.csv"), home=home).returncode == 2
    assert _cli("export-ledger", str(out), home=tmp_path / "empty").returncode == 2
    # What `rltab train --events` refuses, in one line: a file that is not an export.
    for name, text in (("torn.jsonl", out.read_text()[:-40]), ("other.jsonl", "[1, 2]\n")):
        (tmp_path / name).write_text(text)
        r = _cli("train", "--events", str(tmp_path / name), home=tmp_path / "team")
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and name in r.stderr, r.stderr
