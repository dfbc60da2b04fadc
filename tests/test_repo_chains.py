"""One chain of versions per repository: the updater learns each repository's rows into that
repository's own chain, the server serves each document its repository's version, and
versions / rollback / stats / forget take --repo. And the guard's first question: the
repository's own held-back demonstrations."""

import json
import shutil
import subprocess
import sys

from lsp_helpers import inline, ledger_rows, lsp_session, open_doc

from rltab.feedback.ledger import Ledger, SuggestionRecord
from rltab.policy.learning.synthetic import QUOTE_CONTEXTS, serve_round
from rltab.policy.learning.updater import UpdaterConfig, train_cycle
from rltab.policy.model.checkpoint import STARTER_DIR, read_meta, write_meta
from rltab.policy.model.home import current_version, set_current

QUIET = dict(log=lambda m: None)
# Only the general-ability checks (held-out loss, int8 parity): these tests are about where a
# version goes, not whether a handful of synthetic events improve it.
WHERE_ONLY = dict(min_events=8, guard_pass_tasks=0, guard_min_held_back=10_000)


def cli(*args, home):
    return subprocess.run(
        [sys.executable, "-m", "rltab.server.cli", *args, "--home", str(home)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_each_repository_learns_its_own_chain(tmp_path, starter):
    home, a, b = tmp_path / "home", tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    serve_round(home, QUOTE_CONTEXTS, lambda t: "'" in t, repo=str(a))
    serve_round(home, QUOTE_CONTEXTS[:2], lambda t: '"' in t, repo=str(b))
    r = train_cycle(home, UpdaterConfig(**WHERE_ONLY), **QUIET)  # the busiest repository first: a
    assert r.published, r.reason
    assert read_meta(home / "models" / r.published)["repo"] == str(a)
    assert current_version(home, str(a)) == r.published
    assert current_version(home, str(b)) == current_version(home) == "starter"  # b and the base untouched
    ledger = Ledger(home / "ledger.db")
    pending = ledger.pending_by_repo()
    ledger.close()
    assert pending[str(a)] < 20 and pending[str(b)] == 8  # only a's rows were used

    out = cli("versions", "--repo", str(a), home=home).stdout
    [line] = out.splitlines()
    assert line.startswith(f"* {r.published} ") and " parent=starter " in line
    [row] = json.loads(cli("versions", "--repo", str(a), "--json", home=home).stdout)
    assert row["version"] == r.published and row["current"] and row["parent"] == "starter" and row["events"]
    assert "the shared base" in cli("versions", "--repo", str(b), home=home).stdout
    stats = json.loads(cli("stats", "--json", "--repo", str(b), home=home).stdout)
    assert sum(s["shown"] + s["silent"] for s in stats) == 8

    roll = cli("rollback", "--repo", str(a), home=home)
    assert roll.returncode == 0 and "current: starter" in roll.stdout
    assert current_version(home, str(a)) == "starter"
    set_current(home, r.published, str(a))
    gone = cli("forget", "--repo", str(a), home=home)
    assert gone.returncode == 0 and r.published in gone.stdout, gone.stdout + gone.stderr
    assert not (home / "models" / r.published).exists() and current_version(home, str(a)) == "starter"
    assert not (home / "repos").exists() or not any((home / "repos").iterdir())


def published_copy(home, name, repo):
    """A version of `repo`'s chain with the starter's weights (a real, loadable model)."""
    d = home / "models" / name
    shutil.copytree(STARTER_DIR, d)
    write_meta(d, {**read_meta(d), "version": name, "parent": "starter", "repo": repo})
    set_current(home, name, repo)


async def test_the_server_picks_the_version_by_the_documents_repository(tmp_path):
    home, a, b = tmp_path / "home", tmp_path / "a", tmp_path / "b"
    for r in (a, b):
        (r / ".git").mkdir(parents=True)
    published_copy(home, "v0007", str(a))
    src = "import os\n\n\ndef main(args):\n    return os."
    async with lsp_session(home) as c:
        for r in (a, b, a):
            uri = (r / "m.py").as_uri()
            open_doc(c, uri, src)
            await inline(c, uri, 4, 14)
    rows = ledger_rows(home, "select repo, model_version from suggestion order by rowid")
    assert [tuple(x) for x in rows] == [(str(a), "v0007"), (str(b), "starter"), (str(a), "v0007")]


def test_guard_refuses_an_update_that_explains_the_repository_worse(tmp_path, starter):
    """Demonstrations of garbage teach garbage: the candidate explains what the user really
    wrote (the held-back demonstrations) worse than its parent, and is refused."""
    home = tmp_path / "home"
    ledger = Ledger(home / "ledger.db")
    real = [
        ("def add(a, b):\n    return ", "a + b\n"),
        ("for i in range(", "10):\n"),
        ("import ", "os\n"),
        ("class Point:\n    def __init__(self, x, y):\n        self.x = ", "x\n"),
        ("if __name__ == ", "'__main__':\n"),
        ("    raise ValueError(", "'bad value')\n"),
        ("with open(path) as ", "f:\n"),
        ("print(", "'hello')\n"),
    ]

    def row(prefix, demo):
        sid = ledger.record_suggestion(
            SuggestionRecord(
                "starter", "line", 0, 1.0, repo="", prompt_ids=starter.encode(prefix), completion_ids=[], logprobs=[]
            )
        )
        ledger.record_demonstration(sid, demo)

    for k in range(32):  # what training sees: noise
        row(real[k % len(real)][0], f"@@ zq{k} ~~ qq!! $$ ^^ xz@@")
    for prefix, demo in real:  # the most recent, held back: the real thing
        row(prefix, demo)
    ledger.close()
    r = train_cycle(
        home, UpdaterConfig(min_events=8, guard_pass_tasks=0, sft_coef=1.0, lr=1e-2, guard_min_held_back=8), **QUIET
    )
    assert r.published is None and "demonstration loss on held-back events" in r.reason, r.reason
    assert r.metrics["demonstration_nll"] > r.metrics["parent_demonstration_nll"]
    assert current_version(home) == "starter"
