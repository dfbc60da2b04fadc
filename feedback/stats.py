"""Pictures of the ledger's figures (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path


def plot_accept_rate(rows: list[dict], out: str | Path) -> None:
    """Bar chart: accept rate per model version, with how many suggestions each was shown."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    versions = [r["model_version"] for r in rows]
    rates = [100 * r["accept_rate"] for r in rows]
    fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(rows) + 2), 3.5))
    bars = ax.bar(range(len(rows)), rates, color="#3b7dd8")
    for b, r in zip(bars, rows):
        ax.annotate(
            f"{r['shown']} shown", (b.get_x() + b.get_width() / 2, b.get_height()), ha="center", va="bottom", fontsize=8
        )
    ax.set_xticks(range(len(rows)), versions, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("accept rate (%)")
    ax.set_ylim(0, max([10.0, *rates]) * 1.2)
    ax.set_title("rltab: accept rate per model version")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
