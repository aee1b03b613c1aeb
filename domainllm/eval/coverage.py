"""Which evaluated facts a training set taught: the share of test questions a run's own data covered.

The report's seen/unseen split is the domain's ``seen_in_train`` flag: facts the *original* training
pairs teach, the same two groups for every run. A run trained on more data (paraphrases, questions
generated from the documents) may cover more of the test facts; this module measures how many.

A test question is **covered** by a training set when some training row has the same ``doc_id`` and
the same answer after :func:`domainllm.text.normalize_text` (``"€55"`` and ``"55"`` agree, so do
``"1,350"`` and ``"1350"``). The document pins the fact down, the answer says which fact of the
document it is. On the dental domain's original training split this reproduces ``seen_in_train``
exactly on val (54 of 54) and on 114 of 116 test questions: the two it calls covered though they are
held out share both document and answer with a trained fact (the same opening hours on two days, the
same dentist for two roles). :func:`fact_coverage` reports that agreement beside every share, so a
reader sees how far the rule can be trusted on their domain. Aliases are not used: ``"Yes"`` is an
alias of many different facts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from domainllm.data.records import QARecord
from domainllm.text import normalize_text

__all__ = ["covered_questions", "fact_coverage"]


def _key(record: QARecord) -> tuple[str, str] | None:
    answer = normalize_text(record.answer)
    return (record.doc_id, answer) if record.doc_id and answer else None


def covered_questions(train: Sequence[QARecord], records: Sequence[QARecord]) -> dict[str, set[str]]:
    """Evaluated question id -> the provenance sources (``original``, ``paraphrase``, ``generated``)
    of the training rows that cover it; questions no row covers are absent."""
    taught: dict[tuple[str, str], set[str]] = {}
    for row in train:
        key = _key(row)
        if key is not None:
            taught.setdefault(key, set()).add(str(row.meta.get("source") or "original"))
    out: dict[str, set[str]] = {}
    for record in records:
        key = _key(record)
        if key is not None and key in taught:
            out[record.id] = taught[key]
    return out


def fact_coverage(train: Sequence[QARecord], records: Sequence[QARecord]) -> dict[str, Any]:
    """How many evaluated questions ``train`` covers, by source, and how that agrees with ``seen_in_train``.

    ``agreement`` counts, over the questions with a ``seen_in_train`` flag: covered and seen
    (``both``), covered but not seen (``covered_only``), seen but not covered (``seen_only``),
    neither; ``share`` is the share on which the rule and the flag agree.
    """
    covered = covered_questions(train, records)
    n = len(records)
    by_source = Counter(source for sources in covered.values() for source in sources)
    only_augmented = sum(1 for sources in covered.values() if "original" not in sources)
    flagged = [r for r in records if r.seen_in_train is not None]
    cells = Counter((r.id in covered, bool(r.seen_in_train)) for r in flagged)
    agree = cells[(True, True)] + cells[(False, False)]
    return {
        "rule": "same doc_id and the same normalised answer as a training row",
        "n": n,
        "covered": len(covered),
        "share": len(covered) / n if n else None,
        "by_source": dict(sorted(by_source.items())),
        "only_augmented": only_augmented,
        "agreement": {
            "n": len(flagged),
            "both": cells[(True, True)],
            "covered_only": cells[(True, False)],
            "seen_only": cells[(False, True)],
            "neither": cells[(False, False)],
            "share": agree / len(flagged) if flagged else None,
        },
    }
