"""The maths of learning from rewards, as small pure functions over tensors.

Shapes: per-token tensors are [B, T] with `mask` [B, T] (1 on completion tokens, 0 on padding);
per-sequence tensors are [B]. Names follow TRL's GRPO and CleanRL's PPO: logratio, ratio, the
clipped term, approx KL (k3) and clip fraction; every diagnostic is returned for logging.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence

import torch
import torch.nn.functional as F


def selective_log_softmax(logits: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """log_softmax(logits)[..., index] without keeping the full log-softmax around."""
    return torch.gather(logits, -1, index.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim=None) -> torch.Tensor:
    if dim is None:
        return (x * mask).sum() / mask.sum().clamp(min=1)
    return (x * mask).sum(dim) / mask.sum(dim).clamp(min=1)


def policy_gradient_loss(logp: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """REINFORCE with a baseline: -A * (sum of the completion's token log-probs), batch mean."""
    return -(advantages * (logp * mask).sum(-1)).mean()


def ppo_clip_loss(
    logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor, clip_eps: float = 0.2
) -> tuple[torch.Tensor, dict[str, float]]:
    """PPO's clipped surrogate per token. `old_logp` are the behaviour log-probs logged when the
    suggestion was served (possibly by an older model than the one learning)."""
    logratio = logp - old_logp
    ratio = torch.exp(logratio)
    adv = advantages if advantages.dim() == 2 else advantages.unsqueeze(-1)  # per token, or per sequence
    unclipped = -adv * ratio
    clipped = -adv * torch.clamp(ratio, 1 - clip_eps, 1 + clip_eps)
    loss = masked_mean(torch.maximum(unclipped, clipped), mask)
    with torch.no_grad():
        approx_kl = masked_mean((ratio - 1) - logratio, mask)
        clipfrac = masked_mean(((ratio - 1).abs() > clip_eps).float(), mask)
    return loss, {
        "logratio": masked_mean(logratio, mask).item(),
        "ratio": masked_mean(ratio, mask).item(),
        "approx_kl": approx_kl.item(),
        "clipfrac": clipfrac.item(),
    }


def kl_to_reference(logp: torch.Tensor, ref_logp: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """k3 estimator of KL(policy || reference) on the sampled tokens: exp(d) - d - 1, d = ref - policy."""
    d = ref_logp - logp
    return masked_mean(torch.exp(d) - d - 1, mask)


def dpo_loss(
    chosen: torch.Tensor,
    rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    beta: float = 0.1,
) -> torch.Tensor:
    """DPO on sequence log-probs [B] of preferred/dispreferred completions of one context."""
    margin = (chosen - ref_chosen) - (rejected - ref_rejected)
    return -F.logsigmoid(beta * margin).mean()


def rrhf_loss(scores: torch.Tensor, rewards: torch.Tensor) -> torch.Tensor:
    """RRHF's ranking term (Yuan et al., 2023) for several completions of one context: `scores`
    [K] are length-normalized sequence log-probs, `rewards` [K] their rewards. Every pair ranked
    the wrong way round (lower reward, higher score) pays the score gap:
    sum over r_i < r_j of max(0, s_i - s_j)."""
    worse = rewards[:, None] < rewards[None, :]  # [i, j]: i earned less than j
    gaps = torch.relu(scores[:, None] - scores[None, :])
    return (gaps * worse).sum()


def sft_loss(logp: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood of demonstration tokens (the user's own text)."""
    return -masked_mean(logp, mask)


def silence_loss(logp_stop: torch.Tensor, reward: float) -> torch.Tensor:
    """Stopping at once (an empty answer) earns exactly 0. Train the decision to stop towards
    silence when the shown suggestion earned less (r < 0), away from it when it earned more,
    weighted by |r|: binary cross-entropy on P(stop first)."""
    if reward < 0:
        return -abs(reward) * logp_stop
    log_continue = torch.log1p(-torch.exp(logp_stop).clamp(max=1 - 1e-6))
    return -abs(reward) * log_continue


def group_relative_advantages(
    rewards: Sequence[float], groups: Sequence[Hashable], eps: float = 1e-6
) -> list[float | None]:
    """GRPO: (r - mean of its group) / (std of its group + eps). None for singleton groups,
    which need another baseline."""
    members: dict[Hashable, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        members[g].append(i)
    out: list[float | None] = [None] * len(rewards)
    for idx in members.values():
        if len(idx) < 2:
            continue
        r = torch.tensor([rewards[i] for i in idx], dtype=torch.float64)
        adv = (r - r.mean()) / (r.std(unbiased=False) + eps)
        for i, a in zip(idx, adv.tolist()):
            out[i] = a
    return out


class RunningBaseline:
    """Exponential moving average of reward per context kind (line / block / ...)."""

    def __init__(self, decay: float = 0.9, init: dict[str, float] | None = None):
        self.decay = decay
        self.values: dict[str, float] = dict(init or {})

    def __call__(self, kind: str) -> float:
        return self.values.get(kind, 0.0)

    def update(self, kind: str, reward: float) -> None:
        old = self.values.get(kind)
        self.values[kind] = reward if old is None else self.decay * old + (1 - self.decay) * reward
