"""The comparison's orchestration: checks, runs and store, the arms (resumable), then scoring and report.

This is the only package that loads models for a comparison; :mod:`domainllm.eval` (metrics,
scoring, statistics, the typed results) and :mod:`domainllm.report` are pure functions of what the
arms produced. The entry point is :func:`compare`.
"""

from __future__ import annotations

from domainllm._lazy import lazy_exports

__all__ = ["Arm", "ArmStore", "compare", "run_arm", "sample_questions"]

_WHERE = {
    "Arm": ".arms",
    "run_arm": ".arms",
    "ArmStore": ".resume",
    "compare": ".comparison",
    "sample_questions": ".comparison",
}

__getattr__, __dir__ = lazy_exports(__name__, _WHERE, __all__)
