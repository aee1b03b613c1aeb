"""Per-question scoring: pure functions from (prediction, gold) to numbers.

Everything here is deterministic, dependency-light (``numpy`` only) and independent of how the
prediction was produced, so the same scorer judges all four arms of a comparison (persona, RAG,
fine-tuned, fine-tuned + RAG) identically. Small models answer in full sentences, so the headline
per-question metric for free-text answers is the lenient :func:`contains_match` ("did the model
state the answer?"), with the stricter SQuAD metrics reported beside it.

Conventions shared by all text metrics:

* Text is compared after :func:`normalize_text`, never raw.
* ``references`` is the gold answer plus its aliases; a metric takes the best value over them.
  A single string is accepted and treated as one reference (not as a sequence of characters).
* A reference that normalises to nothing (``""``, ``"The"``, ``"!"``) is ignored: it cannot be
  stated, and matching it would reward an empty or off-topic answer. No usable reference -> 0.0.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from domainllm.data.records import ANSWER_TYPES, DEFAULT_LABELS
from domainllm.errors import EvalError
from domainllm.eval.choices import parse_choice, parse_label
from domainllm.text import find_sublist as _find_sublist
from domainllm.text import normalize_text, parse_number
from domainllm.text import tokens as _tokens

__all__ = [
    "ANSWER_TYPES",
    "MAIN_METRIC",
    "accuracy",
    "contains_match",
    "cosine_similarities",
    "exact_match",
    "macro_f1",
    "normalize_text",
    "number_scores",
    "parse_choice",
    "parse_label",
    "parse_number",
    "recall_at_k",
    "rouge_l",
    "score_answer",
    "token_f1",
]

MAIN_METRIC = "correct"
"""Key of the 0/1 per-question score that every answer type returns; its mean is the headline number."""


def _reference_tokens(references: Sequence[str] | str) -> list[list[str]]:
    """Token lists of the usable references (a bare string is one reference; empty ones are skipped)."""
    refs = [references] if isinstance(references, str) else list(references)
    return [toks for toks in (_tokens(r) for r in refs) if toks]


# --------------------------------------------------------------------------------------------------
# Text metrics
# --------------------------------------------------------------------------------------------------


def exact_match(prediction: str, references: Sequence[str]) -> float:
    """1.0 if the normalised prediction equals any normalised reference (answer or alias), else 0.0.

    Strict on purpose: it is the upper bar that a terse, well-formatted answer clears, and it is what
    most QA papers report, so it anchors our numbers to theirs.
    """
    pred = _tokens(prediction)
    return 1.0 if any(pred == ref for ref in _reference_tokens(references)) else 0.0


def contains_match(prediction: str, references: Sequence[str]) -> float:
    """1.0 if any normalised reference occurs as a contiguous run of whole tokens in the prediction.

    Why: small instruction-tuned models rarely answer with the bare span ("The recommended dose is
    500 mg twice daily."), so exact match would score a correct answer as wrong. Matching whole tokens
    (not substrings) keeps "no" from matching inside "know" and "5" from matching inside "50".
    References that normalise to nothing never match. The cost of the leniency: an answer that lists
    several candidates also matches, so read it beside :func:`token_f1`.
    """
    pred = _tokens(prediction)
    return 1.0 if any(_find_sublist(pred, ref) >= 0 for ref in _reference_tokens(references)) else 0.0


def _f1_from_counts(overlap: int, n_pred: int, n_ref: int) -> float:
    if overlap == 0 or n_pred == 0 or n_ref == 0:
        return 0.0
    precision = overlap / n_pred
    recall = overlap / n_ref
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, references: Sequence[str]) -> float:
    """SQuAD token-level F1 (bag-of-tokens overlap), maximised over references.

    Gives partial credit for partially right answers ("500 mg" vs "500 mg twice daily"), which makes
    differences between arms visible even when exact match is near zero for all of them.
    """
    pred = _tokens(prediction)
    best = 0.0
    pred_counts = Counter(pred)
    for ref in _reference_tokens(references):
        overlap = sum((pred_counts & Counter(ref)).values())
        best = max(best, _f1_from_counts(overlap, len(pred), len(ref)))
    return best


def _lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence (O(len(a) * len(b)) time, O(len(b)) memory)."""
    if not a or not b:
        return 0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0] * (len(b) + 1)
        for j, y in enumerate(b, start=1):
            cur[j] = prev[j - 1] + 1 if x == y else max(prev[j], cur[j - 1])
        prev = cur
    return prev[-1]


def rouge_l(prediction: str, references: Sequence[str]) -> float:
    """ROUGE-L F-measure (beta = 1) on normalised tokens, maximised over references.

    Unlike token F1 it respects word order (via the longest common subsequence), which matters for
    longer free-text answers such as procedures or definitions.
    """
    pred = _tokens(prediction)
    best = 0.0
    for ref in _reference_tokens(references):
        best = max(best, _f1_from_counts(_lcs_length(pred, ref), len(pred), len(ref)))
    return best


def cosine_similarities(pred_vectors: Any, ref_vectors: Any) -> list[float]:
    """Row-wise cosine similarity of two equally long batches of embedding vectors.

    The embedder is chosen and batched by the caller; this only does the arithmetic, in float64 so the
    result does not depend on the embedder's dtype. A zero vector (e.g. the embedding of an empty
    answer from some embedders) gives 0.0 instead of NaN, so it counts as "not similar".
    """
    a = np.asarray(pred_vectors, dtype=np.float64)
    b = np.asarray(ref_vectors, dtype=np.float64)
    if a.size == 0 and b.size == 0:
        return []
    if a.ndim != 2 or b.ndim != 2 or a.shape != b.shape:
        raise EvalError(
            f"cosine_similarities: pred_vectors has shape {a.shape} and ref_vectors has shape {b.shape}; "
            "pass two 2-D batches with the same number of rows and the same embedding size "
            "(embed predictions and references with the same model)."
        )
    dots = np.einsum("ij,ij->i", a, b)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        sims = np.where(norms > 0, dots / np.where(norms > 0, norms, 1.0), 0.0)
    return [float(x) for x in np.clip(sims, -1.0, 1.0)]


# --------------------------------------------------------------------------------------------------
# Numbers
# --------------------------------------------------------------------------------------------------


def number_scores(prediction: str, reference: str, rel_tol: float = 0.05, abs_tol: float = 0.0) -> dict:
    """Score a numeric answer: ``{"abs_error", "within_tol", "parsed"}``.

    ``within_tol`` is 1.0 when ``|pred - ref| <= max(rel_tol * |ref|, abs_tol)``. The tolerance is
    relative to the *reference* (not symmetric like :func:`math.isclose`) because the gold value sets
    the scale a reader cares about: 5 % of a 1,250 euro fee. Use ``abs_tol`` for references near 0.
    An unparsable prediction scores ``abs_error = nan``, ``within_tol = 0.0``, ``parsed = 0.0``; the
    nan keeps it out of a mean absolute error rather than pretending an error size.
    """
    if rel_tol < 0 or abs_tol < 0 or math.isnan(rel_tol) or math.isnan(abs_tol):
        raise EvalError(
            f"number tolerance must be >= 0, got rel_tol={rel_tol!r}, abs_tol={abs_tol!r}; "
            "set number_rel_tol to a fraction such as 0.05."
        )
    ref = parse_number(reference)
    if ref is None:
        raise EvalError(
            f"the 'answer' field {reference!r} of a number question holds no number; write the answer "
            "with digits (e.g. '1250' or '1.5') or change its answer_type to 'text'."
        )
    pred = parse_number(prediction)
    if pred is None:
        return {"abs_error": float("nan"), "within_tol": 0.0, "parsed": 0.0}
    error = abs(pred - ref)
    within = error <= max(rel_tol * abs(ref), abs_tol)
    return {"abs_error": float(error), "within_tol": 1.0 if within else 0.0, "parsed": 1.0}


# --------------------------------------------------------------------------------------------------
# Aggregate classification metrics and retrieval
# --------------------------------------------------------------------------------------------------


def _check_same_length(golds: Sequence, preds: Sequence) -> None:
    if len(golds) != len(preds):
        raise EvalError(
            f"golds has {len(golds)} items but preds has {len(preds)}; pass one prediction per gold item "
            "(use None for a missing prediction)."
        )


def accuracy(golds: Sequence, preds: Sequence) -> float:
    """Share of items whose prediction equals the gold value (``==``; None never counts as right).

    Values are compared as given: normalise labels first (e.g. via :func:`parse_label`). An empty input
    returns nan rather than raising, so the caller decides whether an empty split is an error.
    """
    _check_same_length(golds, preds)
    if not golds:
        return float("nan")
    hits = sum(1 for g, p in zip(golds, preds, strict=True) if p is not None and g == p)
    return hits / len(golds)


def macro_f1(golds: Sequence, preds: Sequence, labels: Sequence[str] | None = None) -> float:
    """Unweighted mean of per-class F1, the usual metric for imbalanced label sets (PubMedQA is ~55 % yes).

    Classes averaged over: ``labels`` when given, else the set of gold labels. A label predicted but
    never gold is then not a class of its own; such predictions are simply wrong (a false negative for
    the gold class). Per class, ``F1 = 2 TP / (2 TP + FP + FN)`` and a class with ``2 TP + FP + FN == 0``
    (in ``labels`` but neither gold nor predicted) contributes 0. A None prediction is wrong: a false
    negative for its gold class and a false positive for none. With ``labels`` given (or when every
    prediction is a gold label) this equals scikit-learn's
    ``f1_score(golds, preds, average="macro", labels=labels, zero_division=0)``; with ``labels=None``
    scikit-learn would also average over labels that only occur among predictions.
    Empty input -> nan.
    """
    _check_same_length(golds, preds)
    if labels is not None and len(labels) == 0:
        raise EvalError(
            "macro_f1: labels is empty; pass the label set (e.g. ['yes', 'no', 'maybe']) or None."
        )
    if not golds:
        return float("nan")
    classes = list(dict.fromkeys(labels if labels is not None else golds))
    scores = []
    for cls in classes:
        tp = sum(1 for g, p in zip(golds, preds, strict=True) if g == cls and p == cls)
        fp = sum(1 for g, p in zip(golds, preds, strict=True) if g != cls and p == cls)
        fn = sum(1 for g, p in zip(golds, preds, strict=True) if g == cls and p != cls)
        denom = 2 * tp + fp + fn
        scores.append(2 * tp / denom if denom else 0.0)
    return float(np.mean(scores))


def recall_at_k(retrieved_doc_ids: Sequence[str], gold_doc_id: str, k: int) -> float:
    """1.0 if ``gold_doc_id`` is among the first ``k`` retrieved ids, else 0.0.

    Measures the retriever alone, so a RAG arm that loses can be blamed on retrieval or on generation.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise EvalError(
            f"recall_at_k: k must be a positive integer, got {k!r}; set the retriever's k to >= 1."
        )
    return 1.0 if gold_doc_id in list(retrieved_doc_ids)[:k] else 0.0


# --------------------------------------------------------------------------------------------------
# Dispatch
# --------------------------------------------------------------------------------------------------


def _option_index(answer: str, options: Sequence[str]) -> int:
    for i, option in enumerate(options):
        if option == answer:
            return i
    norm = normalize_text(answer)
    matches = [i for i, option in enumerate(options) if normalize_text(option) == norm]
    if len(matches) == 1:
        return matches[0]
    raise EvalError(
        f"the 'answer' {answer!r} of a choice question is not one of its options {list(options)!r}; "
        "set 'answer' to the exact text of the correct option."
    )


def score_answer(
    answer_type: str,
    prediction: str,
    answer: str,
    aliases: Sequence[str] = (),
    options: Sequence[str] | None = None,
    labels: Sequence[str] | None = None,
    number_rel_tol: float = 0.05,
) -> dict[str, float]:
    """All per-question metrics for one prediction; every type returns ``"correct"`` in {0.0, 1.0}.

    * ``text``: ``exact_match``, ``contains``, ``token_f1``, ``rouge_l`` against the answer and its
      aliases; ``correct = contains`` (small models answer in sentences). Embedding similarity is batched
      by the caller with :func:`cosine_similarities`.
    * ``number``: ``abs_error``, ``within_tol``, ``parsed`` (see :func:`number_scores`, best over the
      answer and any alias that holds a number); ``correct = within_tol``.
    * ``choice``: ``choice_acc`` (the option parsed by :func:`parse_choice` is the answer's option),
      ``parsed``; ``correct = choice_acc``.
    * ``label``: ``label_acc`` (label from :func:`parse_label` equals the answer after normalisation),
      ``parsed``; ``correct = label_acc``. ``labels`` defaults to yes/no/maybe.

    Raises :class:`EvalError` for an unknown type, an empty answer, a choice question without options or
    whose answer is not an option, and a label question whose answer is not a label.
    """
    if answer_type not in ANSWER_TYPES:
        raise EvalError(
            f"answer_type {answer_type!r} is not supported; set the question's 'answer_type' field to one "
            f"of {', '.join(ANSWER_TYPES)}."
        )
    if not isinstance(answer, str) or not answer.strip():
        raise EvalError(
            f"the 'answer' field is empty or not a string ({answer!r}); every question needs a gold answer."
        )
    if answer_type == "text":
        refs = [answer, *aliases]
        contains = contains_match(prediction, refs)
        return {
            "exact_match": exact_match(prediction, refs),
            "contains": contains,
            "token_f1": token_f1(prediction, refs),
            "rouge_l": rouge_l(prediction, refs),
            MAIN_METRIC: contains,
        }
    if answer_type == "number":
        best = number_scores(prediction, answer, rel_tol=number_rel_tol)
        for alias in aliases:
            if parse_number(alias) is None:
                continue
            cand = number_scores(prediction, alias, rel_tol=number_rel_tol)
            if (cand["within_tol"], -cand["abs_error"]) > (best["within_tol"], -best["abs_error"]):
                best = cand
        return {**best, MAIN_METRIC: best["within_tol"]}
    if answer_type == "choice":
        if not options:
            raise EvalError(
                "a choice question has no 'options'; list the answer options, or change its answer_type "
                "to 'text'."
            )
        gold = _option_index(answer, options)
        chosen = parse_choice(prediction, options)
        acc = 1.0 if chosen == gold else 0.0
        return {"choice_acc": acc, "parsed": 0.0 if chosen is None else 1.0, MAIN_METRIC: acc}
    # label
    label_set = tuple(labels) if labels is not None else DEFAULT_LABELS
    norm_labels = [normalize_text(label) for label in label_set]
    if not any(norm_labels):
        raise EvalError(
            "a label question has an empty 'labels' list; pass the label set, e.g. ['yes', 'no', 'maybe']."
        )
    gold_norm = normalize_text(answer)
    if gold_norm not in norm_labels:
        raise EvalError(
            f"the 'answer' {answer!r} of a label question is not one of the labels {list(label_set)!r}; "
            "fix the answer or pass the dataset's label set as 'labels'."
        )
    predicted = parse_label(prediction, label_set)
    acc = 1.0 if predicted is not None and normalize_text(predicted) == gold_norm else 0.0
    return {"label_acc": acc, "parsed": 0.0 if predicted is None else 1.0, MAIN_METRIC: acc}
