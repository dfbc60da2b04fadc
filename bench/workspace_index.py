"""Workspace index benchmark (issue 14): build a 1,000-file repository's index and its token
table (the copy distribution's workspace source), then time the context of a request, a table
lookup, and an open document's update.

    python bench/workspace_index.py            # -> bench/results/workspace_index.json

The repository is 1,000 real Python files (the standard library's, copied into a temporary
folder with a .gitignore), so sizes and identifiers are those of real code.
"""

from __future__ import annotations

import json
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from rltab.policy.model import tokenizer as T
from rltab.policy.model.checkpoint import STARTER_DIR
from rltab.policy.pretraining import corpus
from rltab.policy.workspace.index import WorkspaceIndex
from rltab.policy.workspace.repeats import WorkspaceRepeats
from rltab.policy.workspace.repo_context import RepoContext, Where

HERE = Path(__file__).parent


def make_repo(n_files: int) -> Path:
    root = Path(tempfile.mkdtemp(prefix="rltab-ws-"))
    src = corpus.stdlib_dir()
    files = [p for p in sorted(src.rglob("*.py")) if "site-packages" not in p.parts][:n_files]
    for p in files:
        dst = root / p.relative_to(src)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(p, dst)
    (root / ".gitignore").write_text("__pycache__/\n*.pyc\n")
    return root


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q / 100 * (len(xs) - 1)))]


def main() -> int:
    n_files = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    root = make_repo(n_files)
    try:
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        tracemalloc.start()
        index = WorkspaceIndex()
        t = time.perf_counter()
        index.start([root])
        index.wait_ready()
        build_s = time.perf_counter() - t
        _, peak = tracemalloc.get_traced_memory()
        current, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        stats = index.stats()

        tok = T.load_tokenizer(STARTER_DIR)
        encode = lambda s: tok.encode(s).ids
        ctx = RepoContext(index)
        rng = random.Random(0)
        paths = [p for p in index.paths() if p.endswith(".py")]
        assemble_ms, cached_ms = [], []
        for _ in range(200):
            path = rng.choice(paths)
            text = index.text(path)
            lines = text.split("\n")
            line = rng.randrange(len(lines))
            before = "\n".join(lines[: line + 1])
            where = Where(path, before, line, (max(0, line - 25), line + 1), "python")
            t = time.perf_counter()
            ctx.snippets(where, encode)
            assemble_ms.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            ctx.snippets(where, encode)  # typing on at the same place: the cached context
            cached_ms.append((time.perf_counter() - t) * 1000)

        # The token table: built off the request path; one lookup per decoded token.
        repeats = WorkspaceRepeats(index, encode, tok.get_vocab_size())
        t = time.perf_counter()
        table = repeats.rebuild_now()
        table_s = time.perf_counter() - t
        table_mb = sum(a.nbytes for a in (table.tokens, table.keys, table.positions)) / 1e6
        lookup_ms = []
        for _ in range(2000):
            ids = table.tokens[rng.randrange(table.tokens.size - 12) :][:12].tolist()
            t = time.perf_counter()
            table.find(ids, 12)
            lookup_ms.append((time.perf_counter() - t) * 1000)

        # An open document's edit: the request path only queues it; the indexing thread applies it.
        big = max(paths, key=lambda p: len(index.text(p)))
        queue_ms, apply_ms = [], []
        for k in range(20):
            text = index.text(big) + f"\nedit_{k} = {k}\n"
            t = time.perf_counter()
            index.document(big, text)
            queue_ms.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            index.drain()
            apply_ms.append((time.perf_counter() - t) * 1000)
        index.stop()

        out = {
            "files_in_repo": n_files,
            "indexed": stats,
            "build_seconds": round(build_s, 3),
            "build_python_heap_peak_mb": round(peak / 1e6, 1),
            "index_python_heap_mb": round(current / 1e6, 1),
            "process_max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "rss_before_mb": round(rss0 / 1024, 1),
            "context_ms": {"p50": round(statistics.median(assemble_ms), 2), "p95": round(pct(assemble_ms, 95), 2)},
            "token_table": {
                "tokens": int(table.tokens.size),
                "build_seconds": round(table_s, 2),
                "arrays_mb": round(table_mb, 1),
                "lookup_ms": {"p50": round(statistics.median(lookup_ms), 3), "p95": round(pct(lookup_ms, 95), 3)},
            },
            "context_cached_ms": {"p50": round(statistics.median(cached_ms), 4), "p95": round(pct(cached_ms, 95), 4)},
            "document_update": {
                "file_kb": round(len(index.text(big) or "") / 1000, 1),
                "queue_ms_p50": round(statistics.median(queue_ms), 4),
                "applied_ms_p50 (incl. the 0.3 s batching delay)": round(statistics.median(apply_ms), 1),
            },
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "workspace_index.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
