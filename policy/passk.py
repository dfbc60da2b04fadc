"""pass@k, the unbiased estimator of Chen et al. (2021): with n samples of which c pass,
pass@k = 1 - C(n-c, k) / C(n, k), computed as a stable product instead of huge binomials."""
from __future__ import annotations


def pass_at_k(n: int, c: int, k: int) -> float:
    if not 0 <= c <= n or k < 1:
        raise ValueError(f"need 0 <= c <= n and k >= 1, got n={n}, c={c}, k={k}")
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples per task, got {n}")
    if n - c < k:
        return 1.0
    prob_all_fail = 1.0
    for i in range(n - c + 1, n + 1):  # C(n-c, k) / C(n, k) = prod_{i=n-c+1}^{n} (1 - k/i)
        prob_all_fail *= 1.0 - k / i
    return 1.0 - prob_all_fail


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
    return sum(pass_at_k(n, c, k) for n, c in counts) / len(counts) if counts else 0.0
