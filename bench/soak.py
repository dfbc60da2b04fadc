"""A long day of typing in minutes (issue 26): the server's resident memory while a file is typed
a key at a time (one didChange per key, an inline completion every tenth), emptied every 4,000
characters and typed on, with learning off and on, and beside a large workspace.

    python bench/soak.py [--chars 20000] [--workspace DIR] [--out bench/results/soak.json]

Prints and records RSS every 2,000 messages and the growth per 1,000 messages over the second
half of the run (the first is warm-up: the model's arenas and caches, the workspace index). Text: the standard library's textwrap.py
and shlex.py, end to end.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

from rltab.harness.soak import soak
from rltab.policy.pretraining import corpus

HERE = Path(__file__).parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--chars", type=int, default=20_000)
    ap.add_argument("--workspace", help="also a run beside this folder as the workspace (e.g. a site-packages)")
    ap.add_argument("--out", default=str(HERE / "results" / "soak.json"))
    ap.add_argument(
        "--server-pythonpath",
        metavar="DIR",
        help="run the server from another checkout (a DIR with rltab/{server,policy,feedback,harness} links): before/after",
    )
    args = ap.parse_args()
    stdlib = corpus.stdlib_dir()
    text = ((stdlib / "textwrap.py").read_text() + (stdlib / "shlex.py").read_text())[: args.chars]
    runs = [("learning off", False, None), ("learning on", True, None)]
    if args.workspace:
        runs.append((f"learning off, workspace {args.workspace}", False, Path(args.workspace)))
    results = []
    for name, learning, workspace in runs:
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="rltab-soak-") as tmp:
            env = {"PYTHONPATH": args.server_pythonpath} if args.server_pythonpath else None
            s = soak(Path(tmp) / "home", text, learning, workspace, read_every=2000, rewrite_every=4000, env=env)
        row = {"run": name, "seconds": round(time.perf_counter() - t0, 1), **s.as_dict()}
        # Over the second half: warm-up (the model's arenas, the workspace index) is over by then.
        row["mb_per_1000_messages"] = round(s.mb_per_1000(skip=len(s.rss) // 2), 3)
        results.append(row)
        print(f"{name}: {s.messages} messages ({s.requests} completions) in {row['seconds']} s")
        print("  RSS MB every 2,000 messages:", " ".join(f"{r:.0f}" for _, r in s.rss))
        print(f"  growth over the second half: {row['mb_per_1000_messages']:+.2f} MB per 1,000 messages")
    out = {"chars": len(text), "machine": platform.processor() or platform.machine(), "runs": results}
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
