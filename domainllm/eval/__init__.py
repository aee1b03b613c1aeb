"""Metrics, scoring, statistics and the typed results of a comparison: pure functions, no model imports.

What an arm produced (:class:`~domainllm.eval.predictions.ArmRun`) goes in; per-question scores,
intervals, paired tests and a :class:`~domainllm.eval.results.Results` come out. Orchestration (models,
arms, resume) lives in :mod:`domainllm.benchmark`, rendering in :mod:`domainllm.report`.
"""

from domainllm.data.records import ANSWER_TYPES
from domainllm.eval.metrics import (
    MAIN_METRIC,
    accuracy,
    contains_match,
    cosine_similarities,
    exact_match,
    macro_f1,
    number_scores,
    parse_choice,
    parse_label,
    recall_at_k,
    rouge_l,
    score_answer,
    token_f1,
)
from domainllm.eval.stats import (
    bootstrap_ci,
    bootstrap_statistic,
    holm_bonferroni,
    mcnemar,
    paired_bootstrap,
    pairwise_tests,
)
from domainllm.text import normalize_text, parse_number

__all__ = [
    "ANSWER_TYPES",
    "MAIN_METRIC",
    "accuracy",
    "bootstrap_ci",
    "bootstrap_statistic",
    "contains_match",
    "cosine_similarities",
    "exact_match",
    "holm_bonferroni",
    "macro_f1",
    "mcnemar",
    "normalize_text",
    "number_scores",
    "paired_bootstrap",
    "pairwise_tests",
    "parse_choice",
    "parse_label",
    "parse_number",
    "recall_at_k",
    "rouge_l",
    "score_answer",
    "token_f1",
]
