"""`rltab`: the one command-line entry point (architecture.md §2), one module per group of
commands (serving, models, learning, evaluation), each adding its subcommands and holding them.
Errors: one line on stderr, exit 2 (here, once, for every command).

Heavy imports (onnxruntime, torch) happen inside the commands that need them, so `rltab --help`
and the server start fast.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys

from . import evaluation, learning, models, serving
from .common import UsageError, home_of


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

    for group in (serving, models, learning, evaluation):
        group.register(add)
    return ap


def main(argv=None) -> int:
    from rltab.policy.runtime import hugepages, offline
    from rltab.policy.runtime.quiet import quiet

    offline.seal()  # before anything loads onnxruntime or transformers
    quiet()  # and their own bars and warnings stay out of rltab's
    os.umask(0o077)  # the home holds the user's code: directories 0700, files 0600
    args = build_parser().parse_args(argv)
    if argv is None and getattr(args, "huge_pages", False):  # a serving process of its own
        hugepages.reexec()
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
        return str(home_of(args))
    except UsageError:
        return str(getattr(args, "home", "") or "the rltab home")
