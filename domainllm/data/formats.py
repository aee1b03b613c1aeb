"""Readers for public benchmark layouts: SQuAD, PubMedQA and multiple choice (MedMCQA).

Each reader turns its source into the common rows that :func:`~domainllm.data.validate.record_from_row`
checks, so these formats obey the same rules and error messages as a hand-written JSONL file.
:mod:`domainllm.data.loaders` dispatches here (Hugging Face datasets: :mod:`domainllm.data.hf`);
users call :func:`~domainllm.data.loaders.load_domain`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from domainllm.data.records import DEFAULT_LABELS
from domainllm.data.rows import SPLITS, display_path, find_split_files, slugify
from domainllm.data.validate import ErrorCollector, Located, record_from_row
from domainllm.errors import DataError

__all__ = ["mcq_rows", "merge_documents", "read_pubmedqa", "read_squad"]

logger = logging.getLogger(__name__)

Rows = Iterator[tuple[dict[str, Any], str, int]]


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        msg = f"{display_path(path)} line {exc.lineno}: not valid JSON ({exc.msg} at column {exc.colno}). Fix the JSON syntax."
        raise DataError(msg) from exc
    except UnicodeDecodeError as exc:
        msg = f"{display_path(path)}: not UTF-8 text ({exc.reason}). Re-save it as UTF-8."
        raise DataError(msg) from exc


def merge_documents(first: Sequence[Any], second: Sequence[Any]) -> list[Any]:
    """Both lists, once each: equal doc_id with equal text is one document, with different text an error."""
    merged: dict[str, Any] = {}
    for doc in [*first, *second]:
        doc_id = doc.metadata["doc_id"]
        if doc_id in merged:
            if merged[doc_id].page_content != doc.page_content:
                msg = (
                    f"Two different documents have doc_id '{doc_id}' ({merged[doc_id].metadata.get('source')} and "
                    f"{doc.metadata.get('source')}). Rename one: records point at documents by doc_id."
                )
                raise DataError(msg)
            continue
        merged[doc_id] = doc
    return list(merged.values())


# ---------------------------------------------------------------------------------------------------
# SQuAD


def read_squad(
    root: Path, data_cfg: Any, errors: ErrorCollector
) -> tuple[dict[str, list[Located]], list[Any]]:
    """SQuAD v1/v2 JSON: each paragraph context is a document, each answerable question a text record.

    ``doc_id`` = slug of ``<title>-<paragraph index>``; ``answer`` = the first answer text, ``aliases``
    = the other distinct answer texts (SQuAD dev has up to five annotators). SQuAD v2 questions
    marked ``is_impossible`` have no reference answer to score against and are skipped (counted in
    the log).
    """
    from langchain_core.documents import Document

    files = find_split_files(root, data_cfg, "squad")
    splits: dict[str, list[Located]] = {name: [] for name in SPLITS}
    documents: list[Any] = []
    for split, path in files.items():
        label = display_path(path)
        data = _load_json(path)
        articles = data.get("data") if isinstance(data, dict) else None
        if not isinstance(articles, list) or not articles:
            errors.add(
                label,
                "data",
                "is missing or empty",
                'A SQuAD file is {"data": [{"title", "paragraphs": [...]}]}',
            )
            continue
        skipped = 0
        file_docs = []
        for a, article in enumerate(articles):
            title = str(article.get("title") or f"article-{a}")
            for p, paragraph in enumerate(article.get("paragraphs") or []):
                where_p = f"{label} data[{a}].paragraphs[{p}]"
                context = paragraph.get("context")
                if not isinstance(context, str) or not context.strip():
                    errors.add(
                        where_p, "context", "is missing or empty", "Each paragraph needs its context text"
                    )
                    continue
                doc_id = slugify(f"{title}-{p}")
                file_docs.append(
                    Document(
                        page_content=context,
                        metadata={"doc_id": doc_id, "source": f"{path.name}#{title}/{p}", "title": title},
                    )
                )
                for q, qa in enumerate(paragraph.get("qas") or []):
                    where = f"{where_p}.qas[{q}]"
                    if qa.get("is_impossible"):
                        skipped += 1
                        continue
                    texts = [a_.get("text") for a_ in qa.get("answers") or [] if isinstance(a_, dict)]
                    texts = list(dict.fromkeys(t.strip() for t in texts if isinstance(t, str) and t.strip()))
                    row = {
                        "question": qa.get("question"),
                        "answer": texts[0] if texts else None,
                        "aliases": texts[1:],
                        "doc_id": doc_id,
                        "context": context,
                    }
                    if "id" in qa:
                        row["id"] = qa["id"]
                    record = record_from_row(
                        row, where=where, errors=errors, generated_id=f"{split}-{a}-{p}-{q}"
                    )
                    if record is not None:
                        splits[split].append(Located(record, where))
        if skipped:
            logger.info("Skipped %d unanswerable SQuAD v2 question(s) (is_impossible) in %s.", skipped, label)
        documents = merge_documents(documents, file_docs)
    return splits, documents


# ---------------------------------------------------------------------------------------------------
# PubMedQA


def read_pubmedqa(
    root: Path, data_cfg: Any, errors: ErrorCollector
) -> tuple[dict[str, list[Located]], list[Any]]:
    """PubMedQA PQA-L: ``ori_pqal.json`` items and the official ``test_ground_truth.json`` split.

    ``data.path`` is the folder holding both files (or the items file, with the ground truth beside
    it); ``data.train_file``/``data.test_file`` rename them. Test = the ground-truth ids (500 in the
    official release), train = the rest; the ground-truth label must equal ``final_decision``.
    """
    from langchain_core.documents import Document

    folder = root if root.is_dir() else root.parent
    items_path = root if root.is_file() else folder / (data_cfg.train_file or "ori_pqal.json")
    truth_path = folder / (data_cfg.test_file or "test_ground_truth.json")
    for path, key, what in (
        (items_path, "train_file", "items"),
        (truth_path, "test_file", "official test split"),
    ):
        if not path.is_file():
            msg = (
                f"PubMedQA {what} file '{display_path(path)}' does not exist. Put ori_pqal.json and "
                f"test_ground_truth.json (github.com/pubmedqa/pubmedqa, data/) in data.path, or name the file "
                f"with data.{key}."
            )
            raise DataError(msg)
    items = _load_json(items_path)
    truth = _load_json(truth_path)
    label, truth_label = display_path(items_path), display_path(truth_path)
    if not isinstance(items, dict) or not items:
        msg = f"{label}: expected a non-empty JSON object {{pmid: {{QUESTION, CONTEXTS, final_decision, ...}}}}. Check the file."
        raise DataError(msg)
    if not isinstance(truth, dict):
        msg = f"{truth_label}: expected a JSON object {{pmid: label}}. Check the file."
        raise DataError(msg)
    for pmid in truth:
        if pmid not in items:
            errors.add(
                f"{truth_label} item '{pmid}'",
                None,
                "is not in the items file",
                f"Use the {label} of the same release",
            )

    splits: dict[str, list[Located]] = {name: [] for name in SPLITS}
    documents = []
    for pmid, item in items.items():
        where = f"{label} item '{pmid}'"
        if not isinstance(item, dict):
            errors.add(
                where, None, "is not a JSON object", "Each item is {QUESTION, CONTEXTS, final_decision, ...}"
            )
            continue
        contexts = item.get("CONTEXTS")
        if not isinstance(contexts, list) or not all(isinstance(c, str) for c in contexts) or not contexts:
            errors.add(
                where,
                "CONTEXTS",
                "is missing or not a list of strings",
                "Each item needs its abstract sections",
            )
            continue
        context = "\n\n".join(c.strip() for c in contexts)
        row = {
            "id": str(pmid),
            "question": item.get("QUESTION"),
            "answer": item.get("final_decision"),
            "answer_type": "label",
            "labels": list(DEFAULT_LABELS),
            "doc_id": str(pmid),
            "context": context,
        }
        # Keyed by PubMedQA's own names so that errors name the field the user sees in the file.
        fields = {"question": "QUESTION", "answer": "final_decision"}
        row = {fields.get(k, k): v for k, v in row.items()}
        record = record_from_row(row, where=where, errors=errors, fields=fields)
        if record is None:
            continue
        record.meta.update(
            {
                "long_answer": item.get("LONG_ANSWER", ""),
                "year": item.get("YEAR"),
                "meshes": list(item.get("MESHES") or []),
                "section_labels": list(item.get("LABELS") or []),
            }
        )
        split = "test" if pmid in truth else "train"
        if split == "test" and str(truth[pmid]).strip().lower() != record.answer:
            errors.add(
                where,
                "final_decision",
                f"is {record.answer!r} but {truth_label} says {truth[pmid]!r}",
                "Use the ground truth of the same release",
            )
            continue
        splits[split].append(Located(record, where))
        documents.append(
            Document(
                page_content=context,
                metadata={
                    "doc_id": str(pmid),
                    "source": f"{items_path.name}#{pmid}",
                    "year": item.get("YEAR"),
                },
            )
        )
    return splits, documents


# ---------------------------------------------------------------------------------------------------
# Multiple choice (MedMCQA names or options + answer_index)

_MEDMCQA_OPTIONS = ("opa", "opb", "opc", "opd")


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def mcq_rows(
    rows: list[tuple[dict[str, Any], str, int]], fields: Mapping[str, str], label: str
) -> tuple[Rows, Any]:
    """The rows and a per-row transform turning MedMCQA columns into options + a 0-based answer_index.

    MedMCQA's ``cop`` (correct option) is 1-based in the original JSON release (1..4) and 0-based in
    the Hugging Face release (0..3). ``data.fields.cop_base`` ("0" or "1") decides; without it the
    file decides: any ``cop`` of 4, or none of 0, means 1-based. The choice is logged per file.
    """
    key = {
        name: fields.get(name, name)
        for name in (*_MEDMCQA_OPTIONS, "cop", "options", "answer_index", "answer_type")
    }
    cops = [_as_int(row.get(key["cop"])) for row, _, _ in rows if key["cop"] in row]
    cops = [c for c in cops if c is not None and c >= 0]
    base_text = str(fields.get("cop_base", "")).strip()
    if base_text and base_text not in ("0", "1"):
        msg = f"Config key 'data.fields.cop_base' is {base_text!r}. Use '0' (HF MedMCQA) or '1' (original JSON)."
        raise DataError(msg)
    if base_text:
        base = int(base_text)
    elif cops:
        base = 1 if (4 in cops or 0 not in cops) else 0
        reason = "a value of 4 occurs" if 4 in cops else ("no value is 0" if base else "a value of 0 occurs")
        logger.info(
            "%s: MedMCQA 'cop' read as %d-based (%s); set data.fields.cop_base to override.",
            label,
            base,
            reason,
        )
    else:
        base = 0

    def transform(row: dict[str, Any], where: str, errors: ErrorCollector) -> dict[str, Any] | None:
        row = dict(row)
        row.setdefault(key["answer_type"], "choice")
        if key["options"] not in row and any(key[o] in row for o in _MEDMCQA_OPTIONS):
            options = []
            for name in _MEDMCQA_OPTIONS:
                value = row.pop(key[name], None)
                if value is None or not str(value).strip():
                    errors.add(
                        where, key[name], "is missing or empty", "MedMCQA rows need opa, opb, opc and opd"
                    )
                    return None
                options.append(str(value).strip())
            row[key["options"]] = options
        if key["cop"] in row:
            raw = row.pop(key["cop"])
            cop = _as_int(raw)
            if cop is None or cop < 0:
                errors.add(
                    where,
                    key["cop"],
                    f"is {raw!r}, so the question has no answer (MedMCQA's test split is unlabelled)",
                    "Evaluate on the validation split instead",
                )
                return None
            index = cop - base
            n_options = len(row.get(key["options"]) or [])
            if not 0 <= index < n_options:
                errors.add(
                    where,
                    key["cop"],
                    f"is {cop}, outside the {n_options} options when read as {base}-based",
                    "Fix the value, or set data.fields.cop_base",
                )
                return None
            row[key["answer_index"]] = index
        return row

    return iter(rows), transform
