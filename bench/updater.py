"""Updater benchmark (issue 4): one update on 64 events, trigger -> new version live, the
updater's peak RSS, and the server's completion p95 while an update runs vs idle, in one run;
every request made while the new version is swapped in must be answered (failed_requests: 0).

    python bench/updater.py [--json bench/results/updater.json]

Events come from the real server: a held-out stdlib file typed through `rltab serve` with
learning on (the typing simulator), so prompts, outcomes and log-probs are what an editor makes.
Stop the starter model's background training first: it shares the machine's two cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rltab.feedback.ledger import Ledger
from rltab.harness.lsp_client import ServerSession
from rltab.harness.typing_sim import Typist, percentile
from rltab.policy.pretraining import corpus


def pct(xs, q):
    return percentile(sorted(xs), q)


FAILED: list[dict] = []  # requests answered with an error (the hot swap must drop none)


def probe_latencies(client, uri, text, n, stop_when=None):
    """Inline completions at line ends of `text` (already open), round-robin, until n or stop."""
    lines = text.split("\n")
    out, i = [], 0
    while len(out) < n and not (stop_when and stop_when()):
        line = (i * 7) % (len(lines) - 1)
        t = time.perf_counter()
        r = client.inline(uri, line, len(lines[line]))
        if "result" not in r:
            FAILED.append(r)
        out.append((time.perf_counter() - t) * 1000)
        i += 1
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", default="bench/results/updater.json")
    ap.add_argument("--events", type=int, default=64)
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="rltab-bench-updater-"))
    src = corpus.stdlib_dir() / "textwrap.py"
    text = src.read_text()

    # 1. Real events: type a held-out file with learning on (no automatic updates yet).
    # A 1 s demonstration window (the typist types a line in far less than the editor's 30 s):
    # rows become learnable once what was typed at their place is in.
    client = ServerSession(
        home,
        extra_args=["--train-every-events", "1000000", "--train-every-minutes", "100000"],
        env={"RLTAB_DEMONSTRATION_DELAY": "1"},
    )
    client.initialize({"learning": {"enabled": True}})
    lines = text.splitlines(keepends=True)
    ledger = Ledger(home / "ledger.db")
    typed = 0
    while ledger.pending_events() < args.events and typed < len(lines):
        chunk = "".join(lines[typed : typed + 4])
        Typist(client).type_files([(f"/bench/part{typed}.py", chunk)])
        typed += 4
    events = ledger.pending_events()
    ledger.close()
    time.sleep(2.5)  # the demonstration window (1 s) and the updater's margin (1 s) pass
    print(f"{events} learnable events from typing {typed} lines of {src.name}")

    # 2. Idle completion latency (same server, nothing training).
    uri = "file:///bench/probe.py"
    probe_text = "".join(lines[:120])
    client.open(uri, probe_text)
    idle = probe_latencies(client, uri, probe_text, 150)

    # 3. One update on exactly `events` events, in its own process: time and peak RSS.
    copy = Path(tempfile.mkdtemp(prefix="rltab-bench-copy-")) / "home"
    shutil.copytree(home, copy)
    t = time.perf_counter()
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "rltab.server.cli",
            "train",
            "--once",
            "--home",
            str(copy),
            "--config",
            json.dumps({"max_events": args.events}),
        ],
        capture_output=True,
        text=True,
    )
    one_update_s = time.perf_counter() - t
    peak_rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    result = json.loads(r.stdout.strip().splitlines()[-1])
    print(
        f"one update on {result['events']} events: {one_update_s:.1f} s wall ({result['seconds']} s in the cycle), "
        f"{result['reason']}; updater peak RSS {peak_rss_mb:.0f} MB"
    )

    # 4. Trigger -> live, with completions running all along.
    t0 = time.perf_counter()
    assert client.command("rltab.train")["result"]["started"]
    live = {}

    def swapped():
        rows = Ledger(home / "ledger.db")
        try:
            v = [x["model_version"] for x in rows.rows("model_version != 'starter'")]
        finally:
            rows.close()
        if v and "t" not in live:
            live["t"] = time.perf_counter() - t0
        return bool(v)

    during = probe_latencies(
        client, uri, probe_text, 100000, stop_when=lambda: swapped() or time.perf_counter() - t0 > 300
    )
    client.close()
    versions = [
        v["version"]
        for v in json.loads(
            subprocess.run(
                [
                    sys.executable,
                    "-c",
                    f"import json; from rltab.policy.model.home import list_versions; from pathlib import Path; print(json.dumps(list_versions(Path({str(home)!r}))))",
                ],
                capture_output=True,
                text=True,
            ).stdout
        )
    ]
    out = {
        "events_collected": events,
        "one_update": {
            "events": result["events"],
            "seconds_wall": round(one_update_s, 2),
            "seconds_in_cycle": result["seconds"],
            "outcome": result["reason"],
        },
        "trigger_to_live_s": round(live.get("t", float("nan")), 2),
        "updater_peak_rss_mb": round(peak_rss_mb, 1),
        "completion_ms": {
            "idle": {"p50": round(pct(idle, 50), 2), "p95": round(pct(idle, 95), 2), "n": len(idle)},
            "during_update": {"p50": round(pct(during, 50), 2), "p95": round(pct(during, 95), 2), "n": len(during)},
        },
        "versions": versions,
        "failed_requests": len(FAILED),
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine()},
    }
    out["p95_ratio_during_vs_idle"] = round(
        out["completion_ms"]["during_update"]["p95"] / max(1e-9, out["completion_ms"]["idle"]["p95"]), 3
    )
    print(f"trigger -> live: {out['trigger_to_live_s']} s")
    print(
        f"completion p95 idle {out['completion_ms']['idle']['p95']} ms, during update "
        f"{out['completion_ms']['during_update']['p95']} ms (x{out['p95_ratio_during_vs_idle']})"
    )
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    shutil.rmtree(copy.parent, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
