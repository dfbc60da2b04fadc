"""Published versions: name the next one, write a candidate (a LoRA adapter over the parent's
base) beside the live ones, let the guard check it, then make it visible atomically (a version
directory is complete or absent)."""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from pathlib import Path

from rltab.policy.model import adapters
from rltab.policy.model.checkpoint import read_meta, write_meta
from rltab.policy.model.formats import base_identity, tokenizer_digest
from rltab.policy.model.home import base_dir, make_private, set_current
from rltab.policy.runtime.progress import Progress, silent

from .config import UpdaterConfig
from .examples import Example
from .guard import Scores, run_guard


def next_version(home: Path) -> str:
    root = home / "models"
    n = 0
    if root.is_dir():
        for d in root.iterdir():
            if d.name.startswith("v") and d.name[1:5].isdigit():
                n = max(n, int(d.name[1:5]))
    return f"v{n + 1:04d}"


def algorithm_name(cfg: UpdaterConfig) -> str:
    terms = [
        ("ppo-clip", cfg.pg_coef),
        ("kl", cfg.kl_coef),
        ("silence", cfg.silence_coef),
        ("dpo", cfg.dpo_coef),
        ("rrhf", cfg.rrhf_coef),
        ("sft", cfg.sft_coef),
        ("ptx", cfg.ptx_coef),
    ]
    return "lora+" + "+".join(n for n, w in terms if w)


def publish(
    home: Path,
    policy,
    lora: dict,
    parent: str,
    parent_dir: Path,
    version: str,
    held: list[Example],
    cfg: UpdaterConfig,
    metrics: dict,
    events_used: int,
    repo: str | None = None,
    parent_scores: Scores | None = None,
    rows=None,
    log=print,
    progress: Progress = silent,
) -> tuple[str | None, dict]:
    """Write `policy`'s LoRA as an adapter version over the parent's base, let the guard check
    it, publish it into `repo`'s chain. Returns (the version or None, the guard's report)."""

    root = home / "models"
    root.mkdir(parents=True, exist_ok=True)
    sweep_stale_candidates(root)
    tmp = root / f".tmp-{version}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        meta = _version_meta(home, parent, parent_dir, version, repo, lora, cfg, metrics, events_used)
        tmp.mkdir(parents=True)
        write_meta(tmp, meta)
        progress("export", 0, 1)
        meta["adapter_bytes"] = adapters.save(policy, tmp, lora["r"], lora["alpha"])
        progress("export", 1, 1)
        progress("guard", 0, 1)
        guard = run_guard(
            tmp, parent_dir, home, held, cfg, candidate_model=policy, parent_scores=parent_scores, rows=rows
        )
        progress("guard", 1, 1)
        if not guard["passed"]:
            log(f"guard failed: {guard['reason']}")
            return None, guard
        write_meta(tmp, {**meta, "guard": guard})
        make_private(tmp)
        os.rename(tmp, root / version)
        set_current(home, version, repo)
        log(f"published {version} (parent {parent}, repository {repo})")
        return version, guard
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _version_meta(
    home: Path,
    parent: str,
    parent_dir: Path,
    version: str,
    repo: str | None,
    lora: dict,
    cfg: UpdaterConfig,
    metrics: dict,
    events_used: int,
) -> dict:
    """What a version's meta.json records: its lineage, the base it belongs to, how it was trained."""
    parent_meta = read_meta(parent_dir)
    base = parent_meta.get("base") or parent
    base_path = base_dir(home, parent_dir)
    return {
        "version": version,
        "parent": parent,
        "base": base,
        # Which weights and tokenizer the adapter belongs to: a new starter retires it (home.retired).
        "base_identity": base_identity(base_path),
        "tokenizer": tokenizer_digest(base_path),
        "repo": repo,
        "lora": {"r": lora["r"], "alpha": lora["alpha"]},
        "time": time.time(),
        "events_used": events_used,
        "algorithm": algorithm_name(cfg),
        "train_metrics": metrics,
        "updater_config": dataclasses.asdict(cfg),
        # Same provenance as the parent (prompt layout and tokenizer come from the base).
        **{k: parent_meta[k] for k in ("family", "imported_from") if k in parent_meta},
    }


def sweep_stale_candidates(root: Path) -> None:
    """Remove candidates left by an updater that was killed mid-publish."""
    for d in root.glob(".tmp-*"):
        pid = d.name.rsplit("-", 1)[-1]
        try:
            os.kill(int(pid), 0)
        except (ValueError, ProcessLookupError):
            shutil.rmtree(d, ignore_errors=True)
        except PermissionError:
            pass
