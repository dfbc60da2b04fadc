"""Scoring a completion under a model: one log-prob computation for every loss and for the guard.

The model is a transformers causal LM, possibly under a peft wrapper. Vocabulary logits are
computed only at the positions that predict completion tokens (TRL's selective log-softmax).
"""

from __future__ import annotations

import torch

from .losses import selective_log_softmax


def decoder(model):
    """The transformers CausalLM under a peft wrapper (or the model itself)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def completion_logprobs(model, prompt: list[int], completion: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(per-token log-probs [T] of `completion` after `prompt`, logits [V] at the first
    completion position: the distribution the engine chose the first token from)."""
    m = decoder(model)
    hidden = m.base_model(input_ids=torch.tensor([prompt + completion])).last_hidden_state
    t = len(completion)
    logits = m.lm_head(hidden[:, -t - 1 : -1, :]).float()
    return selective_log_softmax(logits, torch.tensor([completion]))[0], logits[0, 0]


def next_logits(model, prompt: list[int]) -> torch.Tensor:
    """Logits [V] for the token after `prompt`."""
    m = decoder(model)
    return m.lm_head(m.base_model(input_ids=torch.tensor([prompt])).last_hidden_state[:, -1]).float()[0]


def stop_logprob(logits: torch.Tensor, stop_ids: list[int]) -> torch.Tensor:
    """log P(the answer ends right here): the mass of the tokens that end a completion."""
    return torch.logsumexp(logits.log_softmax(-1)[stop_ids], dim=-1)


def mean_logprob(model, prompt: list[int], completion: list[int]) -> float:
    """Length-normalised log-likelihood of `completion` (no gradient)."""
    with torch.no_grad():
        return completion_logprobs(model, prompt, completion)[0].mean().item()
