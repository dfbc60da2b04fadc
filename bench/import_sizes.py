"""What an imported model costs on this machine, per size (issue 7; docs/models.md).

    python bench/import_sizes.py [--sizes tiny,30m,120m,qwen0.5b] [--json bench/results/import_sizes.json]

For each size: build a random-initialised Qwen2-shaped checkpoint (latency and memory do not
depend on the weights' values; `qwen0.5b` has Qwen2.5-Coder-0.5B's exact shape), then in fresh
processes `rltab import-model` it (wall time, peak RSS, int8 file size) and serve it (RSS after
loading, prefill of 512 tokens, decode per token, one thread as the server uses). Run it with the
starter's background training stopped.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZES = {  # Qwen2 shapes: hidden, layers, heads, kv heads, intermediate, vocab
    "tiny": (64, 2, 4, 2, 128, 8192),
    "30m": (384, 8, 6, 2, 1024, 32000),
    "120m": (768, 12, 12, 2, 2048, 32000),
    "qwen0.5b": (896, 24, 14, 2, 4864, 151936),
}

SERVE = r"""
import json, resource, sys, time, numpy as np
from pathlib import Path
from rltab.policy.inference.loading import load_model
home, name = Path(sys.argv[1]), sys.argv[2]
t = time.perf_counter(); m = load_model(home, name); load_s = time.perf_counter() - t
ids = (m.encode("def f(x):\n    return x + 1\n\n") * 200)[:512]
m.engine.prefill(ids)  # warm
pre = []
for _ in range(3):
    t = time.perf_counter(); m.engine.prefill(ids); pre.append((time.perf_counter() - t) * 1000)
t = time.perf_counter()
g = m.engine.generate(ids, n=1, temperature=0.0, max_new_tokens=16, min_new_tokens=16, single_line=False, heal=False)
total = (time.perf_counter() - t) * 1000
tokens = max(1, len(g.candidates[0].token_ids))
print(json.dumps({"load_s": round(load_s, 2), "prefill_512_ms": round(float(np.median(pre)), 1),
                  "decode_ms_per_token": round((total - float(np.median(pre))) / tokens, 2),
                  "serve_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))
"""


def imported(src: Path, home: Path, name: str = "m") -> None:
    """`rltab import-model src --name name` into `home` (int8 ONNX, as served), or exit saying why."""
    r = subprocess.run(
        [sys.executable, "-m", "rltab.server.cli", "import-model", str(src), "--name", name, "--home", str(home)],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        raise SystemExit(f"import-model failed: {r.stderr[-800:]}")


def build(directory: Path, size: str) -> int:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from rltab.policy.model.checkpoint import STARTER_DIR, TOKENIZER_FILES

    h, layers, heads, kv, inter, vocab = SIZES[size]
    torch.manual_seed(0)
    cfg = Qwen2Config(
        hidden_size=h,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv,
        intermediate_size=inter,
        vocab_size=vocab,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        eos_token_id=0,
        bos_token_id=0,
    )
    model = Qwen2ForCausalLM(cfg).to(torch.bfloat16)
    model.save_pretrained(str(directory), safe_serialization=True)
    for name in TOKENIZER_FILES:  # rltab's tokenizer carries Qwen's FIM token names
        if (STARTER_DIR / name).exists():
            shutil.copy(STARTER_DIR / name, directory / name)
    return sum(p.numel() for p in model.parameters())


def child_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def measure(size: str, work: Path) -> dict:
    src, home = work / f"hf-{size}", work / f"home-{size}"
    params = build(src, size)
    before = child_rss_mb()
    t = time.perf_counter()
    r = subprocess.run(
        [sys.executable, "-m", "rltab.server.cli", "import-model", str(src), "--name", size, "--home", str(home)],
        capture_output=True,
        text=True,
        env={"OMP_NUM_THREADS": "1", **_env()},
    )
    import_s = time.perf_counter() - t
    if r.returncode != 0:
        return {"size": size, "params": params, "error": r.stderr[-500:]}
    import_rss = child_rss_mb()  # max over children so far: sizes run smallest first
    onnx = home / "models" / size / "model.int8.onnx"
    s = subprocess.run(
        [sys.executable, "-c", SERVE, str(home), size],
        capture_output=True,
        text=True,
        env={"OMP_NUM_THREADS": "1", **_env()},
    )
    served = json.loads(s.stdout.strip().splitlines()[-1]) if s.returncode == 0 else {"error": s.stderr[-500:]}
    out = {
        "size": size,
        "params_m": round(params / 1e6, 1),
        "import_s": round(import_s, 1),
        "import_peak_rss_mb": round(max(import_rss, before)),
        "int8_onnx_mb": round(onnx.stat().st_size / 2**20, 1),
        **served,
    }
    shutil.rmtree(src, ignore_errors=True)
    shutil.rmtree(home, ignore_errors=True)
    return out


def _env() -> dict:
    import os

    return {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="tiny,30m,120m,qwen0.5b")
    ap.add_argument("--json", default="bench/results/import_sizes.json")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="rltab-sizes-") as tmp:
        for size in args.sizes.split(","):
            row = measure(size, Path(tmp))
            print(json.dumps(row), flush=True)
            rows.append(row)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"rows": rows, "threads": 1}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
