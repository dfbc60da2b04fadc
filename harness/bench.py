"""`rltab bench latency`: engine latency figures for one model (architecture.md §7).

Prompts are cut from the held-out stdlib modules. Every figure is a median over repeats unless
named p95. Torch eager is transformers' `generate` on the same fp32 weights, same thread count.

`latency` is one function on purpose: it is the measurement protocol, each figure in the order
BENCHMARKS reports it, sharing the model, prompts and repeats; split, it would read as plumbing.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from rltab.policy.completion.prompt import cursor_window, prompt_ids
from rltab.policy.pretraining import corpus
from rltab.policy.runtime import hugepages


def _ms(f, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        f()
        out.append((time.perf_counter() - t) * 1000)
    return out


def _pct(xs, q):
    return float(np.percentile(xs, q))


def latency(model, repeats: int = 10, new_tokens: int = 24, threads: int = 1) -> dict:
    import torch

    from rltab.policy.model.checkpoint import load_torch

    torch.set_num_threads(threads)
    eng = model.engine
    text = "\n".join(corpus.read_sources(corpus.stdlib_files("heldout")))
    ids = model.encode(text[:200_000])
    rng = np.random.default_rng(0)
    starts = rng.integers(0, len(ids) - 1100, size=repeats)

    prefill = {}
    for n in (256, 512, 1024):
        eng.prefill(ids[:n])  # warm up this shape
        prefill[str(n)] = statistics.median(_ms(lambda s=s, n=n: eng.prefill(ids[s : s + n]), 1)[0] for s in starts)

    # Decode: one token at a time after a 512-token prompt.
    _, past, _ = eng.prefill(ids[:512])
    step = np.asarray([[ids[512]]], dtype=np.int64)
    decode = statistics.median(_ms(lambda: eng._run(step, past), repeats * 5))

    # Full completion, 512-token prompt + `new_tokens` tokens: int8 engine vs torch eager generate.
    prompts = [ids[s : s + 512] for s in starts]
    engine_ms = [
        eng.generate(p, max_new_tokens=new_tokens, min_new_tokens=new_tokens, single_line=False).latency_ms
        for p in prompts
    ]
    tm = load_torch(model.path)
    torch_ms = []
    with torch.no_grad():
        tm.generate(torch.tensor([prompts[0]]), max_new_tokens=2, do_sample=False)  # warm-up
        for p in prompts:
            t = time.perf_counter()
            out = tm.generate(
                torch.tensor([p]), max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, pad_token_id=0
            )
            torch_ms.append((time.perf_counter() - t) * 1000)
            assert out.shape[1] == len(p) + new_tokens

    # KV reuse: the user types one more word; the text after the cursor stays as it was, the
    # prompt (FIM, SPM order) grows by a few tokens at its end.
    reuse_ms, fresh_tokens = [], []
    for k, s in enumerate(starts):
        chunk = text[s : s + 6000]
        cut = chunk.find(" ", 2500)
        nxt = chunk.find(" ", cut + 1)
        p1 = _fim(model, chunk[:cut], chunk[nxt:])
        p2 = _fim(model, chunk[:nxt], chunk[nxt:])
        key = f"doc{k}"
        eng.generate(p1, max_new_tokens=new_tokens, cache_key=key)
        g = eng.generate(p2, max_new_tokens=new_tokens, min_new_tokens=new_tokens, single_line=False, cache_key=key)
        reuse_ms.append(g.latency_ms)
        fresh_tokens.append(g.prefill_tokens)

    # The same with repository context (issue 14): it comes first and stays put while the user
    # types at one place, so KV reuse still prefills only the new tokens.
    from rltab.policy.completion.completer import COPY_WEIGHT
    from rltab.policy.pretraining import crossfile
    from rltab.policy.workspace.repeats import RequestRepeats, WorkspaceRepeats

    ctx, files = crossfile.stdlib_context("heldout")
    # ...and decoding copies from the workspace (the standard library's training split, 3 M tokens).
    table = WorkspaceRepeats(ctx.index, model.encode, model.tokenizer.get_vocab_size()).rebuild_now()
    ctx_ms, ctx_fresh, ctx_tokens = [], [], []
    for k in range(repeats):
        path, doc = files[int(rng.integers(len(files)))]
        if len(doc) < 4000:
            continue
        cut = doc.find(" ", int(rng.integers(1000, len(doc) - 1000)))
        nxt = doc.find(" ", cut + 1)
        p1, _ = crossfile.prompt_and_middle(ctx, path, doc, cut, nxt, model.encode, model.token_id)
        p2, _ = crossfile.prompt_and_middle(ctx, path, doc, nxt, nxt, model.encode, model.token_id)
        key = f"ctx{k}"
        copying = {"copy_weight": COPY_WEIGHT, "repeats": RequestRepeats(table, path, np.zeros(0, np.int64))}
        eng.generate(p1, max_new_tokens=new_tokens, cache_key=key, **copying)
        g = eng.generate(
            p2, max_new_tokens=new_tokens, min_new_tokens=new_tokens, single_line=False, cache_key=key, **copying
        )
        ctx_ms.append(g.latency_ms)
        ctx_fresh.append(g.prefill_tokens)
        ctx_tokens.append(len(p2))

    e, t = statistics.median(engine_ms), statistics.median(torch_ms)
    return {
        "model_version": model.version,
        "threads": threads,
        "prefill_ms": {k: round(v, 2) for k, v in prefill.items()},
        "decode_ms_per_token": round(decode, 3),
        "completion_ms": {
            "engine": round(e, 2),
            "torch_eager": round(t, 2),
            "ratio": round(e / t, 3),
            "prompt_tokens": 512,
            "new_tokens": new_tokens,
        },
        "reuse_completion_ms_p50": round(_pct(reuse_ms, 50), 2),
        "reuse_completion_ms_p95": round(_pct(reuse_ms, 95), 2),
        "reuse_prefill_tokens_median": statistics.median(fresh_tokens),
        "context_reuse_completion_ms_p50": round(_pct(ctx_ms, 50), 2) if ctx_ms else None,
        "context_reuse_completion_ms_p95": round(_pct(ctx_ms, 95), 2) if ctx_ms else None,
        "context_reuse_prefill_tokens_median": statistics.median(ctx_fresh) if ctx_fresh else None,
        "context_prompt_tokens_median": statistics.median(ctx_tokens) if ctx_tokens else None,
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine()},
        "huge_pages": hugepages.TUNABLE in os.environ.get("GLIBC_TUNABLES", ""),  # policy/runtime/hugepages.py
    }


def _fim(model, before: str, after: str) -> list[int]:
    win = cursor_window(before, after, model.encode)
    return prompt_ids(win.before, win.after, model.encode, model.token_id, model.template)


def print_latency(r: dict) -> None:
    print(f"model {r['model_version']}, {r['threads']} thread(s){', huge pages' if r.get('huge_pages') else ''}")
    for k, v in r["prefill_ms"].items():
        print(f"  prefill {k:>5} tokens      {v:8.2f} ms")
    print(f"  decode per token         {r['decode_ms_per_token']:8.3f} ms")
    c = r["completion_ms"]
    print(
        f"  512+{c['new_tokens']} completion: engine {c['engine']:.2f} ms, torch eager {c['torch_eager']:.2f} ms, ratio {c['ratio']:.3f}"
    )
    print(
        f"  one-word extension + {c['new_tokens']} tokens with KV reuse: p50 {r['reuse_completion_ms_p50']:.2f} ms, "
        f"p95 {r['reuse_completion_ms_p95']:.2f} ms, {r['reuse_prefill_tokens_median']} tokens prefilled"
    )
    if r.get("context_reuse_completion_ms_p50") is not None:
        print(
            f"  the same with repository context and workspace copying ({r['context_prompt_tokens_median']} prompt tokens): "
            f"p50 {r['context_reuse_completion_ms_p50']:.2f} ms, p95 {r['context_reuse_completion_ms_p95']:.2f} ms, "
            f"{r['context_reuse_prefill_tokens_median']} tokens prefilled"
        )


def write_json(r: dict, out: str | Path | None) -> None:
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(r, indent=2) + "\n")
