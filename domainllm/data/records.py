"""The common record type every loader produces, whatever format the user brings."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from domainllm.data.leakage import LeakageReport

__all__ = [
    "ANSWER_TYPES",
    "DEFAULT_LABELS",
    "PROVENANCE_FIELDS",
    "SOURCE_KINDS",
    "QADataset",
    "QARecord",
    "documents_sha256",
    "records_sha256",
]

ANSWER_TYPES: tuple[str, ...] = ("text", "number", "choice", "label")
"""Answer types a QA item can declare; the scorers dispatch on them."""

DEFAULT_LABELS: tuple[str, ...] = ("yes", "no", "maybe")
"""Labels of a ``label`` question that names none (PubMedQA's)."""

PROVENANCE_FIELDS: tuple[str, ...] = ("source", "parent_id", "generator", "chunk_id", "evidence")
"""Row keys that say where a training row came from (written by a generating stage such as
``augment``): ``source`` (one of :data:`SOURCE_KINDS`), ``parent_id`` (the id of the row it
paraphrases), ``generator`` (model or tool), ``chunk_id`` (the knowledge-base chunk it was
generated from) and ``evidence`` (the supporting text or ids). They are not record fields: the
loaders keep them, as written, in :attr:`QARecord.meta` (a JSON null or empty cell means "not
given" and is left out, like any other meta value)."""

SOURCE_KINDS: tuple[str, ...] = ("original", "paraphrase", "generated")
"""Values of the ``source`` provenance key."""


@dataclass(frozen=True)
class QARecord:
    """One question with its reference answer and what is needed to score it.

    ``answer`` is always a string: for ``choice`` it is the text of the correct option (which is in
    ``options``), for ``label`` one of ``labels`` (e.g. yes/no/maybe), for ``number`` a plain number.
    ``doc_id`` names the supporting document (for retrieval recall and the oracle arm); ``context``
    carries the gold passage when the source has one inline (SQuAD, PubMedQA).
    """

    id: str
    question: str
    answer: str
    answer_type: str = "text"
    aliases: tuple[str, ...] = ()
    options: tuple[str, ...] | None = None
    labels: tuple[str, ...] | None = None
    doc_id: str | None = None
    seen_in_train: bool | None = None
    context: str | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def answer_index(self) -> int | None:
        """Index of the correct option for choice questions."""
        if self.options is None:
            return None
        return list(self.options).index(self.answer)

    def to_dict(self) -> dict[str, Any]:
        data = {
            "id": self.id,
            "question": self.question,
            "answer": self.answer,
            "answer_type": self.answer_type,
            "aliases": list(self.aliases),
        }
        for key in ("options", "labels"):
            if getattr(self, key) is not None:
                data[key] = list(getattr(self, key))
        for key in ("doc_id", "seen_in_train", "context"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        return data


@dataclass
class QADataset:
    """Splits of QA records plus the domain documents (LangChain ``Document`` objects, one per source).

    What the loader did on the way, for training manifests and the comparison report (see
    :meth:`summary`): ``carved`` names the splits drawn from the source's training rows
    (``data.val_fraction``/``test_fraction``, in ``val``, ``test`` order); ``dropped`` maps a split to
    the ids of its rows left out by ``data.on_long_answer: skip`` (only splits that lost rows);
    ``leakage`` is the near-duplicate report of the final train split against val and test (None for
    a dataset not built by the loader).
    """

    train: list[QARecord] = field(default_factory=list)
    val: list[QARecord] = field(default_factory=list)
    test: list[QARecord] = field(default_factory=list)
    documents: list[Any] = field(default_factory=list)
    source: str = ""
    carved: tuple[str, ...] = ()
    dropped: dict[str, list[str]] = field(default_factory=dict)
    leakage: LeakageReport | None = None

    def split(self, name: str) -> list[QARecord]:
        if name not in ("train", "val", "test"):
            msg = f"Unknown split {name!r}; use train, val or test."
            raise ValueError(msg)
        return getattr(self, name)

    def summary(self, show: int = 5) -> dict[str, Any]:
        """A JSON-ready account of the splits: sizes, carved splits, dropped rows (count + first ids), leakage."""
        return {
            "source": self.source,
            "sizes": {name: len(self.split(name)) for name in ("train", "val", "test")},
            "documents": len(self.documents),
            "carved": list(self.carved),
            "dropped": {
                name: {"count": len(ids), "first_ids": list(ids[:show])} for name, ids in self.dropped.items()
            },
            "leakage": self.leakage.to_dict() if self.leakage is not None else None,
        }


def records_sha256(records: Sequence[QARecord]) -> str:
    """A content hash of a split: the training manifest records it, compare checks it to reuse a run."""
    blob = json.dumps([r.to_dict() for r in records], sort_keys=True, ensure_ascii=False).encode()
    return hashlib.sha256(blob).hexdigest()


def documents_sha256(documents: Sequence[Any]) -> str:
    """A content hash of the domain documents: training records it, compare checks it to reuse a run."""
    text = "\n".join(getattr(d, "page_content", str(d)) for d in documents)
    return hashlib.sha256(text.encode()).hexdigest()
