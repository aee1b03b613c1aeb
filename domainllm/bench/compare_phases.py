"""Where the time of ``domainllm compare`` goes: phase wall times and generated tokens/s per arm.

    python -m domainllm.bench.compare_phases                      # run the default comparison, then print
    python -m domainllm.bench.compare_phases --results runs/compare-dental/results.json   # print only

The numbers come from the comparison's own ``results.json`` (every phase is timed there), so the
benchmark measures exactly what a user's run does, not a re-implementation of it.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["main", "phase_table"]


def phase_table(results: dict[str, Any]) -> Any:
    """A rich Table: each phase's wall time and share of the total, then per-arm throughput."""
    from rich.table import Table

    phases = results.get("phases") or {}
    total = sum(phases.values()) or 1.0
    table = Table(title=f"compare phases ({results.get('domain')}, n = {results.get('n_questions')})")
    for col in ("phase", "wall s", "share", "gen tok/s", "prompt tok/q", "latency p50 s"):
        table.add_column(col, justify="left" if col == "phase" else "right", no_wrap=True)
    for name, seconds in phases.items():
        costs = {}
        if name.startswith("arm: "):
            costs = (results.get("arms", {}).get(name[5:]) or {}).get("costs") or {}

        def fmt(key: str, digits: int = 1, costs: dict = costs) -> str:
            value = costs.get(key)
            return "" if value is None else f"{value:.{digits}f}"

        table.add_row(
            name,
            f"{seconds:.1f}",
            f"{100 * seconds / total:.0f}%",
            fmt("generated_tokens_per_s"),
            fmt("mean_prompt_tokens", 0),
            fmt("latency_p50_s", 2),
        )
    table.add_row("[bold]total[/bold]", f"{total:.1f}", "100%", "", "", "")
    return table


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", "-c", help="YAML config (default: the shipped dental default)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--results", help="print the phases of an existing results.json instead of running")
    args = parser.parse_args(argv)
    import sys

    from rich.console import Console

    console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
    if args.results:
        path = Path(args.results)
    else:
        from domainllm.benchmark.comparison import compare
        from domainllm.config import load_config

        start = time.perf_counter()
        out = compare(load_config(args.config, args.overrides))
        console.print(f"compare finished in {time.perf_counter() - start:.1f} s (process wall time)")
        path = out / "results.json"
    results = json.loads(path.read_text(encoding="utf-8"))
    console.print(phase_table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
