"""Prompt lookup (speculative decoding from the prompt, engine.LOOKUP_TOKENS) on real code: the
same completions with it off and on, as the server asks for them (Completer: FIM prompt, copy
distribution, healing, line and block completions), at cursor positions spread over the files.

    python bench/prompt_lookup.py PATH... [--positions 200] [--json bench/results/prompt_lookup.json]

Reports the median and mean latency per completion, how many guessed tokens were run and kept,
and how often the two completions are the same (int8's dynamic activation scales make a run of
several rows differ slightly from single steps).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from rltab.harness.bench import write_json


def positions(files: list[Path], n: int, seed: int = 0) -> list[tuple[str, str]]:
    """(before, after) at n cursor positions: line ends and mid-line points, files in turn."""
    rng = np.random.default_rng(seed)
    texts = [f.read_text(encoding="utf-8", errors="replace") for f in files]
    out = []
    while len(out) < n:
        text = texts[len(out) % len(texts)]
        lines = text.split("\n")
        i = int(rng.integers(5, max(6, len(lines) - 1)))
        line = lines[i]
        col = (
            len(line)
            if rng.random() < 0.5 or not line.strip()
            else int(rng.integers(len(line) - len(line.lstrip()), len(line) + 1))
        )
        before = "\n".join(lines[:i] + [line[:col]])
        out.append((before, text[len(before) :]))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="+", type=Path)
    ap.add_argument("--positions", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default="bench/results/prompt_lookup.json")
    args = ap.parse_args()
    files = sorted(p for root in args.paths for p in ([root] if root.is_file() else root.rglob("*.py")))
    if not files:
        print("no Python files under the given paths", file=sys.stderr)
        return 2
    import tempfile

    from rltab.policy.completion.completer import Completer
    from rltab.policy.inference.engine import LOOKUP_TOKENS
    from rltab.policy.inference.loading import load_model

    model = load_model(Path(tempfile.mkdtemp(prefix="rltab-lookup-")), threads=args.threads)
    completer = Completer(model)
    cursor = positions(files, args.positions)
    completer.complete(*cursor[0])  # warm up
    # Off and on at each position in turn, in alternating order: neither gets the warmer caches.
    settings = (0, LOOKUP_TOKENS)
    times: dict[int, list[float]] = {k: [] for k in settings}
    results: dict[int, list] = {k: [] for k in settings}
    counts = {k: [0, 0] for k in settings}
    for i, (before, after) in enumerate(cursor):
        for lookup in settings if i % 2 == 0 else settings[::-1]:
            model.engine.lookup_tokens = lookup
            model.engine.lookup_counts = counts[lookup]
            t0 = time.perf_counter()
            s = completer.complete(before, after)
            times[lookup].append((time.perf_counter() - t0) * 1000)
            results[lookup].append(s.token_ids)
    rows = {}
    for lookup in settings:
        ts = times[lookup]
        rows["off" if lookup == 0 else f"on ({lookup} tokens)"] = row = {
            "median_ms": round(statistics.median(ts), 2),
            "mean_ms": round(statistics.mean(ts), 2),
            "p90_ms": round(float(np.percentile(ts, 90)), 2),
            "tokens": sum(len(r) for r in results[lookup]),
            "guessed": counts[lookup][0],
            "kept": counts[lookup][1],
        }
        print(json.dumps({"lookup": lookup, **row}), flush=True)
    same = sum(a == b for a, b in zip(results[0], results[LOOKUP_TOKENS]))
    out = {
        "model": model.version,
        "files": len(files),
        "positions": len(cursor),
        "threads": args.threads,
        "same_completion": round(same / len(cursor), 3),
        "rows": rows,
        "measured": time.strftime("%Y-%m-%d"),
    }
    print(json.dumps({"same_completion": out["same_completion"]}))
    write_json(out, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
