"""Server start benchmark (issue 15): from launching `rltab serve` to its first completion, and
the serving process's memory with the starter model.

    python bench/server_start.py            # -> bench/results/server_start.json

Each run starts a fresh server (new home) over stdio and asks for the same completion until one
comes back. "warm": the int8 ONNX file is cached already (every start after the first); "cold":
an empty cache, so the file is built first (in a process of its own). Memory is the server's
resident set after ten completions and its peak (Linux: /proc/<pid>/status).
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from rltab.harness.lsp_client import ServerSession

HERE = Path(__file__).parent
TEXT = "import os\nimport "


def memory_mb(pid: int) -> dict:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = round(int(value.split()[0]) / 1024, 1)
    return {"rss_mb": fields.get("VmRSS"), "peak_rss_mb": fields.get("VmHWM")}


def one_start(cold: bool) -> dict:
    home = Path(tempfile.mkdtemp(prefix="rltab-start-"))
    env = {"RLTAB_CACHE": str(home / "cache")} if cold else {}
    t0 = time.perf_counter()
    client = ServerSession(home, env=env)
    try:
        client.initialize({}, [])
        uri = (home / "a.py").as_uri()
        client.open(uri, TEXT)
        while True:
            r = client.inline(uri, 1, len("import "))
            if r.get("result", {}).get("items"):
                break
            if time.perf_counter() - t0 > 120:
                raise RuntimeError(f"no completion after 120 s: {r}")
        first = time.perf_counter() - t0
        for _ in range(9):
            client.inline(uri, 1, len("import "))
        mem = memory_mb(client.proc.pid)
    finally:
        client.close()
    return {"first_completion_s": round(first, 3), **mem}


def main() -> int:
    one_start(cold=False)  # make sure the shared cache holds the starter's ONNX file
    warm = [one_start(cold=False) for _ in range(5)]
    cold = one_start(cold=True)
    out = {
        "warm": {
            "first_completion_s_median": statistics.median(r["first_completion_s"] for r in warm),
            "first_completion_s": [r["first_completion_s"] for r in warm],
            "rss_mb_median": statistics.median(r["rss_mb"] for r in warm),
            "peak_rss_mb_median": statistics.median(r["peak_rss_mb"] for r in warm),
        },
        "cold": cold,
        "python": sys.version.split()[0],
    }
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "server_start.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
