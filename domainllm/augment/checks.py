"""What decides whether a generated row is kept: grounding, form, duplicates, leakage.

Every check returns the reason a row is dropped (one of :data:`DROP_REASONS`) or None, so the
datasheet can count each reason. The leakage rule is the loaders' own
(:func:`domainllm.data.leakage.near_duplicates`, token-set Jaccard >= 0.8 against val and test).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from domainllm.augment.generators import Candidate
from domainllm.data.records import QARecord
from domainllm.text import normalize_text, parse_number

__all__ = ["DROP_REASONS", "check_candidate", "number_in", "question_key"]

DROP_REASONS = (
    "unreadable",
    "not a question",
    "answer not stated in its chunk",
    "evidence not in its chunk",
    "answer too long",
    "choice answer not among its options",
    "duplicate question",
    "near-duplicate of a val/test question",
)

_NUMBER_IN_TEXT = re.compile(r"(?<![\w.])[-+]?\d[\d,]*(?:\.\d+)?")


def question_key(question: str) -> str:
    """Questions that differ only in case, spacing or punctuation are the same question."""
    return normalize_text(question)


def number_in(answer: str, text: str) -> bool:
    """The answer's number is written (as digits, thousands separators ignored) in ``text``."""
    value = parse_number(answer)
    if value is None:
        return False
    for match in _NUMBER_IN_TEXT.finditer(text):
        try:
            if float(match.group().replace(",", "")) == abs(value):
                return True
        except ValueError:
            continue
    return False


def check_candidate(cand: Candidate, chunk: str, max_answer_words: int) -> str | None:
    """Why ``cand`` is dropped, judged against the chunk it was generated from; None = kept."""
    if not cand.question.strip().endswith("?") or len(cand.question.split()) < 3:
        return "not a question"
    if len(cand.answer.split()) > max_answer_words:
        return "answer too long"
    if cand.answer_type == "choice" and (not cand.options or cand.answer not in cand.options):
        return "choice answer not among its options"
    text = f" {normalize_text(chunk)} "
    if cand.evidence and f" {normalize_text(cand.evidence)} " not in text:
        return "evidence not in its chunk"
    stated = f" {normalize_text(cand.answer)} " in text  # whole words: "85" is not stated by "850"
    if not stated and any(c.isdigit() for c in cand.answer):
        stated = number_in(cand.answer, chunk)
    return None if stated else "answer not stated in its chunk"


def leaked(rows: Sequence[QARecord], held_out: Sequence[QARecord]) -> set[str]:
    """Ids of ``rows`` whose question is a near-duplicate of a held-out (val/test) question."""
    from domainllm.data.leakage import near_duplicates

    return {train.id for train, _, _ in near_duplicates(rows, held_out)}
