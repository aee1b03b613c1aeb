"""The results table and verdict on the console (``compare`` and ``report`` print them on stdout)."""

from __future__ import annotations

import sys
from typing import Any

from domainllm.eval.results import Results
from domainllm.report.format import ci_num, ci_pct, num

__all__ = ["arms_summary", "not_run_arms", "print_results", "results_table"]


def results_table(results: Results) -> Any:
    """A rich Table of the main results."""
    from rich.table import Table

    table = Table(
        title=f"{results.domain}: {results.split} split, n = {results.n_questions}",
        header_style="bold",
    )
    has_seen = bool(results.seen_counts)
    has_f1 = any(a.summary and a.summary.label for a in results.arms.values())
    columns = [
        "arm",
        "correct [95% CI]",
        *(["macro-F1"] if has_f1 else []),
        *(["seen", "unseen"] if has_seen else []),
        "gen tok/s",
        "p50 s/q",
        "status",
    ]
    for col in columns:
        table.add_column(
            col, justify="left" if col in ("arm", "status") else "right", no_wrap=col != "status"
        )
    for name, arm in results.arms.items():
        s = arm.summary
        seen_cells = [ci_pct(s.main_of(subset)) if s and s.by_seen else "-" for subset in ("seen", "unseen")]
        table.add_row(
            name,
            ci_pct(s.main) if s else "-",
            *([ci_num(s.label.macro_f1 if s and s.label else None)] if has_f1 else []),
            *(seen_cells if has_seen else []),
            num(arm.costs.generated_tokens_per_s),
            num(arm.costs.latency_p50_s, 2),
            arm.status if arm.status == "ok" else f"[red]{arm.status}[/red]",
        )
    overall = results.baselines.overall
    if overall is not None:
        from domainllm.eval.results import Interval

        label = results.baselines.by_type.get("label")
        cells = [
            ci_pct(Interval(overall.mean, overall.low, overall.high, overall.n)),
            *([ci_num(label.macro_f1 if label else None)] if has_f1 else []),
        ]
        table.add_row(
            "trivial baseline", *cells, *[""] * (len(columns) - 2 - len(cells)), "[dim]no model[/dim]"
        )
    return table


def print_results(results: Results, console: Any = None) -> None:
    """Print the results table and the verdict."""
    from rich.console import Console

    # Piped output (logs, CI) gets 120 columns instead of rich's 80, so the table does not wrap.
    console = console or Console(highlight=False, width=None if sys.stdout.isatty() else 120)
    console.print(results_table(results))
    for sentence in results.verdict:
        console.print(f"- {sentence}")


def not_run_arms(results: Results) -> dict[str, dict[str, str]]:
    """``{"skipped": {arm: reason}, "failed": {arm: error}}``: the arms that gave no answers."""
    out: dict[str, dict[str, str]] = {"skipped": {}, "failed": {}}
    for name, arm in results.arms.items():
        if arm.status in out:
            out[arm.status][name] = arm.error or ""
    for name, reason in results.skipped_arms.items():
        out["skipped"].setdefault(name, reason)
    return out


def arms_summary(results: Results) -> str:
    """The arm count for the CLI's last line, naming every arm that was skipped or failed."""
    problems = not_run_arms(results)
    n_ok = sum(1 for arm in results.arms.values() if arm.status == "ok")
    parts = [f"{n_ok} of {len(results.arms)} arms answered"]
    for status, arms in problems.items():
        if arms:
            parts.append(f"{status}: {', '.join(arms)}")
    return "; ".join(parts)
