"""Trivial baselines: answers that need no model, scored like an arm (what a score must beat)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from domainllm.data.records import ANSWER_TYPES, QARecord
from domainllm.eval.metrics import MAIN_METRIC
from domainllm.eval.scoring import (
    _gold_option_index,
    _label_predictions,
    label_set,
    macro_f1_interval,
    score_records,
)
from domainllm.eval.stats import bootstrap_ci
from domainllm.text import normalize_text, parse_number

__all__ = ["compute_baselines"]


def _most_frequent(values: Sequence[Any]) -> Any:
    """The most frequent value; ties go to the value seen first (deterministic, no randomness)."""
    return Counter(values).most_common(1)[0][0]


def compute_baselines(
    train: Sequence[QARecord],
    test: Sequence[QARecord],
    number_rel_tol: float = 0.05,
    n_bootstrap: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Answers that need no model, learned from the train split and scored like an arm on the test set.

    Why: a 60% accuracy means nothing until one knows that always answering "yes" gets 55%.
    Per answer type present in both splits:

    * ``label``: the majority train label, with accuracy and macro-F1 (always predicting one class of
      three gives at most ~0.24 macro-F1, which is why PubMedQA reports both);
    * ``text``: the most frequent train answer, scored with the same text metrics;
    * ``number``: the most frequent train number;
    * ``choice``: always the option position that is most often correct in train.

    Returns ``{"by_type": {type: {...}}, "overall": {...}}``; ``overall`` answers every test question
    with its type's baseline (questions of a type without train examples score 0) and is the dashed
    line in the chart. Empty when the train split is empty.
    """
    if not train:
        return {}
    by_type: dict[str, Any] = {}
    correct = np.zeros(len(test))
    covered = np.zeros(len(test), dtype=bool)
    for answer_type in ANSWER_TYPES:
        tr = [r for r in train if r.answer_type == answer_type]
        te_idx = [i for i, r in enumerate(test) if r.answer_type == answer_type]
        if not tr or not te_idx:
            continue
        te = [test[i] for i in te_idx]
        entry: dict[str, Any] = {"n": len(te)}
        if answer_type == "choice":
            position = _most_frequent([_gold_option_index(r) for r in tr])
            predictions = [r.options[min(position, len(r.options) - 1)] for r in te]  # type: ignore[index]
            entry["name"] = "most frequent option position"
            entry["answer"] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[position]
            values = [1.0 if p == r.answer else 0.0 for p, r in zip(predictions, te, strict=True)]
        else:
            if answer_type == "label":
                constant = _most_frequent([normalize_text(r.answer) for r in tr])
                constant = next(r.answer for r in tr if normalize_text(r.answer) == constant)
                entry["name"] = "majority label"
            elif answer_type == "number":
                numbers = [parse_number(r.answer) for r in tr]
                constant = _format_number(_most_frequent([n for n in numbers if n is not None]))
                entry["name"] = "most frequent number"
            else:
                constant = _most_frequent([r.answer for r in tr])
                entry["name"] = "constant answer"
            entry["answer"] = constant
            scored = score_records(te, [constant] * len(te), number_rel_tol)
            values = [s[MAIN_METRIC] for s in scored]
            if answer_type == "label":
                golds, preds = _label_predictions(te, [constant] * len(te))
                entry["macro_f1"] = macro_f1_interval(golds, preds, label_set(te), n_bootstrap, seed)
        entry[MAIN_METRIC] = bootstrap_ci(values, n_resamples=n_bootstrap, seed=seed)
        by_type[answer_type] = entry
        correct[te_idx] = values
        covered[te_idx] = True
    if not by_type:
        return {}
    overall = bootstrap_ci(correct.tolist(), n_resamples=n_bootstrap, seed=seed)
    names = ", ".join(f"{t}: {e['name']} '{e['answer']}'" for t, e in by_type.items())
    return {
        "by_type": by_type,
        "overall": {
            "name": "trivial baseline",
            "description": names,
            "covered": int(covered.sum()),
            **overall,
        },
    }


def _format_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
