"""What each updater term buys on a synthetic user (issue 8's RRHF term, measured like the others).

    python bench/updater_terms.py [--cycles 3] [--json bench/results/updater_terms.json]

The single-quote user of the learning tests: four samples per context in five contexts where the
starter may open a string, accepted when they start with a single quote. Each configuration runs
the same cycles from the same starter (same seeds); the figure is the mean probability that a
suggestion starts with `'` (healing included) before and after, and how many updates the guard
let through.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from rltab.policy.inference.loading import load_model
from rltab.policy.learning.synthetic import QUOTE_CONTEXTS, first_text_probs, serve_round
from rltab.policy.learning.updater import UpdaterConfig, train_cycle

CONFIGS = {
    "default (ppo-clip+kl+silence+sft)": {},
    "+ rrhf 1.0": {"rrhf_coef": 1.0},
    "+ dpo 0.5": {"dpo_coef": 0.5},
    "ppo-clip only": {"kl_coef": 0.0, "silence_coef": 0.0, "sft_coef": 0.0},
}


def likes(b: bytes) -> bool:
    return b.lstrip(b" ").startswith(b"'")


def run(config: dict, cycles: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="rltab-terms-") as tmp:
        home = Path(tmp)
        before = float(np.mean([first_text_probs(load_model(home), c, likes) for c in QUOTE_CONTEXTS]))
        published = 0
        for k in range(cycles):
            serve_round(home, QUOTE_CONTEXTS, lambda t: t.lstrip().startswith("'"), seed=k)
            r = train_cycle(home, UpdaterConfig(min_events=8, guard_pass_tasks=0, **config), log=lambda m: None)
            published += bool(r.published)
        after = float(np.mean([first_text_probs(load_model(home), c, likes) for c in QUOTE_CONTEXTS]))
    return {
        "p_single_quote_before": round(before, 4),
        "p_single_quote_after": round(after, 4),
        "published": published,
        "cycles": cycles,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cycles", type=int, default=3)
    ap.add_argument("--json", default="bench/results/updater_terms.json")
    args = ap.parse_args()
    rows = {}
    for name, config in CONFIGS.items():
        rows[name] = {"config": config, **run(config, args.cycles)}
        print(name, json.dumps(rows[name]), flush=True)
    Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
