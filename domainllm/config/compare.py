"""The ``compare`` section: which arms run on which split, scored how, written where."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from domainllm.config.checks import fail

__all__ = ["CompareConfig"]


@dataclass(frozen=True)
class CompareConfig:
    """The comparison: which arms, on which split, scored how, written where."""

    section: ClassVar[str] = "compare"

    # Arms to run, by chain spec name in chains/ (prompt_only, rag, finetuned, finetuned_rag, oracle, ...).
    arms: list[str] = field(default_factory=lambda: ["prompt_only", "rag", "finetuned", "finetuned_rag"])
    # Extra arms as LangChain chat models, "provider:model" (e.g. "openai:gpt-4o-mini"); skipped if unavailable.
    extra_arms: list[str] = field(default_factory=list)
    # Add the oracle arm (gold document in the prompt): the upper bound of retrieval.
    oracle: bool = False
    # Folder of chain specs; None = the chains/ shipped with domainllm.
    chains_dir: str | None = None
    # Where report.md, results.json, predictions.jsonl and chart.png are written.
    output_dir: str = "runs/compare-dental"
    # Split to evaluate.
    split: Literal["test", "val"] = "test"
    # Evaluate only the first N questions after a seeded shuffle; 0 = all.
    limit: int = 0
    # Bootstrap resamples for confidence intervals.
    n_bootstrap: int = 2000
    # Seed for bootstrap, shuffles and generation.
    seed: int = 0
    # Relative tolerance for number answers.
    number_rel_tol: float = 0.05
    # Also score choice questions by option log-likelihood (as lm-evaluation-harness does).
    loglik_choices: bool = True
    # Optional LLM-as-judge as "provider:model"; None = no judge.
    judge: str | None = None
    # Example questions shown in the report.
    n_examples: int = 5
    # Fail (exit 2) when an arm is skipped or fails, or a given run is used by no arm; off = report them and exit 0. --strict sets it.
    strict: bool = False

    def __post_init__(self) -> None:
        if not self.arms and not self.extra_arms:
            fail(self.section, "arms", "is empty", "Name at least one arm, e.g. [prompt_only, finetuned].")
        if self.limit < 0:
            fail(self.section, "limit", f"is {self.limit}", "Use 0 (all questions) or a positive count.")
        if self.n_bootstrap < 100:
            fail(self.section, "n_bootstrap", f"is {self.n_bootstrap}", "Use at least 100 (2000 is typical).")
        for arm in self.extra_arms:
            if ":" not in arm:
                fail(self.section, "extra_arms", f"contains {arm!r}", "Write extra arms as 'provider:model'.")
