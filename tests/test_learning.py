"""Learning happens: synthetic users, the real updater, the real publish path (starter model)."""

import json

import numpy as np
import pytest

from rltab.policy.inference.loading import load_model
from rltab.policy.learning.synthetic import HEAD, QUOTE_CONTEXTS, first_text_probs, serve_round, text_kl
from rltab.policy.learning.updater import UpdaterConfig, train_cycle
from rltab.policy.model.home import current_version
from rltab.server import cli

# These tests check that the reward terms move the model the way the rewards say. They run the
# terms at the weights they were built with; the shipped defaults lean on demonstrations instead
# (update_config.py), which saves more characters on the replays and moves these behaviours slower.
RL_TERMS = dict(min_events=8, lr=1e-3, pg_coef=1.0, silence_coef=0.2, sft_coef=0.1)

NEUTRAL_CONTEXTS = [
    "    for item in args:\n        ",
    "    return os.path.",
    "    total = len(args) + ",
    "    with open(args[0]) as f:\n        ",
]


@pytest.fixture
def home(tmp_path):
    return tmp_path / "home"


def test_a_user_who_likes_single_quotes_teaches_them(home, starter, capsys):
    likes = lambda b: b.lstrip(b" ").startswith(b"'")
    before = [first_text_probs(starter, c, likes) for c in QUOTE_CONTEXTS]
    published = []
    phases: list[tuple] = []  # what `rltab train --once` draws as bars on a terminal
    for k in range(3):
        serve_round(home, QUOTE_CONTEXTS, lambda t: t.lstrip().startswith("'"), seed=k)
        report = (lambda *a, **kw: phases.append(a)) if k == 0 else (lambda *a, **kw: None)
        r = train_cycle(home, UpdaterConfig(**RL_TERMS), log=lambda m: None, progress=report)
        assert r.published or r.reason.startswith("guard"), r.reason
        published += [r.published] if r.published else []
    assert published, "at least one update must pass the guard"
    assert list(dict.fromkeys(p for p, *_ in phases)) == ["events", "steps", "export", "guard"]
    for name in ("events", "steps", "export", "guard"):  # each phase runs to its end
        done, total = [(d, t) for p, d, t, *_ in phases if p == name][-1]
        assert done == total > 0, (name, done, total)
    served = load_model(home)
    assert served.version == current_version(home) == published[-1]
    after = [first_text_probs(served, c, likes) for c in QUOTE_CONTEXTS]
    assert np.mean(after) > np.mean(before) + 0.05, (before, after)
    # The suggestions moved where the user's quotes decide the text, and not elsewhere: in contexts
    # without a string the first token's distribution stays put (measured: at most 0.1 nats; up to
    # 1.5 in the quote contexts after three chained adapters).
    kls = [text_kl(served, starter, c) for c in NEUTRAL_CONTEXTS]
    assert max(kls) < 0.25, kls
    _learned_tells_what_happened(home, published, capsys)


def _learned_tells_what_happened(home, published, capsys):
    """`rltab learned` on the home the test above trained: every cycle, in the user's terms."""
    assert cli.main(["learned", "--home", str(home), "--json", "--examples", "1"]) == 0
    entries = {e["version"]: e for e in json.loads(capsys.readouterr().out)}
    newest = entries[published[-1]]
    assert newest["live"] and newest["guard"]["reason"] == "ok"
    assert sum(newest["outcomes"].values()) == newest["events"] > 0  # the rows it was trained on
    assert newest["guard"]["heldout_loss"] > 0 and newest["guard"]["parent_heldout_loss"] > 0
    assert newest["before"]["version"] == newest["parent"] and newest["before"]["shown"] > 0
    [x] = newest["examples"]  # a context it learned from: the suggestion then, and its own now
    assert x["then_version"] == newest["parent"] and x["outcome"] in ("accepted", "rejected")
    assert isinstance(x["now"], str) and x["context"].endswith(x["context"].split("\n")[-1])
    # Three cycles ran: the refused ones are listed under the version they started from, with why.
    refused = [r for e in entries.values() for r in e["refused"]]
    assert len(published) + len(refused) == 3
    assert all(r["reason"].startswith("guard") for r in refused)
    assert cli.main(["learned", "--home", str(home), "--examples", "0"]) == 0
    text = capsys.readouterr().out
    assert f"{published[-1]} (live)" in text and "guard ok" in text and "before (" in text


def test_a_user_who_rejects_everything_in_blocks_gets_silence_there(home, starter):
    block_contexts = [
        "    for item in args:",
        "    if not args:",
        "    while True:",
        "    try:",
        "    with open(args[0]) as f:",
    ]
    stop = set(starter.engine.stop_ids)

    def p_silent(model):
        out = []
        for c in block_contexts:
            logits, _, _ = model.engine.prefill(model.encode(HEAD + c))
            p = np.exp(logits - logits.max())
            out.append(float(p[sorted(stop)].sum() / p.sum()))
        return float(np.mean(out))

    before = p_silent(starter)
    # Three rounds left it silent in 2 of the 5 contexts once the base ran its own graph; four,
    # once the graph gave 9 rows of logits for prompt lookup; five, with per-column int8 weights
    # (export format 6), left it silent in 1 of 5 on a fresh cache (p(stop) 0.39); seven: 5 of 5 (0.88).
    for k in range(7):
        serve_round(home, block_contexts, lambda t: False, kind="block", seed=k, single_line=False)
        r = train_cycle(home, UpdaterConfig(**RL_TERMS), log=lambda m: None)
        assert r.published or r.reason.startswith("guard"), r.reason
    served = load_model(home)
    after = p_silent(served)
    assert after > before * 2 and after > before + 0.02, (before, after)
    # and the served model now answers nothing in most of those contexts
    empty = sum(
        served.engine.generate(served.encode(HEAD + c), single_line=False, max_new_tokens=8).candidates[0].text == ""
        for c in block_contexts
    )
    assert empty >= 3, (before, after, empty)
