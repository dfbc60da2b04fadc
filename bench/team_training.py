"""Team training on exported events: one CPU process against the same cycle under torchrun (and
accelerate launch), on whatever this machine has (GPUs: one process per GPU; none: two gloo CPU
processes). Prints and writes how far the published adapters are apart and how long each took.

    python bench/team_training.py [--events FILE.jsonl] [--json bench/results/team_training.json]

Without --events, it serves the synthetic quote contexts (policy/synthetic.py) through the starter
to make some. On a machine without rltab's dependencies installed, install them first.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rltab.harness.bench import write_json

# A guard this lenient lets every run publish, so that their weights compare.
CONFIG = dict(
    min_events=8,
    lr=1e-3,
    epochs=1,
    minibatch=8,
    guard_loss_tolerance=100.0,
    guard_base_loss_tolerance=100.0,
    guard_pass_tolerance=1.0,
)


def run(launcher: list[str], events: Path, home: Path, env: dict) -> dict:
    cmd = [*launcher, "-m", "rltab.server.cli", "train", "--events", str(events), "--home", str(home)]
    t0 = time.perf_counter()
    r = subprocess.run(
        [*cmd, "--config", json.dumps(CONFIG)], capture_output=True, text=True, env={**os.environ, **env}
    )
    seconds = time.perf_counter() - t0
    if r.returncode != 0:
        return {"error": r.stderr[-1500:]}
    device = [line for line in r.stderr.splitlines() if "process(es)" in line]
    result = json.loads(next(line for line in r.stdout.splitlines() if line.startswith("{")))
    return {"published": result["published"], "seconds": round(seconds, 1), "log": device[-1] if device else ""}


def distance(a: Path, b: Path) -> dict:
    from safetensors.torch import load_file

    x = load_file(str(a / "models" / "v0001" / "adapter.safetensors"))
    y = load_file(str(b / "models" / "v0001" / "adapter.safetensors"))
    step = max(x[k].abs().max().item() for k in x if "lora_B" in k)
    diff = max((x[k] - y[k]).abs().max().item() for k in x)
    return {"largest_lora_B": step, "largest_difference": diff, "relative": round(diff / step, 4)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=Path)
    ap.add_argument("--json", default="bench/results/team_training.json")
    args = ap.parse_args()
    import torch

    gpus = torch.cuda.device_count()
    with tempfile.TemporaryDirectory(prefix="rltab-team-") as tmp:
        work = Path(tmp)
        events = args.events
        if events is None:
            from rltab.policy.learning.synthetic import QUOTE_CONTEXTS, serve_round

            serve_round(work / "laptop", QUOTE_CONTEXTS, lambda t: t.lstrip().startswith("'"), n=4)
            events = work / "events.jsonl"
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "rltab.server.cli",
                    "export-ledger",
                    str(events),
                    "--home",
                    str(work / "laptop"),
                ],
                check=True,
            )
        n = max(gpus, 2) if gpus != 1 else 1
        torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={n}"]
        runs = {"one CPU process": run([sys.executable], events, work / "cpu", {"CUDA_VISIBLE_DEVICES": ""})}
        runs[f"torchrun, {n} process(es)"] = run(torchrun, events, work / "torchrun", {"OMP_NUM_THREADS": "1"})
        if shutil.which("accelerate") and gpus:
            launch = ["accelerate", "launch", "--num_processes", str(gpus), "--num_machines", "1"]
            launch += ["--mixed_precision", "no", "--dynamo_backend", "no"] + (["--multi_gpu"] if gpus > 1 else [])
            runs[f"accelerate launch, {gpus} process(es)"] = run(launch, events, work / "accelerate", {})
        homes = {"torchrun": work / "torchrun", "accelerate": work / "accelerate"}
        for name, r in runs.items():
            home = next((h for k, h in homes.items() if name.startswith(k)), None)
            if home is not None and r.get("published") and runs["one CPU process"].get("published"):
                r["against one CPU process"] = distance(work / "cpu", home)
            print(json.dumps({"run": name, **r}), flush=True)
    out = {
        "machine": torch.cuda.get_device_name(0) if gpus else f"{os.cpu_count()} CPU cores",
        "gpus": gpus,
        "runs": runs,
        "measured": time.strftime("%Y-%m-%d"),
    }
    write_json(out, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
