"""rltab's hand-written int8 graph against onnxruntime-genai's model builder (issue 17's lever:
GroupQueryAttention and MatMulNBits, the fused decoder ops onnxruntime ships), same weights.

    python bench/vs_genai_builder.py --genai-python /path/to/venv/bin/python \\
        [--size qwen0.5b] [--threads 1] [--json bench/results/vs_genai_builder.json]

The builder and onnxruntime-genai are not rltab dependencies: install them into a separate
environment (`python -m venv --system-site-packages V && V/bin/pip install onnxruntime-genai
onnx_ir`) and name its python. One random-initialised checkpoint of the size's shape is imported
into rltab (int8 ONNX, as served; measured as bench/vs_llama_cpp.py measures it, prompt lookup
off) and built by the builder for the CPU at int8 and int4 (MatMulNBits, accuracy level 4: int8
arithmetic), then run by onnxruntime-genai's generator: prefill of 512 tokens (fresh generator,
median of 3) and greedy decode per token (16 tokens).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from import_sizes import build, imported  # bench scripts share the checkpoint builder
from vs_llama_cpp import GROWN, RLTAB, run

from rltab.harness.bench import write_json

VERIFY = r"""
import json, sys, time, numpy as np
from pathlib import Path
from rltab.policy.inference.loading import load_model
home, name, threads = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
ids = json.loads(sys.argv[4])
e = load_model(home, name, threads=threads).engine
_, past, _ = e.prefill(ids)
out = {}
for k in (1, 9):  # one decoding step, and a step that also checks 8 prompt-lookup guesses
    run = np.asarray([ids[:k]], dtype=np.int64)
    e._run_rows(run, past)
    ts = []
    for _ in range(5):
        t = time.perf_counter(); e._run_rows(run, past); ts.append((time.perf_counter() - t) * 1000)
    out[f"run_{k}_tokens_ms"] = round(float(np.median(ts)), 2)
print(json.dumps(out))
"""

GENAI = r"""
import json, sys, time, numpy as np
import onnxruntime_genai as og
path, threads, ids, n = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]), json.loads(sys.argv[4])
cfg_path = f"{path}/genai_config.json"
cfg = json.load(open(cfg_path))
cfg["model"]["decoder"].setdefault("session_options", {})["intra_op_num_threads"] = threads
cfg["model"]["decoder"]["session_options"]["inter_op_num_threads"] = 1
json.dump(cfg, open(cfg_path, "w"))
model = og.Model(path)
def generator():
    p = og.GeneratorParams(model)
    p.set_search_options(max_length=len(ids) + n["decode"] + 8, do_sample=False)
    return og.Generator(model, p)
def prefill():
    g = generator(); t = time.perf_counter(); g.append_tokens(np.asarray(ids, np.int32)); return (time.perf_counter() - t) * 1000, g
prefill()  # warm
runs = [prefill() for _ in range(3)]
pre = float(np.median([r[0] for r in runs]))
g = runs[-1][1]
steps = []
for _ in range(n["decode"]):
    t = time.perf_counter(); g.generate_next_token(); steps.append((time.perf_counter() - t) * 1000)
print(json.dumps({"prefill_512_ms": round(pre, 1), "decode_ms_per_token": round(float(np.mean(steps)), 2)}))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--genai-python", required=True, help="a python with onnxruntime-genai and onnx_ir")
    ap.add_argument("--size", default="qwen0.5b")
    ap.add_argument("--threads", default="1")
    ap.add_argument("--json", default="bench/results/vs_genai_builder.json")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="rltab-genai-") as tmp:
        work = Path(tmp)
        src, home = work / "hf", work / "home"
        params = build(src, args.size)
        imported(src, home)
        built, sizes = {}, {}
        for precision in ("int8", "int4"):
            out = work / f"genai-{precision}"
            t0 = time.perf_counter()
            b = subprocess.run(
                [args.genai_python, "-m", "onnxruntime_genai.models.builder", "-i", str(src), "-o", str(out)]
                + ["-p", precision, "-e", "cpu", "-c", str(work / "cache"), "--extra_options", "accuracy_level=4"],
                capture_output=True,
                text=True,
            )
            if b.returncode != 0:
                rows.append({"engine": f"builder {precision}", "error": b.stderr[-1500:]})
                continue
            built[precision] = out
            sizes[precision] = round(sum(f.stat().st_size for f in out.glob("*.onnx*")) / 2**20, 1)
            print(f"built {precision} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(src / "tokenizer.json"))
        ids = (tok.encode("def f(x):\n    return x + 1\n\n").ids * 200)[:GROWN]
        for threads in (int(t) for t in args.threads.split(",")):
            runs = [("rltab int8 (hand-written graph)", sys.executable, RLTAB, (str(home), "m", str(threads)))]
            runs += [
                (
                    "rltab int8: one step against 1 + 8 lookup guesses",
                    sys.executable,
                    VERIFY,
                    (str(home), "m", str(threads)),
                )
            ]
            runs += [
                (f"genai builder {p} (GQA, MatMulNBits)", args.genai_python, GENAI, (str(d), str(threads)))
                for p, d in built.items()
            ]
            for name, python, code, a in runs:
                row = {"engine": name, "threads": threads}
                row.update(run(code, *a, json.dumps(ids), threads=threads, python=python))
                print(json.dumps(row), flush=True)
                rows.append(row)
        onnx = home / "models" / "m" / "model.int8.onnx"
        sizes["rltab_int8"] = round(onnx.stat().st_size / 2**20, 1) if onnx.exists() else None
    out = {
        "size": args.size,
        "params_m": round(params / 1e6, 1),
        "file_mb": sizes,
        "prompt_tokens": GROWN,
        "rows": rows,
        "measured": time.strftime("%Y-%m-%d"),
    }
    write_json(out, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
