"""Evaluation and benchmarks: `eval` (HumanEval infilling), `replay` (the typing replay), `bench`."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from .common import (
    UsageError,
    config_from_json,
    count,
    home_of,
    image_path,
    model_of,
    threads_flag,
)


def register(add) -> None:
    """Adds this group's subcommands (`add(name, fn, help)` returns each one's parser)."""
    p = add("eval", cmd_eval, "pass@k of a model version on HumanEval single-line infilling (tests run sandboxed)")
    p.add_argument("benchmark", choices=["humaneval-infill"])
    p.add_argument("--model", metavar="VERSION", help="model version (default: the current one)")
    p.add_argument("--n", type=count(1), default=1, help="samples per task (1: greedy; more: temperature 0.8)")
    p.add_argument("--k", default="1", help="comma-separated k for pass@k (each <= n)")
    p.add_argument(
        "--subset", choices=["all", "guard"], default="all", help="all 1,033 tasks, or the updater guard's 100"
    )
    p.add_argument("--limit", type=count(1), help="only the first N tasks")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="OUT")

    p = add("replay", cmd_replay, "the typing-replay benchmark: type files through the server, learning or frozen")
    p.add_argument("paths", nargs="*", metavar="PATH")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--learn", action="store_true")
    mode.add_argument("--frozen", action="store_true")
    p.add_argument("--json", metavar="OUT")
    p.add_argument("--plot", metavar="PNG")
    p.add_argument("--compare", nargs=2, metavar="JSON", help="plot two earlier runs together")
    p.add_argument("--every", type=count(1), default=64, help="--learn: update after this many new learnable events")
    p.add_argument("--limit-chars", type=count(0), help="type only the first N characters of the corpus")
    p.add_argument("--model", help="model directory to start from (default: the current version)")
    p.add_argument("--config", help="updater settings as JSON")
    p.add_argument("--settings", help="server settings as JSON (initializationOptions), e.g. '{\"syntaxCheck\": true}'")

    p = add("bench", cmd_bench, "latency figures for the current model")
    p.set_defaults(huge_pages=True)  # measures the engine as `serve` runs it
    p.add_argument("what", choices=["latency"])
    p.add_argument("--json", metavar="OUT", help="also write the figures to OUT")
    p.add_argument("--model", help="model directory (default: the current version)")
    p.add_argument("--repeats", type=count(1), default=10)
    threads_flag(p)


def cmd_bench(args) -> int:
    from rltab.harness import bench

    model = model_of(args)
    r = bench.latency(model, repeats=args.repeats, threads=model.engine.threads)
    bench.print_latency(r)
    bench.write_json(r, args.json)
    return 0


def cmd_eval(args) -> int:
    from tqdm import tqdm

    from rltab.policy.evaluation import humaneval
    from rltab.policy.inference.loading import load_model
    from rltab.policy.model.home import current_version, model_dir

    try:
        ks = tuple(sorted({int(k) for k in args.k.split(",")}))
    except ValueError:
        raise UsageError(f"--k takes comma-separated integers, got {args.k!r}") from None
    if args.n < 1 or min(ks) < 1 or max(ks) > args.n:
        raise UsageError(f"need 1 <= k <= n; got --n {args.n} --k {args.k}")
    home = home_of(args)
    version = args.model or current_version(home)
    if not (model_dir(home, version) / "tokenizer.json").exists():
        raise UsageError(f"no model version {version!r} (see `rltab versions`)")
    model = load_model(home, version)
    tasks = humaneval.infill_tasks()
    if args.subset == "guard":
        tasks = humaneval.guard_subset(tasks)
    if args.limit:
        tasks = tasks[: args.limit]
    with tqdm(total=len(tasks), desc="humaneval-infill", unit="task", file=sys.stderr) as bar:
        result = humaneval.evaluate(model, tasks, n=args.n, ks=ks, seed=args.seed, progress=bar.update)
    result = {"benchmark": "humaneval-infill", "model_version": version, "subset": args.subset, **result}
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


def cmd_replay(args) -> int:
    from rltab.harness import replay as R

    if args.plot:
        image_path(args.plot, "--plot")
    if args.compare:
        results = []
        for p in args.compare:
            try:
                result = json.loads(Path(p).read_text())
            except (OSError, ValueError) as e:
                raise UsageError(f"cannot read {p}: {e}") from e
            if not R.is_result(result):
                raise UsageError(f"{p} is not a replay result (write one with `rltab replay ... --json OUT`)")
            results.append(result)
        if not args.plot:
            raise UsageError("--compare needs --plot PNG")
        R.plot(results, args.plot)
        return 0
    if not args.paths or args.learn == args.frozen:
        raise UsageError("give PATH... and exactly one of --learn / --frozen (or --compare A.json B.json --plot P.png)")
    missing = [p for p in args.paths if not Path(p).exists()]
    if missing:
        raise UsageError(f"no such file or directory: {', '.join(missing)}")
    from rltab.policy.learning.config import UpdaterConfig

    config = dataclasses.asdict(config_from_json(UpdaterConfig, args.config)) if args.config else None
    try:
        settings = json.loads(args.settings) if args.settings else None
    except ValueError as e:
        raise UsageError(f"--settings is not valid JSON: {e}") from e
    from rltab.policy.runtime.progress import PhaseBars

    bars = PhaseBars("rltab replay", unit="char")  # characters typed, updates, ETA (on a terminal)
    try:
        r = R.replay(
            args.paths,
            learn=args.learn,
            home=Path(args.home) if args.home else None,
            every=args.every,
            limit_chars=args.limit_chars,
            model=args.model,
            updater_config=config,
            settings=settings,
            log=bars.write,
            progress=bars,
        )
    except ValueError as e:
        raise UsageError(str(e)) from e
    finally:
        bars.close()
    print(json.dumps({k: v for k, v in r.items() if k not in ("curve", "updates")}, indent=2))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(r, indent=2) + "\n")
    if args.plot:
        R.plot([r], args.plot)
    return 0
