"""Team training: `rltab export-ledger` on a laptop, `rltab train --events` on a team's machines.
The updater's training step runs unchanged under torchrun: two CPU processes (gloo) take the same
steps as one process and publish the same adapter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from safetensors.torch import load_file

from rltab.policy.learning.synthetic import QUOTE_CONTEXTS, serve_round

# Every rewarded event counts; a guard this lenient lets the run publish so its weights compare.
CONFIG = json.dumps(
    dict(
        min_events=8,
        lr=1e-3,
        epochs=1,
        minibatch=8,
        guard_loss_tolerance=100.0,
        guard_base_loss_tolerance=100.0,
        guard_pass_tolerance=1.0,
        guard_pass_tasks=10,
    )
)


def _train(home: Path, events: Path, processes: int) -> dict:
    cli = ["-m", "rltab.server.cli", "train", "--events", str(events), "--home", str(home), "--config", CONFIG]
    if processes == 1:
        cmd = [sys.executable, *cli]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}", *cli]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    results = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert len(results) == 1, r.stdout  # rank 0 alone reports
    return results[0]


def test_two_gloo_processes_take_the_steps_one_process_takes(tmp_path, starter):
    laptop = tmp_path / "laptop"
    serve_round(laptop, QUOTE_CONTEXTS, lambda t: t.lstrip().startswith("'"), n=4)
    events = tmp_path / "events.jsonl"
    r = subprocess.run(
        [sys.executable, "-m", "rltab.server.cli", "export-ledger", str(events), "--home", str(laptop)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    alone = _train(tmp_path / "one", events, 1)
    team = _train(tmp_path / "two", events, 2)
    assert alone["published"] == team["published"] == "v0001", (alone, team)
    assert alone["events"] == team["events"] > 0
    a = load_file(str(tmp_path / "one" / "models" / "v0001" / "adapter.safetensors"))
    b = load_file(str(tmp_path / "two" / "models" / "v0001" / "adapter.safetensors"))
    assert a.keys() == b.keys()
    moved = max(a[k].abs().max().item() for k in a if "lora_B" in k)
    assert moved > 1e-4  # it learnt something (B starts at zero)
    # The same steps up to the order of float sums (gloo adds the two halves): measured 1.2e-5
    # at most, against steps of about 1e-3.
    for k in a:
        assert (a[k] - b[k]).abs().max().item() < 0.02 * moved, (k, (a[k] - b[k]).abs().max(), moved)
    # The team's version is a normal adapter version: the laptop's server can load it.
    from rltab.policy.inference.loading import load_model

    assert load_model(tmp_path / "two", "v0001").version == "v0001"


def test_events_served_without_log_probs_learn_from_the_parent_s(tmp_path, starter):
    """A remote engine that returns no log-probs (Ollama's OpenAI endpoint): the rows still teach,
    with the parent's log-probs as the behaviour's (the weights that served them)."""
    import sqlite3

    from rltab.feedback.ledger import Ledger
    from rltab.policy.learning.config import UpdaterConfig
    from rltab.policy.learning.examples import from_rows, stop_sets_for
    from rltab.policy.learning.updater import train_cycle

    home = tmp_path / "home"
    serve_round(home, QUOTE_CONTEXTS, lambda t: t.lstrip().startswith("'"), n=2)
    cfg = UpdaterConfig(min_events=4, epochs=1, guard_pass_tasks=10)
    stops = stop_sets_for(starter.path, starter.tokenizer)
    ledger = Ledger(home / "ledger.db")
    with_lp = from_rows(ledger.learnable(100), starter.tokenizer, cfg, stops)
    ledger.close()
    conn = sqlite3.connect(home / "ledger.db")
    conn.execute("update suggestion set logprobs = null")
    conn.commit()
    conn.close()
    ledger = Ledger(home / "ledger.db")
    without = from_rows(ledger.learnable(100), starter.tokenizer, cfg, stops)
    ledger.close()
    assert [e.rewarded for e in without] == [e.rewarded for e in with_lp] and any(e.rewarded for e in without)
    assert all(not e.old_logp for e in without)
    logs: list[str] = []
    result = train_cycle(home, cfg, log=logs.append)
    assert result.parent == "starter" and result.events > 0, result.reason
    assert any(m.startswith("step 0: pg ") for m in logs), logs  # the policy-gradient term ran
