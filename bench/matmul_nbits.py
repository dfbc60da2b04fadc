"""rltab's own graph with onnxruntime's MatMulNBits weights (4 and 8 bits, int8 arithmetic)
against its dynamic-int8 MatMulInteger graph, and a hybrid: the prompt prefilled by the int8
graph, the tokens decoded by the 4-bit one from the same KV cache (issue 17's lever).

    V/bin/python bench/matmul_nbits.py [--size qwen0.5b] [--threads 1,2] [--json bench/results/matmul_nbits.json]

onnxruntime's MatMulNBits quantizer needs onnx_ir, which rltab does not depend on: run it with a
python that has it (`python -m venv --system-site-packages V && V/bin/pip install onnx_ir`).
Same checkpoint, prompt and counts as bench/vs_llama_cpp.py.
"""

from __future__ import annotations

import argparse
import json
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
    ap.add_argument("--json", default="bench/results/matmul_nbits.json")
    args = ap.parse_args()
    from rltab.policy.inference.engine import Engine
    from rltab.policy.model import tokenizer as T
    from rltab.policy.model.checkpoint import load_torch
    from rltab.policy.model.export import export_fp32
    from rltab.policy.model.quantize import quantize_int8

    rows, sizes = [], {}
    with tempfile.TemporaryDirectory(prefix="rltab-nbits-") as tmp:
        work = Path(tmp)
        params = build(work / "hf", args.size)
        fp32 = export_fp32(load_torch(work / "hf"), work / "model.fp32.onnx", 2048, lora=False)
        graphs = {
            "int8 MatMulInteger (served)": quantize_int8(fp32, work / "int8.onnx"),
            "MatMulNBits 8-bit": nbits(fp32, work / "nbits8.onnx", 8),
            "MatMulNBits 4-bit": nbits(fp32, work / "nbits4.onnx", 4),
        }
        sizes = {k: round(p.stat().st_size / 2**20, 1) for k, p in graphs.items()}
        tok = T.load_tokenizer(work / "hf")
        table = T.token_bytes(tok)
        ids = (tok.encode("def f(x):\n    return x + 1\n\n").ids * 200)[:GROWN]
        for threads in (int(t) for t in args.threads.split(",")):
            engines = {k: Engine(p, table, [], threads=threads) for k, p in graphs.items()}
            for name, e in engines.items():
                row = {"graph": name, "threads": threads, **measure(e, ids)}
                print(json.dumps(row), flush=True)
                rows.append(row)
            hybrid = measure(engines["int8 MatMulInteger (served)"], ids, engines["MatMulNBits 4-bit"])
            row = {"graph": "hybrid: int8 prefill, 4-bit decode", "threads": threads, **hybrid}
            print(json.dumps(row), flush=True)
            rows.append(row)
            del engines
    out = {
        "size": args.size,
        "params_m": round(params / 1e6, 1),
        "file_mb": sizes,
        "rows": rows,
        "measured": time.strftime("%Y-%m-%d"),
    }
    write_json(out, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
