"""The shipped starter model: int8 agrees with fp32, and it writes plausible Python."""

import ast

import numpy as np
import pytest

from rltab.policy.completion.completer import Completer
from rltab.policy.inference.engine import Engine
from rltab.policy.model.checkpoint import load_torch
from rltab.policy.model.export import export_fp32
from rltab.policy.pretraining import corpus


@pytest.fixture(scope="module")
def fp32_starter(starter, tmp_path_factory):
    path = export_fp32(load_torch(starter.path), tmp_path_factory.mktemp("fp32") / "starter.onnx", lora=False)
    return Engine(path, starter.engine.token_bytes, starter.engine.stop_ids)


def heldout_prompts(model, n=24, length=160):
    text = "\n".join(corpus.read_sources(corpus.stdlib_files("heldout")))
    ids = model.encode(text[:300_000])
    rng = np.random.default_rng(0)
    return [ids[s : s + length] for s in rng.integers(0, len(ids) - length, n)]


def test_int8_greedy_tokens_agree_with_fp32(starter, fp32_starter):
    """Teacher-forced on fp32's greedy path, int8 picks the same token at >= 95 % of steps."""
    same = total = 0
    for prompt in heldout_prompts(starter):
        logits, past, _ = fp32_starter.prefill(prompt)
        ref = []
        for _ in range(16):  # fp32's own argmax path (no stop rules, no masking)
            ref.append(int(np.argmax(logits)))
            logits, past = fp32_starter._run(np.array([[ref[-1]]], dtype=np.int64), past)
            logits = logits[0]
        logits, past, _ = starter.engine.prefill(prompt)
        for tok in ref:
            same += int(np.argmax(logits)) == tok
            total += 1
            logits, past = starter.engine._run(np.array([[tok]], dtype=np.int64), past)
            logits = logits[0]
    assert same / total >= 0.95, f"int8 agrees with fp32 on {same}/{total} greedy steps"


SIGNATURES = [
    "class Interval:\n    def __init__(self",
    "class Stack:\n    def push(self",
    "class Point:\n    def __init__(self, x",
    "class Reader:\n    def read(self, path",
    "class Config:\n    def get(self, key",
]


def test_signature_completions_are_plausible_python(starter):
    """Completing a method signature mostly yields one that parses with a body. Which ones it gets
    right changes as the starter keeps training, so the test asks for a majority, not a spot."""
    answered = parsed = 0
    for before in SIGNATURES:
        s = Completer(starter).complete(before, "\n")
        if not s.text:
            continue
        answered += 1
        head, line = before.rsplit("\n", 1)
        try:
            ast.parse(head + "\n" + line + s.text + "\n        pass\n")
            parsed += line.rstrip().endswith(":") or (line + s.text).rstrip().endswith(":")
        except SyntaxError:
            pass
    assert answered >= 3, f"the starter answered only {answered} of {len(SIGNATURES)} signatures"
    assert parsed * 2 > answered, f"only {parsed} of {answered} completed signatures parse"


def test_block_completions_after_a_colon_are_indented_bodies_that_parse(starter):
    heads = [
        "def area(width, height):",
        "class Stack:",
        "def main():",
        "for line in lines:",
        "if __name__ == '__main__':",
        "def read(path):",
    ]
    answered = 0
    for before in heads:
        s = Completer(starter).complete(before, "\n")
        assert s.kind == "block"
        if not s.text:
            continue  # silence is a fine answer
        answered += 1
        assert s.text.startswith("\n")
        body = [line for line in s.text.split("\n")[1:] if line.strip()]
        assert body and all(line.startswith("    ") for line in body)
        ast.parse(before + s.text + "\n")
    assert answered, "the shipped model should write some block body"


def test_training_splits_keep_held_out_code_out():
    """The starter's splits: library code to train on, held-out modules, and the standard
    library's tests, less those of held-out modules (their names and calls would leak)."""
    train, heldout, tests = (set(corpus.stdlib_files(s)) for s in ("train", "heldout", "tests"))
    assert train and heldout and tests and not (train & heldout) and not (train & tests) and not (heldout & tests)
    names = {p.name for p in tests} | {d for p in tests for d in p.parts}
    assert "test_os.py" in names and not any(n.startswith(("test_argparse", "test_csv", "test_json")) for n in names)
