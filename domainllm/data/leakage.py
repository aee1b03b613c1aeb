"""Leakage between the training set and the evaluation splits: near-duplicate questions, shared documents.

A test question that is a near-copy of a training question measures recall of that copy, not
generalisation. :func:`leakage_report` compares whatever training set is finally used (after carved
splits and skipped rows; later stages call it again on generated or paraphrased questions) with
each evaluation split and returns a :class:`LeakageReport`: counts plus the first pairs with ids
and scores, ready for a training manifest or the comparison report (:meth:`LeakageReport.to_dict`).
The loader attaches one to every :class:`~domainllm.data.records.QADataset` it returns.

Similarity is token Jaccard (lowercased ``\\w+`` tokens) >= :data:`NEAR_DUPLICATE_THRESHOLD` (0.8):
"How much does a check-up cost?" and "I wonder, how much does a check-up cost?" score 0.83.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from domainllm.data.records import QARecord

__all__ = [
    "NEAR_DUPLICATE_THRESHOLD",
    "LeakageReport",
    "NearDuplicate",
    "leakage_report",
    "log_leakage",
    "near_duplicates",
]

logger = logging.getLogger(__name__)

NEAR_DUPLICATE_THRESHOLD = 0.8
_WORD_RE = re.compile(r"\w+", re.UNICODE)
_SHOWN_CHARS = 120


def _token_set(text: str) -> frozenset[str]:
    return frozenset(_WORD_RE.findall(text.lower()))


def near_duplicates(
    train: Sequence[QARecord], test: Sequence[QARecord], threshold: float = NEAR_DUPLICATE_THRESHOLD
) -> list[tuple[QARecord, QARecord, float]]:
    """Train/test question pairs whose token Jaccard similarity is >= ``threshold``.

    Uses prefix filtering (tokens ordered rarest first; two sets with Jaccard >= t must share a
    token among their first ``|x| - ceil(t |x|) + 1``), so SQuAD-sized splits take seconds rather
    than the hours an all-pairs comparison would.
    """
    train_sets = [_token_set(r.question) for r in train]
    test_sets = [_token_set(r.question) for r in test]
    freq = Counter(tok for s in (*train_sets, *test_sets) for tok in s)

    def prefix(tokens: frozenset[str]) -> list[str]:
        ordered = sorted(tokens, key=lambda t: (freq[t], t))
        size = len(ordered) - math.ceil(threshold * len(ordered) - 1e-9) + 1
        return ordered[: max(size, 0)]

    index: dict[str, list[int]] = defaultdict(list)
    for i, tokens in enumerate(train_sets):
        for tok in prefix(tokens):
            index[tok].append(i)
    pairs = []
    for j, tokens in enumerate(test_sets):
        if not tokens:
            continue
        candidates = {i for tok in prefix(tokens) for i in index.get(tok, ())}
        for i in sorted(candidates):
            other = train_sets[i]
            score = len(tokens & other) / len(tokens | other)
            if score >= threshold:
                pairs.append((train[i], test[j], score))
    return pairs


@dataclass(frozen=True)
class NearDuplicate:
    """One training question and the evaluation question that nearly copies it."""

    split: str  # the evaluation split of ``other_id`` (val, test, ...)
    train_id: str
    other_id: str
    score: float  # token Jaccard similarity, >= the report's threshold
    train_question: str  # both questions cut to 120 characters, for reading in a report
    other_question: str
    seen_in_train: bool | None  # the evaluation question's own flag: True = a deliberate paraphrase

    def to_dict(self) -> dict[str, Any]:
        return {
            "split": self.split,
            "train_id": self.train_id,
            "other_id": self.other_id,
            "score": round(self.score, 4),
            "train_question": self.train_question,
            "other_question": self.other_question,
            "seen_in_train": self.seen_in_train,
        }


@dataclass(frozen=True)
class LeakageReport:
    """What an evaluation split shares with the training set.

    Per evaluation split: ``questions`` = how many of its questions are near-duplicates of at least
    one training question (``pairs_found`` counts the pairs, a question can match several), of which
    ``marked_seen`` say ``seen_in_train: true`` (deliberate paraphrases of taught facts), and
    ``shared_documents`` = how many of its questions have a ``doc_id`` that a training question also
    has (expected with ``data.split_by: question``; 0 for splits carved with ``split_by: document``).
    ``pairs`` holds the first ``keep`` pairs of each split, most similar first.
    """

    threshold: float
    train_size: int
    sizes: dict[str, int] = field(default_factory=dict)
    questions: dict[str, int] = field(default_factory=dict)
    pairs_found: dict[str, int] = field(default_factory=dict)
    marked_seen: dict[str, int] = field(default_factory=dict)
    shared_documents: dict[str, int] = field(default_factory=dict)
    pairs: tuple[NearDuplicate, ...] = ()

    @property
    def clean(self) -> bool:
        """True when no evaluation question is a near-duplicate of a training question."""
        return not any(self.questions.values())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (what a manifest or ``results.json`` stores)."""
        return {
            "threshold": self.threshold,
            "train_size": self.train_size,
            "sizes": dict(self.sizes),
            "questions": dict(self.questions),
            "pairs_found": dict(self.pairs_found),
            "marked_seen": dict(self.marked_seen),
            "shared_documents": dict(self.shared_documents),
            "pairs": [p.to_dict() for p in self.pairs],
        }


def _cut(text: str) -> str:
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."


def leakage_report(
    train: Sequence[QARecord],
    others: Mapping[str, Sequence[QARecord]],
    threshold: float = NEAR_DUPLICATE_THRESHOLD,
    keep: int = 10,
) -> LeakageReport:
    """Compare ``train`` with each split in ``others`` ({"val": [...], "test": [...]}); see :class:`LeakageReport`."""
    train_docs = {r.doc_id for r in train if r.doc_id is not None}
    sizes: dict[str, int] = {}
    questions: dict[str, int] = {}
    pairs_found: dict[str, int] = {}
    marked_seen: dict[str, int] = {}
    shared_documents: dict[str, int] = {}
    kept: list[NearDuplicate] = []
    for split, records in others.items():
        found = sorted(near_duplicates(train, records, threshold), key=lambda p: -p[2])
        matched = {b.id: b for _, b, _ in found}
        sizes[split] = len(records)
        questions[split] = len(matched)
        pairs_found[split] = len(found)
        marked_seen[split] = sum(1 for b in matched.values() if b.seen_in_train is True)
        shared_documents[split] = sum(1 for r in records if r.doc_id in train_docs)
        kept += [
            NearDuplicate(split, a.id, b.id, s, _cut(a.question), _cut(b.question), b.seen_in_train)
            for a, b, s in found[:keep]
        ]
    return LeakageReport(
        threshold=threshold,
        train_size=len(train),
        sizes=sizes,
        questions=questions,
        pairs_found=pairs_found,
        marked_seen=marked_seen,
        shared_documents=shared_documents,
        pairs=tuple(kept),
    )


def log_leakage(report: LeakageReport, show: int = 5, warn_splits: Sequence[str] = ("test",)) -> None:
    """Log the near-duplicates of each split: a warning for ``warn_splits`` (test), info for the others.

    Test scores on near-copies measure memorisation, hence the warning; a val split of paraphrased
    training questions is a common, deliberate choice (eval loss on the taught facts), hence info.
    """
    for split, n_questions in report.questions.items():
        if not n_questions:
            continue
        pairs = [p for p in report.pairs if p.split == split][:show]
        shown = "; ".join(
            f"train {p.train_id!r} ~ {split} {p.other_id!r} ({p.score:.2f}): {p.other_question[:80]!r}"
            for p in pairs
        )
        level = logging.WARNING if split in warn_splits else logging.INFO
        logger.log(
            level,
            "%d %s question(s) are near-duplicates of training questions (token Jaccard >= %.2f); "
            "scores on them measure memorisation, not generalisation. First %d: %s",
            n_questions,
            split,
            report.threshold,
            len(pairs),
            shown,
        )
