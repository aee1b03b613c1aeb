"""The comparison's report: the verdict, report.md, chart.png and the console table, from :class:`Results`.

Everything here is a function of :class:`domainllm.eval.results.Results`, so ``domainllm report DIR``
re-renders a comparison from its results.json without loading a model.
"""

from __future__ import annotations

from domainllm._lazy import lazy_exports

__all__ = [
    "REPORT_FILES",
    "make_chart",
    "print_results",
    "render_markdown",
    "rerender",
    "results_table",
    "verdict",
    "write_report",
]

_WHERE = {
    "REPORT_FILES": ".write",
    "rerender": ".write",
    "write_report": ".write",
    "make_chart": ".chart",
    "render_markdown": ".markdown",
    "print_results": ".console",
    "results_table": ".console",
    "verdict": ".claims",
}

__getattr__, __dir__ = lazy_exports(__name__, _WHERE, __all__)
