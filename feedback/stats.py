"""Pictures of the ledger's figures (matplotlib, no display needed)."""

from __future__ import annotations

import math
from datetime import datetime
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


def time_bins(timeline: list[dict], max_bins: int = 24) -> list[dict]:
    """The ledger's hourly rows (Ledger.timeline) summed into at most `max_bins` equal spans of
    time: start hour, shown, taken, silent, characters accepted and written, versions serving."""
    if not timeline:
        return []
    first, last = timeline[0]["hour"], timeline[-1]["hour"]
    width = max(1, math.ceil((last - first + 1) / max_bins))
    bins: dict[int, dict] = {}
    for r in timeline:
        start = first + (r["hour"] - first) // width * width
        b = bins.setdefault(
            start,
            {"hour": start, "hours": width, "shown": 0, "taken": 0, "silent": 0, "chars_accepted": 0, "chars_typed": 0},
        )
        for key in ("shown", "taken", "silent", "chars_accepted", "chars_typed"):
            b[key] += r[key] or 0
        b.setdefault("versions", []).append(r["model_version"])
    return [bins[k] for k in sorted(bins)]


def plot_stats(rows: list[dict], timeline: list[dict], starts: list[tuple[float, str]], out: str | Path) -> None:
    """`rltab stats --plot`: accept rate per version, then over time the accept rate and the
    silence rate (each with its 95 % Wilson interval) and the characters saved per 100 written,
    with a line where each version started serving."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(4, 1, figsize=(8, 11), gridspec_kw={"height_ratios": [1.2, 1, 1, 1]})
    for ax in axes[2:]:
        ax.sharex(axes[1])
    _accept_rate_bars(axes[0], rows)
    bins = time_bins(timeline)
    when = [datetime.fromtimestamp((b["hour"] + b["hours"] / 2) * 3600) for b in bins]  # each span's middle

    def with_interval(ax, hits, totals, label, colour):
        pts = [(t, h, n) for t, h, n in zip(when, hits, totals) if n]
        if pts:
            spans = [wilson_interval(h, n) for _, h, n in pts]
            ax.errorbar(
                [t for t, _, _ in pts],
                [100 * h / n for _, h, n in pts],
                yerr=[
                    [100 * (h / n - lo) for (_, h, n), (lo, _) in zip(pts, spans)],
                    [100 * (hi - h / n) for (_, h, n), (_, hi) in zip(pts, spans)],
                ],
                fmt="o-",
                color=colour,
                capsize=3,
                ms=4,
            )
        ax.set_ylabel(label)
        ax.set_ylim(0, 100)

    with_interval(axes[1], [b["taken"] for b in bins], [b["shown"] for b in bins], "accept rate (%)", "#3b7dd8")
    saved = [(t, 100 * b["chars_accepted"] / b["chars_typed"]) for t, b in zip(when, bins) if b["chars_typed"]]
    if saved:
        axes[2].plot([t for t, _ in saved], [v for _, v in saved], "o-", color="#2a9d5b", ms=4)
    axes[2].set_ylabel("chars saved\nper 100 written")
    axes[2].set_ylim(bottom=0)
    with_interval(
        axes[3], [b["silent"] for b in bins], [b["shown"] + b["silent"] for b in bins], "silent (%)", "#999999"
    )
    for ax in axes[1:]:
        for t, version in starts:
            at = datetime.fromtimestamp(t)
            ax.axvline(at, color="#d8893b", ls="--", lw=1)
            if ax is axes[1]:
                ax.annotate(version, (at, 100), rotation=90, va="top", ha="right", fontsize=7, color="#d8893b")
        ax.tick_params(axis="x", labelsize=7)
    width = bins[0]["hours"] if bins else 1
    axes[1].set_title(f"over time ({width} h per point; dashed: a version starts serving)", fontsize=9)
    if not bins:
        axes[1].text(0.5, 0.5, "nothing recorded yet", ha="center", transform=axes[1].transAxes)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def _accept_rate_bars(ax, rows: list[dict]) -> None:
    versions = [r["model_version"] for r in rows]
    rates = [100 * r["accept_rate"] for r in rows]
    spans = [wilson_interval((r["accepted"] or 0) + (r["partial"] or 0), r["shown"]) for r in rows]
    errors = [
        [rate - 100 * lo for rate, (lo, _) in zip(rates, spans)],
        [100 * hi - rate for rate, (_, hi) in zip(rates, spans)],
    ]
    bars = ax.bar(range(len(rows)), rates, color="#3b7dd8", yerr=errors if rows else None, capsize=4)
    for b, r in zip(bars, rows):
        ax.annotate(
            f"{r['shown']} shown", (b.get_x() + b.get_width() / 2, b.get_height()), ha="center", va="bottom", fontsize=8
        )
    ax.set_xticks(range(len(rows)), versions, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("accept rate (%), 95 % Wilson interval")
    ax.set_ylim(0, min(115.0, max([10.0, *(100 * hi for _, hi in spans)]) * 1.15))
    ax.set_title("rltab: accept rate per model version")
