"""The run's two plots, drawn from metrics.jsonl so they can be redrawn for any run, finished or not.

Uses matplotlib's object API with the Agg canvas (no pyplot, no display, no global state), so it is
safe in a headless job and in a process that also runs a GUI.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["plot_loss", "plot_lr", "read_metrics", "write_plots"]


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a metrics.jsonl; a torn last line (a killed process) is skipped, not fatal."""
    path = Path(path)
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def _figure() -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(7, 4.2), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return fig, ax


def _series(rows: list[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    points = [(int(r["step"]), float(r[key])) for r in rows if r.get(key) is not None]
    return [p[0] for p in points], [p[1] for p in points]


def plot_loss(rows: list[dict[str, Any]], path: Path, title: str, best_step: int | None = None) -> Path:
    """Train loss (line) and eval loss (markers) against optimizer step, the best checkpoint marked."""
    fig, ax = _figure()
    steps, losses = _series(rows, "loss")
    if steps:
        ax.plot(steps, losses, color="tab:blue", linewidth=1.4, label="train loss")
    e_steps, e_losses = _series(rows, "eval_loss")
    if e_steps:
        ax.plot(e_steps, e_losses, color="tab:orange", marker="o", linewidth=1.4, label="eval loss")
    if best_step is not None:
        ax.axvline(
            best_step,
            color="tab:green",
            linestyle="--",
            linewidth=1.2,
            label=f"best checkpoint (step {best_step})",
        )
        if best_step in e_steps:
            best = e_losses[e_steps.index(best_step)]
            ax.annotate(
                f"{best:.3f}",
                (best_step, best),
                textcoords="offset points",
                xytext=(6, 8),
                color="tab:green",
            )
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (answer tokens, nats/token)")
    ax.set_title(f"{title}: loss")
    ax.grid(True, alpha=0.3)
    if steps or e_steps:
        ax.legend(loc="upper right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def plot_lr(rows: list[dict[str, Any]], path: Path, title: str) -> Path:
    """Learning rate against optimizer step (warmup and decay made visible)."""
    fig, ax = _figure()
    steps, lrs = _series(rows, "lr")
    if steps:
        ax.plot(steps, lrs, color="tab:purple", linewidth=1.4, marker="." if len(steps) < 40 else None)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("learning rate")
    ax.set_title(f"{title}: learning rate")
    ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def write_plots(
    metrics_path: str | Path, plots_dir: str | Path, title: str, best_step: int | None = None
) -> list[Path]:
    """plots/loss.png and plots/lr.png from a run's metrics.jsonl."""
    rows = read_metrics(metrics_path)
    plots_dir = Path(plots_dir)
    return [
        plot_loss(rows, plots_dir / "loss.png", title, best_step),
        plot_lr(rows, plots_dir / "lr.png", title),
    ]
