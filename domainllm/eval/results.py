"""The comparison's results as a typed structure: what ``results.json`` holds and the report renders.

``compare`` assembles a :class:`Results`; :mod:`domainllm.report` renders it; ``Results.from_json``
reads a ``results.json`` back (``domainllm report DIR`` re-renders without a model). Every number the
report shows has a field here, so a renamed key is a type error, not a silently empty cell.

Intervals are 95% percentile-bootstrap intervals (``mean`` is the point value, for macro-F1 too).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from domainllm.eval.metrics import MAIN_METRIC
from domainllm.eval.serial import from_data, to_data

__all__ = [
    "ArmResult",
    "Baselines",
    "Costs",
    "Example",
    "Interval",
    "LabelSummary",
    "OverallBaseline",
    "PairTest",
    "Results",
    "Subset",
    "Summary",
    "TypeBaseline",
    "interval",
]


@dataclass
class Interval:
    """A point value with its 95% bootstrap interval over ``n`` questions."""

    mean: float
    low: float
    high: float
    n: int = 0


def interval(data: dict[str, Any] | None) -> Interval | None:
    """An :class:`Interval` from a stats dict (``mean`` from bootstrap_ci, ``value`` from bootstrap_statistic)."""
    if not data:
        return None
    mean = data.get("mean", data.get("value"))
    return Interval(mean=mean, low=data.get("low"), high=data.get("high"), n=int(data.get("n") or 0))


@dataclass
class Subset:
    """Metrics over a subset of the questions (one answer type, or seen / unseen in training)."""

    n: int
    metrics: dict[str, Interval] = field(default_factory=dict)

    @property
    def main(self) -> Interval | None:
        return self.metrics.get(MAIN_METRIC)


@dataclass
class LabelSummary:
    """Label questions: macro-F1 with its interval, and how often each label was predicted."""

    labels: list[str]
    macro_f1: Interval | None = None
    predicted: dict[str, int] = field(default_factory=dict)


@dataclass
class Summary:
    """An arm's scores: overall, per answer type and per ``seen_in_train``."""

    n: int
    metrics: dict[str, Interval] = field(default_factory=dict)
    by_type: dict[str, Subset] = field(default_factory=dict)
    by_seen: dict[str, Subset] = field(default_factory=dict)
    label: LabelSummary | None = None

    @property
    def main(self) -> Interval | None:
        return self.metrics.get(MAIN_METRIC)

    def main_of(self, subset: str | None) -> Interval | None:
        """The main metric overall (``None``) or on ``seen`` / ``unseen``."""
        if subset is None:
            return self.main
        part = self.by_seen.get(subset)
        return part.main if part else None

    @classmethod
    def from_scores(cls, data: dict[str, Any]) -> Summary:
        """From :func:`domainllm.eval.scoring.summarize_scores`'s dict."""

        def block(d: dict[str, Any]) -> dict[str, Interval]:
            return {k: v for k, v in ((k, interval(v)) for k, v in d.items()) if v is not None}

        label = data.get("label")
        return cls(
            n=data["n"],
            metrics=block(data.get("metrics", {})),
            by_type={t: Subset(s["n"], block(s["metrics"])) for t, s in data.get("by_type", {}).items()},
            by_seen={t: Subset(s["n"], block(s["metrics"])) for t, s in data.get("by_seen", {}).items()},
            label=LabelSummary(label["labels"], interval(label.get("macro_f1")), label.get("predicted", {}))
            if label
            else None,
        )


@dataclass
class Costs:
    """What an arm cost: wall time, per-question latency, tokens, memory, and training for fine-tuned arms."""

    wall_s: float | None = None
    generation_s: float | None = None
    latency_p50_s: float | None = None
    latency_p95_s: float | None = None
    generated_tokens: int | None = None
    generated_tokens_per_s: float | None = None
    mean_prompt_tokens: float | None = None
    mean_generated_tokens: float | None = None
    peak_rss_mb: float | None = None
    cuda_peak_mb: float | None = None
    loglik_s: float | None = None
    training_wall_s: float | None = None
    trainable_params: int | None = None
    total_params: int | None = None


@dataclass
class ArmResult:
    """One arm in the results: how it ran, what it scored, what it cost."""

    status: str
    kind: str = "local"
    adapter: bool = False
    retrieval: bool = False
    description: str = ""
    run: str | None = None
    error: str | None = None
    traceback: str | None = None
    loglik_error: str | None = None
    costs: Costs = field(default_factory=Costs)
    summary: Summary | None = None
    # True when the arm's answers were read back from an earlier, interrupted comparison (--resume).
    resumed: bool = False
    generation_mode: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.summary is not None

    @property
    def main(self) -> Interval | None:
        return self.summary.main if self.summary else None


@dataclass
class PairTest:
    """A paired test of arm A against arm B on the same questions; ``diff`` = mean(A) - mean(B)."""

    arm_a: str
    arm_b: str
    diff: float
    p_value: float
    p_holm: float
    test: str
    n: int

    def oriented(self, a: str) -> PairTest:
        """The same test with ``a`` as arm A (the difference's sign follows)."""
        if self.arm_a == a:
            return self
        return PairTest(self.arm_b, self.arm_a, -self.diff, self.p_value, self.p_holm, self.test, self.n)


@dataclass
class TypeBaseline:
    """The trivial baseline of one answer type (a constant answer learned from train)."""

    name: str
    answer: str
    n: int
    correct: Interval | None = None
    macro_f1: Interval | None = None


@dataclass
class OverallBaseline:
    """Every test question answered by its type's baseline: the dashed line in the chart."""

    name: str
    description: str
    covered: int
    mean: float
    low: float
    high: float
    n: int


@dataclass
class Baselines:
    by_type: dict[str, TypeBaseline] = field(default_factory=dict)
    overall: OverallBaseline | None = None

    @classmethod
    def from_scores(cls, data: dict[str, Any]) -> Baselines:
        """From :func:`domainllm.eval.baselines.compute_baselines`'s dict."""
        if not data:
            return cls()
        by_type = {
            t: TypeBaseline(
                e["name"], str(e["answer"]), e["n"], interval(e.get(MAIN_METRIC)), interval(e.get("macro_f1"))
            )
            for t, e in data.get("by_type", {}).items()
        }
        return cls(by_type=by_type, overall=from_data(OverallBaseline, data["overall"]))


@dataclass
class Example:
    """A question shown in the report with every arm's answer."""

    id: str
    question: str
    answer_type: str
    reference: str
    seen_in_train: bool | None = None
    answers: dict[str, str] = field(default_factory=dict)
    correct: dict[str, float] = field(default_factory=dict)


@dataclass
class Results:
    """Everything a comparison found (``results.json``); the report is a function of this alone."""

    # running | complete | failed | interrupted
    status: str = "running"
    error: str | None = None
    # Steps after the arms that failed (scoring, judge, chart, ...): what could be computed still is.
    errors: list[str] = field(default_factory=list)
    created_at: str = ""
    command: str = ""
    domain: str = ""
    split: str = "test"
    split_source: str = ""
    n_questions: int = 0
    n_total: int = 0
    limit: int = 0
    seed: int = 0
    n_bootstrap: int = 2000
    main_metric: str = MAIN_METRIC
    question_ids: list[str] = field(default_factory=list)
    answer_types: dict[str, int] = field(default_factory=dict)
    seen_counts: dict[str, int] = field(default_factory=dict)
    arms: dict[str, ArmResult] = field(default_factory=dict)
    skipped_arms: dict[str, str] = field(default_factory=dict)
    resumed_arms: list[str] = field(default_factory=list)
    pairwise: list[PairTest] = field(default_factory=list)
    pairwise_by_seen: dict[str, list[PairTest]] = field(default_factory=dict)
    baselines: Baselines = field(default_factory=Baselines)
    examples: list[Example] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)
    wall_s: float | None = None
    verdict: list[str] = field(default_factory=list)
    judge: dict[str, Any] | None = None
    # The fine-tuned runs the arms used: name -> run directory, training facts, note.
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    store: dict[str, Any] | None = None
    # Near-duplicate check of each training set against the evaluated questions.
    leakage: dict[str, Any] = field(default_factory=dict)
    # Per run: the evaluated facts its own training set covered (domainllm.eval.coverage.fact_coverage).
    coverage: dict[str, Any] = field(default_factory=dict)
    # Per arm: answers that refer the user to a dentist on the questions compare.referral_file lists.
    referral: dict[str, Any] = field(default_factory=dict)
    model: dict[str, str] = field(default_factory=dict)
    device: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    config_fingerprint: str = ""
    versions: dict[str, str | None] = field(default_factory=dict)
    git_commit: str | None = None

    # -- views the report uses ---------------------------------------------------------------------

    @property
    def ok_arms(self) -> dict[str, ArmResult]:
        return {name: arm for name, arm in self.arms.items() if arm.ok}

    def pair(self, a: str, b: str, subset: str | None = None) -> PairTest | None:
        """The paired test of ``a`` vs ``b`` (overall, or on ``seen``/``unseen``), oriented as a - b."""
        rows = self.pairwise if subset is None else self.pairwise_by_seen.get(subset, [])
        for row in rows:
            if {row.arm_a, row.arm_b} == {a, b}:
                return row.oriented(a)
        return None

    # -- JSON ------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return to_data(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Results:
        return from_data(cls, data)

    @classmethod
    def from_json(cls, path: str | Path) -> Results:
        """Read ``results.json`` (or the folder holding it)."""
        path = Path(path)
        path = path / "results.json" if path.is_dir() else path
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
