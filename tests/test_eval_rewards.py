"""Issue 8: pass@k, HumanEval single-line infilling run in the sandbox, compiler feedback as an
automatic reward, the RRHF ranking term, and the pass@1 guard."""

import json
import math
import subprocess
import sys

import pytest
import torch

from rltab.feedback import rewards as R
from rltab.feedback.ledger import Ledger, SuggestionRecord
from rltab.policy.completion.context import cursor_context
from rltab.policy.completion.postprocess.check_syntax import check_syntax, enclosing_statement
from rltab.policy.evaluation import humaneval
from rltab.policy.evaluation.passk import mean_pass_at_k, pass_at_k
from rltab.policy.evaluation.sandbox import run_program
from rltab.policy.learning.losses import rrhf_loss


# -- pass@k ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "n,c,k,want",
    [
        (1, 1, 1, 1.0),
        (5, 0, 1, 0.0),
        (5, 2, 1, 0.4),
        (5, 2, 5, 1.0),
        (10, 3, 5, 1 - 21 / 252),
        (4, 1, 2, 0.5),
    ],
)
def test_pass_at_k_hand_computed(n, c, k, want):
    assert pass_at_k(n, c, k) == pytest.approx(want)


def test_pass_at_k_matches_the_binomial_form():
    for n in range(1, 12):
        for c in range(n + 1):
            for k in range(1, n + 1):
                exact = 1 - math.comb(n - c, k) / math.comb(n, k)
                assert pass_at_k(n, c, k) == pytest.approx(exact, abs=1e-12)
    assert mean_pass_at_k([(5, 2), (5, 0)], 1) == pytest.approx(0.2)


def test_paired_loss_p_value():
    from rltab.policy.evaluation.passk import paired_loss_p_value

    assert paired_loss_p_value({"a", "b"}, {"a", "b"}) == 1.0
    assert paired_loss_p_value(set("abcde"), set("abcd")) == 0.5  # one task lost: chance
    assert paired_loss_p_value(set("abcde"), set()) == 1 / 32
    assert paired_loss_p_value(set("ab"), set("cd")) == pytest.approx(11 / 16)  # as many gained as lost


def test_pass_at_k_rejects_impossible_counts():
    for bad in [(5, 6, 1), (5, -1, 1), (5, 2, 0), (3, 1, 4)]:
        with pytest.raises(ValueError):
            pass_at_k(*bad)


# -- the sandbox ---------------------------------------------------------------------------------
def test_sandbox_runs_good_code_and_reports_failures():
    assert run_program("import math\nassert math.gcd(12, 18) == 6\n").passed
    r = run_program("assert 1 + 1 == 3\n")
    assert r.status == "failed" and "AssertionError" in r.detail
    assert run_program("open('scratch.txt', 'w').write('ok')\nassert open('scratch.txt').read() == 'ok'\n").passed


def test_a_completion_that_loops_forever_is_stopped():
    task = next(t for t in humaneval.infill_tasks() if not t.suffix.strip() and t.target.startswith("    return"))
    r = run_program(task.program("    while True: pass"), timeout_s=1.0)
    assert r.status == "timeout"


def test_writes_outside_the_sandbox_network_and_processes_are_refused(tmp_path):
    target = tmp_path / "escaped.txt"
    r = run_program(f"open({str(target)!r}, 'w').write('x')\n")
    assert r.status == "violation" and "writing" in r.detail and not target.exists()
    victim = tmp_path / "keep"
    victim.mkdir()
    r = run_program(f"import shutil\nshutil.rmtree({str(victim)!r})\n")
    assert r.status == "violation" and victim.exists()
    assert run_program("import socket\nsocket.create_connection(('127.0.0.1', 9))\n").status == "violation"
    assert run_program("import os\nos.system('true')\n").status == "violation"
    assert run_program("import subprocess\nsubprocess.run(['true'])\n").status == "violation"


def test_memory_bombs_fail_inside_the_limits():
    r = run_program("x = bytearray(4 * 1024 ** 3)\n", memory_mb=256)
    assert r.status == "failed" and "MemoryError" in r.detail


# -- HumanEval single-line infilling ---------------------------------------------------------------
def test_infill_tasks_cover_every_solution_line():
    tasks = humaneval.infill_tasks()
    assert len(tasks) == 1033  # as in the published single-line infilling benchmark
    assert len({t.task_id.rsplit("/", 1)[0] for t in tasks}) == 164
    t = tasks[0]
    assert t.prefix.endswith("\n") and t.target.strip() and t.target not in t.suffix.split("\n")[:1]
    assert len(humaneval.guard_subset(tasks)) == 100
    assert humaneval.guard_subset(tasks) == humaneval.guard_subset(humaneval.infill_tasks())  # fixed


def test_canonical_lines_pass_and_a_wrong_line_fails():
    tasks = humaneval.infill_tasks()
    for t in tasks[:: len(tasks) // 25]:
        assert run_program(t.program(t.target)).passed, t.task_id
    t = next(t for t in tasks if t.target.strip().startswith("return"))
    assert not run_program(t.program(t.target.replace("return", "return None #"))).passed


def test_exact_means_the_line_as_python_reads_it_indentation_included():
    """Issue 27's audit: a candidate once "matched" 1 % of lines exactly and passed none, because
    exact match ignored indentation and the lines were one space off. Exact now means the line as
    Python reads it, and the same line one space off is neither exact nor passing."""

    def same_indent_below(t) -> bool:  # the next line continues the block: one space off breaks it
        below = next((ln for ln in t.suffix.split("\n") if ln.strip()), "")
        indent = len(t.target) - len(t.target.lstrip())
        return indent == 8 and len(below) - len(below.lstrip()) == indent and not t.prefix.rstrip().endswith(":")

    task = next(t for t in humaneval.infill_tasks() if same_indent_below(t))
    assert humaneval.is_exact(task, task.target) and humaneval.score_line(task, task.target)[0]
    assert run_program(task.program(task.target)).passed  # the canonical line really passes
    off = task.target[1:]  # one space short
    assert off.strip() == task.target.strip() and not humaneval.is_exact(task, off)
    assert humaneval.score_line(task, off) == (False, run_program(task.program(off)).status)


def test_evaluate_reports_pass_at_k(tiny_model):
    tasks = humaneval.infill_tasks()[:4]
    out = humaneval.evaluate(tiny_model, tasks, n=2, ks=(1, 2))
    assert out["tasks"] == 4 and out["n"] == 2 and out["temperature"] == 0.8
    assert 0.0 <= out["pass@1"] <= out["pass@2"] <= 1.0
    assert sum(out["runs"].values()) >= 4
    with pytest.raises(ValueError):
        humaneval.evaluate(tiny_model, tasks, n=1, ks=(5,))


def test_cli_eval_writes_json(tmp_path, starter):
    out = tmp_path / "he.json"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "rltab.server.cli",
            "eval",
            "humaneval-infill",
            "--limit",
            "2",
            "--n",
            "2",
            "--k",
            "1,2",
            "--json",
            str(out),
            "--home",
            str(tmp_path / "h"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["model_version"] == "starter" and data["tasks"] == 2 and {"pass@1", "pass@2"} <= set(data)
    bad = subprocess.run(
        [sys.executable, "-m", "rltab.server.cli", "eval", "humaneval-infill", "--k", "5"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "k <= n" in bad.stderr


# -- compiler feedback ---------------------------------------------------------------------------
def check(before, after, text):
    return check_syntax(text, cursor_context(before, after))


@pytest.mark.parametrize(
    "before,after,text,want",
    [
        # the statement parsed before: keep what parses, drop what breaks it
        ("def f(x):\n    return fo", "\n\nprint(1)\n", "o(x)", "o(x)"),
        ("def f(x):\n    return fo", "\n\nprint(1)\n", "o(x", ""),
        ("def f(x):\n    y = g(", ")\n    return y\n", "1, 2", "1, 2"),
        ("def f(x):\n    y = g(", ")\n    return y\n", "1, 2)", ""),
        # a multi-line suggestion is cut back to the lines that still parse (a repair)
        ("def f(x):\n    y = 1\n", "\nz = 2\n", "    y += 1\n    return y\n    else:", "    y += 1\n    return y"),
        # a valid beginning (more lines can complete it) counts as valid: opening a block is fine
        ("class A:\n    x = 1\n", "", "    def m(self):", "    def m(self):"),
        ("x = 1\n", "", '"""a docstring', '"""a docstring'),
        ('def f(x):\n    s = """text\n    ', "", '"""),', ""),  # closing a string it is inside, then junk
        # already broken before: nothing to compare with, the text passes
        ("def f(x):\n    if x:\n        ", "\n    return y\n", "pass\n    else:", "pass\n    else:"),
        ("def f(x):", "\n", "\n    return x", "\n    return x"),
    ],
)
def test_check_syntax_golden(before, after, text, want):
    assert check(before, after, text) == want


def test_enclosing_statement_is_the_top_level_one():
    head, tail = enclosing_statement("import os\n\n\ndef f(x):\n    a = 1\n    b", "\n    c\n\nx = 1\n")
    assert head == "def f(x):\n    a = 1\n    b" and tail == "\n    c\n"


def test_a_syntax_error_is_logged_with_the_automatic_reward(tmp_path):
    assert R.reward(R.INVALID) < 0 and R.reward(R.INVALID, cfg=R.RewardConfig(scheme=R.CURSOR)) == -0.25
    ledger = Ledger(tmp_path / "ledger.db")
    sid = ledger.record_suggestion(
        SuggestionRecord(
            "v1", "line", 0, 1.0, prompt_ids=[1, 2], completion_ids=[3], logprobs=[-0.5], syntax_error=True
        )
    )
    row = ledger.suggestion(sid)
    assert row["outcome"] == "invalid" and row["reward"] == pytest.approx(R.reward(R.INVALID))
    assert ledger.pending_events() == 1  # the updater learns from it
    assert not ledger.record_outcome(sid, "accepted", 3)  # never shown: cannot be accepted
    stats = {s["model_version"]: s for s in ledger.stats()}
    assert stats["v1"]["invalid"] == 1 and stats["v1"]["shown"] == 0
    ledger.close()


def test_completer_drops_breaking_suggestions_only_when_asked(starter):
    """Typing a real file top to bottom (as the replay does), the shipped model sometimes writes
    code that cannot continue the file (closing a docstring it is inside, `--x = ...`); with
    syntaxCheck such answers are dropped (or cut back) and marked for the automatic reward, and
    nothing else changes."""
    import re

    from rltab.policy.completion.completer import Completer
    from rltab.policy.pretraining import corpus

    completer = Completer(starter)
    text = (corpus.stdlib_dir() / "textwrap.py").read_text()[:3000]
    dropped = 0
    for m in list(re.finditer(r"[ (=.\n]", text))[::2]:
        before = text[: m.end()]
        plain = completer.complete(before, "", syntax_check=False)
        checked = completer.complete(before, "", syntax_check=True)
        assert checked.raw_text == plain.raw_text
        assert checked.text == (check(before, "", plain.text) if plain.text else "")
        assert checked.syntax_error == (bool(plain.text) and not checked.text)
        dropped += checked.syntax_error
        if checked.syntax_error:
            other = completer.complete(before, "", syntax_check=True, language="rust")
            assert other.text == plain.text and not other.syntax_error
    assert dropped >= 1


# -- RRHF ---------------------------------------------------------------------------------------
def test_rrhf_loss_hand_computed():
    scores = torch.tensor([-1.0, -2.0, -0.5], requires_grad=True)
    rewards = torch.tensor([0.75, -0.25, 0.0])
    loss = rrhf_loss(scores, rewards)
    assert loss.item() == pytest.approx(0.5)  # only (r=0 above r=0.75) is ranked the wrong way
    loss.backward()
    assert scores.grad.tolist() == [-1.0, 0.0, 1.0]
    assert rrhf_loss(torch.tensor([0.0, -1.0]), torch.tensor([1.0, 0.0])).item() == 0.0


@pytest.mark.parametrize("term", ["rrhf_coef", "ptx_coef"])
def test_optional_terms_run_in_the_updater(tmp_path, starter, term):
    from rltab.policy.learning.synthetic import QUOTE_CONTEXTS, serve_round
    from rltab.policy.learning.updater import UpdaterConfig, train_cycle
    from rltab.policy.model.checkpoint import read_meta

    home = tmp_path / "home"
    serve_round(home, QUOTE_CONTEXTS, lambda t: t.lstrip().startswith("'"))
    r = train_cycle(home, UpdaterConfig(min_events=8, guard_pass_tasks=0, **{term: 1.0}), log=lambda m: None)
    assert r.published, r.reason
    meta = read_meta(home / "models" / r.published)
    assert term.removesuffix("_coef") in meta["algorithm"]
    if term == "ptx_coef":
        assert 0 < meta["train_metrics"]["ptx"] < 10


# -- the pass@1 guard ------------------------------------------------------------------------------
def test_guard_refuses_a_version_that_loses_pass_at_1(tmp_path, starter):
    import shutil

    from rltab.policy.learning.updater import UpdaterConfig, run_guard
    from rltab.policy.model.checkpoint import read_meta, write_meta

    parent = tmp_path / "parent"
    shutil.copytree(starter.path, parent)
    cfg = UpdaterConfig(guard_pass_tasks=6)
    same = run_guard(starter.path, parent, tmp_path / "home", [], cfg)
    assert "pass@1" not in same["reason"] and same["pass_at_1"] == same["parent_pass_at_1"]
    # The parent (as recorded when it was published) solved every task of the subset, all of which
    # the candidate fails: a loss far beyond chance.
    solved = [f"HumanEval/{i}/0" for i in range(6)]
    write_meta(parent, {**read_meta(parent), "guard": {"solved_tasks": solved, "pass_tasks": 6}})
    worse = run_guard(starter.path, parent, tmp_path / "home", [], cfg)
    assert not worse["passed"] and "HumanEval-infill pass@1" in worse["reason"]
    # One task fewer than a parent that solved one is within chance, and passes.
    write_meta(
        parent,
        {**read_meta(parent), "guard": {"solved_tasks": same["solved_tasks"] + ["HumanEval/0/0"], "pass_tasks": 6}},
    )
    noise = run_guard(starter.path, parent, tmp_path / "home", [], cfg)
    assert "pass@1" not in noise["reason"]
