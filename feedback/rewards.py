"""Implicit reward of one suggestion from its fate (design.md §4). Pure; weights are config."""
from __future__ import annotations

from dataclasses import dataclass

SHOWN, ACCEPTED, PARTIAL, REJECTED, SILENT = "shown", "accepted", "partial", "rejected", "silent"
INVALID = "invalid"  # compiler feedback: the suggestion broke parsing and was never shown


@dataclass(frozen=True)
class RewardConfig:
    shown_cost: float = -0.25
    """Paid by every suggestion that was shown: the interruption."""
    accept_value: float = 1.0
    """Earned by a fully accepted suggestion that was kept (times retention)."""
    silent: float = 0.0
    """An empty answer: nothing shown, nothing paid."""
    syntax_error: float = -0.25
    """Automatic reward of a suggestion that would have broken parsing where the code parsed
    before (compiler feedback); it is dropped, not shown, and learned from like a rejection."""


def reward(outcome: str, accepted_chars: int = 0, suggestion_chars: int = 0,
           retention: float | None = None, cfg: RewardConfig = RewardConfig()) -> float:
    """silent 0 · rejected −0.25 · accepted −0.25 + 1.0 × retention ·
    partial −0.25 + 1.0 × accepted_chars / suggestion_chars × retention.
    Retention defaults to 1 (kept) until a retention check says otherwise."""
    if outcome == SILENT:
        return cfg.silent
    if outcome == INVALID:
        return cfg.syntax_error
    r = 1.0 if retention is None else min(1.0, max(0.0, retention))
    if outcome == ACCEPTED:
        return cfg.shown_cost + cfg.accept_value * r
    if outcome == PARTIAL:
        frac = accepted_chars / suggestion_chars if suggestion_chars > 0 else 0.0
        return cfg.shown_cost + cfg.accept_value * min(1.0, frac) * r
    if outcome in (REJECTED, SHOWN):
        return cfg.shown_cost
    raise ValueError(f"unknown outcome {outcome!r}")


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (characters), O(len(a) * len(b)) with two rows."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def retention(accepted: str, now: str) -> float:
    """1 − normalized edit distance between the accepted text and what stands there now."""
    if not accepted and not now:
        return 1.0
    return 1.0 - edit_distance(accepted, now) / max(len(accepted), len(now))
