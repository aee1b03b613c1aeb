"""chart.png: the main metric per arm with 95% CI error bars and the trivial baseline."""

from __future__ import annotations

from pathlib import Path

from domainllm.eval.results import Results
from domainllm.fsio import atomic_write
from domainllm.report.format import finite

__all__ = ["make_chart"]

_COLORS = ["#4C72B0", "#55A868", "#C44E52", "#8172B2", "#CCB974", "#64B5CD", "#8C8C8C"]


def make_chart(results: Results, path: Path) -> Path:
    """Main metric per arm with 95% CI error bars and the trivial baseline as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results.arms)
    means, lows, highs = [], [], []
    for name in names:
        ci = results.arms[name].main if results.arms[name].ok else None
        mean = ci.mean if ci is not None and finite(ci.mean) else 0.0
        means.append(100 * mean)
        lows.append(100 * (mean - ci.low) if ci is not None and finite(ci.low) else 0.0)
        highs.append(100 * (ci.high - mean) if ci is not None and finite(ci.high) else 0.0)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.5 * len(names) + 2), 4.5), dpi=120)
    x = list(range(len(names)))
    bars = ax.bar(
        x,
        means,
        yerr=[lows, highs],
        capsize=6,
        color=[_COLORS[i % len(_COLORS)] for i in x],
        edgecolor="black",
        linewidth=0.6,
    )
    for i, (bar, name) in enumerate(zip(bars, names, strict=True)):
        arm = results.arms[name]
        ax.text(
            bar.get_x() + bar.get_width() / 2,
            means[i] + highs[i] + 1.5,
            f"{means[i]:.0f}%" if arm.ok else arm.status,
            ha="center",
            va="bottom",
            fontsize=10,
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1},
        )
    overall = results.baselines.overall
    if overall is not None and finite(overall.mean):
        # In the legend, not on the line: a label on the line collides with the bars' own labels
        # whenever an arm scores near the baseline, which is exactly when it matters.
        ax.axhline(
            100 * overall.mean,
            color="black",
            linestyle="--",
            linewidth=1.2,
            label=f"trivial baseline {100 * overall.mean:.0f}%",
        )
        ax.legend(loc="best", frameon=False, fontsize=9)
    label_base = results.baselines.by_type.get("label")
    if label_base and label_base.correct and set(results.answer_types) != {"label"}:
        ax.axhline(100 * label_base.correct.mean, color="grey", linestyle=":", linewidth=1)
    rotate = 0 if len(names) <= 5 else 20
    ax.set_xticks(
        x, [n.replace("_", " ") for n in names], rotation=rotate, ha="right" if rotate else "center"
    )
    ax.set_ylim(0, 105)
    ax.set_ylabel("correct (%)")
    ax.set_title(
        f"{results.domain}: correct per arm, {results.split} split "
        f"(n = {results.n_questions}, 95% bootstrap CI)",
        fontsize=11,
    )
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    finally:
        plt.close(fig)
    return path
