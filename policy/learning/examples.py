"""What one update cycle learns from: ledger rows decoded once into typed examples.

Each learnable row is a request the server answered. It teaches in up to two ways:
  - through its reward (policy gradient, KL, silence, DPO/RRHF): the completion that was served,
    or the silence it chose, and what that earned;
  - through its demonstration (SFT): what the user then wrote at that place.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from rltab.feedback.ledger import LearnableRow
from rltab.policy.model import tokenizer as T
from rltab.policy.model.fim import fim_template, stop_token_ids
from rltab.policy.pretraining import corpus

from .config import UpdaterConfig
from .losses import RunningBaseline, group_relative_advantages


@dataclass
class Example:
    suggestion_id: str
    kind: str  # line | block: which tokens end an answer
    prompt: list[int]
    completion: list[int]  # the served completion's ids ([] if the row has none)
    old_logp: list[float]  # the serving engine's log-probs of `completion` (behaviour policy)
    reward: float | None
    outcome: str
    healed: int = 0  # the completion's first id replaces the prompt's last token
    demonstration: list[int] = field(default_factory=list)  # what the user wrote there
    rewarded: bool = False  # the completion (or silence) teaches through its reward
    shown_chars: int = 0  # characters of the completion that were shown
    taken_chars: int = 0  # of those, characters the user took
    ends: list[int] = field(default_factory=list)  # where each completion token ends in the shown text
    advantage: float = 0.0
    ref_logp: torch.Tensor | None = None

    def token_advantages(self) -> tuple[list[float], list[float]]:
        """(advantage, mask) per completion token: the credit each token gets for what the user
        did with its characters (UpdaterConfig.token_credit)."""
        a = self.advantage
        if self.outcome not in ("accepted", "partial", "rejected") or not self.ends:
            return [a] * len(self.completion), [1.0] * len(self.completion)
        adv, mask, blamed = [], [], False
        starts = [0, *self.ends[:-1]]
        for start, end in zip(starts, self.ends):
            if start >= self.shown_chars and start > 0:  # never shown
                adv.append(0.0)
                mask.append(0.0)
            elif end <= self.taken_chars:  # taken: it saved its characters
                adv.append(a)
                mask.append(1.0)
            elif not blamed:  # the first character the user did not take is in this token
                blamed = True
                adv.append(min(a, -abs(a)))
                mask.append(1.0)
            else:  # after the divergence: never judged
                adv.append(0.0)
                mask.append(0.0)
        return adv, mask

    @property
    def served_prompt(self) -> list[int]:
        """The prompt the completion continues (less the healed token)."""
        return self.prompt[: len(self.prompt) - self.healed]


@dataclass(frozen=True)
class StopSets:
    """Token ids that end an answer, per context kind (a line answer also ends at a newline)."""

    stop: tuple[int, ...]
    newline: tuple[int, ...]

    def __getitem__(self, kind: str) -> list[int]:
        return sorted(set(self.stop) | set(self.newline)) if kind == "line" else list(self.stop)


def stop_sets_for(model_dir_path: Path, tok) -> StopSets:

    table = T.token_bytes(tok)
    return StopSets(
        tuple(stop_token_ids(tok, fim_template(model_dir_path))), tuple(i for i, b in enumerate(table) if b"\n" in b)
    )


def from_rows(rows: Sequence[LearnableRow], tok, cfg: UpdaterConfig, stops: StopSets) -> list[Example]:
    """Decode ledger rows, oldest first. Damaged rows are skipped: they teach nothing, and one
    must not fail the cycle."""

    table = T.token_bytes(tok)
    out = []
    for r in rows:
        try:
            prompt = json.loads(r["prompt_ids"] or "")[-cfg.max_prompt_tokens :]
            completion = json.loads(r["completion_ids"] or "[]")[: cfg.max_completion_tokens]
            old = json.loads(r["logprobs"] or "[]")[: cfg.max_completion_tokens]
        except (TypeError, ValueError):
            continue
        if not prompt or not isinstance(prompt, list):
            continue
        demo = (
            tok.encode(r["demonstration"], add_special_tokens=False).ids[: cfg.max_completion_tokens]
            if r.get("demonstration")
            else []
        )
        e = Example(
            r["id"],
            r["kind"] or "line",
            prompt,
            completion,
            old,
            None if r["reward"] is None else float(r["reward"]),
            r["outcome"] or "",
            int(r.get("healed") or 0),
            demo,
        )
        e.rewarded = (
            bool(completion)
            # No log-probs: a remote engine that returns none (remote_engine.py); the updater
            # takes the parent's as the behaviour's.
            and (len(old) == len(completion) or not old)
            and e.reward is not None
            # A silent row is the model choosing silence only if it stopped at once;
            # output that the filters emptied was never shown: a 0 would teach nothing true.
            and (e.outcome != "silent" or chose_silence(e, stops))
        )
        if e.rewarded and all(0 <= i < len(table) for i in completion + prompt[-1:]):
            e.shown_chars, e.taken_chars = int(r.get("completion_chars") or 0), int(r.get("accepted_chars") or 0)
            hide = len(table[prompt[-1]]) if e.healed else 0  # the healed token repeats the prompt's end
            pos, e.ends = -hide, []
            for i in completion:
                pos += len(table[i])
                e.ends.append(max(0, pos))
        if e.rewarded or e.demonstration:
            out.append(e)
    return out


def chose_silence(e: Example, stops: StopSets) -> bool:
    return not e.healed and e.completion[0] in stops[e.kind]


def assign_advantages(examples: list[Example], baseline: RunningBaseline) -> None:
    """GRPO's group baseline where one context has several samples, else the running mean of
    that context kind (updated as we go, oldest first). Only rewarded examples take part."""
    rewarded = [e for e in examples if e.rewarded and e.reward is not None]
    rewards = [float(e.reward or 0.0) for e in rewarded]
    grouped = group_relative_advantages(rewards, [hash(tuple(e.prompt)) for e in rewarded])
    for e, r, g in zip(rewarded, rewards, grouped):
        e.advantage = g if g is not None else r - baseline(e.kind)
        baseline.update(e.kind, r)


def ranked_groups(examples: list[Example]) -> list[list[Example]]:
    """Rewarded completions of one context (same prompt) whose rewards differ, lowest first."""
    by_prompt: dict[tuple, list[Example]] = defaultdict(list)
    for e in examples:
        if e.rewarded:
            by_prompt[tuple(e.prompt)].append(e)
    groups = [sorted(g, key=lambda e: e.reward or 0.0) for g in by_prompt.values()]
    return [g for g in groups if len(g) >= 2 and (g[-1].reward or 0.0) > (g[0].reward or 0.0)]


def dpo_pairs(examples: list[Example]) -> list[tuple[Example, Example]]:
    """The best and the worst completion of each ranked group."""
    return [(g[-1], g[0]) for g in ranked_groups(examples)]


def grouped_order(examples: list[Example], rng) -> list[int]:
    """A random order that keeps completions of one context next to each other, so that the
    pairwise terms (DPO, RRHF) find whole groups inside a minibatch."""
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i, e in enumerate(examples):
        groups[tuple(e.prompt)].append(i)
    keys = list(groups)
    return [i for k in rng.permutation(len(keys)) for i in groups[keys[k]]]


def general_python_rows(tok, cfg: UpdaterConfig, n: int) -> list[torch.Tensor]:
    """`n` fixed rows of standard-library training code (never the held-out modules), one per
    optimizer step, for the ptx term."""

    files = corpus.stdlib_files("train")
    rng = random.Random(cfg.seed)
    rows: list[torch.Tensor] = []
    while len(rows) < n and files:
        text = corpus.read_sources([rng.choice(files)])
        ids = tok.encode(text[0], add_special_tokens=False).ids if text else []
        if len(ids) > cfg.ptx_tokens:
            start = rng.randrange(len(ids) - cfg.ptx_tokens)
            rows.append(torch.tensor(ids[start : start + cfg.ptx_tokens]))
    return rows
