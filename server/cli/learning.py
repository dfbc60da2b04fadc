"""Learning and its data: `train`, `learned`, `stats`, `forget`, `export-ledger`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .common import (
    UsageError,
    config_from_json,
    count,
    home_of,
    image_path,
    repo_of,
    writable_parent,
)


def register(add) -> None:
    """Adds this group's subcommands (`add(name, fn, help)` returns each one's parser)."""
    p = add("train", cmd_train, "run the updater now (one cycle with --once; else keep watching the ledger)")
    p.add_argument("--once", action="store_true")
    p.add_argument("--every-events", type=count(1), default=64, help="watch mode: train after this many new events")
    p.add_argument("--every-minutes", type=float, default=30.0, help="watch mode: or after this long with some pending")
    p.add_argument("--parent-pid", type=int, help=argparse.SUPPRESS)
    p.add_argument("--config", help="updater settings as JSON, e.g. '{\"lr\": 0.001}'")
    p.add_argument(
        "--events",
        nargs="+",
        metavar="FILE",
        help="one cycle on exported events (`rltab export-ledger`) instead of the ledger; "
        "runs as is under torchrun / accelerate launch (docs/scale.md)",
    )

    p = add("learned", cmd_learned, "what each version learned: events, guard, before/after, refused updates")
    p.add_argument("--repo", metavar="PATH", help="that repository's chain (and what it grew from)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument(
        "--examples", type=count(0), default=2, help="trained-on contexts per version, then and now (0: none)"
    )

    p = add("stats", cmd_stats, "per model version: shown, accepted, partial, rejected, accept rate, chars accepted")
    p.add_argument("--json", action="store_true")
    p.add_argument("--plot", metavar="PNG", help="draw the accept rate per model version")
    p.add_argument("--repo", metavar="PATH", help="only this repository's suggestions")

    p = add("forget", cmd_forget, "delete ledger rows for a repository, or everything (then VACUUM)")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--repo", metavar="PATH")
    g.add_argument("--all", action="store_true")

    p = add(
        "export-ledger", cmd_export_ledger, "write the learnable events (learning-on rows only) as JSONL or Parquet"
    )
    p.add_argument("out", metavar="OUT", help="OUT.jsonl, or OUT.parquet (needs pyarrow)")
    p.add_argument("--repo", metavar="PATH", help="only this repository's events")


def cmd_stats(args) -> int:
    from rltab.feedback.ledger import Ledger
    from rltab.feedback.stats import plot_stats

    db = home_of(args) / "ledger.db"
    if args.plot:
        image_path(args.plot, "--plot")
    rows: list[dict] = []
    timeline: list[dict] = []
    starts: list[tuple[float, str]] = []
    if db.exists():  # a new home has no ledger yet: nothing shown so far, not an error
        ledger = Ledger(db)
        rows = ledger.stats(repo_of(args))
        timeline = ledger.timeline(repo_of(args)) if args.plot else []
        starts = ledger.version_starts(repo_of(args)) if args.plot else []
        ledger.close()
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(
            f"{'model version':<24} {'shown':>6} {'acc':>5} {'part':>5} {'rej':>5} {'rate':>7} {'chars':>7} "
            f"{'saved/100':>9} {'silent':>7}"
        )
        for r in rows:
            saved = f"{r['chars_saved_per_100']:.1f}" if r["chars_saved_per_100"] is not None else "-"
            print(
                f"{r['model_version']:<24} {r['shown']:>6} {r['accepted']:>5} {r['partial']:>5} {r['rejected']:>5} "
                f"{100 * r['accept_rate']:>6.1f}% {r['chars_accepted']:>7} {saved:>9} {r['silent']:>7}"
            )
    if args.plot:
        plot_stats(rows, timeline, starts, args.plot)
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0


def cmd_forget(args) -> int:
    from rltab.feedback.ledger import Ledger
    from rltab.policy.model.home import current_version, forget_repo_models, remove_versions

    home = home_of(args)
    db = home / "ledger.db"
    if not db.exists():
        print("nothing to forget: no ledger yet")
        return 0
    ledger = Ledger(db)
    n, trained = ledger.forget(None if args.all else args.repo)
    ledger.close()
    print(f"deleted {n} rows" + ("" if args.all else f" for {args.repo}"))
    # A model that learned from the forgotten text still holds what it learned: it goes too,
    # and so does the repository's own chain of versions.
    removed = remove_versions(home, trained)
    if not args.all:
        removed = sorted(set(removed) | set(forget_repo_models(home, args.repo)))
    if removed:
        print(
            f"deleted {len(removed)} model version(s) trained on them: {', '.join(removed)}; "
            f"now serving {current_version(home, None if args.all else args.repo)}"
        )
    return 0


def cmd_learned(args) -> int:
    from rltab.server import learned

    entries = learned.report(home_of(args), repo_of(args), args.examples)
    print(json.dumps(entries, indent=2) if args.json else learned.format_text(entries))
    return 0


def cmd_export_ledger(args) -> int:
    from rltab.feedback import export
    from rltab.feedback.ledger import Ledger

    out = Path(args.out)
    if out.suffix not in (".jsonl", ".parquet"):
        raise UsageError(f"OUT must end in .jsonl or .parquet, got {args.out!r}")
    writable_parent(args.out, "OUT")
    db = home_of(args) / "ledger.db"
    if not db.exists():
        raise UsageError(f"no ledger in {home_of(args)}: nothing recorded yet")
    ledger = Ledger(db)
    try:
        n = export.write(ledger, out, repo_of(args))
    except ImportError as e:
        raise UsageError(str(e)) from e
    finally:
        ledger.close()
    print(f"wrote {n} learnable events to {out}", file=sys.stderr)
    return 0


def cmd_train(args) -> int:
    from rltab.policy.learning.config import UpdaterConfig
    from rltab.policy.learning.lock import AlreadyRunning, lock

    cfg = config_from_json(UpdaterConfig, args.config) if args.config else UpdaterConfig()
    if not args.events:
        try:  # decided before torch loads: a second updater costs nothing
            held = lock(home_of(args))
        except AlreadyRunning as e:
            print(f"rltab train: {e}", file=sys.stderr)
            return 3 if args.once else 0
        from rltab.policy.learning.train_loop import run

        return run(
            home_of(args),
            once=args.once,
            every_events=args.every_events,
            every_minutes=args.every_minutes,
            parent_pid=args.parent_pid,
            cfg=cfg,
            held=held,
        )
    from rltab.feedback.export import learnable_rows
    from rltab.policy.learning.train_loop import run_exports

    missing = [f for f in args.events if not Path(f).is_file()]
    if missing or any(Path(f).suffix not in (".jsonl", ".parquet") for f in args.events):
        raise UsageError(f"--events wants .jsonl or .parquet files from `rltab export-ledger`: {args.events}")
    try:
        rows = [r for f in args.events for r in learnable_rows(Path(f))]
    except (ValueError, ImportError) as e:
        raise UsageError(str(e)) from None
    return run_exports(home_of(args), rows, cfg, repo_of(args))
