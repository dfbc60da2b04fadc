"""The losses on hand-computed cases."""

import math

import pytest
import torch

from rltab.policy.learning import losses as L


def t(x):
    return torch.tensor(x, dtype=torch.float64)


def test_selective_log_softmax_matches_log_softmax():
    logits = torch.randn(2, 3, 11, generator=torch.Generator().manual_seed(0))
    idx = torch.tensor([[1, 5, 10], [0, 0, 3]])
    want = logits.log_softmax(-1).gather(-1, idx.unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(L.selective_log_softmax(logits, idx), want)


def test_policy_gradient_with_baseline():
    logp = t([[-1.0, -2.0], [-0.5, 0.0]])
    mask = t([[1, 1], [1, 0]])
    adv = t([0.5, -1.0])
    # -(0.5 * -3 + -1 * -0.5) / 2 = -(-1.5 + 0.5) / 2 = 0.5
    assert L.policy_gradient_loss(logp, adv, mask).item() == pytest.approx(0.5)


def test_ppo_clip_by_hand():
    old = t([[math.log(0.5), math.log(0.5)]])
    new = t([[math.log(0.8), math.log(0.25)]])  # ratios 1.6 and 0.5
    mask = t([[1, 1]])
    loss, d = L.ppo_clip_loss(new, old, t([1.0]), mask, clip_eps=0.2)
    # positive advantage: min(r*A, clip(r)*A) -> 1.2 and 0.5; loss = -(1.2 + 0.5)/2
    assert loss.item() == pytest.approx(-0.85)
    assert d["clipfrac"] == pytest.approx(1.0) and d["ratio"] == pytest.approx(1.05)
    loss, _ = L.ppo_clip_loss(new, old, t([-1.0]), mask, clip_eps=0.2)
    # negative advantage: max(-r*A, -clip(r)*A) = max(1.6, 1.2), max(0.5, 0.8) -> (1.6 + 0.8)/2
    assert loss.item() == pytest.approx(1.2)


def test_ppo_gradient_vanishes_outside_the_clip():
    new = t([[math.log(0.9)]]).requires_grad_()
    loss, _ = L.ppo_clip_loss(new, t([[math.log(0.5)]]), t([1.0]), t([[1]]), clip_eps=0.2)
    loss.backward()
    assert new.grad.abs().item() == 0.0


def test_kl_k3_is_zero_at_the_reference_and_positive_elsewhere():
    mask = t([[1, 1]])
    assert L.kl_to_reference(t([[-1.0, -2.0]]), t([[-1.0, -2.0]]), mask).item() == 0.0
    d = -0.3
    want = math.exp(d) - d - 1
    assert L.kl_to_reference(t([[-1.0, -1.0]]), t([[-1.3, -1.3]]), mask).item() == pytest.approx(want)


def test_dpo_by_hand():
    loss = L.dpo_loss(t([-1.0]), t([-3.0]), t([-2.0]), t([-2.0]), beta=0.5)
    # margin = (1) - (-1) = 2; -log(sigmoid(1))
    assert loss.item() == pytest.approx(-math.log(1 / (1 + math.exp(-1))))


def test_sft_loss_is_mean_nll_over_the_mask():
    assert L.sft_loss(t([[-1.0, -3.0, -9.0]]), t([[1, 1, 0]])).item() == pytest.approx(2.0)


def test_group_relative_advantages():
    adv = L.group_relative_advantages([1.0, 0.0, 0.5, 2.0], ["a", "a", "b", "c"])
    assert adv[0] == pytest.approx(1.0, abs=1e-4) and adv[1] == pytest.approx(-1.0, abs=1e-4)
    assert adv[2] is None and adv[3] is None


def test_running_baseline():
    b = L.RunningBaseline(decay=0.5)
    assert b("line") == 0.0
    b.update("line", -0.25)
    b.update("line", 0.75)
    assert b("line") == pytest.approx(0.25) and b("block") == 0.0


def test_silence_loss_pushes_towards_the_better_choice():
    p = t(0.2).log().requires_grad_()
    L.silence_loss(p, -0.25).backward()
    assert p.grad.item() < 0  # descending the loss raises P(stop) after a rejection
    assert L.silence_loss(t(0.2).log(), -0.25).item() == pytest.approx(-0.25 * math.log(0.2))
    assert L.silence_loss(t(0.2).log(), 0.75).item() == pytest.approx(-0.75 * math.log(0.8))
    # the break-even point is P(accept) = 25 %: there the expected loss is flat in P(stop) at 0.5
    q, ps = 0.25, t(0.5).log().requires_grad_()
    ((1 - q) * L.silence_loss(ps, -0.25) + q * L.silence_loss(ps, 0.75)).backward()
    assert abs(ps.grad.item()) < 1e-9


def test_token_credit_follows_what_the_user_took():
    """A partial accept credits the tokens the user took, blames the first one they did not, and
    leaves later tokens (never judged) and tokens the filters cut (never shown) out."""
    from rltab.policy.learning.examples import Example

    def ex(outcome, taken, shown=9, ends=(2, 5, 7, 9, 12)):
        e = Example(
            "s",
            "line",
            [1],
            [10, 11, 12, 13, 14],
            [-1.0] * 5,
            0.0,
            outcome,
            shown_chars=shown,
            taken_chars=taken,
            ends=list(ends),
        )
        e.advantage = 0.5 if outcome != "rejected" else -0.3
        return e.token_advantages()

    assert ex("accepted", 9) == ([0.5, 0.5, 0.5, 0.5, 0.0], [1, 1, 1, 1, 0])  # the last token was cut before showing
    assert ex("partial", 5) == ([0.5, 0.5, -0.5, 0.0, 0.0], [1, 1, 1, 0, 0])
    assert ex("partial", 4) == ([0.5, -0.5, 0.0, 0.0, 0.0], [1, 1, 0, 0, 0])  # taken mid-token: that token diverged
    assert ex("rejected", 0) == ([-0.3, 0.0, 0.0, 0.0, 0.0], [1, 0, 0, 0, 0])
