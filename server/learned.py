"""`rltab learned`: what each model version learned, in the user's terms.

Per version: the events it was trained on and their outcomes, the guard's figures against its
parent, what it did for the user before (its parent) and after (itself), the updates that were
refused from it and why, and a few trained-on contexts with the suggestion then and its own now.
The VS Code view "What did rltab learn?" renders the JSON form.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from rltab.feedback.ledger import Ledger, SuggestionRow
from rltab.policy.model.home import current_version, list_versions

# The guard's figures worth a user's eye, each beside the parent's (guard.py's report keys).
GUARD_PAIRS = (
    ("held-out loss", "heldout_loss", "parent_heldout_loss", "lower is better"),
    ("demonstration loss", "demonstration_nll", "parent_demonstration_nll", "lower is better"),
    ("reward-weighted log-likelihood", "reward_weighted_ll", "parent_reward_weighted_ll", "higher is better"),
)


def report(home: Path, repo: str | None = None, examples: int = 2) -> list[dict]:
    """One entry per version (of `repo`'s chain and what it grew from, else every version),
    oldest first. `examples` > 0 runs each version on that many of its trained-on contexts."""
    versions = list_versions(home)
    if repo is not None:
        mine = {v["version"] for v in list_versions(home, repo)}
        parents = {v.get("parent") for v in versions if v["version"] in mine}
        versions = [v for v in versions if v["version"] in mine or v["version"] in parents]
    ledger = Ledger(home / "ledger.db") if (home / "ledger.db").exists() else None
    try:
        used = {r["model_version"]: r for r in ledger.stats(repo)} if ledger else {}
        cycles = ledger.cycles(repo) if ledger else []
        live = current_version(home, repo)
        out = []
        for v in versions:
            name = v["version"]
            rows = ledger.rows("trained_in = ?", [name]) if ledger else []
            entry = {
                "version": name,
                "live": name == (current_version(home, v["repo"]) if v.get("repo") else live),
                "date": when(v.get("time")),
                "parent": v.get("parent"),
                "repo": v.get("repo"),
                "algorithm": v.get("algorithm"),
                "events": v.get("events_used"),
                "outcomes": dict(Counter(r["outcome"] for r in rows if r["outcome"])),
                "guard": _guard(v.get("guard") or {}),
                "before": _usage(v.get("parent"), used),
                "after": _usage(name, used),
                "refused": [
                    {"date": when(c["time"]), "reason": c["reason"], "events": c["events"]}
                    for c in cycles
                    if c["parent"] == name and not c["version"]
                ],
                "examples": [],
            }
            if examples > 0 and rows:
                entry["examples"] = _side_by_side(home, name, rows, examples)
            out.append(entry)
        return out
    finally:
        if ledger:
            ledger.close()


def when(t: float | None) -> str | None:
    """A meta.json or ledger time as the CLI prints it (None: shipped, no time)."""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t)) if t else None


def _guard(g: dict) -> dict:
    figures = {key: g.get(key) for _, key, parent_key, _ in GUARD_PAIRS for key in (key, parent_key)}
    return {"reason": g.get("reason"), **{k: v for k, v in figures.items() if v is not None}} if g else {}


def _usage(version: str | None, used: dict[str, dict]) -> dict | None:
    """What `version` did for the user: suggestions shown, the share taken, characters accepted."""
    if version is None:
        return None
    u = used.get(version, {})
    shown = u.get("shown", 0)
    return {
        "version": version,
        "shown": shown,
        "accept_rate": u.get("accept_rate", 0.0),
        "chars_accepted": u.get("chars_accepted", 0),
        "chars_per_shown": round(u.get("chars_accepted", 0) / shown, 2) if shown else 0.0,
        "chars_saved_per_100": u.get("chars_saved_per_100"),  # of the characters written (None: not counted)
    }


def _side_by_side(home: Path, version: str, rows: list[SuggestionRow], n: int) -> list[dict]:
    """The newest `n` trained-on contexts with their text kept: the suggestion then, what the user
    did, and what `version` suggests there now."""
    # onnxruntime and a model load only when examples are asked for (`--examples 0` stays quick)
    from rltab.policy.completion.completer import Completer
    from rltab.policy.inference.loading import load_model

    kept = [r for r in rows if r["prefix_text"] is not None and r["completion_text"]][-n:]  # shown ones
    if not kept:
        return []
    completer = Completer(load_model(home, version))
    out = []
    for r in kept:
        before, then = r["prefix_text"] or "", r["completion_text"] or ""  # kept: both there
        now = completer.complete(before, r["suffix_text"] or "")
        taken = then[: r["accepted_chars"] or 0]
        out.append(
            {
                "file": Path(r["file"]).name if r["file"] else None,
                "context": "\n".join(before.split("\n")[-3:]),
                "then_version": r["model_version"],
                "then": then,
                "outcome": r["outcome"],
                "user_wrote": r["demonstration"] if r["demonstration"] is not None else taken,
                "now": now.text,
            }
        )
    return out


def format_text(entries: list[dict]) -> str:
    lines: list[str] = []
    if not any(e["events"] for e in entries):
        lines.append(
            "Nothing learned yet: no version has been trained here. Turn learning on (the editor's rltab "
            "menu, or `rltab serve --learn`) and the updater trains once enough suggestions have settled."
        )
    for e in entries:
        head = [e["version"] + (" (live)" if e["live"] else "")]
        head += [e["date"] or "shipped"]
        head += [f"from {e['parent']}"] if e["parent"] else []
        head += [f"repo {e['repo']}"] if e["repo"] else []
        lines.append(" · ".join(head))
        if e["events"] is not None:
            outcomes = ", ".join(f"{n} {k}" for k, n in sorted(e["outcomes"].items(), key=lambda kv: -kv[1]))
            lines.append(f"  trained on {e['events']} events" + (f": {outcomes}" if outcomes else ""))
        g = e["guard"]
        if g:
            figures = [
                f"{label} {g[key]:.4g} (parent {g[parent_key]:.4g})"
                for label, key, parent_key, _ in GUARD_PAIRS
                if isinstance(g.get(key), int | float) and isinstance(g.get(parent_key), int | float)
            ]
            lines.append(f"  guard {g['reason']}" + (": " + "; ".join(figures) if figures else ""))
        for label, u in (("before", e["before"]), ("after ", e["after"])):
            if u is not None and (e["parent"] or label == "after "):
                saved = u["chars_saved_per_100"]
                lines.append(
                    f"  {label} ({u['version']}): {u['shown']} shown, {100 * u['accept_rate']:.1f}% taken, "
                    f"{u['chars_accepted']} chars accepted ({u['chars_per_shown']:.1f} per suggestion"
                    + (f", {saved:.1f} per 100 written)" if saved is not None else ")")
                )
        for r in e["refused"]:
            lines.append(f"  refused an update from it {r['date']} ({r['events']} events): {r['reason']}")
        if e["examples"]:
            lines.append("  trained-on contexts, then and now:")
        for x in e["examples"]:
            lines.append(f"    {x['file'] or '?'}: …{x['context'][-60:]!r}")
            lines.append(
                f"      then ({x['then_version']}): {x['then']!r} {x['outcome']}; you wrote {x['user_wrote']!r}"
            )
            lines.append(f"      now  ({e['version']}): {x['now']!r}")
    return "\n".join(lines)
