"""Pictures of the ledger's figures (matplotlib, no display needed)."""

from __future__ import annotations

import math
from pathlib import Path


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion: honest at small n and near 0 or 1, where the
    normal approximation claims more certainty than a few suggestions can give."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def plot_accept_rate(rows: list[dict], out: str | Path) -> None:
    """Bar chart: accept rate per model version, with how many suggestions each was shown."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    versions = [r["model_version"] for r in rows]
    rates = [100 * r["accept_rate"] for r in rows]
    spans = [wilson_interval((r["accepted"] or 0) + (r["partial"] or 0), r["shown"]) for r in rows]
    errors = [
        [rate - 100 * lo for rate, (lo, _) in zip(rates, spans)],
        [100 * hi - rate for rate, (_, hi) in zip(rates, spans)],
    ]
    fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(rows) + 2), 3.5))
    bars = ax.bar(range(len(rows)), rates, color="#3b7dd8", yerr=errors if rows else None, capsize=4)
    for b, r in zip(bars, rows):
        ax.annotate(
            f"{r['shown']} shown", (b.get_x() + b.get_width() / 2, b.get_height()), ha="center", va="bottom", fontsize=8
        )
    ax.set_xticks(range(len(rows)), versions, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("accept rate (%), 95 % Wilson interval")
    ax.set_ylim(0, min(115.0, max([10.0, *(100 * hi for _, hi in spans)]) * 1.15))
    ax.set_title("rltab: accept rate per model version")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
