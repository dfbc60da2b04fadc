"""rltab's engine against llama.cpp on the same weights (issue 17; BENCHMARKS.md).

    python bench/vs_llama_cpp.py --convert /path/to/llama.cpp/convert_hf_to_gguf.py \\
        [--size qwen0.5b] [--threads 1,2] [--json bench/results/vs_llama_cpp.json]

One random-initialised Qwen2-shaped checkpoint (`qwen0.5b`: Qwen2.5-Coder-0.5B's exact shape;
speed does not depend on the weights' values) is imported into rltab (int8 ONNX, as served) and
converted to GGUF (Q8_0 by llama.cpp's converter, Q4_K_M by llama.cpp's quantizer). Each engine
then runs the same token ids: prefill of 512 tokens (fresh, median of 3), decode per token
(greedy, 16 tokens), and a 24-token completion after the prompt grew by 12 tokens (the KV cache of
the previous request reused, as in typing; median of 3). Needs llama-cpp-python, built from its sdist
(`pip install llama-cpp-python==0.3.36`), and the converter script of the same llama.cpp: the
sdist carries it as vendor/llama.cpp/convert_hf_to_gguf.py (with vendor/llama.cpp/gguf-py).
Run it with the starter's background training stopped.

Both engines' decode is the mean of single-token steps (greedy, the cache growing from 512), and
the JSON records the CPU: its name, its vector and matrix instruction sets, the cores available.
`--plain-too` adds llama.cpp without its repacked weight buffers. rltab runs as its CLI runs, with
malloc's huge pages where the machine has them (policy/runtime/hugepages.py), llama.cpp as its users
run it; `--both-page-sizes` runs each both ways.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from import_sizes import build, imported  # bench scripts share the checkpoint builder

from rltab.harness.bench import write_json
from rltab.harness.llama_cpp import model_to_gguf
from rltab.policy.runtime import hugepages

PROMPT, GROWN, NEW_TOKENS, DECODE_TOKENS, REPEATS = 500, 512, 24, 16, 3  # completion: median of REPEATS

RLTAB = r"""
import json, sys, time, numpy as np
from pathlib import Path
from rltab.policy.inference.loading import load_model
home, name, threads = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
ids, n = json.loads(sys.argv[4]), json.loads(sys.argv[5])  # n: prompt, decode and new token counts
m = load_model(home, name, threads=threads)
e = m.engine
e.lookup_tokens = 0  # like for like: one token per decoding step (prompt lookup: bench/prompt_lookup.py)
e.prefill(ids)  # warm
pre = []
for _ in range(3):
    t = time.perf_counter(); e.prefill(ids); pre.append((time.perf_counter() - t) * 1000)
# Decode as llama.cpp's side times it: each single-token step on its own, greedy, the cache growing.
logits, past, _ = e.prefill(ids)
steps = []
for _ in range(n["decode"]):
    tok = np.array([[int(np.argmax(logits))]], dtype=np.int64)
    t = time.perf_counter(); logits, past = e._run(tok, past); steps.append((time.perf_counter() - t) * 1000)
    logits = logits[0]
def grown(i):  # the previous request's prompt is cached; the grown one prefills its new tokens and decodes
    e.generate(ids[:n["prompt"]], n=1, temperature=0.0, max_new_tokens=1, single_line=False, heal=False, cache_key=f"doc{i}")
    t = time.perf_counter()
    e.generate(ids, n=1, temperature=0.0, max_new_tokens=n["new"], min_new_tokens=n["new"], single_line=False,
               heal=False, cache_key=f"doc{i}")
    return (time.perf_counter() - t) * 1000
done = [grown(i) for i in range(n["repeats"])]
print(json.dumps({"prefill_512_ms": round(float(np.median(pre)), 1), "decode_ms_per_token": round(float(np.mean(steps)), 2),
                  "completion_24_kv_reuse_ms": round(float(np.median(done)), 1)}))
"""

LLAMA = r"""
import json, sys, time, numpy as np
import llama_cpp.llama_cpp as C
path, threads, ids, extra = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4] == "1"
n = json.loads(sys.argv[5])  # prompt, decode and new token counts
if not extra:  # llama.cpp's repacked weight buffers (AMX, AVX-512) off: the plain CPU kernels
    default = C.llama_model_default_params
    def plain():
        p = default(); p.use_extra_bufts = False; return p
    C.llama_model_default_params = plain
from llama_cpp import Llama
llm = Llama(model_path=path, n_ctx=1024, n_batch=512, n_threads=threads, n_threads_batch=threads, verbose=False)
def fresh_prefill():
    llm.reset(); t = time.perf_counter(); llm.eval(ids); return (time.perf_counter() - t) * 1000
fresh_prefill()  # warm
pre = float(np.median([fresh_prefill() for _ in range(3)]))
steps = []
for _ in range(n["decode"]):
    last = C.llama_get_logits_ith(llm._ctx.ctx, -1)  # the newest token's logits (only those are computed)
    tok = int(np.argmax(np.ctypeslib.as_array(last, shape=(llm.n_vocab(),))))
    t = time.perf_counter(); llm.eval([tok]); steps.append((time.perf_counter() - t) * 1000)
def grown():
    llm.reset(); llm.eval(ids[:n["prompt"]])  # the previous request's prompt is in the KV cache
    t = time.perf_counter()
    out = []
    for tok in llm.generate(ids, top_k=1, temp=0.0):  # reuses the cached prefix, evaluates the rest
        out.append(tok)
        if len(out) == n["new"]:
            break
    return (time.perf_counter() - t) * 1000
done = [grown() for _ in range(n["repeats"])]
print(json.dumps({"prefill_512_ms": round(pre, 1), "decode_ms_per_token": round(float(np.mean(steps)), 2),
                  "completion_24_kv_reuse_ms": round(float(np.median(done)), 1)}))
"""


def run(code: str, *args: str, threads: int, python: str = sys.executable, huge_pages: bool = False) -> dict:
    """`code` in a fresh `python` on `threads` threads, with the token counts last; its last line's
    JSON. `huge_pages`: malloc told to use transparent huge pages, as the rltab CLI runs
    (policy/runtime/hugepages.py)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    env = hugepages.environment(env) if huge_pages else hugepages.without(env)
    counts = json.dumps({"prompt": PROMPT, "decode": DECODE_TOKENS, "new": NEW_TOKENS, "repeats": REPEATS})
    r = subprocess.run([python, "-c", code, *args, counts], capture_output=True, text=True, env=env)
    if r.returncode != 0:  # a signal (llama.cpp segfaults with AMX-repacked Q8_0 here) says little on stderr
        return {"error": r.stderr[-800:] or f"exit code {r.returncode}"}
    return json.loads(r.stdout.strip().splitlines()[-1])


def to_gguf(convert: Path, src: Path, work: Path) -> dict[str, Path]:
    """Q8_0 from the converter (harness.llama_cpp.model_to_gguf: rltab's tokenizer declared Qwen2's;
    the ids are what is compared here, not their text); Q4_K_M quantized from an F16 file by
    llama.cpp's own quantizer."""
    out = {q: model_to_gguf(src, work / f"model-{q}.gguf", q, convert.parent) for q in ("q8_0", "f16")}
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M
    q4 = work / "model-q4_k_m.gguf"
    if llama_cpp.llama_model_quantize(str(out["f16"]).encode(), str(q4).encode(), params) != 0:
        raise RuntimeError("llama_model_quantize failed")
    out["q4_k_m"] = q4
    return out


ISA_FLAGS = (
    "avx2",
    "fma",
    "f16c",
    "avx_vnni",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx512_bf16",
    "amx_int8",
    "amx_bf16",
)


def cpu() -> dict:
    """What the figures were measured on: /proc/cpuinfo's model name and instruction sets."""
    first = Path("/proc/cpuinfo").read_text().split("\n\n")[0] if Path("/proc/cpuinfo").exists() else ""
    fields = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in first.splitlines())}
    flags = set(fields.get("flags", "").split())
    return {
        "name": fields.get("model name") or platform.processor(),
        "isa": [f for f in ISA_FLAGS if f in flags],
        "cores_available": len(os.sched_getaffinity(0)),
    }


FIGURES = ("prefill_512_ms", "decode_ms_per_token", "completion_24_kv_reuse_ms")


def medians(raw: list[dict]) -> list[dict]:
    """One row per engine and thread count: each figure's median over the rounds."""
    keys = list(dict.fromkeys((r["engine"], r["threads"]) for r in raw))
    out = []
    for engine, threads in keys:
        runs = [r for r in raw if (r["engine"], r["threads"]) == (engine, threads) and "error" not in r]
        row = {"engine": engine, "threads": threads}
        if not runs:
            row["error"] = next(r["error"] for r in raw if (r["engine"], r["threads"]) == (engine, threads))
        for f in FIGURES if runs else ():
            row[f] = round(statistics.median(r[f] for r in runs), 2)
        out.append(row)
        print(json.dumps({"median": row}), flush=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--convert", required=True, type=Path, help="llama.cpp's convert_hf_to_gguf.py")
    ap.add_argument("--size", default="qwen0.5b")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--json", default="bench/results/vs_llama_cpp.json")
    ap.add_argument("--build-label", default="", help="how llama-cpp-python was built (CMAKE_ARGS), for the JSON")
    ap.add_argument("--plain-too", action="store_true", help="also llama.cpp without its repacked weight buffers")
    ap.add_argument("--quants", default="q8_0,q4_k_m", help="llama.cpp's files to run (q8_0, q4_k_m)")
    ap.add_argument("--rounds", type=int, default=1, help="run every engine this many times, in alternating order")
    ap.add_argument(
        "--both-page-sizes",
        action="store_true",
        help="every engine with and without malloc's huge pages (default: rltab with them, as its CLI runs; "
        "llama.cpp without, as its users run it)",
    )
    args = ap.parse_args()
    import llama_cpp

    with tempfile.TemporaryDirectory(prefix="rltab-llama-") as tmp:
        work = Path(tmp)
        src, home = work / "hf", work / "home"
        params = build(src, args.size)
        imported(src, home)
        ggufs = to_gguf(args.convert, src, work)
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(src / "tokenizer.json"))
        ids = (tok.encode("def f(x):\n    return x + 1\n\n").ids * 200)[:GROWN]
        huge = hugepages.available()
        rltab_pages = (False, True) if args.both_page_sizes and huge else (huge,)
        llama_pages = (False, True) if args.both_page_sizes and huge else (False,)
        quants = args.quants.split(",")
        raw: list[dict] = []
        for r in range(args.rounds):
            for threads in (int(t) for t in args.threads.split(",")):
                # rltab as its CLI runs (huge pages where available); llama.cpp as its users run it
                engines = [
                    (
                        f"rltab int8 (ONNX){', huge pages' if h else ''}",
                        RLTAB,
                        (str(home), "m", str(threads), json.dumps(ids)),
                        h,
                    )
                    for h in rltab_pages
                ]
                engines += [
                    (
                        f"llama.cpp {q.upper()}{'' if extra else ', no repacked buffers'}{', huge pages' if h else ''}",
                        LLAMA,
                        (str(ggufs[q]), str(threads), json.dumps(ids), "1" if extra else "0"),
                        h,
                    )
                    for q in quants
                    for extra in ((True, False) if args.plain_too else (True,))
                    for h in llama_pages
                ]
                # Rounds alternate the order: a neighbour's load on this VM falls on every engine alike.
                for name, code, a, h in engines if r % 2 == 0 else engines[::-1]:
                    row = {
                        "engine": name,
                        "threads": threads,
                        "round": r,
                        **run(code, *a, threads=threads, huge_pages=h),
                    }
                    print(json.dumps(row), flush=True)
                    raw.append(row)
        sizes = {q: round(p.stat().st_size / 2**20, 1) for q, p in ggufs.items()}
        onnx = home / "models" / "m" / "model.int8.onnx"
        onnx_mb = round(onnx.stat().st_size / 2**20, 1) if onnx.exists() else None
    out = {
        "cpu": cpu(),
        "size": args.size,
        "params_m": round(params / 1e6, 1),
        "llama_cpp_python": llama_cpp.__version__,
        "llama_cpp_build": args.build_label,
        "file_mb": {**sizes, "rltab_int8_onnx": onnx_mb},
        "prompt_tokens": GROWN,
        "rounds": args.rounds,
        "rows": medians(raw),
        "raw": raw,
        "measured": time.strftime("%Y-%m-%d"),
    }
    write_json(out, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
