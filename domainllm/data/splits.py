"""Carving val and test splits out of a source's training rows (``data.val_fraction``/``test_fraction``).

A user's one-file dataset has no test split, so ``compare`` would have nothing to test. The loader
carves one, seeded by ``data.split_seed`` (0 by default, independent of ``training.seed``: runs with
different seeds must be evaluated on the same questions):

* both fractions are shares of the **source's training rows** (as read, before any
  ``on_long_answer: skip``): ``test_fraction: 0.2, val_fraction: 0.1`` on 100 questions gives
  70 / 10 / 20. Test is drawn first and depends only on the seed, the rows and ``test_fraction``,
  so changing ``val_fraction`` never moves a question into or out of test; val is then drawn from
  what is left. Each carved split gets at least one question (or document).
* ``split_by: question`` draws questions (``random.Random(seed).sample``; with only
  ``val_fraction`` this is the draw domainllm always made, so existing val splits do not move).
  ``split_by: document`` draws whole documents (all questions with one ``doc_id``; for SQuAD each
  paragraph is a document) in a seeded order, taking a document when it brings the split closer to
  its target question count, so no document has questions in two splits and test facts are not
  taught in training. Sizes are then approximate. A question without a ``doc_id`` is an error: as its
  own group it could share its fact with a training document without anyone noticing.
* a source that has its own test split and ``test_fraction > 0`` is an error (test splits are fixed
  data: domainllm never silently re-draws or ignores one); ``val_fraction`` with a val split present
  is ignored with a log line, as it always was (val only drives eval loss, nothing is published).
"""

from __future__ import annotations

import logging
import random
from collections.abc import MutableMapping, Sequence

from domainllm.data.validate import Located
from domainllm.errors import DataError

__all__ = ["SPLIT_BY", "carve_splits"]

logger = logging.getLogger(__name__)

SPLIT_BY = ("question", "document")
"""Units ``data.split_by`` may draw when carving val/test."""


def _groups(pool: Sequence[Located], split_by: str) -> list[list[int]]:
    """Indices into ``pool`` per unit: one per question, or one per doc_id in order of first appearance."""
    if split_by == "question":
        return [[i] for i in range(len(pool))]
    missing = [item for item in pool if item.record.doc_id is None]
    if missing:
        msg = (
            f"Config key 'data.split_by' is 'document', but {len(missing)} of {len(pool)} training questions "
            f"have no doc_id (first at {missing[0].where}). Give every question its doc_id (map your column "
            "with data.fields.doc_id), or use data.split_by: question."
        )
        raise DataError(msg)
    by_doc: dict[str, list[int]] = {}
    for i, item in enumerate(pool):
        by_doc.setdefault(str(item.record.doc_id), []).append(i)
    return list(by_doc.values())


def _draw(
    groups: list[list[int]], candidates: list[int], target: int, seed: int, by_question: bool
) -> list[int]:
    """Indices of the groups (out of ``candidates``) that make up a split of about ``target`` questions."""
    rng = random.Random(seed)
    if by_question:  # one question per group: exactly ``target`` of them
        return rng.sample(candidates, target)
    order = rng.sample(candidates, len(candidates))
    chosen: list[int] = []
    count = 0
    for g in order:
        if count >= target:
            break
        size = len(groups[g])
        if size < 2 * (target - count):  # closer to the target with this document than without it
            chosen.append(g)
            count += size
    return chosen or order[:1]


def carve_splits(
    splits: MutableMapping[str, list[Located]],
    *,
    val_fraction: float,
    test_fraction: float,
    split_by: str = "question",
    seed: int = 0,
    source: str = "",
) -> tuple[str, ...]:
    """Move seeded shares of ``splits["train"]`` into empty val/test splits (in place; file order kept).

    Returns the names of the splits it carved. Raises :class:`DataError` when the source already has
    a test split and ``test_fraction > 0``, when ``split_by: document`` meets a question without a
    doc_id, or when too few questions (documents) are left to train on.
    """
    if split_by not in SPLIT_BY:
        msg = f"Config key 'data.split_by' is {split_by!r}. Use 'question' or 'document'."
        raise DataError(msg)
    if test_fraction > 0 and splits["test"]:
        msg = (
            f"Config key 'data.test_fraction' is {test_fraction}, but the dataset at '{source}' already has a "
            f"test split ({len(splits['test'])} questions, first at {splits['test'][0].where}). Remove "
            "data.test_fraction to evaluate on that split, or leave the test file out (data.test_file, "
            "test.jsonl) to carve one from train."
        )
        raise DataError(msg)
    if val_fraction > 0 and splits["val"]:
        logger.info("data.val_fraction ignored: the source already has a val split.")
    wanted = {"test": test_fraction if test_fraction > 0 else 0.0}
    wanted["val"] = val_fraction if val_fraction > 0 and not splits["val"] else 0.0
    if not any(wanted.values()):
        return ()
    pool = splits["train"]
    groups = _groups(pool, split_by)
    unit = "questions" if split_by == "question" else "documents"
    left = list(range(len(groups)))
    taken: dict[str, list[int]] = {}
    for name in ("test", "val"):  # test first: its draw must not depend on val_fraction
        if not wanted[name]:
            continue
        target = max(1, round(len(pool) * wanted[name]))
        if split_by == "question" and target >= len(left):
            left = []
            break
        chosen = _draw(groups, left, target, seed, by_question=split_by == "question")
        taken[name] = chosen
        gone = set(chosen)
        left = [g for g in left if g not in gone]
    if not left:
        keys = " and ".join(f"data.{n}_fraction" for n in ("val", "test") if wanted[n])
        msg = (
            f"The dataset at '{source}' has {len(groups)} training {unit}: too few to carve {keys} "
            "and keep some to train on. Add questions, lower the fraction, or provide val/test files."
        )
        raise DataError(msg)
    for name, chosen in taken.items():
        members = {i for g in chosen for i in groups[g]}
        splits[name] = [item for i, item in enumerate(pool) if i in members]
        logger.info(
            "Carved %d of %d training questions (%d %s) as %s (data.%s_fraction=%s, split_by=%s, seed %d).",
            len(members),
            len(pool),
            len(chosen),
            unit,
            name,
            name,
            wanted[name],
            split_by,
            seed,
        )
    kept = {i for g in left for i in groups[g]}
    splits["train"] = [item for i, item in enumerate(pool) if i in kept]
    return tuple(name for name in ("val", "test") if name in taken)
