"""Checks that look at a whole dataset: unique ids, doc_ids that name documents, answer lengths.

Row-level validation is in :mod:`domainllm.data.validate`; these run once every split is read, on
:class:`~domainllm.data.validate.Located` records so that each problem still names its file and line.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, MutableMapping, Sequence

from domainllm.data.validate import ErrorCollector, Located

__all__ = [
    "ON_LONG_ANSWER",
    "check_answer_lengths",
    "check_doc_ids",
    "check_unique_ids",
    "drop_long_answers",
    "long_answers",
]

logger = logging.getLogger(__name__)

ON_LONG_ANSWER = ("error", "skip")
"""What ``data.on_long_answer`` may say about answers over ``data.max_answer_words``."""


def check_unique_ids(splits: Mapping[str, Sequence[Located]], errors: ErrorCollector) -> None:
    """Ids must be unique within and across splits: predictions and reports are keyed by them."""
    first: dict[str, str] = {}
    for items in splits.values():
        for item in items:
            rid = item.record.id
            if rid in first:
                errors.add(
                    item.where,
                    "id",
                    f"{rid!r} is already used at {first[rid]}",
                    "Ids must be unique across train, val and test",
                )
            else:
                first[rid] = item.where


def check_doc_ids(
    splits: Mapping[str, Sequence[Located]], doc_ids: Iterable[str], docs_label: str, errors: ErrorCollector
) -> None:
    """Every ``doc_id`` must name a loaded document (retrieval recall and the oracle arm rely on it).

    With no documents loaded nothing can be checked, so the rows load, but with a warning: a typo in
    ``data.docs_dir`` or a missing ``docs/`` folder would otherwise only show up as blank recall@k
    columns at the end of a comparison run.
    """
    known = set(doc_ids)
    if not known:
        named = [item for items in splits.values() for item in items if item.record.doc_id is not None]
        if named:
            logger.warning(
                "%d question(s) name a doc_id (first at %s) but no documents were loaded, so their doc_ids "
                "are unchecked and retrieval recall@k cannot be scored. Set data.docs_dir to the documents "
                "folder (or put the documents in <data.path>/docs).",
                len(named),
                named[0].where,
            )
        return
    sample = ", ".join(sorted(known)[:8]) + (", ..." if len(known) > 8 else "")
    for items in splits.values():
        for item in items:
            doc_id = item.record.doc_id
            if doc_id is not None and doc_id not in known:
                errors.add(
                    item.where,
                    "doc_id",
                    f"{doc_id!r} is not a document in {docs_label} (known: {sample})",
                    "Fix the doc_id, or add the document (doc_id = file name without suffix)",
                )


def long_answers(
    splits: Mapping[str, Sequence[Located]], max_words: int
) -> dict[str, list[tuple[Located, int]]]:
    """Per split, the records whose answer has more than ``max_words`` words, with the word count.

    Choice answers are exempt: they are scored by option, and real exams have sentence-long options.
    """
    out: dict[str, list[tuple[Located, int]]] = {}
    for split, items in splits.items():
        for item in items:
            if item.record.answer_type == "choice":
                continue
            n_words = len(item.record.answer.split())
            if n_words > max_words:
                out.setdefault(split, []).append((item, n_words))
    return out


def check_answer_lengths(
    splits: Mapping[str, Sequence[Located]], max_words: int, errors: ErrorCollector
) -> None:
    """Reject long free-text references (``data.on_long_answer: error``): the scorers assume short answers."""
    for found in long_answers(splits, max_words).values():
        for item, n_words in found:
            errors.add(
                item.where,
                "answer",
                f"has {n_words} words, more than data.max_answer_words = {max_words}",
                "Shorten the reference answer (put the explanation in the document), raise "
                "data.max_answer_words, or set data.on_long_answer: skip to leave such rows out",
            )


def drop_long_answers(
    splits: MutableMapping[str, list[Located]], max_words: int, show: int = 5
) -> dict[str, list[str]]:
    """Remove long-answer records from ``splits`` (``data.on_long_answer: skip``); their ids per split.

    Logs one warning with the count per split and the first ``show`` ids and places, so a skip is
    never silent; the returned ids go on :attr:`QADataset.dropped` for manifests and reports.
    """
    found = long_answers(splits, max_words)
    if not found:
        return {}
    for split, items in found.items():
        gone = {id(item) for item, _ in items}
        splits[split] = [item for item in splits[split] if id(item) not in gone]
    dropped = {split: [item.record.id for item, _ in items] for split, items in found.items()}
    first = [pair for items in found.values() for pair in items][:show]
    logger.warning(
        "Skipped %d question(s) whose answer is longer than data.max_answer_words = %d "
        "(data.on_long_answer: skip): %s. First %d: %s",
        sum(len(ids) for ids in dropped.values()),
        max_words,
        ", ".join(f"{split} {len(ids)}" for split, ids in dropped.items()),
        len(first),
        "; ".join(f"{item.record.id!r} ({n} words, {item.where})" for item, n in first),
    )
    return dropped
