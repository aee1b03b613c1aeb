"""How numbers are written in the report: one formatting for the Markdown, the console and the chart."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from domainllm.eval.results import Interval

__all__ = [
    "ALPHA",
    "arm_label",
    "ci_num",
    "ci_pct",
    "finite",
    "fmt_metric",
    "md_table",
    "num",
    "p_text",
    "pct",
]

ALPHA = 0.05
"""Significance level of every claim: a difference is called one when its Holm-adjusted p is below it."""

_ARM_LABELS = {
    "prompt_only": "the persona prompt",
    "rag": "RAG",
    "finetuned": "fine-tuning",
    "finetuned_rag": "fine-tuning + RAG",
    "oracle": "the oracle (gold context)",
}


def arm_label(name: str) -> str:
    """A readable name for an arm in sentences ("fine-tuning + RAG", "fine-tuning (raft) + RAG")."""
    base, _, run = name.partition("@")
    label = _ARM_LABELS.get(base, base)
    if not run:
        return label
    if base == "finetuned_rag":
        return f"fine-tuning ({run}) + RAG"
    if base == "finetuned":
        return f"fine-tuning ({run})"
    return f"{label} ({run})"


def finite(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def pct(x: Any) -> str:
    return f"{100 * x:.0f}%" if finite(x) else "n/a"


def ci_pct(ci: Interval | None) -> str:
    """``"71% [62, 79]"``."""
    if ci is None or not finite(ci.mean) or not finite(ci.low) or not finite(ci.high):
        return "n/a" if ci is None or not finite(ci.mean) else pct(ci.mean)
    return f"{100 * ci.mean:.0f}% [{100 * ci.low:.0f}, {100 * ci.high:.0f}]"


def ci_num(ci: Interval | None, digits: int = 2) -> str:
    if ci is None or not finite(ci.mean):
        return "n/a"
    if not finite(ci.low) or not finite(ci.high):
        return f"{ci.mean:.{digits}f}"
    return f"{ci.mean:.{digits}f} [{ci.low:.{digits}f}, {ci.high:.{digits}f}]"


def fmt_metric(metric: str, ci: Interval | None) -> str:
    if metric in ("abs_error", "token_f1", "rouge_l", "embed_sim"):
        return ci_num(ci, 2)
    return ci_pct(ci)


def p_text(p: Any) -> str:
    """``"p = 0.03"``, ``"p < 0.001"``."""
    if not finite(p):
        return "p = n/a"
    if p < 0.001:
        return "p < 0.001"
    return f"p = {p:.3f}" if p < 0.01 else f"p = {p:.2f}"


def num(x: Any, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    if isinstance(x, int):
        return f"{x:,}"
    return f"{x:,.{digits}f}"


def md_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
