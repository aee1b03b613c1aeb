"""Loading a domain: QA splits and documents from the formats practitioners already have.

:func:`load_domain` is the one entry point the pipeline uses (training, indexing, comparison); it
dispatches on ``data.format`` and returns a fully validated :class:`QADataset` or raises a single
:class:`~domainllm.errors.DataError` listing up to five problems with file, line and field.

Split files. ``train_file``/``val_file``/``test_file`` win when set (relative to ``data.path``).
Otherwise a folder is searched for ``{train,val,test}`` files (``validation`` and ``dev`` also mean
val) in ``<path>/qa/`` and then ``<path>/``; a single file is the training split, unless its rows
carry a ``split`` column (train/val/validation/dev/test), which then routes each row.

After reading, in this order: cross-split checks (ids, doc_ids, and long answers under
``on_long_answer: error``); val/test carved from train (:mod:`domainllm.data.splits`); long answers
dropped under ``on_long_answer: skip`` (after carving, so which questions are test does not depend
on ``max_answer_words``); the leakage report of the final train split (:mod:`domainllm.data.leakage`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from domainllm.config import DataConfig
from domainllm.data.checks import check_answer_lengths, check_doc_ids, check_unique_ids, drop_long_answers
from domainllm.data.leakage import leakage_report, log_leakage
from domainllm.data.records import QADataset, QARecord
from domainllm.data.rows import (
    SPLITS,
    RowFile,
    check_mapped_columns,
    display_path,
    find_split_files,
    read_row_file,
    records_from_rows,
)
from domainllm.data.splits import carve_splits
from domainllm.data.validate import ErrorCollector, Located, check_fields_mapping
from domainllm.errors import DataError

__all__ = [
    "DEFAULT_MAX_ANSWER_WORDS",
    "FORMATS",
    "SPLITS",
    "documents_folder",
    "load_domain",
    "load_qa",
    "split_files",
]

logger = logging.getLogger(__name__)

FORMATS = ("folder", "jsonl", "csv", "hf", "squad", "pubmedqa", "mcq")
# The config's default, read from DataConfig so load_qa and load_domain cannot drift apart
# (domainllm.config imports nothing from domainllm.data, so this import is not circular).
DEFAULT_MAX_ANSWER_WORDS: int = DataConfig.max_answer_words
_MCQ_EXTRA_FIELDS = ("opa", "opb", "opc", "opd", "cop", "cop_base")


def _resolve_data_path(data_cfg: Any, base_dir: str | Path) -> Path:
    from domainllm.resources import resolve_path

    path = resolve_path(data_cfg.path, base_dir, key="data.path")
    if not path.exists():
        msg = f"Config key 'data.path' is '{data_cfg.path}', but '{display_path(path)}' does not exist. Fix the path (relative paths resolve against the config file's folder)."
        raise DataError(msg)
    return path


def _docs_folder(data_cfg: Any, root: Path | None, base_dir: str | Path) -> Path | None:
    """``data.docs_dir``, else ``<root>/docs`` when that folder exists, else None."""
    from domainllm.resources import resolve_path

    if data_cfg.docs_dir:
        folder = resolve_path(data_cfg.docs_dir, base_dir, key="data.docs_dir")
        if not folder.is_dir():
            msg = f"Config key 'data.docs_dir' is '{data_cfg.docs_dir}', but '{display_path(folder)}' is not a folder. Fix the path or remove the key."
            raise DataError(msg)
        return folder
    if root is not None and root.is_dir() and (root / "docs").is_dir():
        return root / "docs"
    return None


def _documents_for(data_cfg: Any, root: Path | None, base_dir: str | Path) -> tuple[list[Any], str]:
    """Documents from ``data.docs_dir``, else ``<path>/docs`` when that folder exists."""
    from domainllm.data.documents import load_documents

    folder = _docs_folder(data_cfg, root, base_dir)
    if folder is None:
        return [], ""
    return load_documents(folder), display_path(folder)


def documents_folder(data_cfg: Any, base_dir: str | Path = ".") -> Path | None:
    """The folder :func:`load_domain` reads a domain's documents from, or None (none, or only the
    inline contexts of a SQuAD/PubMedQA/hub source)."""
    inline = data_cfg.format in ("hf", "squad", "pubmedqa")
    return _docs_folder(data_cfg, None if inline else _resolve_data_path(data_cfg, base_dir), base_dir)


def split_files(data_cfg: Any, base_dir: str | Path = ".") -> dict[str, Path]:
    """The files :func:`load_domain` reads the splits of a line-format source from (jsonl, csv, mcq, folder)."""
    return find_split_files(_resolve_data_path(data_cfg, base_dir), data_cfg, data_cfg.format)


# ---------------------------------------------------------------------------------------------------
# Format readers: each returns {split: [Located]} and possibly documents of its own.


def _read_line_format(
    fmt: str, files: Mapping[str, Path], fields: Mapping[str, str], errors: ErrorCollector
) -> dict[str, list[Located]]:
    out: dict[str, list[Located]] = {name: [] for name in SPLITS}
    read: dict[str, RowFile] = {split: read_row_file(path, fmt, errors) for split, path in files.items()}
    instead = (fields.get("answer_index", "answer_index"), fields.get("cop", "cop"))
    unreadable = check_mapped_columns(
        list(read.values()), fields, errors, required_unless={"answer": instead}
    )
    for split, row_file in read.items():
        if row_file.label in unreadable:
            continue
        rows: Any = iter(row_file.rows)
        transform = None
        if fmt == "mcq":
            from domainllm.data import formats

            rows, transform = formats.mcq_rows(row_file.rows, fields, row_file.label)
        routed = records_from_rows(
            rows,
            errors,
            fields=fields,
            split=split,
            label=row_file.label,
            id_required=fmt == "folder",
            transform=transform,
        )
        for name, items in routed.items():
            out[name].extend(items)
    return out


def _finish(
    splits: dict[str, list[Located]],
    documents: list[Any],
    docs_label: str,
    data_cfg: Any,
    errors: ErrorCollector,
    source: str,
) -> QADataset:
    """Cross-split checks, carved splits, skipped rows, leakage: the dataset, or one DataError."""
    errors.raise_if_any()
    check_unique_ids(splits, errors)
    check_doc_ids(splits, [d.metadata["doc_id"] for d in documents], docs_label, errors)
    if data_cfg.on_long_answer == "error":
        check_answer_lengths(splits, data_cfg.max_answer_words, errors)
    errors.raise_if_any()
    if not any(splits.values()):
        msg = f"The dataset at '{source}' holds no questions. Add QA rows to its train and test files."
        raise DataError(msg)
    carved = carve_splits(
        splits,
        val_fraction=data_cfg.val_fraction,
        test_fraction=data_cfg.test_fraction,
        split_by=data_cfg.split_by,
        seed=data_cfg.split_seed,
        source=source,
    )
    dropped: dict[str, list[str]] = {}
    if data_cfg.on_long_answer == "skip":
        had_train = bool(splits["train"])
        dropped = drop_long_answers(splits, data_cfg.max_answer_words)
        if had_train and not splits["train"]:
            msg = (
                f"Every training question of '{source}' has an answer over data.max_answer_words = "
                f"{data_cfg.max_answer_words}, so data.on_long_answer: skip left none. Raise "
                "data.max_answer_words, or shorten the answers."
            )
            raise DataError(msg)
    train = [item.record for item in splits["train"]]
    if data_cfg.train_sources is not None:
        kept = [r for r in train if r.meta.get("source", "original") in data_cfg.train_sources]
        if train and not kept:
            msg = (
                f"data.train_sources is {list(data_cfg.train_sources)}, but no training row of '{source}' has such "
                "a provenance 'source' (rows without one count as 'original'). Widen data.train_sources or set it to null."
            )
            raise DataError(msg)
        logger.info(
            "data.train_sources %s: %d of %d training rows kept.",
            list(data_cfg.train_sources),
            len(kept),
            len(train),
        )
        train = kept
    dataset = QADataset(
        train=train,
        val=[item.record for item in splits["val"]],
        test=[item.record for item in splits["test"]],
        documents=documents,
        source=source,
        carved=carved,
        dropped=dropped,
    )
    others = {name: dataset.split(name) for name in ("val", "test") if dataset.split(name)}
    dataset.leakage = leakage_report(dataset.train, others)
    log_leakage(dataset.leakage)
    shared = dataset.leakage.shared_documents.get("test", 0)
    if data_cfg.split_by == "document" and "test" not in carved and shared:
        logger.warning(
            "data.split_by is 'document', but the test split comes from the source, and %d of its "
            "questions share a doc_id with training questions: split_by only governs the splits domainllm "
            "carves (data.test_fraction).",
            shared,
        )
    logger.info(
        "Loaded %s: %d train / %d val / %d test questions, %d documents.",
        source,
        len(dataset.train),
        len(dataset.val),
        len(dataset.test),
        len(documents),
    )
    return dataset


def load_domain(data_cfg: Any, base_dir: str | Path = ".") -> QADataset:
    """Load and validate a domain's QA splits and documents as configured by a ``DataConfig``.

    ``base_dir`` is the config file's folder (``cfg.base_dir``): relative ``data.path`` and
    ``data.docs_dir`` resolve against it. Returns the whole dataset or raises :class:`DataError`.
    """
    fmt = data_cfg.format
    if fmt not in FORMATS:
        msg = f"Config key 'data.format' is {fmt!r}; allowed values: {', '.join(FORMATS)}."
        raise DataError(msg)
    errors = ErrorCollector()
    extra = _MCQ_EXTRA_FIELDS if fmt in ("mcq", "hf") else ()
    fields = check_fields_mapping(data_cfg.fields, extra)

    if fmt == "hf":
        from domainllm.data.hf import read_hf

        splits, source = read_hf(data_cfg, base_dir, fields, errors)
        documents, docs_label = _documents_for(data_cfg, None, base_dir)
        return _finish(splits, documents, docs_label, data_cfg, errors, source)

    root = _resolve_data_path(data_cfg, base_dir)
    source = display_path(root)
    if fmt in ("squad", "pubmedqa"):
        from domainllm.data import formats

        reader = formats.read_squad if fmt == "squad" else formats.read_pubmedqa
        splits, documents = reader(root, data_cfg, errors)
        extra_docs, _ = _documents_for(data_cfg, None, base_dir)  # only an explicit docs_dir adds to them
        documents = formats.merge_documents(documents, extra_docs)
        return _finish(splits, documents, f"the {fmt} contexts", data_cfg, errors, source)

    files = find_split_files(root, data_cfg, fmt)
    splits = _read_line_format(fmt, files, fields, errors)
    documents, docs_label = _documents_for(data_cfg, root, base_dir)
    return _finish(splits, documents, docs_label, data_cfg, errors, source)


def load_qa(
    path: str | Path,
    format: str = "jsonl",
    fields: Mapping[str, str] | None = None,
    split: str | None = None,
    *,
    max_answer_words: int | None = DEFAULT_MAX_ANSWER_WORDS,
    hf_splits: Mapping[str, str] | None = None,
    val_fraction: float = 0.0,
    test_fraction: float = 0.0,
    split_by: str = "question",
    split_seed: int = 0,
    on_long_answer: str = "error",
) -> list[QARecord]:
    """The records of one split, or of one file, in any supported format.

    A file (jsonl, csv, mcq, squad) is read as the split ``split`` (default train; this names its
    generated ids ``<split>-<line>``); when its rows carry a ``split`` column they are routed by it,
    and ``split=None`` returns all of them. A folder, PubMedQA or HF source returns the split
    ``split`` (default train). Validation is :func:`load_domain`'s, so the public function accepts
    no more than the pipeline does: ``max_answer_words`` defaults to :data:`DEFAULT_MAX_ANSWER_WORDS`
    (20, as ``data.max_answer_words``) because the scorers assume short references. Pass ``None``
    explicitly to load long answers anyway (e.g. to inspect a dataset before trimming it); 0 or a
    negative count is an error rather than a silent "no limit"; ``on_long_answer="skip"`` leaves long
    answers out instead (and logs how many). ``val_fraction``, ``test_fraction``, ``split_by`` and
    ``split_seed`` carve splits as the ``data.*`` keys of the same names do. doc_ids are checked
    only when the source has documents.
    """
    if split is not None and split not in SPLITS:
        msg = f"Split {split!r} is unknown; use one of {', '.join(SPLITS)}."
        raise DataError(msg)
    if max_answer_words is not None and max_answer_words < 1:
        msg = f"max_answer_words is {max_answer_words}; use a positive word count, or None for no limit."
        raise DataError(msg)
    path = Path(path)
    file_mode = path.is_file() and format not in ("pubmedqa", "hf")
    split_file = {f"{split or 'train'}_file": str(path.resolve())} if file_mode else {}
    cfg = DataConfig(
        format=format,  # type: ignore[arg-type]
        path=str(path),
        fields=dict(fields or {}),
        hf_splits=dict(hf_splits or {}),
        max_answer_words=10**9 if max_answer_words is None else max_answer_words,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        split_by=split_by,  # type: ignore[arg-type]
        split_seed=split_seed,
        on_long_answer=on_long_answer,  # type: ignore[arg-type]
        **split_file,
    )
    dataset = load_domain(cfg, base_dir=".")
    if split is None and file_mode:
        return [*dataset.train, *dataset.val, *dataset.test]
    return dataset.split(split or "train")
