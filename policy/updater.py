"""The learning path: one update cycle from ledger rewards to a published, guard-checked model.

    rewards (ledger) -> advantages (baseline / GRPO) -> LoRA steps (PPO clip + KL + silence +
    DPO + SFT) -> merge -> int8 ONNX -> guard (parity, held-out loss, reward-weighted
    likelihood on held-back events) -> models/<version>/ + `current`

Runs in its own process (`rltab train`), niced, one thread; the server only ever sees the
published directory appear and `current` change. Nothing here imports from rltab.server.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from rltab.feedback.ledger import Ledger

from . import evaluate
from . import losses as L
from .model import load_torch, read_meta, save_model_dir, write_meta
from .model_store import current_version, load_model, make_private, model_dir, set_current
from .passk import paired_loss_p_value


@dataclass
class UpdaterConfig:
    lora_r: int = 8
    """LoRA rank on every attention and MLP projection."""
    lora_alpha: int = 16
    """LoRA scaling numerator (scale = alpha / r)."""
    lr: float = 1e-3
    """Adam learning rate of the LoRA weights."""
    epochs: int = 2
    """Passes over the cycle's events."""
    minibatch: int = 8
    """Events per optimizer step (gradients accumulated one event at a time)."""
    max_events: int = 128
    """Most recent learnable events used by one cycle."""
    min_events: int = 4
    """Fewer learnable events than this: the cycle does nothing."""
    max_prompt_tokens: int = 512
    """Prompts are cut to their last N tokens."""
    max_completion_tokens: int = 64
    """Completions are cut to their first N tokens."""
    pg_coef: float = 1.0
    """Weight of the PPO-clipped policy-gradient term."""
    clip_eps: float = 0.2
    """PPO ratio clip."""
    kl_coef: float = 0.1
    """Weight of the KL penalty to the reference model (the adapter switched off)."""
    silence_coef: float = 0.2
    """Weight of the silence term. Silence earns exactly 0, so each rewarded suggestion says
    whether stopping at once would have been better (r < 0) or worse (r > 0): a binary decision
    trained towards the better one, weighted by |r|. With Cursor's rewards its optimum shows a
    suggestion exactly when P(accept) > 25 %."""
    dpo_coef: float = 0.0
    """Weight of DPO on pairs of completions of one context with different rewards."""
    dpo_beta: float = 0.1
    """DPO temperature."""
    rrhf_coef: float = 0.0
    """Weight of RRHF's ranking term over completions of one context with different rewards
    (several samples of one prompt; off by default: see BENCHMARKS.md for what it measured)."""
    sft_coef: float = 0.1
    """Weight of the supervised term on demonstrations (what the user wrote instead)."""
    ptx_coef: float = 0.0
    """Weight of plain language modelling on general Python (standard-library training files)
    mixed into every step, as InstructGPT's PPO-ptx: learning one repository should not unlearn
    Python (the guard bounds held-out drift; this spends less of that budget per update)."""
    ptx_tokens: int = 256
    """Length of each general-Python row."""
    baseline_decay: float = 0.9
    """Running-mean decay of the per-kind reward baseline."""
    holdout_fraction: float = 0.2
    """Most recent fraction of events held back from training for the guard."""
    guard_loss_tolerance: float = 0.02
    """A new version may be at most this much (relative) worse on held-out stdlib loss than its
    parent, and than the base model the chain of updates started from."""
    guard_pass_tolerance: float = 0.02
    """A new version may lose at most this much (relative) HumanEval single-line-infilling pass@1
    against its parent and the base, on a fixed subset of guard_pass_tasks tasks..."""
    guard_pass_alpha: float = 0.1
    """...where a loss counts once it is more than chance: the paired sign test over the tasks
    solved by one and not the other has one-sided p below this. (A small model solves a handful
    of the subset; without the test, one flipped task blocked every update in the replay.)"""
    guard_pass_tasks: int = 100
    """Size of that subset (0: skip the check)."""
    guard_min_held_back: int = 8
    """The reward-weighted check needs at least this many held-back events with a reward."""
    guard_parity_min: float = 0.9
    """Share of held-out prompts where int8 ONNX and torch agree on the next token."""
    seed: int = 0
    """Seed for the LoRA initialisation and event order (same inputs, same model)."""


@dataclass
class Example:
    suggestion_id: str
    kind: str
    prompt: list[int]
    completion: list[int]
    old_logp: list[float]
    reward: float
    outcome: str = ""
    healed: int = 0  # the completion's first id replaces the prompt's last token
    demonstration: list[int] = field(default_factory=list)
    advantage: float = 0.0
    ref_logp: torch.Tensor | None = None
    ref_stop: float = 0.0


@dataclass
class CycleResult:
    published: str | None
    reason: str
    events: int = 0
    seconds: float = 0.0
    metrics: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


# -- data ------------------------------------------------------------------------------------
def build_examples(rows: list[dict], tok, cfg: UpdaterConfig) -> list[Example]:
    out = []
    for r in rows:
        try:
            prompt = json.loads(r["prompt_ids"])[-cfg.max_prompt_tokens :]
            completion = json.loads(r["completion_ids"] or "[]")[: cfg.max_completion_tokens]
            old = json.loads(r["logprobs"] or "[]")[: cfg.max_completion_tokens]
        except (TypeError, ValueError):
            continue  # a damaged row teaches nothing; skip it rather than fail the cycle
        if not prompt or not completion or len(old) != len(completion) or r["reward"] is None:
            continue
        demo = tok.encode(r["demonstration"], add_special_tokens=False).ids[: cfg.max_completion_tokens] if r.get("demonstration") else []
        healed = int(r.get("healed") or 0)
        out.append(Example(r["id"], r["kind"] or "line", prompt, completion, old, float(r["reward"]), r["outcome"],
                           healed, demo))
    return out


def general_python_rows(tok, cfg: UpdaterConfig, n: int) -> list[torch.Tensor]:
    """`n` fixed rows of standard-library training code (never the held-out modules), one per
    optimizer step, for the ptx term."""
    import random

    from . import corpus

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


def chose_silence(e: Example, stop_sets) -> bool:
    return not e.healed and e.completion[0] in stop_sets[e.kind]


def assign_advantages(examples: list[Example], baseline: L.RunningBaseline) -> None:
    """GRPO's group baseline where one context has several samples, else the running mean of
    that context kind (updated as we go, oldest first)."""
    groups = [hash(tuple(e.prompt)) for e in examples]
    grouped = L.group_relative_advantages([e.reward for e in examples], groups)
    for e, g in zip(examples, grouped):
        e.advantage = g if g is not None else e.reward - baseline(e.kind)
        baseline.update(e.kind, e.reward)


def stop_ids_for(model_dir_path: Path, tok) -> tuple[list[int], list[int]]:
    """(ids that end a completion, ids that contain a newline)."""
    from . import tokenizer as T
    from .model_store import fim_template, stop_token_ids

    stop = stop_token_ids(tok, fim_template(model_dir_path))
    table = T.token_bytes(tok)
    newline = [i for i, b in enumerate(table) if b"\n" in b]
    return stop, newline


# -- model pieces ----------------------------------------------------------------------------
def lora_model(base, cfg: UpdaterConfig):
    from peft import LoraConfig, get_peft_model

    from .families import family

    fam = family(base.config.model_type)
    torch.manual_seed(cfg.seed)
    return get_peft_model(base, LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=0.0,
                                           target_modules=list(fam.lora_targets), bias="none",
                                           fan_in_fan_out=fam.fan_in_fan_out))


def _decoder(model):
    """The transformers CausalLM under a peft wrapper (or the model itself)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def sequence_scores(model, e: Example, completion: list[int], stop_sets: dict[str, list[int]]):
    """Per-token log-probs of `completion` (after the prompt, less its last token if healed),
    and log P(stop right away) after the full prompt: the silence decision the engine makes."""
    m = _decoder(model)
    prompt = e.prompt[: len(e.prompt) - e.healed]
    ids = torch.tensor([prompt + completion])
    hidden = m.base_model(input_ids=ids).last_hidden_state
    t = len(completion)
    logits = m.lm_head(hidden[:, -t - 1 : -1, :]).float()
    logp = L.selective_log_softmax(logits, torch.tensor([completion]))[0]
    if e.healed:
        last = m.lm_head(m.base_model(input_ids=torch.tensor([e.prompt])).last_hidden_state[:, -1]).float()[0]
    else:
        last = logits[0, 0]
    stop = torch.logsumexp(last.log_softmax(-1)[stop_sets[e.kind]], dim=-1)
    return logp, stop


def example_loss(model, e: Example, cfg: UpdaterConfig, stop_sets) -> tuple[torch.Tensor, dict]:
    logp, stop = sequence_scores(model, e, e.completion, stop_sets)
    mask = torch.ones_like(logp)
    old = torch.tensor(e.old_logp, dtype=logp.dtype)
    pg, diag = L.ppo_clip_loss(logp[None], old[None], torch.tensor([e.advantage]), mask[None], cfg.clip_eps)
    kl = L.kl_to_reference(logp[None], e.ref_logp[None], mask[None])
    loss = cfg.pg_coef * pg + cfg.kl_coef * kl
    diag["kl_ref"] = kl.item()
    if cfg.silence_coef and e.reward != 0:
        silence = L.silence_loss(stop, e.reward)
        loss = loss + cfg.silence_coef * silence
        diag["silence"] = silence.item()
    if cfg.sft_coef and e.demonstration:
        demo_logp, _ = sequence_scores(model, e, e.demonstration, stop_sets)
        loss = loss + cfg.sft_coef * L.sft_loss(demo_logp[None], torch.ones_like(demo_logp)[None])
    return loss, diag


def ranked_groups(examples: list[Example]) -> list[list[Example]]:
    """Completions of one context (same prompt) whose rewards differ, lowest reward first."""
    by_prompt: dict[tuple, list[Example]] = defaultdict(list)
    for e in examples:
        by_prompt[tuple(e.prompt)].append(e)
    groups = [sorted(g, key=lambda e: e.reward) for g in by_prompt.values()]
    return [g for g in groups if len(g) >= 2 and g[-1].reward > g[0].reward]


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


def reward_weighted_ll(model, examples: list[Example]) -> float | None:
    """sum r * mean log p(completion) / sum |r| over events with a nonzero reward."""
    num = den = 0.0
    with torch.no_grad():
        for e in examples:
            if e.reward == 0:
                continue
            m = _decoder(model)
            ids = torch.tensor([e.prompt[: len(e.prompt) - e.healed] + e.completion])
            hidden = m.base_model(input_ids=ids).last_hidden_state
            t = len(e.completion)
            logits = m.lm_head(hidden[:, -t - 1 : -1, :]).float()
            lp = L.selective_log_softmax(logits, torch.tensor([e.completion]))[0].mean().item()
            num += e.reward * lp
            den += abs(e.reward)
    return num / den if den else None


# -- the cycle -------------------------------------------------------------------------------
def next_version(home: Path) -> str:
    root = home / "models"
    n = 0
    if root.is_dir():
        for d in root.iterdir():
            if d.name.startswith("v") and d.name[1:5].isdigit():
                n = max(n, int(d.name[1:5]))
    return f"v{n + 1:04d}"


def train_cycle(home: Path, cfg: UpdaterConfig | None = None, log=print) -> CycleResult:
    """Learn from the ledger's newest learnable events and publish if the guard passes."""
    cfg = cfg or UpdaterConfig()
    t0 = time.time()
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(1)  # the updater's contract: serving keeps the other core
    ledger = Ledger(home / "ledger.db")
    try:
        return _cycle(home, ledger, cfg, log, t0)
    except (OSError, ValueError, RuntimeError) as e:  # e.g. a damaged parent model: serving is untouched
        return _fail(ledger, f"{type(e).__name__}: {e}", [], t0, {})
    finally:
        ledger.close()


def _cycle(home: Path, ledger: Ledger, cfg: UpdaterConfig, log, t0: float) -> CycleResult:
    parent = current_version(home)
    parent_dir = model_dir(home, parent)
    rows = ledger.learnable(cfg.max_events)
    if len(rows) < cfg.min_events:
        return CycleResult(None, f"only {len(rows)} learnable events (need {cfg.min_events})", len(rows))

    from . import tokenizer as T

    tok = T.load_tokenizer(parent_dir)
    stop, newline = stop_ids_for(parent_dir, tok)
    stop_sets = defaultdict(lambda: stop, {"line": sorted(set(stop) | set(newline))})
    # A silent row is the model choosing silence only if it stopped at once; output that the
    # filters emptied was never shown, and rewarding it with 0 would teach nothing true.
    examples = [e for e in build_examples(rows, tok, cfg) if e.outcome != "silent" or chose_silence(e, stop_sets)]
    if len(examples) < cfg.min_events:
        return CycleResult(None, f"only {len(examples)} usable events (need {cfg.min_events})", len(examples))
    baseline = L.RunningBaseline(cfg.baseline_decay, ledger.get_state("baseline", {}))
    assign_advantages(examples, baseline)
    n_hold = max(1, int(len(examples) * cfg.holdout_fraction)) if len(examples) >= 5 else 0
    train, held = (examples[:-n_hold], examples[-n_hold:]) if n_hold else (examples, [])

    base = load_torch(parent_dir)
    model = lora_model(base, cfg)
    with torch.no_grad(), model.disable_adapter():  # the reference: the parent itself
        for e in train:
            e.ref_logp, ref_stop = sequence_scores(model, e, e.completion, stop_sets)
            e.ref_stop = ref_stop.item()
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=cfg.lr)
    rng = np.random.default_rng(cfg.seed)
    steps_per_epoch = -(-len(train) // cfg.minibatch)
    ptx = general_python_rows(tok, cfg, cfg.epochs * steps_per_epoch) if cfg.ptx_coef else []
    diags: list[dict] = []
    model.train()
    for epoch in range(cfg.epochs):
        order = grouped_order(train, rng) if cfg.dpo_coef or cfg.rrhf_coef else rng.permutation(len(train))
        for start in range(0, len(order), cfg.minibatch):
            chunk = [train[i] for i in order[start : start + cfg.minibatch]]
            opt.zero_grad(set_to_none=True)
            total = 0.0
            for e in chunk:
                loss, d = example_loss(model, e, cfg, stop_sets)
                if not torch.isfinite(loss):
                    return _fail(ledger, "non-finite loss", train, t0, {"epoch": epoch})
                (loss / len(chunk)).backward()
                total += loss.item()
                diags.append(d)
            if cfg.dpo_coef:
                for good, bad in dpo_pairs(chunk):
                    with torch.no_grad(), model.disable_adapter():
                        rg = sequence_scores(model, good, good.completion, stop_sets)[0].sum()
                        rb = sequence_scores(model, bad, bad.completion, stop_sets)[0].sum()
                    lg = sequence_scores(model, good, good.completion, stop_sets)[0].sum()
                    lb = sequence_scores(model, bad, bad.completion, stop_sets)[0].sum()
                    (cfg.dpo_coef * L.dpo_loss(lg[None], lb[None], rg[None], rb[None], cfg.dpo_beta)).backward()
            if ptx:
                row = ptx[(epoch * steps_per_epoch + start // cfg.minibatch) % len(ptx)]
                lm = _decoder(model)(input_ids=row[None], labels=row[None]).loss
                (cfg.ptx_coef * lm).backward()
                diags.append({"ptx": lm.item()})
            if cfg.rrhf_coef:
                for group in ranked_groups(chunk):
                    scores = torch.stack([sequence_scores(model, e, e.completion, stop_sets)[0].mean() for e in group])
                    rewards = torch.tensor([e.reward for e in group])
                    (cfg.rrhf_coef * L.rrhf_loss(scores, rewards)).backward()
            grads_ok = all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())
            if not grads_ok or not math.isfinite(total):
                return _fail(ledger, "non-finite gradient", train, t0, {"epoch": epoch})
            torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
            opt.step()
    model.eval()
    metrics = {k: float(np.mean([d[k] for d in diags if k in d])) for k in ("approx_kl", "clipfrac", "kl_ref", "ratio", "silence", "ptx") if any(k in d for d in diags)}
    metrics["reward_mean"] = float(np.mean([e.reward for e in train]))
    metrics["advantage_mean"] = float(np.mean([e.advantage for e in train]))
    log(f"trained on {len(train)} events ({cfg.epochs} epochs): " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))

    merged = model.merge_and_unload()
    version = next_version(home)
    result = publish(home, merged, tok, parent, parent_dir, version, held, cfg, metrics,
                     [e.suggestion_id for e in train], log)
    result.events, result.seconds = len(train), round(time.time() - t0, 2)
    if result.published:
        ledger.mark_trained([e.suggestion_id for e in train], version)
        ledger.set_state("baseline", baseline.values)
    ledger.set_state("last_update", result.to_json())
    return result


def _fail(ledger: Ledger, why: str, train, t0: float, extra: dict) -> CycleResult:
    r = CycleResult(None, why, len(train), round(time.time() - t0, 2), extra)
    ledger.set_state("last_update", r.to_json())
    return r


def publish(home: Path, merged, tok, parent: str, parent_dir: Path, version: str, held: list[Example],
            cfg: UpdaterConfig, metrics: dict, used: list[str], log=print) -> CycleResult:
    """Write the candidate beside the published ones, check it, then make it visible atomically."""
    from .export import build_onnx

    root = home / "models"
    root.mkdir(parents=True, exist_ok=True)
    sweep_stale_candidates(root)
    tmp = root / f".tmp-{version}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        parent_meta = read_meta(parent_dir)
        meta = {
            "version": version, "parent": parent, "time": time.time(), "events_used": len(used),
            "algorithm": algorithm_name(cfg), "train_metrics": metrics, "updater_config": dataclasses.asdict(cfg),
            # Same prompt layout and provenance as the parent (the guard serves it that way too).
            **{k: parent_meta[k] for k in ("fim", "serve_fim", "family", "imported_from") if k in parent_meta},
        }
        save_model_dir(merged, tok, tmp, meta, tokenizer_from=parent_dir)
        build_onnx(tmp, tmp)
        guard = run_guard(tmp, parent_dir, home, held, cfg)
        if not guard["passed"]:
            log(f"guard failed: {guard['reason']}")
            return CycleResult(None, f"guard: {guard['reason']}", metrics=guard)
        write_meta(tmp, {**meta, "guard": guard})
        make_private(tmp)
        os.rename(tmp, root / version)  # atomic: a version directory is complete or absent
        set_current(home, version)
        log(f"published {version} (parent {parent})")
        return CycleResult(version, "published", metrics=guard)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


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


def algorithm_name(cfg: UpdaterConfig) -> str:
    terms = [("ppo-clip", cfg.pg_coef), ("kl", cfg.kl_coef), ("silence", cfg.silence_coef),
             ("dpo", cfg.dpo_coef), ("rrhf", cfg.rrhf_coef), ("sft", cfg.sft_coef), ("ptx", cfg.ptx_coef)]
    return "lora+" + "+".join(n for n, w in terms if w)


def run_guard(candidate: Path, parent_dir: Path, home: Path, held: list[Example], cfg: UpdaterConfig) -> dict:
    """Parity of the int8 export; held-out stdlib loss and HumanEval-infill pass@1 within
    tolerance of the parent and of the base (the model the chain of updates started from, so small
    steps cannot drift without bound); a better reward-weighted log-likelihood than the parent on
    the held-back events."""
    from . import tokenizer as T
    from .model_store import fim_template

    new_torch, old_torch = load_torch(candidate), load_torch(parent_dir)
    tok = T.load_tokenizer(candidate)
    rows = evaluate.heldout_rows(tok, 256, max_rows=8, eos=fim_template(candidate).eos)
    with torch.no_grad():
        new_loss = evaluate.heldout_loss(new_torch, rows)
        old_loss = evaluate.heldout_loss(old_torch, rows)
    served = load_model(home, model_path=candidate, version="candidate")
    parity = parity_check(served, new_torch, rows)
    new_rw, old_rw = reward_weighted_ll(new_torch, held), reward_weighted_ll(old_torch, held)
    parent_guard = read_meta(parent_dir).get("guard", {})
    reasons = []
    if not math.isfinite(new_loss):
        reasons.append("non-finite held-out loss")
    if parity < cfg.guard_parity_min:
        reasons.append(f"int8 parity {parity:.2f} < {cfg.guard_parity_min}")
    base_loss = parent_guard.get("base_heldout_loss", old_loss)
    for name, ref in (("parent", old_loss), ("base", base_loss)):
        if new_loss > ref * (1 + cfg.guard_loss_tolerance):
            reasons.append(f"held-out loss {new_loss:.4f} > {name} {ref:.4f} + {100 * cfg.guard_loss_tolerance:.0f}%")
    passes = {}
    if cfg.guard_pass_tasks:
        new = humaneval_solved(served, cfg.guard_pass_tasks)
        old = parent_guard.get("solved_tasks")
        if old is None or parent_guard.get("pass_tasks") != cfg.guard_pass_tasks:
            old = parent_solved(home, parent_dir, cfg.guard_pass_tasks)
        base = parent_guard.get("base_solved_tasks", old)
        n = cfg.guard_pass_tasks
        for name, ref in (("parent", old), ("base", base)):
            p = paired_loss_p_value(set(ref), set(new))
            if len(new) < len(ref) * (1 - cfg.guard_pass_tolerance) and p < cfg.guard_pass_alpha:
                reasons.append(f"HumanEval-infill pass@1 {len(new) / n:.3f} < {name} {len(ref) / n:.3f} "
                               f"- {100 * cfg.guard_pass_tolerance:.0f}% (paired p={p:.3f})")
        passes = {"pass_at_1": len(new) / n, "parent_pass_at_1": len(old) / n, "base_pass_at_1": len(base) / n,
                  "pass_tasks": n, "solved_tasks": new, "base_solved_tasks": base}
    rewarded = sum(e.reward != 0 for e in held)
    rw_checked = rewarded >= cfg.guard_min_held_back
    if rw_checked and not new_rw > old_rw:
        reasons.append(f"reward-weighted log-likelihood on held-back events {new_rw:.4f} <= parent {old_rw:.4f}")
    return {"passed": not reasons, "reason": "; ".join(reasons) or "ok", "heldout_loss": round(new_loss, 5),
            "parent_heldout_loss": round(old_loss, 5), "base_heldout_loss": round(base_loss, 5),
            "parity": round(parity, 4), **passes,
            "held_back_events": len(held), "reward_weighted_checked": rw_checked,
            "reward_weighted_ll": new_rw, "parent_reward_weighted_ll": old_rw}


def parent_solved(home: Path, parent_dir: Path, n_tasks: int) -> list[str]:
    """The guard tasks a parent without guard records (the starter, an imported model) solves,
    cached per weights so that its first children do not pay for it again."""
    from .export import weights_digest
    from .model_store import cache_dir

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
    from . import humaneval

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
