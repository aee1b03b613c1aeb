"""The ``compare`` section: which arms run on which split, scored how, written where."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from domainllm.config.checks import fail

__all__ = ["RECIPE_SECTIONS", "RUN_NAME", "CompareConfig", "flatten_overrides"]

# Sections a recipe may change: what a run learns. The base model and its quantization are shared by
# every run (one base in memory), and retrieval, generation and compare belong to the arms.
RECIPE_SECTIONS = ("training", "lora", "data")
# A run's name becomes part of its arms' names (finetuned@NAME) and of its folder.
RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")


def flatten_overrides(overrides: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{training: {train_on: raft}}`` or ``{training.train_on: raft}`` -> ``{"training.train_on": "raft"}``."""
    flat: dict[str, Any] = {}
    for key, value in overrides.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value and dotted.count(".") < 1:
            flat.update(flatten_overrides(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat


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
    # Finished runs to compare, name -> run directory (relative to the config file); each gives arms finetuned@NAME and finetuned_rag@NAME on one base in memory. `--run NAME=PATH` adds to it.
    runs: dict[str, str] = field(default_factory=dict)
    # Runs this comparison trains (or reuses by fingerprint), name -> overrides of training/lora/data keys, e.g. {sft: {}, raft: {training.train_on: raft}}; each trains into <training.output_dir>-NAME. The first run is the reference the others are tested against.
    recipes: dict[str, dict[str, Any]] = field(default_factory=dict)
    # JSON file listing the test question ids that should be referred to a dentist ({"ids": [...], "rule": ...}); each arm gets a referral score on them (domainllm/eval/referral.py). "builtin:dental/qa/test_referral.json" ships with the dental set; null = no referral score.
    referral_file: str | None = None
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
        self._check_runs()

    def _check_runs(self) -> None:
        for key, names in (("runs", self.runs), ("recipes", self.recipes)):
            for name in names:
                if not RUN_NAME.fullmatch(name):
                    fail(
                        self.section,
                        f"{key}.{name}",
                        "is not a usable run name",
                        "Use letters, digits and _ . + - (it becomes part of arm names such as finetuned@NAME).",
                    )
        both = sorted(set(self.runs) & set(self.recipes))
        if both:
            fail(
                self.section,
                f"recipes.{both[0]}",
                "names a run that compare.runs also names",
                "Give each run one name: a finished run (compare.runs) or a recipe to train (compare.recipes).",
            )
        flat = {name: flatten_overrides(overrides or {}) for name, overrides in self.recipes.items()}
        for name, overrides in flat.items():
            for dotted in overrides:
                section = dotted.split(".", 1)[0]
                if "." not in dotted or section not in RECIPE_SECTIONS:
                    fail(
                        self.section,
                        f"recipes.{name}",
                        f"sets '{dotted}'",
                        f"A recipe changes what a run learns: keys of {', '.join(RECIPE_SECTIONS)} only, written "
                        "section.key (the base model, retrieval, generation and compare are shared by every run).",
                    )
        object.__setattr__(self, "recipes", flat)
