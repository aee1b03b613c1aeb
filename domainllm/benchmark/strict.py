"""``compare.strict`` (``--strict``): a comparison that could not do all it was asked fails instead of passing.

Without it, an extra arm that cannot run (its provider package or API key is missing) is skipped, an
arm that crashes is recorded as failed, and a ``--run`` no arm needs is ignored: the comparison of the
rest is still worth having, and the summary line names what is missing, but the exit code is 0, so a
CI job cannot tell. With it, whatever is known before anything runs (skipped extra arms, an unused
run) is refused at once, before a model is loaded or a file written; arms that fail while running
are known only at the end, so the report is written first (their answers and the others' are kept)
and then the command fails, exit 2.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from domainllm.config import DomainConfig
from domainllm.errors import EvalError

__all__ = ["check_plan", "check_results"]

log = logging.getLogger(__name__)


def check_plan(
    cfg: DomainConfig, specs: Mapping[str, Any], extras: Mapping[str, str | None], given_runs: Sequence[str]
) -> None:
    """Before anything runs: extra arms that will be skipped and given runs (or recipes) no arm uses.

    Warns about each (the skipped extra arms are already warned about where they are checked);
    with ``compare.strict`` raises :class:`EvalError` naming them all.
    """
    problems = [f"extra arm '{name}' cannot run ({reason})" for name, reason in extras.items() if reason]
    if given_runs and not any(getattr(s, "adapter", False) for s in specs.values()):
        unused = (
            f"{'the run' if len(given_runs) == 1 else 'the runs'} {', '.join(map(str, given_runs))} "
            f"(--run / compare.runs / compare.recipes) {'is' if len(given_runs) == 1 else 'are'} given, but no "
            f"arm uses a fine-tuned run (compare.arms: {', '.join(specs) or 'none'})"
        )
        problems.append(unused)
        if not cfg.compare.strict:
            log.warning("%s; it is not used.", unused)
    if problems and cfg.compare.strict:
        msg = (
            f"compare.strict is on (--strict), and {'; '.join(problems)}. Nothing was run or written. Install "
            "what a skipped arm needs (its provider package and API key), add an arm that uses the run "
            "(finetuned, finetuned_rag) or drop --run, or leave --strict off to compare the rest."
        )
        raise EvalError(msg)


def check_results(cfg: DomainConfig, results: Any, out: Path) -> None:
    """After the report is written: with ``compare.strict``, any skipped or failed arm is an error."""
    if not cfg.compare.strict:
        return
    from domainllm.report.console import not_run_arms

    problems = not_run_arms(results)
    named = [
        f"{status} {name} ({' '.join(reason.split())[:200] or 'no reason recorded'})"
        for status, arms in problems.items()
        for name, reason in arms.items()
    ]
    if named:
        msg = (
            f"compare.strict is on (--strict), and {len(named)} arm(s) gave no answers: {'; '.join(named)}. The "
            f"report of the other arms is in {out / 'report.md'}; fix the cause and continue with --resume (the "
            "finished arms are read back), or leave --strict off to accept the comparison without them."
        )
        raise EvalError(msg)
