"""Models: `import-model`, `use`, `versions`, `rollback`, `export-adapter`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .common import (
    UsageError,
    home_of,
    repo_of,
)


def register(add) -> None:
    """Adds this group's subcommands (`add(name, fn, help)` returns each one's parser)."""
    p = add("import-model", cmd_import_model, "convert a local Hugging Face causal LM into an rltab model version")
    p.add_argument("hf_dir", metavar="HF_DIR")
    p.add_argument("--name", help="version name (default: the directory's name)")
    p.add_argument("--make-current", action="store_true", help="serve it from now on")

    p = add("use", cmd_use, "serve VERSION (any published version, or starter), from the next request on")
    p.add_argument("version")
    p.add_argument("--repo", metavar="PATH", help="for this repository's chain (default: the shared base)")

    p = add("versions", cmd_versions, "list published models (* = current); --repo: that repository's chain")
    p.add_argument("--repo", metavar="PATH", help="a repository (workspace root)")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = add("rollback", cmd_rollback, "switch back to VERSION, or to the current version's parent")
    p.add_argument("version", nargs="?")
    p.add_argument("--repo", metavar="PATH", help="roll back this repository's chain (default: the shared base)")

    p = add(
        "export-adapter",
        cmd_export_adapter,
        "write a version's LoRA adapter for a shared inference server (vLLM: peft; llama.cpp: gguf)",
    )
    p.add_argument("version")
    p.add_argument("out_dir", metavar="OUT_DIR")
    p.add_argument("--format", choices=("peft", "gguf"), default="peft")
    p.add_argument("--llama-cpp", metavar="DIR", help="--format gguf: a llama.cpp checkout (its converter)")


def cmd_versions(args) -> int:
    from rltab.feedback.ledger import Ledger
    from rltab.policy.model.home import current_version, list_versions, retired
    from rltab.server.learned import when

    home, repo = home_of(args), repo_of(args)
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
                "retired": retired(home, v["version"]),
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
        extra += f" RETIRED ({r['retired']}: never served again)" if r["retired"] else ""
        print(f"{'*' if r['current'] else ' '} {r['version']}{extra}")
    if repo and cur not in {v["version"] for v in list_versions(home, repo)}:
        print(f"* {cur} (the shared base: nothing learnt in {repo} is live)")
    return 0


def cmd_export_adapter(args) -> int:
    from rltab.policy.model.adapter_export import ExportError, export
    from rltab.policy.model.home import model_dir

    home = home_of(args)
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
        meta = import_model(args.hf_dir, home_of(args), args.name, make_current=args.make_current)
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


def cmd_rollback(args) -> int:
    from rltab.policy.model.home import rollback

    try:
        print(f"current: {rollback(home_of(args), args.version, repo_of(args))}")
    except (FileNotFoundError, ValueError) as e:
        raise UsageError(str(e)) from e
    return 0


def cmd_use(args) -> int:
    from rltab.policy.model.home import set_current

    try:
        set_current(home_of(args), args.version, repo_of(args))
    except FileNotFoundError as e:
        raise UsageError(str(e)) from e
    print(f"current: {args.version}")
    return 0
