"""Typing-replay benchmark (issue 5, architecture.md §6): learning vs frozen on click and attrs.

    python bench/replay.py --corpus click [--limit-chars 30000] [--every 128] [--config JSON]

Types the installed sources of the pinned package (bench/requirements.txt) through `rltab serve`
twice, frozen and learning, from the same starting model, writes both runs' JSON and prints the
last-third ratios learning ÷ frozen with the targets from the issue. The whole of click (444 KB)
would take hours on 2 cores, so runs take the first --limit-chars characters in sorted file order.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import sys
from pathlib import Path

from rltab.harness import replay as R
from rltab.policy.model.checkpoint import STARTER_DIR

HERE = Path(__file__).resolve().parent
PACKAGES = {"click": ("click", "click"), "attrs": ("attrs", "attr")}  # corpus -> (distribution, module)
# Issue 13's targets for the last third, learning ÷ frozen (and >= 3 versions published there).
TARGETS = {"chars_saved_per_100": (">=", 1.10), "accept_rate": (">=", 1.3), "shown": ("<=", 0.85)}
MIN_PUBLISHED_LAST_THIRD = 3


def pinned(dist: str) -> str:
    for line in (HERE / "requirements.txt").read_text().splitlines():
        if line.split("==")[0].strip() == dist:
            return line.split("==")[1].strip()
    raise SystemExit(f"{dist} is not pinned in bench/requirements.txt")


def corpus_dir(name: str) -> Path:
    dist, module = PACKAGES[name]
    want, have = pinned(dist), importlib.metadata.version(dist)
    if want != have:
        raise SystemExit(
            f"{dist} {have} is installed; the benchmark pins {want}: pip install -r bench/requirements.txt"
        )
    return Path(importlib.util.find_spec(module).origin).parent


def ratios(learn: dict, frozen: dict) -> dict:
    last_l, last_f = learn["thirds"][-1], frozen["thirds"][-1]
    out = {}
    for key, (op, target) in TARGETS.items():
        ratio = last_l[key] / last_f[key] if last_f[key] else float("inf")
        out[key] = {
            "learn": last_l[key],
            "frozen": last_f[key],
            "ratio": round(ratio, 3),
            "target": f"{op} {target}",
            "met": ratio >= target if op == ">=" else ratio <= target,
        }
    published = last_l.get("published", 0)
    out["published"] = {
        "learn": published,
        "target": f">= {MIN_PUBLISHED_LAST_THIRD}",
        "met": published >= MIN_PUBLISHED_LAST_THIRD,
    }
    return out


def heldout_drift(learn: dict, home: Path) -> dict:
    """Held-out stdlib loss of the final learned model vs the base, from the guard's records."""
    from rltab.policy.model.checkpoint import read_meta

    last = next((u for u in reversed(learn["updates"]) if u.get("published")), None)
    if last is None:
        return {"published": 0}
    meta = read_meta(home / "models" / last["published"])
    g = meta["guard"]
    return {
        "published": sum(1 for u in learn["updates"] if u.get("published")),
        "final": last["published"],
        "base_heldout_loss": g["base_heldout_loss"],
        "final_heldout_loss": g["heldout_loss"],
        "relative_change": round(g["heldout_loss"] / g["base_heldout_loss"] - 1, 4),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", choices=sorted(PACKAGES), default="click")
    ap.add_argument("--limit-chars", type=int, default=30000, help="0: the whole package")
    ap.add_argument("--every", type=int, default=128)
    ap.add_argument("--config", help="updater settings as JSON (the tuned ones are the defaults)")
    ap.add_argument("--settings", help='server settings as JSON, for both runs (e.g. {"syntaxCheck": true})')
    ap.add_argument("--tag", default="", help="suffix for the result files (write it --tag=-x)")
    ap.add_argument(
        "--skip-frozen",
        action="store_true",
        help="compare with the frozen run's JSON written by "
        "an earlier or parallel --frozen-only run, read once learning is done",
    )
    ap.add_argument("--frozen-only", action="store_true", help="only the frozen run")
    args = ap.parse_args(argv)

    src = corpus_dir(args.corpus)
    stem = f"replay-{args.corpus}-{f'{args.limit_chars // 1000}k' if args.limit_chars else 'full'}"
    out = HERE / "results"
    frozen_path = out / f"{stem}-frozen{args.tag if args.settings else ''}.json"  # settings change both runs
    learn_path = out / f"{stem}-learn{args.tag}.json"
    config = json.loads(args.config) if args.config else None
    settings = json.loads(args.settings) if args.settings else None
    model = str(STARTER_DIR)
    if not args.skip_frozen:
        frozen = R.replay([str(src)], learn=False, limit_chars=args.limit_chars, model=model, settings=settings)
        frozen_path.write_text(json.dumps(frozen, indent=2) + "\n")
        if args.frozen_only:
            print(
                json.dumps({k: frozen[k] for k in ("shown", "accept_rate", "chars_saved_per_100", "thirds")}, indent=2)
            )
            return 0
    learn = R.replay(
        [str(src)],
        learn=True,
        every=args.every,
        limit_chars=args.limit_chars,
        model=model,
        updater_config=config,
        settings=settings,
    )
    if args.skip_frozen:  # an earlier (or parallel) frozen run of the same corpus and settings
        frozen = json.loads(frozen_path.read_text())
    summary = {
        "corpus": args.corpus,
        "limit_chars": args.limit_chars,
        "every": args.every,
        "config": config,
        "settings": settings,
        "last_third": ratios(learn, frozen),
        "heldout": heldout_drift(learn, Path(learn["home"])),
    }
    learn["summary"] = summary
    learn_path.write_text(json.dumps(learn, indent=2) + "\n")
    R.plot([frozen, learn], out / f"{stem}{args.tag}.png")
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
