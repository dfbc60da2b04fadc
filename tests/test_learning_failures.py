"""Learning never hurts serving: bad updates are refused, broken models are not swapped in, a
killed updater leaves nothing half-published; and the whole loop runs over LSP."""

import json
import shutil
import signal
import subprocess
import sys
import time

from lsp_helpers import inline, ledger_rows, lsp_session, open_doc, wait_until
from lsprotocol import types

from rltab.feedback.ledger import Ledger
from rltab.policy.learning.synthetic import QUOTE_CONTEXTS, serve_round
from rltab.policy.learning.updater import UpdaterConfig, train_cycle
from rltab.policy.model.home import current_version, list_versions, set_current

QUIET = dict(log=lambda m: None)


def test_empty_ledger_is_a_no_op(tmp_path):
    r = train_cycle(tmp_path / "home", UpdaterConfig(), **QUIET)
    assert r.published is None and "learnable events" in r.reason
    assert current_version(tmp_path / "home") == "starter"


def test_exploding_update_is_refused(tmp_path, starter):
    home = tmp_path / "home"
    serve_round(home, QUOTE_CONTEXTS, lambda t: "'" in t)
    r = train_cycle(home, UpdaterConfig(min_events=8, lr=1e30), **QUIET)
    assert r.published is None and ("non-finite" in r.reason or r.reason.startswith("guard")), r.reason
    assert current_version(home) == "starter" and not list((home / "models").glob("v*"))
    ledger = Ledger(home / "ledger.db")
    assert ledger.pending_events() > 0  # nothing was marked as learned
    assert json.loads(json.dumps(ledger.get_state("last_update")))["published"] is None
    ledger.close()


def test_damaged_rows_are_skipped(tmp_path, starter):
    home = tmp_path / "home"
    serve_round(home, QUOTE_CONTEXTS, lambda t: "'" in t)
    ledger = Ledger(home / "ledger.db")
    ledger.db.execute("update suggestion set prompt_ids = 'not json' where rowid % 3 = 0")
    ledger.db.conn.commit()
    ledger.close()
    r = train_cycle(home, UpdaterConfig(min_events=4), **QUIET)
    assert r.published or r.reason.startswith("guard"), r.reason


async def test_a_broken_published_model_is_not_swapped_in(tmp_path, starter):
    home = tmp_path / "home"
    bad = home / "models" / "v0001"
    bad.mkdir(parents=True)
    (bad / "meta.json").write_text(json.dumps({"version": "v0001", "parent": "starter"}))
    shutil.copy(starter.path / "tokenizer.json", bad / "tokenizer.json")
    shutil.copy(starter.path / "config.json", bad / "config.json")
    (bad / "model.safetensors").write_bytes(b"\x00garbage")
    (bad / "model.int8.onnx").write_bytes(b"not an onnx file")
    uri = "file:///w/a.py"
    async with lsp_session(home) as c:
        open_doc(c, uri, "import os\n\ndef main():\n    return os.")
        await wait_until(lambda: any(s["modelVersion"] == "starter" for s in c.statuses))
        set_current(home, "v0001")
        for _ in range(5):
            r = await inline(c, uri, 3, 14)
            assert r is not None
            time.sleep(0.3)
        versions = {v for (v,) in ledger_rows(home, "select model_version from suggestion")}
        assert versions <= {"starter"}
    r = train_cycle(home, UpdaterConfig(), **QUIET)  # the updater refuses a broken parent too
    assert r.published is None


def test_killed_updater_leaves_no_half_version(tmp_path, starter):
    home = tmp_path / "home"
    for k in range(3):
        serve_round(home, QUOTE_CONTEXTS, lambda t: "'" in t, seed=k)
    for delay in (2.0, 4.0, 6.0):
        p = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "rltab.server.cli",
                "train",
                "--once",
                "--home",
                str(home),
                "--config",
                json.dumps({"min_events": 4}),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.wait()
        for v in list_versions(home)[1:]:  # whatever is listed is complete
            d = home / "models" / v["version"]
            assert (d / "model.int8.onnx").exists() and (d / "model.safetensors").exists()
        assert current_version(home) in {v["version"] for v in list_versions(home)}
    r = train_cycle(home, UpdaterConfig(min_events=4), **QUIET)  # and the next cycle cleans up
    assert not list((home / "models").glob(".tmp-*"))
    assert r.published or r.reason.startswith("guard")


async def test_learning_loop_over_lsp(tmp_path, starter):
    """Learning on: suggestions and outcomes over LSP, `rltab.train`, a published version,
    and the server serving it, without a restart."""
    home = tmp_path / "home"
    uri = "file:///w/quotes.py"
    src = "import os\n\n\ndef main(args):\n"
    async with lsp_session(home, init_options={"learning": {"enabled": True}}) as c:
        await wait_until(lambda: any(s["modelVersion"] == "starter" for s in c.statuses))
        text, version = src, 1
        open_doc(c, uri, text)
        shown = 0
        for ctx in QUOTE_CONTEXTS * 2:
            line = text.count("\n")
            version += 1
            c.text_document_did_change(
                types.DidChangeTextDocumentParams(
                    text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
                    content_changes=[
                        types.TextDocumentContentChangePartial(
                            range=types.Range(start=types.Position(line, 0), end=types.Position(line, 0)), text=ctx
                        )
                    ],
                )
            )
            text += ctx
            r = await inline(c, uri, line, len(ctx))
            if r.items:
                shown += 1
                cmd = "rltab.accepted" if r.items[0].insert_text.lstrip().startswith("'") else "rltab.rejected"
                await c.workspace_execute_command_async(
                    types.ExecuteCommandParams(command=cmd, arguments=list(r.items[0].command.arguments))
                )
            version += 1
            c.text_document_did_change(
                types.DidChangeTextDocumentParams(
                    text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
                    content_changes=[
                        types.TextDocumentContentChangePartial(
                            range=types.Range(start=types.Position(line, len(ctx)), end=types.Position(line, len(ctx))),
                            text="x)\n",
                        )
                    ],
                )
            )
            text += "x)\n"
        assert shown >= 4
        await wait_until(lambda: any(s["pendingEvents"] >= 4 for s in c.statuses))
        r = await c.workspace_execute_command_async(types.ExecuteCommandParams(command="rltab.train", arguments=[]))
        assert r["started"]
        # The cycle's outcome, published or why not (too few events, a refusal: the reason shows).
        done = await wait_until(
            lambda: ledger_rows(home, "select value from state where key = 'last_update'"), timeout=120
        )
        assert json.loads(done[0][0])["published"] == "v0001", done[0][0]
        last = await wait_until(lambda: [s["lastUpdate"] for s in c.statuses if s["lastUpdate"]], timeout=30)
        assert last[-1]["version"] == "v0001" and last[-1]["reason"] == "published"
        await inline(c, uri, text.count("\n"), 0)  # the next request swaps
        await wait_until(lambda: any(s["modelVersion"] == "v0001" for s in c.statuses), timeout=30)
        assert any(s["training"] for s in c.statuses)  # the editor was told while the cycle ran
        assert ledger_rows(home, "select count(*) from suggestion where trained_in = 'v0001'")[0][0] >= 4


def test_guard_bounds_drift_from_the_base_not_only_the_parent(tmp_path, starter):
    """Each version may be within 2 % of its parent and still drift far from the base after many
    versions; the guard also compares with the base's held-out loss, carried in meta.json."""
    from rltab.policy.learning.updater import run_guard
    from rltab.policy.model.checkpoint import read_meta, write_meta

    parent = tmp_path / "parent"
    shutil.copytree(starter.path, parent)
    ok = run_guard(starter.path, parent, tmp_path / "home", [], UpdaterConfig())
    assert ok["passed"], ok["reason"]
    assert ok["base_heldout_loss"] == ok["parent_heldout_loss"]  # the parent is the base

    # Same weights as the parent, but the chain started from a model 10 % better.
    write_meta(parent, {**read_meta(parent), "guard": {"base_heldout_loss": ok["heldout_loss"] / 1.1}})
    drifted = run_guard(starter.path, parent, tmp_path / "home", [], UpdaterConfig())
    assert not drifted["passed"]
    assert "> base" in drifted["reason"] and "parent" not in drifted["reason"]


def _trainers(server_pid: int) -> list[int]:
    """`rltab train` processes started by the server `server_pid`."""
    out = subprocess.run(["ps", "-o", "pid=,ppid=,args=", "-e"], capture_output=True, text=True).stdout
    return [
        int(pid)
        for pid, ppid, *args in (line.split(None, 2) for line in out.splitlines() if line.strip())
        if int(ppid) == server_pid and "rltab.server.cli train" in " ".join(args)
    ]


def test_a_burst_of_train_now_starts_one_updater_and_none_while_learning_is_off(tmp_path):
    """Four rltab.train in a burst once started four `rltab train --once` (918 MB), learning off
    too: the lock was taken only after torch loaded."""
    from raw_lsp import RawServer

    for learning in (False, True):
        server = RawServer(tmp_path / f"home-{learning}", extra_args=("--train-every-events", "0"))
        try:
            server.initialize({"learning": {"enabled": learning}})
            answers = [server.request(i, "workspace/executeCommand", {"command": "rltab.train"}) for i in range(4)]
            started = [a["result"]["started"] for a in answers]
            assert started == ([True, False, False, False] if learning else [False] * 4), answers
            assert len(_trainers(server.proc.pid)) <= (1 if learning else 0)
        finally:
            server.close()


def test_a_second_updater_leaves_before_torch_loads(tmp_path):
    from rltab.policy.learning.lock import lock

    held = lock(tmp_path / "home")
    try:
        probe = (
            "import sys; from rltab.server.cli import main; "
            f"rc = main(['train', '--once', '--home', {str(tmp_path / 'home')!r}]); "
            "print(rc, 'torch' in sys.modules)"
        )
        r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    finally:
        held.release()
    assert r.stdout.split() == ["3", "False"], (r.stdout, r.stderr)
    assert "another updater holds" in r.stderr and r.stderr.count("\n") == 1
