"""`rltab`: the one command-line entry point (design.md §2). Errors: message on stderr, exit 2.

Heavy imports (onnxruntime, torch) happen inside the commands that need them, so `rltab --help`
and the server start fast.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


class UsageError(Exception):
    """A problem with what the user asked for: reported on stderr with exit code 2."""


def _home(args) -> Path:
    from rltab.policy.model_store import default_home

    return Path(args.home).expanduser() if getattr(args, "home", None) else default_home()


def _load(args):
    from rltab.policy.model_store import load_model

    model_path = Path(args.model) if getattr(args, "model", None) else None
    try:
        return load_model(_home(args), model_path=model_path)
    except FileNotFoundError as e:
        raise UsageError(str(e)) from e


def split_at(text: str, line: int, col: int) -> tuple[str, str]:
    """Text before/after a 1-based line and column (in characters)."""
    lines = text.split("\n")
    if not 1 <= line <= len(lines):
        raise UsageError(f"--line {line} is outside the file (1..{len(lines)})")
    if not 1 <= col <= len(lines[line - 1]) + 1:
        raise UsageError(f"--col {col} is outside line {line} (1..{len(lines[line - 1]) + 1})")
    offset = sum(len(l) + 1 for l in lines[: line - 1]) + col - 1
    return text[:offset], text[offset:]


def cmd_complete(args) -> int:
    from rltab.server.completion.completer import Completer

    path = Path(args.file)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read {path}: {e}") from e
    before, after = split_at(text, args.line, args.col)
    model = _load(args)
    s = Completer(model).complete(before, after, max_lines=args.max_lines)
    if args.json:
        print(json.dumps({"completion": s.text, "latency_ms": round(s.latency_ms, 2), "model_version": s.model_version}))
    else:
        print(s.text)
        print(f"# {s.kind} completion, {s.latency_ms:.1f} ms, model {s.model_version}", file=sys.stderr)
    return 0


def cmd_bench(args) -> int:
    from rltab.server import bench

    model = _load(args)
    r = bench.latency(model, repeats=args.repeats)
    bench.print_latency(r)
    bench.write_json(r, args.json)
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="rltab", description="A local code-completion server that learns from your Tab key.")
    sub = ap.add_subparsers(dest="command", required=True)

    def add(name, fn, help):
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(fn=fn)
        p.add_argument("--home", help="rltab home directory (default: $RLTAB_HOME or ~/.local/share/rltab)")
        return p

    p = add("complete", cmd_complete, "one completion at 1-based LINE:COL of FILE")
    p.add_argument("file")
    p.add_argument("--line", type=int, required=True)
    p.add_argument("--col", type=int, required=True)
    p.add_argument("--json", action="store_true", help='print {"completion", "latency_ms", "model_version"}')
    p.add_argument("--model", help="model directory (default: the current version)")
    p.add_argument("--max-lines", type=int, default=8)

    p = add("bench", cmd_bench, "latency figures for the current model")
    p.add_argument("what", choices=["latency"])
    p.add_argument("--json", metavar="OUT", help="also write the figures to OUT")
    p.add_argument("--model", help="model directory (default: the current version)")
    p.add_argument("--repeats", type=int, default=10)
    return ap


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args) or 0
    except UsageError as e:
        print(f"rltab: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
