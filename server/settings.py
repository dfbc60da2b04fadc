"""Settings as one typed tree with defaults; camelCase on the wire (architecture.md §3).

Invalid values fall back to the default and produce a warning the server shows to the user
(window/showMessage), never an error.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from typing import Any


@dataclass(frozen=True)
class Settings:
    learning_enabled: bool = False
    """Opt-in: record prompts/completions and train on them. Off: only outcome counts are kept."""
    learning_paused: bool = False
    """Hold the updater (an editor sets it on battery power): learning keeps recording, training
    waits until it is cleared."""
    silence_threshold: float = 0.0
    """Show a suggestion only if the model's confidence (geometric-mean token probability) is at least this."""
    max_lines: int = 8
    """Most lines a multi-line suggestion may have."""
    debounce_ms: int = 0
    """Wait this long after a request before running the model; a newer request cancels the wait."""
    syntax_check: bool = True
    """Compiler feedback: drop (or cut back) Python suggestions that break a statement that was
    valid before, and log them with a negative automatic reward. On because it measured better:
    accept rate 30.5 % -> 31.6 % on the click replay (BENCHMARKS.md)."""
    reward_scheme: str = "chars"
    """How a suggestion's fate is rewarded (feedback/rewards.py): "chars" (characters saved minus
    the cost of reading it) or "cursor" (Cursor's +0.75 / -0.25 / 0)."""
    read_cost_chars: float = 1.0
    """"chars" scheme: what reading a shown suggestion costs, in characters (RewardConfig)."""
    threads: int = 0
    """Threads the model runs on; 0: chosen by the machine and the model (policy/inference/threads.py:
    every core up to two, all but one above; at most two for a small model). A change reloads the
    model before the next request."""
    context: bool = True
    """Put the repository in the prompt: definitions of imported names, similar code from other
    files, this file's recent edits (policy/workspace/). Off: the current file only."""

    @property
    def trains(self) -> bool:
        """Whether the background updater should run: learning on and not paused."""
        return self.learning_enabled and not self.learning_paused


REWARD_SCHEMES = ("chars", "cursor")
_SWITCHES = {"syntaxCheck": "syntax_check", "context": "context"}
_WIRE = {
    "silenceThreshold": "silence_threshold",
    "maxLines": "max_lines",
    "debounceMs": "debounce_ms",
    "readCostChars": "read_cost_chars",
    "threads": "threads",
}
_RANGES = {
    "silence_threshold": (0.0, 1.0),
    "max_lines": (1, 64),
    "debounce_ms": (0, 2000),
    "read_cost_chars": (0.0, 40.0),
    "threads": (0, 256),
}


def parse_settings(raw: Any, base: Settings | None = None) -> tuple[Settings, list[str]]:
    """Apply a wire dict (`{"learning": {"enabled": true}, "maxLines": 8}`) over `base`."""
    base = base or Settings()
    if raw is None:
        return base, []
    if not isinstance(raw, dict):
        return base, [f"rltab: settings must be an object, got {type(raw).__name__}; using defaults"]
    warnings: list[str] = []
    changes: dict[str, Any] = {}
    learning = raw.get("learning")
    if learning is not None:
        enabled = learning.get("enabled") if isinstance(learning, dict) else learning
        if isinstance(enabled, bool):
            changes["learning_enabled"] = enabled
        elif enabled is not None or not isinstance(learning, dict):
            warnings.append(
                f"rltab: learning.enabled must be true or false, got {enabled!r}; keeping {base.learning_enabled}"
            )
        paused = learning.get("paused") if isinstance(learning, dict) else None
        if isinstance(paused, bool):
            changes["learning_paused"] = paused
        elif paused is not None:
            warnings.append(
                f"rltab: learning.paused must be true or false, got {paused!r}; keeping {base.learning_paused}"
            )
    for wire, name in _SWITCHES.items():
        value = raw.get(wire)
        if value is None:
            continue
        if isinstance(value, bool):
            changes[name] = value
        else:
            warnings.append(f"rltab: {wire} must be true or false, got {value!r}; keeping {getattr(base, name)}")
    scheme = raw.get("rewardScheme")
    if scheme is not None:
        if scheme in REWARD_SCHEMES:
            changes["reward_scheme"] = scheme
        else:
            warnings.append(
                f"rltab: rewardScheme must be one of {', '.join(REWARD_SCHEMES)}, got {scheme!r}; "
                f"keeping {base.reward_scheme}"
            )
    kinds: dict[str, type] = {f.name: type(f.default) for f in fields(Settings)}
    for wire, name in _WIRE.items():
        if wire not in raw:
            continue
        value, kind = raw[wire], kinds[name]
        lo, hi = _RANGES[name]
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok and kind is int and float(value) != int(value):
            ok = False
        if ok and lo <= value <= hi:
            changes[name] = kind(value)
        else:
            warnings.append(
                f"rltab: {wire} must be a number in [{lo}, {hi}], got {value!r}; keeping {getattr(base, name)}"
            )
    return replace(base, **changes), warnings


class BadEnvironment(ValueError):
    """An environment variable rltab reads holds something it cannot use."""


def env_delays(name: str, default: tuple[float, ...]) -> tuple[float, ...]:
    """Delays from the environment (seconds, comma-separated), for tests and demos."""
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        delays = tuple(float(x) for x in raw.split(","))
    except ValueError:
        delays = ()
    if not delays or not all(0 <= d < float("inf") for d in delays):
        raise BadEnvironment(f"{name}={raw!r}: expected seconds, comma-separated (e.g. {','.join(map(str, default))})")
    return delays
