"""RAFT examples (``training.train_on: raft``): train the reader on the prompts retrieval will give it.

Retrieval-augmented fine-tuning (Zhang et al. 2024, "RAFT: Adapting Language Model to Domain Specific
RAG") trains on each question with retrieved passages in the prompt: the gold passage plus
distractors, and in a share of examples no gold passage at all, so the model learns to use a passage
that holds the answer and to ignore the ones that do not (instead of ignoring retrieval, which a
model fine-tuned on bare questions tends to do).

Here the passages come from the same Chroma store, chunking and embedder the ``finetuned_rag`` arm
retrieves from (:func:`domainllm.rag.default_store_dir`), and the prompt is rendered by
:func:`domainllm.chains.render_arm_prompt` with that arm's chain spec, so an example whose gold
chunk the retriever also ranks first is byte for byte what the arm serves at inference.

For each training question:

* **candidates**: the store's chunks most similar to the question (several times ``retrieval.k``);
* **gold**: the row's ``context`` passage when it has one (SQuAD-style data), else the best-ranked
  chunk of its ``doc_id`` (the chunk stating the answer when none of the doc's chunks was retrieved);
* **distractors**: the best-ranked chunks of *other* documents (hard negatives, as in the paper);
* with probability ``training.raft_gold_share`` the prompt holds the gold chunk plus
  ``retrieval.k - 1`` distractors (as many chunks as the arm retrieves), else ``retrieval.k``
  distractors; chunks appear in the order of their similarity to the question, as retrieved.

A row with neither ``context`` nor a ``doc_id`` found in the store has no gold passage: it is trained
on distractors only and counted (``RaftStats.no_gold``); a split where no row has one is refused.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from domainllm.errors import DataError

if TYPE_CHECKING:
    from pathlib import Path

    from domainllm.chains import ChainSpec
    from domainllm.config import DomainConfig
    from domainllm.data.records import QADataset, QARecord

__all__ = ["RaftSetup", "RaftStats", "build_raft_examples", "raft_setup"]

log = logging.getLogger(__name__)

# Candidates fetched per question, as a multiple of retrieval.k: enough to find the gold doc's chunk
# and k distractors from other documents in nearly every case.
_FETCH_FACTOR = 8


@dataclass(frozen=True)
class RaftStats:
    """What the RAFT examples hold, for the manifest: counts over one split."""

    examples: int
    with_gold: int
    without_gold: int
    no_gold: int
    gold_retrieved_first: int
    chunks_per_prompt: int

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def _chunk_text(doc: Any) -> str:
    return doc.page_content.strip()


def _gold_chunk(record: QARecord, candidates: list[Any], store: Any) -> tuple[Any | None, int | None]:
    """The gold passage and its rank among the candidates (None when it was not retrieved)."""
    from langchain_core.documents import Document

    if record.context:
        text = record.context.strip()
        for rank, doc in enumerate(candidates):
            if _chunk_text(doc) == text:
                return doc, rank
        return Document(
            page_content=text, metadata={"doc_id": record.doc_id or "gold", "source": "gold"}
        ), None
    if not record.doc_id:
        return None, None
    for rank, doc in enumerate(candidates):
        if (doc.metadata or {}).get("doc_id") == record.doc_id:
            return doc, rank
    from domainllm.rag import document_chunks

    pairs = document_chunks(store, record.doc_id)
    if not pairs:
        return None, None
    answer = record.answer.lower()
    meta, text = next(((m, t) for m, t in pairs if answer in t.lower()), pairs[0])
    return Document(page_content=text, metadata=meta), None


def _examples_for(
    records: Sequence[QARecord],
    store: Any,
    k: int,
    gold_share: float,
    rng: random.Random,
) -> tuple[list[tuple[QARecord, list[Any]]], RaftStats]:
    questions = [r.question for r in records]
    fetched = [store.similarity_search(q, k=k * _FETCH_FACTOR) for q in questions]
    out: list[tuple[QARecord, list[Any]]] = []
    with_gold = no_gold = first = 0
    for record, candidates in zip(records, fetched, strict=True):
        gold, rank = _gold_chunk(record, candidates, store)
        gold_doc = (gold.metadata or {}).get("doc_id") if gold is not None else None
        gold_doc = gold_doc or record.doc_id
        others = [
            (i, d)
            for i, d in enumerate(candidates)
            if (d.metadata or {}).get("doc_id") != gold_doc
            and (gold is None or _chunk_text(d) != _chunk_text(gold))
        ]
        if gold is None:
            no_gold += 1
        keep = gold is not None and rng.random() < gold_share
        if keep:
            with_gold += 1
            first += rank == 0
            ranked = [*others[: k - 1], (rank if rank is not None else rng.randint(0, k - 1) - 0.5, gold)]
        else:
            ranked = others[:k]
        chunks = [doc for _, doc in sorted(ranked, key=lambda p: p[0])]
        out.append((record, chunks))
    stats = RaftStats(
        examples=len(out),
        with_gold=with_gold,
        without_gold=len(out) - with_gold,
        no_gold=no_gold,
        gold_retrieved_first=first,
        chunks_per_prompt=k,
    )
    return out, stats


@dataclass(frozen=True)
class RaftSetup:
    """What every split's RAFT examples share: the arm's chain spec, the opened store, chunks per prompt."""

    spec: ChainSpec
    store: Any
    store_dir: Path
    k: int
    system_prompt: str | None


def raft_setup(cfg: DomainConfig, data: QADataset) -> RaftSetup:
    """Check the RAFT arm, bring the knowledge base up to date (incrementally) and open it, once per run.

    The store is the one the comparison's RAG arms read; ``training.raft_arm`` names the chain spec
    whose prompt layout is used (``finetuned_rag``).
    """
    from domainllm.chains import FROM_RUN, chains_dir, load_chain_spec
    from domainllm.rag import default_store_dir, index_documents, open_store

    t = cfg.training
    if not data.documents and not any(r.context for r in data.train):
        msg = (
            "training.train_on is 'raft', but the domain has no documents (data.docs_dir) and no training row "
            "has a 'context' passage, so there is nothing to retrieve. Add documents, or use train_on: qa."
        )
        raise DataError(msg)
    spec = load_chain_spec(t.raft_arm, chains_dir=chains_dir(cfg), domain=cfg.data.name)
    if spec.retrieval != "retriever":
        msg = (
            f"training.raft_arm is '{t.raft_arm}', whose chain spec ({spec.path}) does not retrieve "
            f"(retrieval: {spec.retrieval}). Name an arm that retrieves, such as finetuned_rag."
        )
        raise DataError(msg)
    store_dir = default_store_dir(cfg)
    index_documents(data.documents, store_dir, cfg.retrieval, source=data.source)
    system_prompt = cfg.data.system_prompt if spec.system_prompt == FROM_RUN else spec.system_prompt
    return RaftSetup(
        spec, open_store(store_dir, cfg.retrieval), store_dir, spec.k or cfg.retrieval.k, system_prompt
    )


def build_raft_examples(
    cfg: DomainConfig, data: QADataset, tokenizer: Any, split: str = "train", setup: RaftSetup | None = None
) -> tuple[list[dict[str, str]], RaftStats]:
    """``{"prompt", "completion"}`` RAFT examples for one split, rendered as the RAFT arm renders them.

    ``setup`` (:func:`raft_setup`) is shared by the splits of one run; None builds it here.
    """
    from domainllm.chains import arm_user_message
    from domainllm.data.examples import end_at_eos
    from domainllm.data.formatting import answer_text, render_example

    setup = setup or raft_setup(cfg, data)
    t = cfg.training
    records = data.split(split)
    k = setup.k
    rng = random.Random(f"raft:{t.seed}:{split}")
    pairs, stats = _examples_for(records, setup.store, k, t.raft_gold_share if split == "train" else 1.0, rng)
    if stats.no_gold == stats.examples and stats.examples:
        msg = (
            f"No {split} row has a gold passage for RAFT: none has a 'context', and none of their doc_id values "
            f"is a document in the store {setup.store_dir}. Give rows a doc_id naming their document, or use train_on: qa."
        )
        raise DataError(msg)
    if stats.no_gold:
        log.warning(
            "RAFT: %d of %d %s rows have no gold passage (trained on distractors only).",
            stats.no_gold,
            stats.examples,
            split,
        )
    eos = getattr(tokenizer, "eos_token", None)
    examples = []
    for record, chunks in pairs:
        data_in = {"question": record.question, "options": list(record.options) if record.options else None}
        user = arm_user_message(setup.spec, data_in, chunks)
        example = render_example(tokenizer, user, answer_text(record), setup.system_prompt)
        examples.append({"prompt": example["prompt"], "completion": end_at_eos(example["completion"], eos)})
    log.info(
        "RAFT %s examples: %d (%d with the gold chunk, %d of them ranked first by the retriever; %d without), %d chunks each",
        split,
        stats.examples,
        stats.with_gold,
        stats.gold_retrieved_first,
        stats.without_gold,
        k,
    )
    return examples, stats
