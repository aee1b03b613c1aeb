"""Applying the per-question metrics to a whole arm, and summarising arms with intervals.

:mod:`domainllm.eval.metrics` judges one prediction; this module judges an arm: it checks every
question can be scored *before* any generation (a bad answer type should not cost an hour of
inference), scores the answers of each arm identically, adds what needs more than one string
(batched embedding similarity, option log-likelihood, label macro-F1, retrieval recall, an optional
LLM judge), builds the trivial baselines a skeptical reader asks for first, and turns per-question
numbers into means with seeded 95% bootstrap intervals, overall and per subset.

Per-question scores are plain ``dict[str, float]`` (``nan`` = not applicable), so they go straight
into ``predictions.jsonl`` and the statistics.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from domainllm.data.records import ANSWER_TYPES, DEFAULT_LABELS, QARecord
from domainllm.errors import EvalError
from domainllm.eval.metrics import (
    MAIN_METRIC,
    cosine_similarities,
    macro_f1,
    parse_label,
    recall_at_k,
    score_answer,
)
from domainllm.eval.stats import bootstrap_ci, bootstrap_statistic
from domainllm.text import normalize_text

__all__ = [
    "EmbeddingScorer",
    "check_records",
    "judge_verdicts",
    "label_set",
    "loglik_choice_correct",
    "macro_f1_interval",
    "retrieval_recall",
    "score_records",
    "summarize_scores",
]

log = logging.getLogger(__name__)

# Metrics whose mean is reported with an interval. Order = column order in the report.
METRIC_ORDER = (
    MAIN_METRIC,
    "exact_match",
    "contains",
    "token_f1",
    "rouge_l",
    "embed_sim",
    "within_tol",
    "abs_error",
    "choice_acc",
    "choice_loglik_acc",
    "label_acc",
    "parsed",
    "recall_at_k",
    "judge_correct",
)


def _refs(record: QARecord) -> list[str]:
    return [record.answer, *record.aliases]


def check_records(records: Sequence[QARecord], where: str) -> None:
    """Fail before any generation if a question cannot be scored, naming the question and the fix.

    Every record is scored once against an empty prediction: that runs the same validation the real
    scoring will (answer type, choice answer among its options, label answer among the labels,
    number answer holding a number) without waiting for a model.
    """
    if not records:
        msg = (
            f"The evaluation split is empty: {where} has no questions (the file is missing or empty). "
            "Add questions to it, or evaluate another split with --set compare.split=val."
        )
        raise EvalError(msg)
    seen_ids: set[str] = set()
    for record in records:
        if record.answer_type not in ANSWER_TYPES:
            msg = (
                f"Question '{record.id}' in {where} has answer_type {record.answer_type!r}, which the "
                f"comparison cannot score. Use one of: {', '.join(ANSWER_TYPES)}."
            )
            raise EvalError(msg)
        if record.id in seen_ids:
            msg = (
                f"Question id '{record.id}' occurs twice in {where}; ids must be unique so that "
                "predictions of different arms can be paired. Rename one of them."
            )
            raise EvalError(msg)
        seen_ids.add(record.id)
        try:
            score_answer(
                record.answer_type,
                "",
                record.answer,
                aliases=record.aliases,
                options=record.options,
                labels=record.labels,
            )
        except EvalError as exc:
            msg = f"Question '{record.id}' in {where} cannot be scored: {exc}"
            raise EvalError(msg) from None


def score_records(
    records: Sequence[QARecord], answers: Sequence[str], number_rel_tol: float = 0.05
) -> list[dict[str, float]]:
    """Per-question metrics (``metrics.score_answer``) for one arm's answers, in record order."""
    if len(records) != len(answers):
        msg = f"score_records got {len(records)} questions but {len(answers)} answers; pass one per question."
        raise EvalError(msg)
    return [
        score_answer(
            r.answer_type,
            a or "",
            r.answer,
            aliases=r.aliases,
            options=r.options,
            labels=r.labels,
            number_rel_tol=number_rel_tol,
        )
        for r, a in zip(records, answers, strict=True)
    ]


class EmbeddingScorer:
    """Cosine similarity of answers to their references under one text encoder.

    Why embeddings beside token metrics: "Come back in two days" and "after 48 hours" share no
    token but mean the same; a semantic score shows whether an arm is close in meaning even when
    lexical metrics say zero. ``encode`` maps a list of texts to a 2-D array of vectors (the
    comparison passes a sentence-transformers model, loaded by :mod:`domainllm.benchmark`; this module
    loads no model). Reference embeddings are cached, so four arms cost one pass over the references.
    Similarity is the best over the answer and its aliases, like the lexical metrics.
    """

    def __init__(self, encode: Callable[[list[str]], Any]) -> None:
        self.encode = encode
        self._cache: dict[str, np.ndarray] = {}

    def _embed(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            vectors = self.encode(missing)
            self._cache.update(zip(missing, np.asarray(vectors, dtype=np.float64), strict=True))
        return {t: self._cache[t] for t in texts}

    def similarities(self, answers: Sequence[str], references: Sequence[Sequence[str]]) -> list[float]:
        """Best cosine similarity of each answer to any of its references (empty answer -> 0.0)."""
        if len(answers) != len(references):
            msg = f"EmbeddingScorer got {len(answers)} answers but {len(references)} reference lists."
            raise EvalError(msg)
        texts = [a for a in answers if a.strip()] + [r for refs in references for r in refs if r.strip()]
        vectors = self._embed(texts) if texts else {}
        out = []
        for answer, refs in zip(answers, references, strict=True):
            usable = [r for r in refs if r.strip()]
            if not answer.strip() or not usable:
                out.append(0.0)
                continue
            sims = cosine_similarities([vectors[answer]] * len(usable), [vectors[r] for r in usable])
            out.append(max(sims))
        return out


def add_embedding_similarity(
    records: Sequence[QARecord],
    answers: Sequence[str],
    scores: list[dict[str, float]],
    scorer: EmbeddingScorer,
) -> None:
    """Add ``embed_sim`` to the scores of text questions (in place), in one batched pass."""
    idx = [i for i, r in enumerate(records) if r.answer_type == "text"]
    if not idx:
        return
    sims = scorer.similarities([answers[i] or "" for i in idx], [_refs(records[i]) for i in idx])
    for i, sim in zip(idx, sims, strict=True):
        scores[i]["embed_sim"] = sim


def loglik_choice_correct(
    records: Sequence[QARecord], logliks: Sequence[Sequence[float] | None]
) -> list[float]:
    """1.0 where the option with the highest log-likelihood is the gold option (choice questions only).

    This is how lm-evaluation-harness scores multiple choice: it measures what the model *knows*
    independently of whether it can format a letter answer, which small models often cannot. Ties go
    to the first option (``argmax``); non-choice questions and missing scores give ``nan``.
    """
    out = []
    for record, ll in zip(records, logliks, strict=True):
        if record.answer_type != "choice" or ll is None or not len(ll) or record.options is None:
            out.append(float("nan"))
            continue
        if len(ll) != len(record.options):
            msg = (
                f"Question '{record.id}' has {len(record.options)} options but {len(ll)} log-likelihoods; "
                "the scorer must return one per option."
            )
            raise EvalError(msg)
        gold = _gold_option_index(record)
        out.append(1.0 if int(np.argmax(np.asarray(ll, dtype=np.float64))) == gold else 0.0)
    return out


def _gold_option_index(record: QARecord) -> int:
    options = list(record.options or ())
    if record.answer in options:
        return options.index(record.answer)
    norm = normalize_text(record.answer)
    return next(i for i, o in enumerate(options) if normalize_text(o) == norm)


def retrieval_recall(
    records: Sequence[QARecord], retrieved_doc_ids: Sequence[Sequence[str] | None], k: int
) -> list[float]:
    """recall@k of each question's gold ``doc_id`` among its retrieved chunks' doc ids (nan without a gold id)."""
    out = []
    for record, doc_ids in zip(records, retrieved_doc_ids, strict=True):
        if not record.doc_id or doc_ids is None:
            out.append(float("nan"))
        else:
            out.append(recall_at_k(list(doc_ids), record.doc_id, k))
    return out


# --------------------------------------------------------------------------------------------------
# Labels: macro-F1 with an interval


def label_set(records: Sequence[QARecord]) -> tuple[str, ...]:
    """The label classes of the label questions: their declared ``labels`` (in order), else yes/no/maybe."""
    found: dict[str, None] = {}
    for r in records:
        if r.answer_type == "label":
            for label in r.labels or DEFAULT_LABELS:
                found.setdefault(label, None)
    return tuple(found) or DEFAULT_LABELS


def macro_f1_interval(
    golds: Sequence[str],
    preds: Sequence[str | None],
    labels: Sequence[str],
    n_bootstrap: int,
    seed: int,
) -> dict[str, float]:
    """Macro-F1 over ``labels`` with a percentile-bootstrap interval: ``{"value", "low", "high", "n"}``.

    Labels are compared after normalisation. The resampled statistic is computed from a confusion
    count with numpy (it equals :func:`metrics.macro_f1` on every resample, which a test asserts), so
    2000 resamples of 500 questions take milliseconds instead of seconds.
    """
    norm_labels = [normalize_text(label) for label in labels]
    golds_n = [normalize_text(g) for g in golds]
    preds_n = [normalize_text(p) if p is not None else None for p in preds]
    k = len(norm_labels)
    index = {label: i for i, label in enumerate(norm_labels)}
    g = np.array([index.get(x, k) for x in golds_n], dtype=np.int64)
    p = np.array([index.get(x, k) if x is not None else k for x in preds_n], dtype=np.int64)

    def statistic(idx: np.ndarray) -> float:
        gi, pi = g[idx], p[idx]
        tp = np.bincount(gi[gi == pi], minlength=k + 1)[:k]
        gold_count = np.bincount(gi, minlength=k + 1)[:k]
        pred_count = np.bincount(pi, minlength=k + 1)[:k]
        denom = gold_count + pred_count  # = 2TP + FP + FN
        f1 = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)
        return float(f1.mean())

    out = bootstrap_statistic(len(g), statistic, n_resamples=n_bootstrap, seed=seed)
    # The point value through the reference implementation, so the two can never silently disagree.
    if len(g):
        out["value"] = macro_f1(golds_n, preds_n, labels=norm_labels)
    return out


def _label_predictions(records: Sequence[QARecord], answers: Sequence[str]) -> tuple[list, list]:
    golds, preds = [], []
    for r, a in zip(records, answers, strict=True):
        if r.answer_type == "label":
            golds.append(r.answer)
            preds.append(parse_label(a or "", r.labels or DEFAULT_LABELS))
    return golds, preds


# --------------------------------------------------------------------------------------------------
# Summaries with intervals


def _ci(values: Sequence[float], n_bootstrap: int, seed: int) -> dict[str, float] | None:
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0 or np.all(np.isnan(arr)):
        return None
    return bootstrap_ci(arr, n_resamples=n_bootstrap, seed=seed)


def _metric_block(
    scores: Sequence[dict[str, float]], n_bootstrap: int, seed: int
) -> dict[str, dict[str, float]]:
    keys = [k for k in METRIC_ORDER if any(k in s for s in scores)]
    keys += sorted({k for s in scores for k in s} - set(keys))
    block = {}
    for key in keys:
        ci = _ci([s.get(key, math.nan) for s in scores], n_bootstrap, seed)
        if ci is not None:
            block[key] = ci
    return block


def summarize_scores(
    records: Sequence[QARecord],
    scores: Sequence[dict[str, float]],
    answers: Sequence[str],
    n_bootstrap: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Mean and 95% bootstrap CI of every metric, overall, per answer type and per ``seen_in_train``.

    Returns ``{"n", "metrics", "by_type", "by_seen", "label"}``: ``metrics`` maps metric -> ``{"mean",
    "low", "high", "n"}`` (``n`` counts the questions the metric applies to); ``by_type`` and
    ``by_seen`` hold the same for each subset present in the data (``by_seen`` keys ``seen`` and
    ``unseen``, absent when no question declares ``seen_in_train``); ``label`` holds macro-F1 with its
    interval when there are label questions. All intervals use the same seed, so every arm is
    resampled on the same question indices.
    """
    out: dict[str, Any] = {"n": len(records), "metrics": _metric_block(scores, n_bootstrap, seed)}
    by_type = {}
    for answer_type in ANSWER_TYPES:
        idx = [i for i, r in enumerate(records) if r.answer_type == answer_type]
        if idx:
            by_type[answer_type] = {
                "n": len(idx),
                "metrics": _metric_block([scores[i] for i in idx], n_bootstrap, seed),
            }
    out["by_type"] = by_type
    by_seen = {}
    for name, flag in (("seen", True), ("unseen", False)):
        idx = [i for i, r in enumerate(records) if r.seen_in_train is flag]
        if idx:
            by_seen[name] = {
                "n": len(idx),
                "metrics": _metric_block([scores[i] for i in idx], n_bootstrap, seed),
            }
    out["by_seen"] = by_seen
    golds, preds = _label_predictions(records, answers)
    if golds:
        labels = label_set(records)
        out["label"] = {
            "labels": list(labels),
            "macro_f1": macro_f1_interval(golds, preds, labels, n_bootstrap, seed),
            "predicted": dict(Counter("(none)" if p is None else p for p in preds)),
        }
    return out


# --------------------------------------------------------------------------------------------------
# LLM-as-judge


def parse_judge_verdict(text: str, labels: Sequence[str] = ("correct", "incorrect")) -> float:
    """1.0 when the judge's first label word is the positive label (``labels[0]``), 0.0 for another, nan for none.

    Whole-word matching (:func:`metrics.parse_label`), so "incorrect" never reads as "correct".
    """
    found = parse_label(text or "", labels)
    if found is None:
        return float("nan")
    return 1.0 if found == labels[0] else 0.0


def judge_verdicts(
    invoke_batch: Callable[[list[Any]], list[str]],
    build_prompt: Callable[[QARecord, str], Any],
    records: Sequence[QARecord],
    answers: Sequence[str],
    batch_size: int = 16,
    labels: Sequence[str] = ("correct", "incorrect"),
) -> list[float]:
    """``judge_correct`` per question from an LLM judge (1/0, nan when unparseable).

    ``build_prompt(record, answer)`` returns what ``invoke_batch`` sends (messages for a chat model);
    ``invoke_batch`` returns the judge's texts. The judge sees the question, the reference and the
    answer, never the arm's name, so it cannot prefer one arm by label.
    """
    verdicts: list[float] = []
    for start in range(0, len(records), batch_size):
        chunk = list(
            zip(records[start : start + batch_size], answers[start : start + batch_size], strict=True)
        )
        texts = invoke_batch([build_prompt(r, a or "") for r, a in chunk])
        verdicts.extend(parse_judge_verdict(t, labels) for t in texts)
    return verdicts
