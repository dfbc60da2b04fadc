"""`rltab import-model`: tiny random checkpoints of each supported family are imported, served,
trained one step and swapped in, with the family's FIM template detected from its tokenizer."""

import json
import os

import numpy as np
import pytest
import torch
from helpers import FAMILY_TOKENS, make_family_checkpoint

from rltab.feedback.ledger import Ledger, SuggestionRecord
from rltab.policy.completion.completer import Completer
from rltab.policy.inference.loading import load_model
from rltab.policy.learning.updater import UpdaterConfig, train_cycle
from rltab.policy.model.checkpoint import load_torch, read_meta
from rltab.policy.model.export import LOGIT_ROWS, KVCacheLM
from rltab.policy.model.families import detect_fim
from rltab.policy.model.home import current_version
from rltab.policy.model.importer import ImportFailure, import_model
from rltab.server.cli import main as cli

EXPECTED_STYLE = {"llama": "deepseek", "qwen2": "qwen", "starcoder2": "starcoder", "gpt2": "none"}
QUIET = dict(log=lambda m: None)


class Silent:
    def update(self, n=1):
        pass

    def set_postfix_str(self, s):
        pass

    def close(self):
        pass


@pytest.fixture(scope="module", params=sorted(EXPECTED_STYLE))
def imported(request, tmp_path_factory):
    model_type = request.param
    src = make_family_checkpoint(tmp_path_factory.mktemp(f"hf-{model_type}"), model_type)
    home = tmp_path_factory.mktemp(f"home-{model_type}")
    meta = import_model(src, home, name=f"tiny-{model_type}", make_current=True, progress=Silent())
    return model_type, src, home, meta


def test_fim_template_is_detected_per_family(imported):
    model_type, _, home, meta = imported
    assert meta["family"] == model_type
    assert meta["fim_style"] == EXPECTED_STYLE[model_type]
    assert meta["serve_fim"] is (model_type != "gpt2")
    assert current_version(home) == f"tiny-{model_type}"
    stored = read_meta(home / "models" / f"tiny-{model_type}")
    assert stored["fim"]["eos"] == FAMILY_TOKENS[model_type]["eos"]


def test_kv_cache_forward_matches_transformers(imported):
    """The hand-written exported forward equals transformers' on the same weights, in one pass
    and when the second half of the prompt is fed after a cached first half."""
    model_type, _, home, _ = imported
    hf = load_torch(home / "models" / f"tiny-{model_type}")
    wrapper = KVCacheLM(hf, 512).eval()
    ids = torch.randint(0, hf.config.vocab_size, (1, 24), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = hf(input_ids=ids).logits[0]
        full, *_ = wrapper.run(ids, wrapper.empty_cache(capacity=24), 0)
        _, *cache = wrapper.run(ids[:, :15], wrapper.empty_cache(capacity=30), 0)
        cached, *_ = wrapper.run(ids[:, 15:], cache, 15)  # the second half after the cached first
    # The graph's logits cover the last LOGIT_ROWS positions run (prompt lookup checks guesses there).
    torch.testing.assert_close(full[0], ref[-LOGIT_ROWS:], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(cached[0], ref[-LOGIT_ROWS:], atol=1e-4, rtol=1e-4)


def test_int8_engine_tracks_torch(imported):
    _, _, home, _ = imported
    served = load_model(home)
    hf = load_torch(served.path)
    ids = served.encode("def add(a, b):\n    return a + b\n\n\nclass Point:\n    def __init__(self, x):\n")
    logits, _, _ = served.engine.prefill(ids)
    with torch.no_grad():
        ref = hf(input_ids=torch.tensor([ids])).logits[0, -1].numpy()
    assert np.corrcoef(logits, ref)[0, 1] > 0.98


def test_prompts_use_the_family_template(imported):
    model_type, _, home, _ = imported
    served = load_model(home)
    tpl = served.template
    completion = Completer(served).complete("def add(a, b):\n    return ", "\n\nprint(add(1, 2))\n")
    assert isinstance(completion.text, str)
    from rltab.policy.completion.prompt import prompt_ids

    ids = prompt_ids("x = ", "\ny = 2\n", served.encode, served.token_id, tpl)
    if model_type == "gpt2":
        assert served.token_id("<|endoftext|>") not in ids  # left to right, no markers
    else:
        first = [served.token_id(tpl.bos)] if tpl.bos else []
        assert ids[: len(first) + 1] == first + [served.token_id(tpl.prefix)]  # prefix-suffix-middle
        assert ids[-1] == served.token_id(tpl.middle)
    if model_type == "llama":
        assert tpl.bos == "<｜begin▁of▁sentence｜>"


def test_one_update_publishes_and_swaps(imported):
    model_type, _, home, _ = imported
    served = load_model(home)
    ledger = Ledger(home / "ledger.db")
    rng = np.random.default_rng(0)
    contexts = ["def add(a, b):\n    return ", "import os\n\n\ndef main():\n    print(", "x = [1, 2, 3]\ny = "]
    for k, ctx in enumerate(contexts * 4):
        g = served.engine.generate(
            served.encode(ctx), n=2, temperature=1.0, seed=k, max_new_tokens=8, single_line=True, min_new_tokens=1
        )
        for c in g.candidates:
            sid = ledger.record_suggestion(
                SuggestionRecord(
                    served.version,
                    "line",
                    len(c.text),
                    1.0,
                    prompt_ids=g.prompt,
                    completion_ids=c.token_ids,
                    logprobs=c.logprobs,
                    completion_text=c.text,
                )
            )
            if c.text:
                ok = bool(rng.random() < 0.5)
                ledger.record_outcome(sid, "accepted" if ok else "rejected", len(c.text) if ok else 0)
    ledger.close()
    r = train_cycle(home, UpdaterConfig(min_events=4, guard_min_held_back=10**6), **QUIET)
    assert r.published, r.reason
    assert current_version(home) == r.published
    new = read_meta(home / "models" / r.published)
    assert new["parent"] == f"tiny-{model_type}" and new["family"] == model_type
    assert new["base"] == f"tiny-{model_type}" and set(os.listdir(home / "models" / r.published)) == {
        "meta.json",
        "adapter.safetensors",
        "adapter.onnx_adapter",
    }  # an adapter: the prompt layout is the base's
    swapped = load_model(home)
    assert swapped.version == r.published and swapped.template == served.template
    assert isinstance(Completer(swapped).complete("def add(a, b):\n    return ", "\n").text, str)


def test_detect_fim_for_real_tokenizer_names():
    cl = {"<s>", "</s>", "▁<PRE>", "▁<SUF>", "▁<MID>", "▁<EOT>"}
    name, t = detect_fim(cl, "</s>", "<s>")
    assert name == "codellama" and t.bos == "<s>" and t.stops == ("▁<EOT>",) and not t.spm
    name, t = detect_fim(
        {"<|endoftext|>", "<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<file_sep>"}, "<|endoftext|>"
    )
    assert name == "starcoder" and t.stop_tokens >= {"<file_sep>", "<|endoftext|>", "<fim_prefix>"}
    name, t = detect_fim({"<|endoftext|>", "hello"}, None)
    assert name == "none" and not t.has_fim and t.eos == "<|endoftext|>"
    with pytest.raises(ValueError, match="end-of-text"):
        detect_fim({"hello"}, None)


def test_cli_errors_are_clear(tmp_path, capsys):
    assert cli(["import-model", str(tmp_path / "nope"), "--home", str(tmp_path / "h")]) == 2
    assert "not a directory" in capsys.readouterr().err
    bad = tmp_path / "bert"
    bad.mkdir()
    (bad / "config.json").write_text(json.dumps({"model_type": "bert"}))
    assert cli(["import-model", str(bad), "--home", str(tmp_path / "h")]) == 2
    assert "unsupported architecture 'bert'" in capsys.readouterr().err
    (bad / "config.json").write_text(json.dumps({"model_type": "qwen2"}))
    assert cli(["import-model", str(bad), "--home", str(tmp_path / "h")]) == 2
    assert "no weights" in capsys.readouterr().err
    with pytest.raises(ImportFailure, match="not enough memory"):
        src = make_family_checkpoint(tmp_path / "q", "qwen2")
        import rltab.policy.model.importer as I

        orig = I.available_memory
        I.available_memory = lambda: 1024
        try:
            import_model(src, tmp_path / "h", progress=Silent())
        finally:
            I.available_memory = orig


def test_cli_import_then_replay_learns_on_the_imported_model(tmp_path):
    """The whole path through the command line: import-model --make-current, then a short
    learning replay that serves and updates the imported model."""
    import subprocess
    import sys

    from rltab.policy.evaluation.evaluate import click_dir

    src = make_family_checkpoint(tmp_path / "hf", "qwen2", seed=3)
    home = tmp_path / "home"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "rltab.server.cli",
            "import-model",
            str(src),
            "--name",
            "qwen-tiny",
            "--make-current",
            "--home",
            str(home),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout)["fim_style"] == "qwen"
    out = tmp_path / "learn.json"
    config = {"min_events": 4, "guard_min_held_back": 10**6}
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "rltab.server.cli",
            "replay",
            str(click_dir() / "termui.py"),
            "--learn",
            "--limit-chars",
            "1500",
            "--every",
            "24",
            "--home",
            str(home),
            "--json",
            str(out),
            "--config",
            json.dumps(config),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["model_versions"][0] == "qwen-tiny"
    assert any(u["published"] for u in result["updates"]), result["updates"]


def test_embedding_rows_past_the_tokenizer_are_never_generated(tmp_path):
    src = make_family_checkpoint(tmp_path / "hf", "qwen2", seed=5, pad_vocab=300)
    meta = import_model(src, tmp_path / "home", name="padded", progress=Silent())
    served = load_model(tmp_path / "home", "padded")
    assert meta["parameters"] > 0 and len(served.engine.token_bytes) < 700
    g = served.engine.generate(
        served.encode("def f(x):\n    return "),
        n=4,
        temperature=1.5,
        seed=0,
        max_new_tokens=24,
        min_new_tokens=24,
        single_line=False,
    )
    assert all(t < len(served.engine.token_bytes) for c in g.candidates for t in c.token_ids)
