"""The updater's settings: one typed tree with a docstring per field (nanoGPT, CleanRL)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class UpdaterConfig:
    lora_r: int = 8
    """LoRA rank on every attention and MLP projection."""
    lora_alpha: int = 16
    """LoRA scaling numerator (scale = alpha / r)."""
    lr: float = 3e-4
    """Adam learning rate of the LoRA weights."""
    epochs: int = 2
    """Passes over the cycle's events."""
    minibatch: int = 8
    """Events per optimizer step (gradients accumulated one event at a time)."""
    max_events: int = 128
    """Most recent learnable events used by one cycle."""
    min_events: int = 4
    """Fewer learnable events than this: the cycle does nothing."""
    demonstration_margin_s: float = 1.0
    """A row without a demonstration is learnt from once it is older than the server's
    demonstration window plus this margin (before that, what the user writes there may come)."""
    max_prompt_tokens: int = 512
    """Prompts are cut to their last N tokens."""
    max_completion_tokens: int = 64
    """Completions are cut to their first N tokens."""
    pg_coef: float = 0.3
    """Weight of the PPO-clipped policy-gradient term. Weak beside the demonstrations: at 1.0 (with
    silence 0.2) learning made the model shorter and more silent and saved 0.93-0.98x the
    characters of the frozen model on the click replay; at 0.3 with SFT 1.0, 1.035x (attrs 1.022x)."""
    token_credit: bool = True
    """Credit each token for what the user did with its characters: the taken part of a partial
    accept earns the advantage, the first token the user did not take carries the blame, later
    tokens were never judged and are left out (as are tokens the filters cut before showing).
    False: every token shares the sequence's advantage (which teaches short, silent answers)."""
    clip_eps: float = 0.2
    """PPO ratio clip."""
    kl_coef: float = 0.1
    """Weight of the KL penalty to the reference model (the adapter switched off)."""
    silence_coef: float = 0.05
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
    sft_coef: float = 1.0
    """Weight of the supervised term on demonstrations: what the user then wrote at a request's
    place, whether the suggestion was shown, rejected, taken or silent. The main term: the user's
    own text is the signal that pays in characters (BENCHMARKS, issue 13)."""
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
    parent (one step's drift)..."""
    guard_base_loss_tolerance: float = 0.02
    """...and at most this much worse than the base model the chain of updates started from
    (the bound on general ability over the whole chain)."""
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
    """The reward-weighted check needs at least this many held-back events with a reward, and
    the demonstration check at least this many held-back demonstrations."""
    guard_parity_min: float = 0.9
    """Share of held-out prompts where int8 ONNX and torch agree on the next token."""
    seed: int = 0
    """Seed for the LoRA initialisation and event order (same inputs, same model)."""
