"""Versions are LoRA adapters applied at run time: the base's int8 ONNX graph (exported once, with
optional LoRA inputs) serves any adapter file through onnxruntime's adapter API, as the torch
model with that LoRA would; each adapter keeps its own prefix KV cache; an update writes only
the adapter."""

import numpy as np
import torch
from helpers import random_adapter

from rltab.policy.inference.loading import load_model
from rltab.policy.model import adapters as A
from rltab.policy.model.checkpoint import STARTER_DIR, read_meta
from rltab.policy.model.formats import ADAPTER_ONNX

PREFIXES = [
    "import os\n\n\ndef main(args):\n    return ",
    "class Point:\n    def __init__(self, x, y):\n        self.",
    "for i in range(len(items)):\n    if items[i] ",
    "with open(path) as f:\n    data = json.",
]


def test_an_adapter_serves_what_the_torch_lora_model_computes(tmp_path, starter):
    home = tmp_path / "home"
    torch_model, d, size = random_adapter(home, "v0001", seed=1)
    served = load_model(home, "v0001")
    assert served.engine.adapter == d / ADAPTER_ONNX
    assert size < 2_000_000 and (d / ADAPTER_ONNX).exists() and not (d / "model.int8.onnx").exists()
    agree, moved, corr = 0, 0, []
    for text in PREFIXES:
        ids = starter.encode(text)
        with torch.no_grad():
            ref = torch_model(input_ids=torch.tensor([ids])).logits[0, -1].numpy()
        got, _, _ = served.engine.prefill(ids)
        base, _, _ = starter.engine.prefill(ids)
        agree += int(np.argmax(got) == np.argmax(ref))
        moved += int(np.abs(got - base).max() > 1.0)  # the adapter really changes the output
        corr.append(np.corrcoef(got, ref[: len(got)])[0, 1])
    # int8 noise under a large random adapter: the embedding read from the LM head's 7-bit int8
    # matrix (export format 6) moved one prompt to 0.979 while the starter's agreement with fp32
    # rose (per-column scales: greedy 96.8 -> 97.8 %, KL 0.0023 -> 0.0015).
    assert min(corr) > 0.97 and np.mean(corr) > 0.99, corr
    assert agree >= len(PREFIXES) - 1 and moved == len(PREFIXES)


def test_each_adapter_keeps_its_own_kv_cache(tmp_path, starter):
    home = tmp_path / "home"
    random_adapter(home, "v0001", seed=1)
    random_adapter(home, "v0002", seed=2)
    one, two = load_model(home, "v0001"), load_model(home, "v0002")
    ids = starter.encode(PREFIXES[0])
    fresh = {m.version: m.engine.generate(ids, max_new_tokens=6).candidates[0].text for m in (one, two)}
    for m in (one, two, one, two):  # same document key on both: each must reuse only its own keys
        m.engine.generate(ids + starter.encode("x"), max_new_tokens=6, cache_key="file:///a.py")
        g2 = m.engine.generate(ids, max_new_tokens=6, cache_key="file:///a.py")
        assert g2.candidates[0].text == fresh[m.version]
        assert g2.reused_tokens > 0
    assert one.engine.session is two.engine.session  # one base graph in memory for every adapter


def test_an_adapter_version_resumes_training_from_its_weights(tmp_path, starter):
    home = tmp_path / "home"
    torch_model, d, _ = random_adapter(home, "v0001", seed=3)
    again = A.policy(home, d)
    ids = torch.tensor([starter.encode(PREFIXES[1])])
    with torch.no_grad():
        torch.testing.assert_close(again(input_ids=ids).logits, torch_model(input_ids=ids).logits)
    assert read_meta(d)["lora"] == {"r": 8, "alpha": 16}


def test_the_base_serves_a_graph_without_lora_terms(starter):
    """The base model's own graph has no LoRA inputs or terms (each would cost two MatMuls and an
    Add per projection on every step) and computes what the LoRA graph computes with no adapter."""
    import onnx

    from rltab.policy.model.build_int8 import onnx_path
    from rltab.policy.model.export import LORA_ONNX, PLAIN_ONNX

    plain, lora = onnx.load(str(onnx_path(STARTER_DIR))), onnx.load(str(onnx_path(STARTER_DIR, lora=True)))
    assert onnx_path(STARTER_DIR).name == PLAIN_ONNX and onnx_path(STARTER_DIR, lora=True).name == LORA_ONNX
    assert not [i for i in plain.graph.input if "lora" in i.name]
    assert len([i for i in lora.graph.input if "lora" in i.name]) == 2 * 7 * 4  # 7 projections, 4 layers
    assert len(plain.graph.node) < len(lora.graph.node) - 3 * 7 * 4
    from rltab.policy.inference.engine import Engine

    with_lora = Engine(onnx_path(STARTER_DIR, lora=True), starter.engine.token_bytes, sorted(starter.engine.stop_ids))
    for text in PREFIXES:
        ids = np.asarray([starter.encode(text)], np.int64)
        a, _ = starter.engine._run(ids, starter.engine.empty_past())
        b, _ = with_lora._run(ids, with_lora.empty_past())
        assert np.allclose(a, b, atol=1e-4)
