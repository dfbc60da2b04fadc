"""Serving: `rltab serve` (LSP over stdio, what editors launch), `complete` (one completion), `demo`."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .common import (
    UsageError,
    count,
    home_of,
    model_of,
    seconds,
    threads_flag,
)


def register(add) -> None:
    """Adds this group's subcommands (`add(name, fn, help)` returns each one's parser)."""
    p = add("serve", cmd_serve, "LSP over stdio (what editors launch)")
    p.set_defaults(huge_pages=True)  # runs the engine: weights on huge pages (policy/runtime/hugepages.py)
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
    threads_flag(p)
    p.add_argument("--verbose", action="store_true", help="log to stderr")
    # What language clients append when they launch a server over stdio (vscode-languageclient's
    # TransportKind.stdio adds --stdio; run as a node module it adds --clientProcessId=PID too).
    # stdio is rltab's only transport, and the client's process id also arrives in `initialize`.
    p.add_argument("--stdio", action="store_true", help="speak LSP over stdio (the default and only transport)")
    p.add_argument("--clientProcessId", type=int, help=argparse.SUPPRESS)

    p = add("complete", cmd_complete, "one completion at 1-based LINE:COL of FILE")
    p.set_defaults(huge_pages=True)
    p.add_argument("file")
    p.add_argument("--line", type=count(1), required=True)
    p.add_argument("--col", type=count(1), required=True)
    p.add_argument("--json", action="store_true", help='print {"completion", "latency_ms", "model_version"}')
    p.add_argument("--model", help="model directory (default: the current version)")
    p.add_argument("--max-lines", type=count(1), default=8)
    threads_flag(p)

    p = add("demo", cmd_demo, "type a real Python file through the real server and show what it suggests")
    p.add_argument(
        "file", nargs="?", help="a Python file (default: the standard library's textwrap.py, held out from training)"
    )
    p.add_argument("--lines", type=count(0), default=80, help="type only the first N lines (0: all)")
    p.add_argument("--model", help="model directory (default: the current version)")
    p.add_argument("--json", metavar="OUT", help="also write the figures to OUT")


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
    model = model_of(args)
    s = Completer(model).complete(before, after, max_lines=args.max_lines)
    if args.json:
        print(
            json.dumps({"completion": s.text, "latency_ms": round(s.latency_ms, 2), "model_version": s.model_version})
        )
    else:
        print(s.text)
        print(f"# {s.kind} completion, {s.latency_ms:.1f} ms, model {s.model_version}", file=sys.stderr)
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
    from rltab.server.settings import BadEnvironment

    try:
        server = build_server(
            home_of(args),
            model_path,
            args.learn,
            args.train_every_events,
            args.train_every_minutes,
            remote,
            args.threads,
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
