"""The learning path: one update cycle, from ledger rewards to a published, guard-checked model.

    ledger rows -> examples (reward, demonstration) -> advantages (GRPO group / running baseline)
    -> LoRA steps (PPO clip + KL to the parent + silence + SFT on demonstrations [+ DPO, RRHF, ptx])
    -> adapter files (no merge, no export: the base's ONNX graph takes the adapter at run time)
    -> guard (the repository's held-back work, then general ability)
    -> models/<version>/ + the repository's pointer

Runs in its own process (`rltab train`), niced, one thread; the server only ever sees the
published directory appear and `current` change. Nothing here imports from rltab.server.
The pieces (learning/): config (settings), examples (rows -> typed examples), scoring (log-probs),
losses (the maths), model/adapters (LoRA versions over a shared base), guard, versions (publish).

`_cycle` and `_steps` are whole on purpose, in the manner of nanoGPT's and CleanRL's training
loops (design.md §8): one cycle reads top to bottom, every diagnostic beside the step it measures.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from rltab.feedback.ledger import LearnableRow, Ledger
from rltab.policy.model import adapters as A
from rltab.policy.model import tokenizer as T
from rltab.policy.model.checkpoint import load_torch
from rltab.policy.model.formats import TRAINING_FILE
from rltab.policy.model.home import base_dir, current_version, model_dir
from rltab.policy.runtime.progress import Progress, silent

from . import guard as G
from . import losses as L
from .config import UpdaterConfig
from .distributed import SOLO, World
from .examples import (
    Example,
    StopSets,
    assign_advantages,
    dpo_pairs,
    from_rows,
    general_python_rows,
    grouped_order,
    ranked_groups,
    stop_sets_for,
)
from .guard import parity_check, run_guard
from .retokenize import in_tokenizer
from .scoring import completion_logprobs, decoder, next_logits, stop_logprob
from .versions import next_version, publish

__all__ = ["CycleResult", "UpdaterConfig", "parity_check", "run_guard", "train_cycle"]


@dataclass
class CycleResult:
    published: str | None
    reason: str
    events: int = 0
    seconds: float = 0.0
    metrics: dict = field(default_factory=dict)
    parent: str | None = None  # the version it started from (None: it stopped before choosing)
    repo: str | None = None

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def example_terms(model, e: Example, cfg: UpdaterConfig, stops: StopSets) -> tuple[dict[str, torch.Tensor], dict]:
    """The loss terms one example contributes (unweighted), and PPO's diagnostics."""
    terms: dict[str, torch.Tensor] = {}
    diag: dict[str, float] = {}
    if e.rewarded:
        logp, first = completion_logprobs(model, e.served_prompt, e.completion)
        mask = torch.ones_like(logp)[None]
        old = torch.tensor(e.old_logp, dtype=logp.dtype)[None]
        if cfg.token_credit:
            adv, credited = (torch.tensor([x], dtype=logp.dtype) for x in e.token_advantages())
            terms["pg"], diag = L.ppo_clip_loss(logp[None], old, adv, credited, cfg.clip_eps)
        else:
            terms["pg"], diag = L.ppo_clip_loss(logp[None], old, torch.tensor([e.advantage]), mask, cfg.clip_eps)
        assert e.ref_logp is not None  # set for every example before the first step
        terms["kl_ref"] = L.kl_to_reference(logp[None], e.ref_logp[None], mask)
        if cfg.silence_coef and e.reward:
            first = next_logits(model, e.prompt) if e.healed else first  # the engine's real first choice
            terms["silence"] = L.silence_loss(stop_logprob(first, stops[e.kind]), e.reward)
    if cfg.sft_coef and e.demonstration:
        demo, _ = completion_logprobs(model, e.prompt, e.demonstration)
        terms["sft"] = L.sft_loss(demo[None], torch.ones_like(demo)[None])
    return terms, diag


def term_weights(cfg: UpdaterConfig) -> dict[str, float]:
    return {
        "pg": cfg.pg_coef,
        "kl_ref": cfg.kl_coef,
        "silence": cfg.silence_coef,
        "sft": cfg.sft_coef,
        "dpo": cfg.dpo_coef,
        "rrhf": cfg.rrhf_coef,
        "ptx": cfg.ptx_coef,
    }


def train_cycle(
    home: Path,
    cfg: UpdaterConfig | None = None,
    log=print,
    repo: str | None = None,
    progress: Progress = silent,
    rows: list[LearnableRow] | None = None,
    world: World = SOLO,
) -> CycleResult:
    """Learn from one repository's newest learnable events (`repo`, else the one with the most
    waiting) and publish the next version of its chain if the guard passes. `rows` (an export,
    feedback/export.py) replace the ledger's; `world` shares the steps out over processes
    (distributed.py: every process runs this, rank 0 publishes)."""
    cfg = cfg or UpdaterConfig()
    t0 = time.time()
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(1)  # the updater's contract: serving keeps the other core
    ledger = Ledger(home / "ledger.db")
    marker = home / TRAINING_FILE  # the server shows "training" while it names this process
    if world.leader:
        marker.write_text(str(os.getpid()))
    try:
        try:
            result = _cycle(home, ledger, cfg, log, repo, progress, rows, world)
        except (OSError, ValueError, RuntimeError) as e:  # e.g. a damaged parent model: serving is untouched
            result = CycleResult(None, f"{type(e).__name__}: {e}", repo=repo)
        result.seconds = round(time.time() - t0, 2)
        if not world.leader:
            return result
        ledger.set_state("last_update", result.to_json())
        if result.parent is not None:  # a cycle that trained: published or refused, and why
            ledger.record_cycle(
                result.repo,
                result.parent,
                result.published,
                result.reason,
                result.events,
                result.seconds,
                result.metrics,
            )
        return result
    finally:
        if world.leader:
            marker.unlink(missing_ok=True)
        ledger.close()


def busiest_repo(ledger: Ledger) -> str | None:
    """The repository with the most learnable events waiting (None: rows without one)."""
    pending = ledger.pending_by_repo()
    return max(pending, key=lambda r: (pending[r], r or "")) if pending else None


def _cycle(
    home: Path,
    ledger: Ledger,
    cfg: UpdaterConfig,
    log,
    repo: str | None,
    progress: Progress,
    given: list[LearnableRow] | None,
    world: World,
) -> CycleResult:
    # 1. Examples: the repository's newest learnable rows, the most recent held back for the guard.
    if given is None:
        repo = repo or busiest_repo(ledger)  # rows recorded without one ("" / None) learn the shared base
    parent = current_version(home, repo)
    parent_dir = model_dir(home, parent)
    # A row is complete once its demonstration came in or can no longer come (rows written by
    # something other than the server, which follows no demonstrations, are complete at once).
    window = ledger.get_state("demonstration_window_s")
    complete_before = None if window is None else time.time() - float(window) - cfg.demonstration_margin_s
    rows = ledger.learnable(cfg.max_events, repo, complete_before=complete_before) if given is None else given
    if len(rows) < cfg.min_events:
        return CycleResult(None, f"only {len(rows)} learnable events (need {cfg.min_events})", len(rows))

    weights = base_dir(home, parent_dir)  # a full model: the parent itself, or the base under its adapter
    tok = T.load_tokenizer(weights)
    stops = stop_sets_for(weights, tok)
    rows, again, dropped = in_tokenizer(rows, home, weights, tok)  # rows of a previous starter's tokenizer
    if again or dropped:
        log(f"{again} rows of another tokenizer encoded again from their text, {dropped} without text left out")
    examples = from_rows(rows, tok, cfg, stops)
    if len(examples) < cfg.min_events:
        return CycleResult(None, f"only {len(examples)} usable events (need {cfg.min_events})", len(examples))
    baseline = L.RunningBaseline(cfg.baseline_decay, ledger.get_state("baseline", {}))
    assign_advantages(examples, baseline)
    n_hold = max(1, int(len(examples) * cfg.holdout_fraction)) if len(examples) >= 5 else 0
    train, held = (examples[:-n_hold], examples[-n_hold:]) if n_hold else (examples, [])

    # 2. The policy: the base with a LoRA that starts as the parent's (a fresh one, B = 0, over
    # a full-model parent); the reference is that starting point: the parent itself.
    lora = A.lora_settings(parent_dir) or {"r": cfg.lora_r, "alpha": cfg.lora_alpha}
    model = A.with_lora(load_torch(weights), lora["r"], lora["alpha"], cfg.seed)
    if A.lora_settings(parent_dir):
        A.load_into(model, parent_dir)
    with torch.no_grad():
        for i, e in enumerate(train):
            if e.rewarded:
                e.ref_logp = completion_logprobs(model, e.served_prompt, e.completion)[0]
                if not e.old_logp:  # served remotely without log-probs: by the parent's weights
                    e.old_logp = e.ref_logp.tolist()
            progress("events", i + 1, len(train))
    guard_rows = G.heldout_rows(home, parent_dir) if world.leader else []  # the parent's base: same rows
    parent_scores = G.scores(model, held, guard_rows) if world.leader else None  # before any step
    on_gpu = world.device != "cpu"
    if on_gpu:  # the steps on the GPU; the guard and the files on the CPU, as ever
        model.to(world.device)
        for e in train:
            e.ref_logp = None if e.ref_logp is None else e.ref_logp.to(world.device)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=cfg.lr)
    rng = np.random.default_rng(cfg.seed)
    steps_per_epoch = -(-len(train) // cfg.minibatch)
    ptx = (
        [r.to(world.device) for r in general_python_rows(tok, cfg, cfg.epochs * steps_per_epoch)]
        if cfg.ptx_coef
        else []
    )

    # 3. The loop: every term, every diagnostic, per optimizer step.
    history: list[dict[str, float]] = []
    model.train()
    if on_gpu:
        torch.set_default_device(world.device)  # the tensors the losses build, beside the model
    try:
        outcome = _steps(
            model, train, cfg, stops, opt, params, ptx, steps_per_epoch, rng, world, history, log, progress
        )
    finally:
        if on_gpu:
            torch.set_default_device(None)
            model.to("cpu")
    if outcome is not None:
        return dataclasses.replace(outcome, events=len(train), parent=parent, repo=repo)
    model.eval()
    metrics = {k: float(np.mean([h[k] for h in history if k in h])) for k in sorted({k for h in history for k in h})}
    rewarded = [e.reward for e in train if e.rewarded and e.reward is not None]
    metrics["reward_mean"] = float(np.mean(rewarded)) if rewarded else 0.0
    metrics["demonstrations"] = sum(bool(e.demonstration) for e in train)
    log(
        f"trained on {len(train)} events ({cfg.epochs} epochs): "
        + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
    )

    # 4. Publish if the guard lets it through.
    if not world.leader:
        return CycleResult(
            None, f"rank {world.rank}: rank 0 publishes", len(train), metrics=metrics, parent=parent, repo=repo
        )
    version = next_version(home)
    published, guard = publish(
        home,
        model,
        lora,
        parent,
        parent_dir,
        version,
        held,
        cfg,
        metrics,
        len(train),
        repo or None,
        parent_scores,
        guard_rows,
        log,
        progress,
    )
    if published:
        ledger.mark_trained([e.suggestion_id for e in train], version)
        ledger.set_state("baseline", baseline.values)
    reason = "published" if published else f"guard: {guard['reason']}"
    return CycleResult(published, reason, len(train), metrics=guard, parent=parent, repo=repo)


def _steps(
    model,
    train: list[Example],
    cfg: UpdaterConfig,
    stops: StopSets,
    opt: torch.optim.Optimizer,
    params: list[torch.nn.Parameter],
    ptx: list[torch.Tensor],
    steps_per_epoch: int,
    rng: np.random.Generator,
    world: World,
    history: list[dict[str, float]],
    log,
    progress: Progress,
) -> CycleResult | None:
    """The optimizer steps (every term, every diagnostic in `history`); a failed result, or None."""
    w = term_weights(cfg)
    for epoch in range(cfg.epochs):
        order = grouped_order(train, rng) if cfg.dpo_coef or cfg.rrhf_coef else rng.permutation(len(train))
        for start in range(0, len(order), cfg.minibatch):
            step = epoch * steps_per_epoch + start // cfg.minibatch
            chunk = [train[i] for i in order[start : start + cfg.minibatch]]
            opt.zero_grad(set_to_none=True)
            sums: dict[str, list[float]] = defaultdict(list)
            total, bad = 0.0, False
            for e in world.mine(chunk):
                terms, diag = example_terms(model, e, cfg, stops)
                if not terms:
                    continue
                loss = sum((w[k] * v for k, v in terms.items()), torch.zeros(()))
                if not torch.isfinite(loss):
                    bad = True
                    break
                (loss / len(chunk)).backward()
                total += loss.item()
                for k, v in {**{k: t.item() for k, t in terms.items()}, **diag}.items():
                    sums[k].append(v)
            if cfg.dpo_coef and not bad:
                for good, worse in world.mine(dpo_pairs(chunk)):
                    assert good.ref_logp is not None and worse.ref_logp is not None
                    rg, rb = good.ref_logp.sum(), worse.ref_logp.sum()
                    lg = completion_logprobs(model, good.served_prompt, good.completion)[0].sum()
                    lb = completion_logprobs(model, worse.served_prompt, worse.completion)[0].sum()
                    dpo = L.dpo_loss(lg[None], lb[None], rg[None], rb[None], cfg.dpo_beta)
                    (cfg.dpo_coef * dpo).backward()
                    sums["dpo"].append(dpo.item())
            if cfg.rrhf_coef and not bad:
                for group in world.mine(ranked_groups(chunk)):
                    scores = torch.stack(
                        [completion_logprobs(model, e.served_prompt, e.completion)[0].mean() for e in group]
                    )
                    rrhf = L.rrhf_loss(scores, torch.tensor([e.reward for e in group]))
                    (cfg.rrhf_coef * rrhf).backward()
                    sums["rrhf"].append(rrhf.item())
            if ptx and world.leader and not bad:  # once per step, whatever the number of processes
                row = ptx[step % len(ptx)]
                lm = decoder(model)(input_ids=row[None], labels=row[None]).loss
                (cfg.ptx_coef * lm).backward()
                sums["ptx"].append(lm.item())
            if world.sum_grads(params, bad):
                return CycleResult(None, "non-finite loss", metrics={"epoch": epoch})
            if not math.isfinite(total) or not all(p.grad is None or torch.isfinite(p.grad).all() for p in params):
                return CycleResult(None, "non-finite gradient", metrics={"epoch": epoch})
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            history.append({k: float(np.mean(v)) for k, v in sums.items()})
            progress("steps", step + 1, cfg.epochs * steps_per_epoch)
            log(f"step {step}: " + ", ".join(f"{k} {v:.4f}" for k, v in history[-1].items()))
    return None
