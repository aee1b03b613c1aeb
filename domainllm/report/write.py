"""Writing a comparison's files, and ``domainllm report DIR``: re-rendering them from results.json.

Order matters: predictions.jsonl and chart.png first, then report.md, then results.json, the file
that says whether the comparison is complete. Each file is written atomically
(:mod:`domainllm.fsio`), so a reader never sees half a report; a chart that fails to draw is recorded
in ``results.errors`` and the Markdown and JSON are still written.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

from domainllm.errors import EvalError
from domainllm.eval.results import Results
from domainllm.fsio import atomic_write_json, atomic_write_jsonl, atomic_write_text
from domainllm.report.chart import make_chart
from domainllm.report.claims import verdict
from domainllm.report.markdown import render_markdown

__all__ = [
    "REPORT_FILES",
    "rerender",
    "write_artifacts",
    "write_predictions",
    "write_report",
    "write_summary",
]

log = logging.getLogger(__name__)

REPORT_FILES = ("report.md", "results.json", "predictions.jsonl", "chart.png")


def write_predictions(rows: Sequence[dict], output_dir: Path) -> Path:
    """predictions.jsonl: one line per question per arm."""
    return atomic_write_jsonl(Path(output_dir) / "predictions.jsonl", rows)


def _chart(results: Results, output_dir: Path) -> None:
    try:
        make_chart(results, output_dir / "chart.png")
    except Exception as exc:  # a drawing problem must not cost the report
        message = f"chart: {exc.__class__.__name__}: {exc}"
        log.error("The chart could not be drawn (%s); report.md and results.json are still written.", message)
        results.errors.append(message)


def write_artifacts(results: Results, output_dir: Path, predictions: Sequence[dict] | None = None) -> None:
    """predictions.jsonl (when given) and chart.png."""
    output_dir = Path(output_dir)
    if predictions is not None:
        write_predictions(predictions, output_dir)
    if results.arms:
        _chart(results, output_dir)


def write_summary(results: Results, output_dir: Path) -> None:
    """report.md, then results.json: the file that says whether the comparison is complete comes last."""
    output_dir = Path(output_dir)
    atomic_write_text(output_dir / "report.md", render_markdown(results))
    atomic_write_json(output_dir / "results.json", results.to_dict())


def write_report(results: Results, output_dir: Path, predictions: Sequence[dict] | None = None) -> Path:
    """predictions.jsonl (when given) and chart.png, then report.md, then results.json last."""
    write_artifacts(results, output_dir, predictions)
    write_summary(results, output_dir)
    return Path(output_dir)


def rerender(output_dir: str | Path) -> Results:
    """Re-render report.md and chart.png of a comparison folder from its results.json (no model loaded).

    The verdict is regenerated from the numbers, so a change to the report's wording or rules shows
    up; results.json itself is left as it is. Returns the results as rendered.
    """
    output_dir = Path(output_dir).expanduser()
    path = output_dir / "results.json"
    if not path.is_file():
        msg = (
            f"'{output_dir}' holds no results.json, so there is nothing to re-render. Pass the folder a "
            "`domainllm compare` wrote (its -o / compare.output_dir)."
        )
        raise EvalError(msg)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not isinstance(data.get("arms"), dict) or "status" not in data:
            msg = "it holds no comparison (a JSON object with 'status' and 'arms', as `domainllm compare` writes)"
            raise ValueError(msg)
        results = Results.from_dict(data)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        msg = (
            f"'{path}' is not a results.json this version can read ({exc.__class__.__name__}: {exc}). Pass a "
            "folder written by `domainllm compare`; nothing was re-rendered."
        )
        raise EvalError(msg) from exc
    results.verdict = verdict(results) if results.arms else results.verdict
    if results.arms:
        make_chart(results, output_dir / "chart.png")
    atomic_write_text(output_dir / "report.md", render_markdown(results))
    return results
