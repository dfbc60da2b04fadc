"""What one update cycle costs now that versions are LoRA adapters (issue 13, item 4).

    python bench/adapter_cycle.py [--models starter,qwen0.5b] [--json bench/results/adapter_cycle.json]

For each model: a home serving it (the shipped starter; or a random-weight checkpoint of
Qwen2.5-Coder-0.5B's exact shape, imported with `rltab import-model`, which exports the base
int8 ONNX once), 20 synthetic events from the model itself (policy/synthetic.py), then two update
cycles, each in a fresh process: the first adapter over the base, then the next one of the chain.
Per cycle: wall time, the process's peak RSS, the adapter's bytes on disk, the guard's verdict.
Then (starter) the hot swap: completions while the repository's pointer flips between the two
adapters every 20 requests; none may fail, and each flip must show in the versions served.
Before adapters, every update merged the LoRA and re-exported the whole model: for the 0.5B shape
that export alone took 121 s and 12 GB (bench/results/import_sizes.json). Stop the starter's
background training first.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from import_sizes import build

# One cycle, in its own process, reporting its own peak memory.
CYCLE = r"""
import json, resource, sys, time
from pathlib import Path
from rltab.policy.runtime import offline
offline.seal()
from rltab.policy.learning.updater import UpdaterConfig, train_cycle
home, cfg = Path(sys.argv[1]), json.loads(sys.argv[2])
t = time.perf_counter()
r = train_cycle(home, UpdaterConfig(**cfg), log=lambda m: None)
print(json.dumps({"published": r.published, "reason": r.reason[:200], "events": r.events,
                  "cycle_s": round(time.perf_counter() - t, 1),
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))
"""
# A short cycle: the 0.5B shape trains at seconds per event on one core.
CONFIG = {"max_events": 16, "min_events": 4, "epochs": 1, "guard_pass_tasks": 20}


def events(home: Path, version: str) -> None:
    subprocess.run(
        [
            sys.executable,
            "-c",
            (
                "import sys; from pathlib import Path; from rltab.policy.learning.synthetic import QUOTE_CONTEXTS, serve_round; "
                "serve_round(Path(sys.argv[1]), QUOTE_CONTEXTS, lambda t: \"'\" in t, repo='/bench/repo')"
            ),
            str(home),
        ],
        check=True,
        capture_output=True,
    )


def measure(name: str, work: Path) -> dict:
    home = work / f"home-{name}"
    row: dict = {"model": name}
    if name != "starter":
        src = work / f"hf-{name}"
        row["params_m"] = round(build(src, name) / 1e6, 1)
        t = time.perf_counter()
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "rltab.server.cli",
                "import-model",
                str(src),
                "--name",
                name,
                "--make-current",
                "--home",
                str(home),
            ],
            capture_output=True,
            text=True,
        )
        if r.returncode:
            return {**row, "error": r.stderr[-400:]}
        row["base_export_once_s"] = round(time.perf_counter() - t, 1)
        shutil.rmtree(src, ignore_errors=True)
    cycles = []
    for _ in range(2):
        events(home, name)
        r = subprocess.run([sys.executable, "-c", CYCLE, str(home), json.dumps(CONFIG)], capture_output=True, text=True)
        c = json.loads(r.stdout.strip().splitlines()[-1]) if r.returncode == 0 else {"error": r.stderr[-400:]}
        if c.get("published"):
            meta = json.loads((home / "models" / c["published"] / "meta.json").read_text())
            c["adapter_bytes"] = meta.get("adapter_bytes")
            c["files"] = sorted(p.name for p in (home / "models" / c["published"]).iterdir())
        cycles.append(c)
        print(json.dumps({"model": name, **c}), flush=True)
    row["cycles"] = cycles
    published = [c["published"] for c in cycles if c.get("published")]
    if name == "starter" and len(published) == 2:
        row["hot_swap"] = hot_swap(home, published)
        print(json.dumps({"model": name, "hot_swap": row["hot_swap"]}), flush=True)
    return row


def hot_swap(home: Path, versions: list[str], requests: int = 400, every: int = 20) -> dict:
    """Completions through `rltab serve` on a document of the repository while its pointer flips
    between two adapter versions every `every` requests: failed requests, swaps seen."""
    from rltab.harness.lsp_client import ServerSession
    from rltab.policy.model.home import set_current

    client = ServerSession(home)
    client.initialize({})
    uri, text = "file:///bench/repo/probe.py", "import os\n\n\ndef main(args):\n    return os."
    client.open(uri, text)
    failed, served = 0, []
    for k in range(requests):
        if k % every == 0:
            set_current(home, versions[(k // every) % 2], "/bench/repo")
        r = client.inline(uri, 4, 14)
        failed += "result" not in r
    client.close()
    from rltab.feedback.ledger import Ledger

    ledger = Ledger(home / "ledger.db")
    served = [r["model_version"] for r in ledger.rows("file = '/bench/repo/probe.py'")]
    ledger.close()
    changes = sum(a != b for a, b in itertools.pairwise(served))
    return {
        "requests": requests,
        "failed": failed,
        "pointer_flips": requests // every - 1,
        "version_changes_seen": changes,
        "versions_served": sorted(set(served)),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="starter,qwen0.5b")
    ap.add_argument("--json", default="bench/results/adapter_cycle.json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="rltab-adapter-cycle-") as tmp:
        rows = [measure(m, Path(tmp)) for m in args.models.split(",")]
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"config": CONFIG, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
