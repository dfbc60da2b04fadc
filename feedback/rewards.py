"""Implicit reward of one suggestion from its fate (architecture.md §4). Pure; weights are config."""

from __future__ import annotations

from dataclasses import dataclass

SHOWN, ACCEPTED, PARTIAL, REJECTED, SILENT = "shown", "accepted", "partial", "rejected", "silent"
INVALID = "invalid"  # compiler feedback: the suggestion broke parsing and was never shown


CHARS, CURSOR = "chars", "cursor"


@dataclass(frozen=True)
class RewardConfig:
    scheme: str = CHARS
    """"chars" (the default): what the user gains, in characters (architecture.md §4); "cursor": Cursor's
    calibration (+0.75 / -0.25 / 0), made for whole-edit suggestions: it teaches a word-by-word
    completer to be short or silent (issue 13)."""
    read_cost_chars: float = 1.0
    """chars: what reading a shown suggestion costs the user, in characters they could have typed
    meanwhile. Paid by every suggestion shown (and by one dropped for breaking the syntax)."""
    chars_per_unit: float = 10.0
    """chars: rewards are given in units of this many characters, so that the updater's terms keep
    the scale they were tuned at (a kept 10-character accept is worth about Cursor's +1)."""
    shown_cost: float = -0.25
    """cursor: paid by every suggestion that was shown: the interruption."""
    accept_value: float = 1.0
    """cursor: earned by a fully accepted suggestion that was kept (times retention)."""
    silent: float = 0.0
    """An empty answer: nothing shown, nothing paid."""
    syntax_error: float = -0.25
    """cursor: automatic reward of a suggestion that would have broken parsing where the code
    parsed before (compiler feedback); it is dropped, not shown, and learned from like a rejection."""


def reward(
    outcome: str,
    accepted_chars: int = 0,
    suggestion_chars: int = 0,
    retention: float | None = None,
    cfg: RewardConfig = RewardConfig(),
) -> float:
    """The reward of one suggestion's fate. Retention defaults to 1 (kept) until a retention check
    says otherwise.

    chars:  silent 0 · (characters accepted × retention − read cost) / chars_per_unit, so a
            rejection earns −read cost and a partial accept that saved anything earns more.
    cursor: silent 0 · rejected −0.25 · accepted −0.25 + 1.0 × retention ·
            partial −0.25 + 1.0 × accepted_chars / suggestion_chars × retention."""
    if outcome == SILENT:
        return cfg.silent
    if outcome not in (INVALID, ACCEPTED, PARTIAL, REJECTED, SHOWN):
        raise ValueError(f"unknown outcome {outcome!r}")
    if cfg.scheme == CHARS:
        return round(
            (saved_chars(outcome, accepted_chars, suggestion_chars, retention) - cfg.read_cost_chars)
            / cfg.chars_per_unit,
            6,
        )
    if outcome == INVALID:
        return cfg.syntax_error
    r = _kept(retention)
    if outcome == ACCEPTED:
        return cfg.shown_cost + cfg.accept_value * r
    if outcome == PARTIAL:
        frac = accepted_chars / suggestion_chars if suggestion_chars > 0 else 0.0
        return cfg.shown_cost + cfg.accept_value * min(1.0, frac) * r
    return cfg.shown_cost


def saved_chars(
    outcome: str, accepted_chars: int = 0, suggestion_chars: int = 0, retention: float | None = None
) -> float:
    """Characters the user did not have to type: accepted characters that stayed."""
    if outcome == ACCEPTED:
        return suggestion_chars * _kept(retention)
    if outcome == PARTIAL:
        return min(accepted_chars, suggestion_chars) * _kept(retention)
    return 0.0


def _kept(retention: float | None) -> float:
    return 1.0 if retention is None else min(1.0, max(0.0, retention))


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
