"""rltab's int8 products in onnxruntime's two forms, on the same int8 values: MatMulNBits (8 bits,
block 128, int8 arithmetic: what quantize_int8 builds where onnxruntime has that kernel, export
format 8) and MatMulInteger (format 7, and what it builds where it has not). `--ort-quantizer`
adds onnxruntime's own MatMulNBits quantizer at 8 and 4 bits (block 32, from fp32), and a
hybrid: the prompt prefilled by the MatMulInteger graph, the tokens decoded by the 4-bit one from
the same KV cache (issue 17's lever).

    python bench/matmul_nbits.py [--size qwen0.5b] [--threads 1,2] [--rounds 3] [--json bench/results/matmul_nbits.json]

onnxruntime's quantizer needs onnx_ir, which rltab does not depend on: run `--ort-quantizer` with
a python that has it (`python -m venv --system-site-packages V && V/bin/pip install onnx_ir`).
Same checkpoint, prompt and counts as bench/vs_llama_cpp.py; run under `GLIBC_TUNABLES=glibc.malloc.hugetlb=1`
to measure as the CLI runs (policy/runtime/hugepages.py). Rounds alternate the graphs; each figure
is the median of its rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from import_sizes import build  # bench scripts share the checkpoint builder
from vs_llama_cpp import DECODE_TOKENS, GROWN

from rltab.harness.bench import write_json


def nbits(fp32: Path, out: Path, bits: int) -> Path:
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    q = MatMulNBitsQuantizer(onnx.load(str(fp32)), bits=bits, block_size=32, is_symmetric=True, accuracy_level=4)
    q.process()
    q.model.save_model_to_file(str(out), use_external_data_format=False)
    return out


def measure(engine, ids: list[int], decoder=None) -> dict:
    """Prefill 512 (median of 3), then decode per token from that cache (with `decoder`'s session:
    the hybrid), 16 greedy steps."""
    engine.prefill(ids)  # warm
    pre = []
    for _ in range(3):
        t = time.perf_counter()
        logits, past, _ = engine.prefill(ids)
        pre.append((time.perf_counter() - t) * 1000)
    step_engine = decoder or engine
    steps = []
    for _ in range(DECODE_TOKENS):
        tok = np.asarray([[int(np.argmax(logits))]], dtype=np.int64)
        t = time.perf_counter()
        out, past = step_engine._run(tok, past)
        steps.append((time.perf_counter() - t) * 1000)
        logits = out[0]
    return {"prefill_512_ms": round(statistics.median(pre), 1), "decode_ms_per_token": round(statistics.mean(steps), 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="qwen0.5b")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--ort-quantizer", action="store_true", help="add onnxruntime's quantizer (needs onnx_ir)")
    ap.add_argument("--json", default="bench/results/matmul_nbits.json")
    args = ap.parse_args()
    from rltab.policy.inference.engine import Engine
    from rltab.policy.model import tokenizer as T
    from rltab.policy.model.checkpoint import load_torch
    from rltab.policy.model.export import export_fp32
    from rltab.policy.model.quantize import quantize_int8

    served, int8 = "int8 as MatMulNBits 8-bit, block 128 (format 8)", "int8 MatMulInteger (format 7)"
    rows, sizes = [], {}
    with tempfile.TemporaryDirectory(prefix="rltab-nbits-") as tmp:
        work = Path(tmp)
        params = build(work / "hf", args.size)
        fp32 = export_fp32(load_torch(work / "hf"), work / "model.fp32.onnx", 2048, lora=False)
        graphs = {
            served: quantize_int8(fp32, work / "nbits.onnx", nbits=True),
            int8: quantize_int8(fp32, work / "int8.onnx", nbits=False),
        }
        if args.ort_quantizer:
            graphs["onnxruntime quantizer, MatMulNBits 8-bit"] = nbits(fp32, work / "nbits8.onnx", 8)
            graphs["onnxruntime quantizer, MatMulNBits 4-bit"] = nbits(fp32, work / "nbits4.onnx", 4)
        sizes = {k: round(p.stat().st_size / 2**20, 1) for k, p in graphs.items()}
        tok = T.load_tokenizer(work / "hf")
        table = T.token_bytes(tok)
        ids = (tok.encode("def f(x):\n    return x + 1\n\n").ids * 200)[:GROWN]
        for threads in (int(t) for t in args.threads.split(",")):
            engines = {k: Engine(p, table, [], threads=threads) for k, p in graphs.items()}
            runs = {k: [] for k in engines}
            for r in range(args.rounds):
                order = list(engines) if r % 2 == 0 else list(reversed(engines))
                for name in order:
                    runs[name].append(measure(engines[name], ids))
                    print(json.dumps({"graph": name, "threads": threads, "round": r, **runs[name][-1]}), flush=True)
                if args.ort_quantizer:
                    hybrid = measure(engines[int8], ids, engines["onnxruntime quantizer, MatMulNBits 4-bit"])
                    runs.setdefault("hybrid: MatMulInteger prefill, 4-bit decode", []).append(hybrid)
            for name, got in runs.items():
                row = {
                    "graph": name,
                    "threads": threads,
                    **{key: statistics.median(g[key] for g in got) for key in got[0]},
                    "rounds": got,
                }
                print(json.dumps({k: v for k, v in row.items() if k != "rounds"}), flush=True)
                rows.append(row)
            del engines
    out = {
        "size": args.size,
        "params_m": round(params / 1e6, 1),
        "file_mib": sizes,
        "huge_pages": "glibc.malloc.hugetlb=1" in os.environ.get("GLIBC_TUNABLES", ""),
        "rows": rows,
        "measured": time.strftime("%Y-%m-%d"),
    }
    write_json(out, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
