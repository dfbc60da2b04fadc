"""`rltab replay`: the typing-replay benchmark (architecture.md §6).

A simulated developer (harness/typing_sim.py) types real files through `rltab serve` over stdio.
`--learn`: learning on, and after every N new learnable events the updater runs to completion
(`rltab train --once`) before typing goes on, so runs are deterministic: same inputs, same
figures. `--frozen`: the model never changes.

`replay` is one function on purpose: setting the home up, typing, updating in between and the
result share one server and one clock, and read in the order they happen.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from rltab.feedback.ledger import Ledger
from rltab.policy.runtime.progress import Progress, silent

from .lsp_client import ServerSession
from .typing_sim import Shown, Typist, summarize

DEMONSTRATION_DELAY_S = 1.0


def corpus_files(paths: list[str]) -> list[tuple[str, str]]:
    """Files to type: each path, or a directory's .py files in sorted path order."""
    out = []
    for p in map(Path, paths):
        files = sorted(p.rglob("*.py")) if p.is_dir() else [p]
        for f in files:
            if "__pycache__" in f.parts:
                continue
            out.append((str(f), f.read_text(encoding="utf-8")))
    return out


def limit(files: list[tuple[str, str]], chars: int | None) -> list[tuple[str, str]]:
    """Keep the first `chars` characters of the corpus, cut at a line end."""
    if not chars:
        return files
    out, left = [], chars
    for name, text in files:
        if left <= 0:
            break
        if len(text) > left:
            cut = text.rfind("\n", 0, left) + 1
            text = text[:cut] if cut > 0 else text[:left]
        out.append((name, text))
        left -= len(text)
    return out


def is_result(value) -> bool:
    """Whether a decoded JSON value is what `replay` writes (what `--compare` can plot)."""
    return (
        isinstance(value, dict)
        and isinstance(value.get("curve"), list)
        and all(
            isinstance(p, dict) and {"chars", "accept_rate", "chars_saved_per_100"} <= set(p) for p in value["curve"]
        )
    )


def curve(shown: list[Shown], chars_total: int, bins: int = 10) -> list[dict]:
    """Accept rate and chars saved per 100 in each tenth of the characters (for the plot)."""
    out = []
    for k in range(bins):
        part = [s for s in shown if k / bins <= s.fraction < (k + 1) / bins]
        saved = sum(s.chars for s in part)
        taken = sum(s.outcome != "rejected" for s in part)
        out.append(
            {
                "chars": round((k + 1) / bins * chars_total),
                "shown": len(part),
                "accept_rate": round(taken / len(part), 4) if part else 0.0,
                "chars_saved_per_100": round(100 * saved / (chars_total / bins), 3),
            }
        )
    return out


def replay(
    paths: list[str],
    learn: bool,
    home: Path | None = None,
    every: int = 64,
    limit_chars: int | None = None,
    model: str | None = None,
    updater_config: dict | None = None,
    settings: dict | None = None,
    log=print,
    progress: Progress = silent,
) -> dict:
    files = limit(corpus_files(paths), limit_chars)
    if not any(text for _, text in files):
        raise ValueError("nothing to type: no Python files, or only empty ones")
    home = home or Path(tempfile.mkdtemp(prefix="rltab-replay-"))
    if model and learn:  # learning moves `current`: start it at a copy of the given model
        import shutil

        from rltab.policy.model.checkpoint import read_meta, write_meta
        from rltab.policy.model.home import set_current

        base = home / "models" / "base"
        if not base.exists():
            shutil.copytree(model, base)
            write_meta(base, {**read_meta(base), "version": "base"})
        set_current(home, "base")
        model = None
    extra = ["--train-every-events", "0"]  # this function runs the updater itself, in order
    # The simulated developer types a line in well under a second, not in thirty: the server
    # takes what was typed at a request's place after DEMONSTRATION_DELAY_S, not the editor's 30 s.
    client = ServerSession(
        home,
        model=model,
        extra_args=extra,
        # A settled workspace: the first completion waits for the index and its token table, so
        # the same corpus gives the same figures however fast the machine builds them.
        env={"RLTAB_DEMONSTRATION_DELAY": str(DEMONSTRATION_DELAY_S), "RLTAB_SETTLED_WORKSPACE": "1"},
    )
    updates: list[dict] = []
    state = {"since": 0, "fraction": 0.0}

    total = sum(len(text) for _, text in files)

    def seen(shown) -> None:  # how far through the corpus the typist is
        state["fraction"] = shown.fraction
        published = sum(1 for u in updates if u.get("published"))
        note = f"{published} published, {len(updates) - published} refused" if learn else ""
        progress("typing", int(shown.fraction * total), total, note)

    def maybe_update() -> None:
        state["since"] += 1
        if not learn or state["since"] < every:
            return
        ledger = Ledger(home / "ledger.db")
        pending = ledger.pending_events()
        ledger.close()
        if pending < every:
            return
        state["since"] = 0
        cmd = [sys.executable, "-m", "rltab.server.cli", "train", "--once", "--home", str(home)]
        if updater_config:
            cmd += ["--config", json.dumps(updater_config)]
        r = subprocess.run(cmd, capture_output=True, text=True)
        result = (
            json.loads(r.stdout.strip().splitlines()[-1])
            if r.stdout.strip()
            else {"published": None, "reason": r.stderr[-300:]}
        )
        result["fraction"] = round(state["fraction"], 4)
        updates.append(result)
        log(f"update {len(updates)}: {result.get('published') or 'not published'} ({result.get('reason')})")

    try:
        # The workspace: the corpus as it is on disk; the file being typed holds only what has
        # been typed so far (an open document's text replaces the disk's in the index).
        folders = sorted({p if Path(p).is_dir() else str(Path(p).parent) for p in paths})
        client.initialize({**(settings or {}), "learning": {"enabled": learn}}, folders)
        session = Typist(client, on_shown=seen, after_each=maybe_update).type_files(files)
        progress("typing", total, total)
    finally:
        client.close()
    ledger = Ledger(home / "ledger.db")
    out = summarize(session, ledger)
    ledger.close()
    for k, third in enumerate(out["thirds"]):  # does learning keep publishing? (issue 13)
        third["published"] = sum(
            1
            for u in updates
            if u.get("published") and (k / 3 <= u["fraction"] < (k + 1) / 3 or (k == 2 and u["fraction"] >= 1))
        )
    out.update(
        {
            "mode": "learn" if learn else "frozen",
            "files": len(files),
            "chars_total": session.chars_total,
            "requests": session.requests,
            "updates": updates,
            "every_events": every,
            "settings": settings or {},
            "curve": curve(session.shown, session.chars_total),
            "home": str(home),
        }
    )
    return out


def plot(results: list[dict], out: str | Path) -> None:
    """Accept rate and chars saved per 100 typed against characters typed, one line per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for r in results:
        xs = [p["chars"] for p in r["curve"]]
        axes[0].plot(xs, [100 * p["accept_rate"] for p in r["curve"]], marker="o", label=r["mode"])
        axes[1].plot(xs, [p["chars_saved_per_100"] for p in r["curve"]], marker="o", label=r["mode"])
    axes[0].set_ylabel("accept rate (%)")
    axes[1].set_ylabel("chars saved per 100 typed")
    for ax in axes:
        ax.set_xlabel("characters typed")
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle("rltab typing replay")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
