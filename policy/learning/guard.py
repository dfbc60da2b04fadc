"""The guard: may a candidate version replace its parent?

Asked in order:
  1. The repository's own recent work, held back from training: the candidate must explain
     what the user then wrote (held-back demonstrations) better than its parent, and must not
     lower the reward-weighted likelihood of the held-back suggestions.
  2. General ability: held-out stdlib loss within a tolerance of the parent (one step) and of
     the base the chain started from (the whole chain); HumanEval single-line-infilling pass@1
     not lower beyond chance.
  3. The int8 export agrees with torch.

`run_guard` is one function on purpose: the checks run in the order above, each may end the
run with its reason, and they share the candidate's loaded models.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from rltab.policy.evaluation import evaluate, humaneval
from rltab.policy.evaluation.passk import paired_loss_p_value
from rltab.policy.inference.loading import load_model
from rltab.policy.model import tokenizer as T
from rltab.policy.model.adapters import policy
from rltab.policy.model.checkpoint import read_meta
from rltab.policy.model.fim import fim_template
from rltab.policy.model.formats import weights_digest
from rltab.policy.model.home import base_dir, cache_dir

from .config import UpdaterConfig
from .examples import Example
from .scoring import mean_logprob


def reward_weighted_ll(model, examples: list[Example]) -> float | None:
    """sum r * mean log p(completion) / sum |r| over rewarded events with a nonzero reward."""
    num = den = 0.0
    for e in examples:
        if e.rewarded and e.reward:
            num += e.reward * mean_logprob(model, e.served_prompt, e.completion)
            den += abs(e.reward)
    return num / den if den else None


def demonstration_nll(model, examples: list[Example]) -> float | None:
    """Mean per-token negative log-likelihood of what the user wrote (demonstrations)."""
    nll = [-mean_logprob(model, e.prompt, e.demonstration) for e in examples if e.demonstration]
    return float(np.mean(nll)) if nll else None


@dataclass
class Scores:
    """What the guard compares, for one model: the repository's held-back events, and held-out
    stdlib code."""

    demonstration_nll: float | None
    reward_weighted_ll: float | None
    heldout_loss: float


def heldout_rows(home: Path, model_path: Path):

    weights = base_dir(home, model_path)
    return evaluate.heldout_rows(T.load_tokenizer(weights), 256, max_rows=8, eos=fim_template(weights).eos)


def scores(model, held: list[Example], rows) -> Scores:
    with torch.no_grad():
        return Scores(
            demonstration_nll(model, held), reward_weighted_ll(model, held), evaluate.heldout_loss(model, rows)
        )


def run_guard(
    candidate: Path,
    parent_dir: Path,
    home: Path,
    held: list[Example],
    cfg: UpdaterConfig,
    candidate_model=None,
    parent_scores: Scores | None = None,
    rows=None,
) -> dict:
    """The verdict on `candidate`. The updater passes the model it trained (the candidate's
    weights, already in memory), the parent's scores taken before training and the held-out rows
    they were taken on, so that no second copy of the weights is loaded and nothing is built twice."""

    rows = heldout_rows(home, candidate) if rows is None else rows
    new_torch = candidate_model if candidate_model is not None else policy(home, candidate)
    old = parent_scores or scores(policy(home, parent_dir), held, rows)
    new = scores(new_torch, held, rows)
    parent_guard = read_meta(parent_dir).get("guard", {})
    reasons: list[str] = []

    # 1. The repository's own held-back work.
    new_demo, old_demo = new.demonstration_nll, old.demonstration_nll
    new_rw, old_rw = new.reward_weighted_ll, old.reward_weighted_ll
    demos = sum(bool(e.demonstration) for e in held)
    demo_checked = demos >= cfg.guard_min_held_back
    if demo_checked and new_demo is not None and old_demo is not None and not new_demo < old_demo:
        reasons.append(f"demonstration loss on held-back events {new_demo:.4f} >= parent {old_demo:.4f}")
    rw_checked = sum(bool(e.rewarded and e.reward) for e in held) >= cfg.guard_min_held_back
    if rw_checked and new_rw is not None and old_rw is not None and new_rw < old_rw:
        reasons.append(f"reward-weighted log-likelihood on held-back events {new_rw:.4f} < parent {old_rw:.4f}")

    # 2. General ability.
    new_loss, old_loss = new.heldout_loss, old.heldout_loss
    if not math.isfinite(new_loss):
        reasons.append("non-finite held-out loss")
    base_loss = parent_guard.get("base_heldout_loss", old_loss)
    for name, ref, tol in (
        ("parent", old_loss, cfg.guard_loss_tolerance),
        ("base", base_loss, cfg.guard_base_loss_tolerance),
    ):
        if new_loss > ref * (1 + tol):
            reasons.append(f"held-out loss {new_loss:.4f} > {name} {ref:.4f} + {100 * tol:g}%")
    served = load_model(home, model_path=candidate, version="candidate")
    passes = {}
    if cfg.guard_pass_tasks:
        solved = humaneval_solved(served, cfg.guard_pass_tasks)
        parent_solved_tasks = parent_guard.get("solved_tasks")
        if parent_solved_tasks is None or parent_guard.get("pass_tasks") != cfg.guard_pass_tasks:
            parent_solved_tasks = parent_solved(home, parent_dir, cfg.guard_pass_tasks)
        base = parent_guard.get("base_solved_tasks", parent_solved_tasks)
        n = cfg.guard_pass_tasks
        for name, ref in (("parent", parent_solved_tasks), ("base", base)):
            p = paired_loss_p_value(set(ref), set(solved))
            if len(solved) < len(ref) * (1 - cfg.guard_pass_tolerance) and p < cfg.guard_pass_alpha:
                reasons.append(
                    f"HumanEval-infill pass@1 {len(solved) / n:.3f} < {name} {len(ref) / n:.3f} "
                    f"- {100 * cfg.guard_pass_tolerance:.0f}% (paired p={p:.3f})"
                )
        passes = {
            "pass_at_1": len(solved) / n,
            "parent_pass_at_1": len(parent_solved_tasks) / n,
            "base_pass_at_1": len(base) / n,
            "pass_tasks": n,
            "solved_tasks": solved,
            "base_solved_tasks": base,
        }

    # 3. The export.
    parity = parity_check(served, new_torch, rows)
    if parity < cfg.guard_parity_min:
        reasons.append(f"int8 parity {parity:.2f} < {cfg.guard_parity_min}")
    return {
        "passed": not reasons,
        "reason": "; ".join(reasons) or "ok",
        "held_back_events": len(held),
        "held_back_demonstrations": demos,
        "demonstration_checked": demo_checked,
        "demonstration_nll": new_demo,
        "parent_demonstration_nll": old_demo,
        "reward_weighted_checked": rw_checked,
        "reward_weighted_ll": new_rw,
        "parent_reward_weighted_ll": old_rw,
        "heldout_loss": round(new_loss, 5),
        "parent_heldout_loss": round(old_loss, 5),
        "base_heldout_loss": round(base_loss, 5),
        "parity": round(parity, 4),
        **passes,
    }


def parent_solved(home: Path, parent_dir: Path, n_tasks: int) -> list[str]:
    """The guard tasks a parent without guard records (the starter, an imported model) solves,
    cached per weights so that its first children do not pay for it again."""

    path = cache_dir() / "guard" / f"{weights_digest(parent_dir)}-humaneval-{n_tasks}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        pass
    solved = humaneval_solved(load_model(home, model_path=parent_dir, version="parent"), n_tasks)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(solved))
    tmp.replace(path)
    return solved


def humaneval_solved(served, n_tasks: int) -> list[str]:
    """Tasks solved greedily (pass@1) in the guard's fixed HumanEval single-line-infilling subset."""

    return humaneval.evaluate(served, humaneval.guard_subset(humaneval.infill_tasks(), n_tasks))["solved"]


def parity_check(loaded, torch_model, rows, n: int = 32, margin: float = 1.0) -> float:
    """Share of held-out prefixes where the int8 engine picks torch's next token. Near-ties
    (torch's top two within `margin` logits) are left out: there quantization noise may pick
    either, while a broken export disagrees everywhere."""
    same = counted = 0
    with torch.no_grad():
        for i in range(min(n, len(rows))):
            ids = rows[i % len(rows), : 48 + 6 * i].tolist()
            logits, _, _ = loaded.engine.prefill(ids)
            ref = torch_model(input_ids=torch.tensor([ids])).logits[0, -1]
            top2 = torch.topk(ref, 2).values
            if not np.isfinite(logits).all():
                return 0.0
            if top2[0] - top2[1] < margin:
                continue
            counted += 1
            same += int(np.argmax(logits)) == int(ref.argmax())
    return same / counted if counted else 1.0
