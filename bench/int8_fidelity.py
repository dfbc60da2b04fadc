"""How close the starter's int8 graph stays to its fp32 graph, in both forms of the int8 products
(export format 8's MatMulNBits and format 7's MatMulInteger, the same int8 values), on the CPU
it runs on. Two steps, so that the second needs no torch and can run under an emulated CPU:

    python bench/int8_fidelity.py build DIR          # fp32 and both int8 graphs of the starter
    python bench/int8_fidelity.py measure DIR [--label L] [--json OUT]
    qemu-x86_64 -cpu Haswell .venv/bin/python bench/int8_fidelity.py measure DIR --label "Haswell (qemu)"

`measure` teacher-forces each int8 graph on fp32's greedy path (held-out stdlib prompts of 160
tokens, 16 steps each) and reports how often it picks fp32's token and the mean KL(fp32 || int8)
per token; and one 1,024 x 4,096 product's largest error against fp32 arithmetic on the same int8
weights. Under `qemu-x86_64 -cpu Haswell` (apt: qemu-user) onnxruntime picks its kernels for an
AVX2-only CPU: what they compute is what such a CPU computes; how fast they run there is the
emulator's, not the CPU's, so no timings are reported.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

FORMS = {"MatMulNBits (format 8)": "nbits.onnx", "MatMulInteger (format 7)": "matmulinteger.onnx"}


def build(out: Path) -> None:
    from rltab.policy.model.checkpoint import STARTER_DIR, load_torch
    from rltab.policy.model.export import export_fp32
    from rltab.policy.model.quantize import quantize_int8

    out.mkdir(parents=True, exist_ok=True)
    fp32 = export_fp32(load_torch(STARTER_DIR), out / "fp32.onnx", lora=False)
    for (form, name), nbits in zip(FORMS.items(), (True, False)):
        print(form, quantize_int8(fp32, out / name, nbits=nbits))


def _log_softmax(x):
    x = x - x.max()
    return x - np.log(np.exp(x).sum())


def agreement(reference, engine, prompts) -> dict:
    """Teacher-forced on `reference`'s greedy path: the share of steps where `engine` picks the
    same token, and the mean KL(reference || engine)."""
    same = total = 0
    kl = []
    for prompt in prompts:
        logits, past, _ = reference.prefill(prompt)
        path, dists = [], []
        for _ in range(16):
            path.append(int(np.argmax(logits)))
            dists.append(_log_softmax(logits))
            logits, past = reference._run(np.array([[path[-1]]], dtype=np.int64), past)
            logits = logits[0]
        logits, past, _ = engine.prefill(prompt)
        for token, ref in zip(path, dists):
            same, total = same + int(int(np.argmax(logits)) == token), total + 1
            kl.append(float((np.exp(ref) * (ref - _log_softmax(logits))).sum()))
            logits, past = engine._run(np.array([[token]], dtype=np.int64), past)
            logits = logits[0]
    return {"same": same, "steps": total, "agreement": round(same / total, 4), "kl_mean": round(float(np.mean(kl)), 5)}


def one_product_error() -> dict:
    """One product of each form on random int8 weights: the largest error against fp32 arithmetic
    on the same int8 values, relative to the largest output."""
    from rltab.policy.model.quantize import one_product

    rng = np.random.default_rng(0)
    q = rng.integers(-127, 128, (1024, 4096), dtype=np.int8)
    scale = np.full(4096, 0.01, np.float32)
    x = rng.standard_normal((1, 1024)).astype(np.float32)
    exact = x @ (q.astype(np.float32) * scale)
    errors = {}
    for form, op in zip(FORMS, ("MatMulNBits", "DynamicQuantizeMatMul")):
        y = one_product(op, q, scale).run(None, {"x": x})[0]
        errors[form] = round(float(np.abs(y - exact).max() / np.abs(exact).max()), 5)
    return errors


def measure(work: Path, label: str, prompts_n: int) -> dict:
    from rltab.policy.inference.engine import Engine
    from rltab.policy.model import tokenizer as T
    from rltab.policy.model.checkpoint import STARTER_DIR
    from rltab.policy.pretraining import corpus

    tok = T.load_tokenizer(STARTER_DIR)
    table = T.token_bytes(tok)
    reference = Engine(work / "fp32.onnx", table, [], threads=1)
    ids = tok.encode("\n".join(corpus.read_sources(corpus.stdlib_files("heldout")))[:300_000]).ids
    prompts = [ids[s : s + 160] for s in np.random.default_rng(1).integers(0, len(ids) - 200, prompts_n)]
    out = {
        "label": label,
        "prompts": prompts_n,
        "tokens_per_prompt": 16,
        "one_product_relative_error": one_product_error(),
    }
    for form, name in FORMS.items():
        out[form] = agreement(reference, Engine(work / name, table, [], threads=1), prompts)
        print(form, json.dumps(out[form]), flush=True)
    print("one product, largest error / largest output:", json.dumps(out["one_product_relative_error"]))
    out["measured"] = time.strftime("%Y-%m-%d")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("step", choices=["build", "measure"])
    ap.add_argument("dir")
    ap.add_argument("--label", default="this machine", help="the CPU as the run sees it (an emulator's model, say)")
    ap.add_argument("--prompts", type=int, default=60)
    ap.add_argument("--json")
    args = ap.parse_args()
    if args.step == "build":
        build(Path(args.dir))
        return 0
    result = measure(Path(args.dir), args.label, args.prompts)
    if args.json:
        from rltab.harness.bench import write_json

        write_json(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
