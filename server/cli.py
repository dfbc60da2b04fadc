"""`rltab`: the one command-line entry point (architecture.md §2). Errors: message on stderr, exit 2.

Heavy imports (onnxruntime, torch) happen inside the commands that need them, so `rltab --help`
and the server start fast.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sqlite3
import sys
from pathlib import Path


class UsageError(Exception):
    """A problem with what the user asked for: reported on stderr with exit code 2."""


def _home(args) -> Path:
    from rltab.policy.model.home import default_home

    home = Path(args.home).expanduser() if getattr(args, "home", None) else default_home()
    if home.exists() and not home.is_dir():
        raise UsageError(f"the rltab home {home} is not a directory")
    return home


def count(minimum: int):
    """An argparse type: an integer of at least `minimum`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def seconds(text: str) -> float:
    """An argparse type: a positive, finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def config_from_json(cls, text: str, flag: str = "--config"):
    """A config dataclass from a JSON object, every key known and every value of its field's type."""
    try:
        raw = json.loads(text)
    except ValueError as e:
        raise UsageError(f"{flag} is not valid JSON: {e}") from None
    if not isinstance(raw, dict):
        raise UsageError(f"{flag} must be a JSON object, got {type(raw).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise UsageError(f"{flag}: unknown key(s) {', '.join(unknown)} (known: {', '.join(fields)})")
    for key, value in raw.items():
        kind = type(fields[key].default)
        ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
        ok = ok or (kind is float and isinstance(value, int) and not isinstance(value, bool))
        if not ok:
            raise UsageError(f"{flag}: {key} must be {kind.__name__}, got {value!r}")
    return cls(**raw)


def _writable_parent(path: str, flag: str) -> None:
    parent = Path(path).expanduser().parent
    if not parent.is_dir():
        raise UsageError(f"{flag} {path}: no such directory {parent}")


def _image_path(path: str, flag: str) -> None:
    """A file matplotlib can write, in a directory that exists: checked before the work."""
    _writable_parent(path, flag)
    from matplotlib.backend_bases import FigureCanvasBase

    kinds = FigureCanvasBase.get_supported_filetypes()
    suffix = Path(path).suffix.lstrip(".").lower()
    if suffix not in kinds:
        raise UsageError(f"{flag} {path}: not an image format matplotlib writes ({', '.join(sorted(kinds))})")


def _load(args):
    from rltab.policy.inference.loading import load_model

    model_path = Path(args.model) if getattr(args, "model", None) else None
    try:
        return load_model(_home(args), model_path=model_path)
    except (FileNotFoundError, ValueError) as e:  # no model there, or a file that is not what it says
        raise UsageError(str(e)) from e


def split_at(text: str, line: int, col: int) -> tuple[str, str]:
    """Text before/after a 1-based line and column (in characters)."""
    lines = text.split("\n")
    if not 1 <= line <= len(lines):
        raise UsageError(f"--line {line} is outside the file (1..{len(lines)})")
    if not 1 <= col <= len(lines[line - 1]) + 1:
        raise UsageError(f"--col {col} is outside line {line} (1..{len(lines[line - 1]) + 1})")
    offset = sum(len(ln) + 1 for ln in lines[: line - 1]) + col - 1
    return text[:offset], text[offset:]


def cmd_complete(args) -> int:
    from rltab.policy.completion.completer import Completer

    path = Path(args.file)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read {path}: {e}") from e
    before, after = split_at(text, args.line, args.col)
    model = _load(args)
    s = Completer(model).complete(before, after, max_lines=args.max_lines)
    if args.json:
        print(
            json.dumps({"completion": s.text, "latency_ms": round(s.latency_ms, 2), "model_version": s.model_version})
        )
    else:
        print(s.text)
        print(f"# {s.kind} completion, {s.latency_ms:.1f} ms, model {s.model_version}", file=sys.stderr)
    return 0


def cmd_bench(args) -> int:
    from rltab.harness import bench

    model = _load(args)
    r = bench.latency(model, repeats=args.repeats)
    bench.print_latency(r)
    bench.write_json(r, args.json)
    return 0


def cmd_serve(args) -> int:
    import logging

    from rltab.server.app import build_server
    from rltab.server.native_memory import return_freed_memory

    return_freed_memory()  # before the first large allocation
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        stream=sys.stderr,
        format="rltab %(levelname)s %(name)s: %(message)s",
    )
    model_path = Path(args.model) if args.model else None
    if model_path is not None and not (model_path / "tokenizer.json").exists():
        raise UsageError(f"no model at {model_path} (tokenizer.json missing)")
    remote = None
    if args.engine:
        from rltab.policy.inference.remote_engine import RemoteSpec

        remote = RemoteSpec(args.engine, args.engine_model, args.engine_deadline)
        if remote.problem:
            raise UsageError(remote.problem)
    from rltab.server.service import BadEnvironment

    try:
        server = build_server(
            _home(args), model_path, args.learn, args.train_every_events, args.train_every_minutes, remote
        )
    except BadEnvironment as e:
        raise UsageError(str(e)) from None
    try:
        server.start_io()
    finally:
        server.updater.stop()
        server.service.shutdown()
    return 0


def cmd_demo(args) -> int:
    import shutil
    import tempfile

    from rltab.feedback.ledger import Ledger
    from rltab.harness.lsp_client import ServerSession
    from rltab.harness.typing_sim import Typist, summarize
    from rltab.policy.pretraining import corpus

    path = Path(args.file) if args.file else corpus.stdlib_dir() / "textwrap.py"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read {path}: {e}") from e
    total = len(text.splitlines())
    if args.lines:
        text = "".join(text.splitlines(keepends=True)[: args.lines])
    given = args.home or os.environ.get("RLTAB_HOME")
    home = Path(given) if given else Path(tempfile.mkdtemp(prefix="rltab-demo-"))
    marks = {"accepted": "+ accepted", "partial": "~ partial ", "rejected": "- rejected"}

    def show(s):
        line = text.count("\n", 0, s.offset) + 1
        col = s.offset - (text.rfind("\n", 0, s.offset) + 1) + 1
        taken = f" (took {s.chars} chars)" if s.outcome == "partial" else ""
        print(f"{line:5d}:{col:<3d} {marks[s.outcome]}  {s.text!r}{taken}  [{s.latency_ms:.0f} ms]", flush=True)

    typed = len(text.splitlines())
    which = f"the first {typed} of {total} lines" if typed < total else f"all {total} lines"
    print(f"rltab demo: typing {which} of {path} through `rltab serve` over stdio (--lines 0: all)")
    print(f"home: {home}{'' if given else ' (temporary, removed at the end)'}\n")
    client = ServerSession(home, model=args.model)
    try:
        client.initialize()
        session = Typist(client, on_shown=show).type_files([(str(path), text)])
        ledger = Ledger(home / "ledger.db")
        r = summarize(session, ledger)
        ledger.close()
    finally:
        client.close()
        if not given:
            shutil.rmtree(home, ignore_errors=True)
    print(
        f"\n{r['shown']} suggestions shown at {session.requests} pauses: {r['accepted']} accepted, "
        f"{r['partial']} partial, {r['rejected']} rejected"
    )
    print(
        f"accept rate {100 * r['accept_rate']:.1f}%, {r['chars_saved_per_100']:.1f} of every 100 characters "
        f"came from suggestions"
    )
    print(
        f"latency p50 {r['latency_ms']['p50']:.1f} ms, p95 {r['latency_ms']['p95']:.1f} ms "
        f"(client-side, over stdio); model {', '.join(r['model_versions'])}"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=2) + "\n")
    if r["model_versions"] == ["starter"]:
        print(
            "\nThe starter is a 5 M-parameter model trained on the standard library, so that rltab works "
            "offline from the first run. For better completions import a real code model (a local Hugging "
            "Face checkpoint, e.g. Qwen2.5-Coder-0.5B): rltab import-model DIR --make-current (docs/models.md)."
        )
    return 0


def cmd_stats(args) -> int:
    from rltab.feedback.ledger import Ledger
    from rltab.feedback.stats import plot_stats

    db = _home(args) / "ledger.db"
    if args.plot:
        _image_path(args.plot, "--plot")
    rows: list[dict] = []
    timeline: list[dict] = []
    starts: list[tuple[float, str]] = []
    if db.exists():  # a new home has no ledger yet: nothing shown so far, not an error
        ledger = Ledger(db)
        rows = ledger.stats(_repo(args))
        timeline = ledger.timeline(_repo(args)) if args.plot else []
        starts = ledger.version_starts(_repo(args)) if args.plot else []
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


def _repo(args) -> str | None:
    """--repo PATH, resolved (symlinks, `..`) as the server records repositories."""
    return str(Path(args.repo).resolve()) if getattr(args, "repo", None) else None


def cmd_forget(args) -> int:
    from rltab.feedback.ledger import Ledger
    from rltab.policy.model.home import current_version, forget_repo_models, remove_versions

    home = _home(args)
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


def cmd_versions(args) -> int:
    from rltab.feedback.ledger import Ledger
    from rltab.policy.model.home import current_version, list_versions
    from rltab.server.learned import when

    home, repo = _home(args), _repo(args)
    cur = current_version(home, repo)
    used: dict[str, dict] = {}  # what each version did for the user: shown, accept rate, chars accepted
    if (home / "ledger.db").exists():
        ledger = Ledger(home / "ledger.db")
        used = {r["model_version"]: r for r in ledger.stats(repo)}
        ledger.close()
    rows = []
    for v in list_versions(home, repo) if repo else list_versions(home):
        u = used.get(v["version"], {})
        rows.append(
            {
                "version": v["version"],
                "current": v["version"] == cur,
                "date": when(v.get("time")),
                "parent": v.get("parent"),
                "repo": v.get("repo"),
                "events": v.get("events_used"),
                "heldout_loss": v.get("heldout_loss", v.get("guard", {}).get("heldout_loss")),
                "guard": v.get("guard", {}).get("reason"),
                "shown": u.get("shown", 0),
                "accept_rate": u.get("accept_rate", 0.0),
                "chars_accepted": u.get("chars_accepted", 0),
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        extra = f" {r['date']}" if r["date"] else " (shipped)"
        extra += f" parent={r['parent']}" if r["parent"] else ""
        extra += f" repo={r['repo']}" if r["repo"] and not repo else ""
        extra += f" heldout_loss={r['heldout_loss']}" if r["heldout_loss"] is not None else ""
        extra += f" events={r['events']}" if r["events"] is not None else ""
        extra += f" guard={r['guard']}" if r["guard"] else ""
        extra += f" shown={r['shown']} accept={100 * r['accept_rate']:.1f}% chars={r['chars_accepted']}"
        print(f"{'*' if r['current'] else ' '} {r['version']}{extra}")
    if repo and cur not in {v["version"] for v in list_versions(home, repo)}:
        print(f"* {cur} (the shared base: nothing learnt in {repo} is live)")
    return 0


def cmd_learned(args) -> int:
    from rltab.server import learned

    entries = learned.report(_home(args), _repo(args), args.examples)
    print(json.dumps(entries, indent=2) if args.json else learned.format_text(entries))
    return 0


def cmd_export_ledger(args) -> int:
    from rltab.feedback import export
    from rltab.feedback.ledger import Ledger

    out = Path(args.out)
    if out.suffix not in (".jsonl", ".parquet"):
        raise UsageError(f"OUT must end in .jsonl or .parquet, got {args.out!r}")
    _writable_parent(args.out, "OUT")
    db = _home(args) / "ledger.db"
    if not db.exists():
        raise UsageError(f"no ledger in {_home(args)}: nothing recorded yet")
    ledger = Ledger(db)
    try:
        n = export.write(ledger, out, _repo(args))
    except ImportError as e:
        raise UsageError(str(e)) from e
    finally:
        ledger.close()
    print(f"wrote {n} learnable events to {out}", file=sys.stderr)
    return 0


def cmd_export_adapter(args) -> int:
    from rltab.policy.model.adapter_export import ExportError, export
    from rltab.policy.model.home import model_dir

    home = _home(args)
    if not model_dir(home, args.version).is_dir():
        raise UsageError(f"no version {args.version} in {home} (see `rltab versions`)")
    try:
        out = export(
            home, args.version, Path(args.out_dir), args.format, Path(args.llama_cpp) if args.llama_cpp else None
        )
    except ExportError as e:
        raise UsageError(str(e)) from e
    print(out)
    return 0


def cmd_import_model(args) -> int:
    from rltab.policy.model.importer import ImportFailure, import_model

    try:
        meta = import_model(args.hf_dir, _home(args), args.name, make_current=args.make_current)
    except ImportFailure as e:
        raise UsageError(str(e)) from e
    except ValueError as e:  # an unsupported architecture, a tokenizer without end-of-text
        raise UsageError(f"cannot import {args.hf_dir}: {e}") from e
    except OSError as e:  # transformers' messages for missing or unreadable files
        raise UsageError(f"cannot read the checkpoint in {args.hf_dir}: {e}") from e
    print(
        json.dumps(
            {k: meta[k] for k in ("version", "family", "fim_style", "serve_fim", "parameters", "onnx_agreement")}
        )
    )
    if args.make_current:
        print(f"current: {meta['version']}", file=sys.stderr)
    else:
        print(f"imported; serve it with `rltab rollback {meta['version']}`", file=sys.stderr)
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
    home = _home(args)
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


def cmd_rollback(args) -> int:
    from rltab.policy.model.home import rollback

    try:
        print(f"current: {rollback(_home(args), args.version, _repo(args))}")
    except (FileNotFoundError, ValueError) as e:
        raise UsageError(str(e)) from e
    return 0


def cmd_use(args) -> int:
    from rltab.policy.model.home import set_current

    try:
        set_current(_home(args), args.version, _repo(args))
    except FileNotFoundError as e:
        raise UsageError(str(e)) from e
    print(f"current: {args.version}")
    return 0


def cmd_train(args) -> int:
    from rltab.policy.learning.config import UpdaterConfig
    from rltab.policy.learning.lock import AlreadyRunning, lock

    cfg = config_from_json(UpdaterConfig, args.config) if args.config else UpdaterConfig()
    if not args.events:
        try:  # decided before torch loads: a second updater costs nothing
            held = lock(_home(args))
        except AlreadyRunning as e:
            print(f"rltab train: {e}", file=sys.stderr)
            return 3 if args.once else 0
        from rltab.policy.learning.train_loop import run

        return run(
            _home(args),
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
    return run_exports(_home(args), rows, cfg, _repo(args))


def cmd_replay(args) -> int:
    from rltab.harness import replay as R

    if args.plot:
        _image_path(args.plot, "--plot")
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


class Parser(argparse.ArgumentParser):
    """argparse, with errors on one line (the CLI's contract: one line on stderr, exit 2)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rltab")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    ap = Parser(prog="rltab", description="A local code-completion server that learns from your Tab key.")
    ap.add_argument("--version", action="version", version=f"rltab {_version()}")
    sub = ap.add_subparsers(dest="command", required=True, parser_class=Parser)

    def add(name, fn, help):
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(fn=fn)
        p.add_argument(
            "--home",
            help="rltab home directory (default: $RLTAB_HOME, else the platform's data directory, ~/.local/share/rltab on Linux)",
        )
        return p

    p = add("serve", cmd_serve, "LSP over stdio (what editors launch)")
    p.add_argument("--model", help="serve this model directory (default: the current version, hot-swapped)")
    p.add_argument(
        "--learn",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="record prompts and learn from outcomes (default: off, or the client's setting)",
    )
    p.add_argument(
        "--train-every-events",
        type=count(0),
        default=64,
        help="learning: update after this many new events (0: never start the updater)",
    )
    p.add_argument(
        "--train-every-minutes", type=float, default=30.0, help="learning: or after this long with some pending"
    )
    p.add_argument(
        "--engine",
        metavar="URL",
        help="run the model on this inference server instead of here: llama.cpp's server "
        "(http://host:8080) or an OpenAI-compatible one ending in /v1 (vLLM, llama.cpp, Ollama); see docs/scale.md",
    )
    p.add_argument(
        "--engine-model", metavar="NAME", help="with an OpenAI-compatible --engine: the model name it serves"
    )
    p.add_argument(
        "--engine-deadline",
        metavar="SECONDS",
        type=seconds,
        default=5.0,
        help="with --engine: give up on a completion the server has not finished in this long (default 5)",
    )
    p.add_argument("--verbose", action="store_true", help="log to stderr")
    # What language clients append when they launch a server over stdio (vscode-languageclient's
    # TransportKind.stdio adds --stdio; run as a node module it adds --clientProcessId=PID too).
    # stdio is rltab's only transport, and the client's process id also arrives in `initialize`.
    p.add_argument("--stdio", action="store_true", help="speak LSP over stdio (the default and only transport)")
    p.add_argument("--clientProcessId", type=int, help=argparse.SUPPRESS)

    p = add("complete", cmd_complete, "one completion at 1-based LINE:COL of FILE")
    p.add_argument("file")
    p.add_argument("--line", type=count(1), required=True)
    p.add_argument("--col", type=count(1), required=True)
    p.add_argument("--json", action="store_true", help='print {"completion", "latency_ms", "model_version"}')
    p.add_argument("--model", help="model directory (default: the current version)")
    p.add_argument("--max-lines", type=count(1), default=8)

    p = add("demo", cmd_demo, "type a real Python file through the real server and show what it suggests")
    p.add_argument(
        "file", nargs="?", help="a Python file (default: the standard library's textwrap.py, held out from training)"
    )
    p.add_argument("--lines", type=count(0), default=80, help="type only the first N lines (0: all)")
    p.add_argument("--model", help="model directory (default: the current version)")
    p.add_argument("--json", metavar="OUT", help="also write the figures to OUT")

    p = add("stats", cmd_stats, "per model version: shown, accepted, partial, rejected, accept rate, chars accepted")
    p.add_argument("--json", action="store_true")
    p.add_argument("--plot", metavar="PNG", help="draw the accept rate per model version")
    p.add_argument("--repo", metavar="PATH", help="only this repository's suggestions")

    p = add("forget", cmd_forget, "delete ledger rows for a repository, or everything (then VACUUM)")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--repo", metavar="PATH")
    g.add_argument("--all", action="store_true")

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

    p = add(
        "export-adapter",
        cmd_export_adapter,
        "write a version's LoRA adapter for a shared inference server (vLLM: peft; llama.cpp: gguf)",
    )
    p.add_argument("version")
    p.add_argument("out_dir", metavar="OUT_DIR")
    p.add_argument("--format", choices=("peft", "gguf"), default="peft")
    p.add_argument("--llama-cpp", metavar="DIR", help="--format gguf: a llama.cpp checkout (its converter)")

    p = add(
        "export-ledger", cmd_export_ledger, "write the learnable events (learning-on rows only) as JSONL or Parquet"
    )
    p.add_argument("out", metavar="OUT", help="OUT.jsonl, or OUT.parquet (needs pyarrow)")
    p.add_argument("--repo", metavar="PATH", help="only this repository's events")

    p = add("import-model", cmd_import_model, "convert a local Hugging Face causal LM into an rltab model version")
    p.add_argument("hf_dir", metavar="HF_DIR")
    p.add_argument("--name", help="version name (default: the directory's name)")
    p.add_argument("--make-current", action="store_true", help="serve it from now on")

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

    p = add("versions", cmd_versions, "list published models (* = current); --repo: that repository's chain")
    p.add_argument("--repo", metavar="PATH", help="a repository (workspace root)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = add("learned", cmd_learned, "what each version learned: events, guard, before/after, refused updates")
    p.add_argument("--repo", metavar="PATH", help="that repository's chain (and what it grew from)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument(
        "--examples", type=count(0), default=2, help="trained-on contexts per version, then and now (0: none)"
    )
    p = add("use", cmd_use, "serve VERSION (any published version, or starter), from the next request on")
    p.add_argument("version")
    p.add_argument("--repo", metavar="PATH", help="for this repository's chain (default: the shared base)")
    p = add("rollback", cmd_rollback, "switch back to VERSION, or to the current version's parent")
    p.add_argument("version", nargs="?")
    p.add_argument("--repo", metavar="PATH", help="roll back this repository's chain (default: the shared base)")

    p = add("bench", cmd_bench, "latency figures for the current model")
    p.add_argument("what", choices=["latency"])
    p.add_argument("--json", metavar="OUT", help="also write the figures to OUT")
    p.add_argument("--model", help="model directory (default: the current version)")
    p.add_argument("--repeats", type=count(1), default=10)
    return ap


def main(argv=None) -> int:
    from rltab.policy.runtime import offline
    from rltab.policy.runtime.quiet import quiet

    offline.seal()  # before anything loads onnxruntime or transformers
    quiet()  # and their own bars and warnings stay out of rltab's
    os.umask(0o077)  # the home holds the user's code: directories 0700, files 0600
    args = build_parser().parse_args(argv)
    from rltab.policy.model.build_int8 import OnnxBuildError

    try:
        return args.fn(args) or 0
    except (UsageError, OnnxBuildError) as e:
        return _fail(str(e))
    except sqlite3.DatabaseError as e:  # a corrupt, locked or unopenable ledger
        return _fail(f"cannot use the ledger in {_safe_home(args)}: {e}")
    except OSError as e:  # unreadable home, a directory where a file should be, a full disk
        where = f" {e.filename}" if e.filename else ""
        return _fail(f"cannot use{where}: {e.strerror or e}")
    except KeyboardInterrupt:
        return 130


def _fail(message: str) -> int:
    print(f"rltab: {' '.join(message.split())}", file=sys.stderr)
    return 2


def _safe_home(args) -> str:
    try:
        return str(_home(args))
    except UsageError:
        return str(getattr(args, "home", "") or "the rltab home")


if __name__ == "__main__":
    raise SystemExit(main())
