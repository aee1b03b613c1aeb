"""Loading a domain: QA splits and documents from the formats practitioners already have.

:func:`load_domain` is the one entry point the pipeline uses (training, indexing, comparison); it
dispatches on ``data.format`` and returns a fully validated :class:`QADataset` or raises a single
:class:`~domainllm.errors.DataError` listing up to five problems with file, line and field.

Split files. ``train_file``/``val_file``/``test_file`` win when set (relative to ``data.path``).
Otherwise a folder is searched for ``{train,val,test}`` files (``validation`` and ``dev`` also mean
val) in ``<path>/qa/`` and then ``<path>/``; a single file is the training split, unless its rows
carry a ``split`` column (train/val/validation/dev/test), which then routes each row.

Validation held out from train: when there is no val split and ``val_fraction > 0``, a share of train
is moved to val with ``random.Random(0)`` (seed 0, fixed on purpose: the split must not change when
the training seed does, or eval losses of two runs are not comparable).
"""

from __future__ import annotations

import csv
import json
import logging
import random
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from domainllm.config import DataConfig
from domainllm.data.records import QADataset, QARecord
from domainllm.data.validate import (
    ErrorCollector,
    Located,
    check_answer_lengths,
    check_doc_ids,
    check_fields_mapping,
    check_unique_ids,
    record_from_row,
    warn_near_duplicates,
)
from domainllm.errors import DataError

__all__ = ["DEFAULT_MAX_ANSWER_WORDS", "FORMATS", "SPLITS", "VAL_SEED", "load_domain", "load_qa"]

logger = logging.getLogger(__name__)

FORMATS = ("folder", "jsonl", "csv", "hf", "squad", "pubmedqa", "mcq")
SPLITS = ("train", "val", "test")
VAL_SEED = 0
# The config's default, read from DataConfig so load_qa and load_domain cannot drift apart
# (domainllm.config imports nothing from domainllm.data, so this import is not circular).
DEFAULT_MAX_ANSWER_WORDS: int = DataConfig.max_answer_words
_SPLIT_NAMES = {
    "train": ("train", "training"),
    "val": ("val", "validation", "valid", "dev"),
    "test": ("test",),
}
_SUFFIXES = {
    "folder": (".jsonl",),
    "jsonl": (".jsonl", ".json"),
    "mcq": (".jsonl", ".json"),
    "csv": (".csv", ".tsv"),
    "squad": (".json",),
}
_MCQ_EXTRA_FIELDS = ("opa", "opb", "opc", "opd", "cop", "cop_base")


def _display(path: Path) -> str:
    """A path as the user would write it: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _canonical_split(value: Any) -> str | None:
    text = str(value).strip().lower()
    for split, names in _SPLIT_NAMES.items():
        if text in names:
            return split
    return None


# ---------------------------------------------------------------------------------------------------
# Raw rows of the line formats: (row, where, line) triples.


def _json_rows(path: Path, errors: ErrorCollector) -> Iterator[tuple[dict[str, Any], str, int]]:
    """Rows of a JSONL file, or of a JSON file holding a list of objects."""
    label = _display(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        errors.add(
            label, None, f"is not UTF-8 text ({exc.reason} at byte {exc.start})", "Re-save it as UTF-8"
        )
        return
    if not text.strip():
        errors.add(label, None, "is empty", "Add one JSON object per line, or remove the file")
        return
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            errors.add(
                f"{label} line {exc.lineno}", None, f"is not valid JSON ({exc.msg})", "Fix the JSON syntax"
            )
            return
        for i, item in enumerate(items, 1):
            if not isinstance(item, dict):
                errors.add(f"{label} item {i}", None, "is not a JSON object", "Each item must be {...}")
                continue
            yield item, f"{label} item {i}", i
        return
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            errors.add(
                f"{label} line {n}",
                None,
                f"is not valid JSON ({exc.msg} at column {exc.colno})",
                "Each line must be one complete JSON object",
            )
            continue
        if not isinstance(row, dict):
            errors.add(
                f"{label} line {n}", None, f"is a JSON {type(row).__name__}, not an object", "Write {...}"
            )
            continue
        yield row, f"{label} line {n}", n


def _csv_rows(path: Path, errors: ErrorCollector) -> Iterator[tuple[dict[str, Any], str, int]]:
    """Rows of a CSV (or TSV) file with a header line; line numbers count the header as line 1."""
    label = _display(path)
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh, delimiter=delimiter)
            if not reader.fieldnames:
                errors.add(label, None, "is empty", "Add a header line (question,answer,...) and rows")
                return
            start = 2
            for row in reader:
                if None in row:  # more cells than header columns
                    errors.add(
                        f"{label} line {start}",
                        None,
                        f"has {len(reader.fieldnames) + len(row[None])} cells but the header has {len(reader.fieldnames)}",
                        "Quote cells that contain the delimiter",
                    )
                elif any(v and v.strip() for v in row.values()):
                    yield {k: v for k, v in row.items() if v is not None}, f"{label} line {start}", start
                start = reader.line_num + 1
    except UnicodeDecodeError as exc:
        errors.add(label, None, f"is not UTF-8 text ({exc.reason})", "Re-save it as UTF-8")
    except csv.Error as exc:
        errors.add(label, None, f"is not valid CSV ({exc})", "Check quoting")


def _records_from_rows(
    rows: Iterator[tuple[dict[str, Any], str, int]],
    errors: ErrorCollector,
    *,
    fields: Mapping[str, str],
    split: str,
    label: str,
    id_required: bool = False,
    transform: Any = None,
    route: bool = True,
) -> dict[str, list[Located]]:
    """Records from rows, routed by their ``split`` column when they have one (else all to ``split``)."""
    out: dict[str, list[Located]] = {name: [] for name in SPLITS}
    split_key = fields.get("split", "split")
    n_rows = 0
    for row, where, line in rows:
        n_rows += 1
        target = split
        if route and split_key in row and row[split_key] not in (None, ""):
            target = _canonical_split(row[split_key]) or ""
            if not target:
                errors.add(
                    where, split_key, f"{row[split_key]!r} is not a split name", "Use train, val or test"
                )
                continue
        if transform is not None:
            row = transform(row, where, errors)
            if row is None:
                continue
        record = record_from_row(
            row,
            where=where,
            errors=errors,
            fields=fields,
            generated_id=None if id_required else f"{target}-{line}",
        )
        if record is not None:
            out[target].append(Located(record, where))
    if n_rows == 0 and not errors:
        errors.add(label, None, "holds no questions", "Add rows, or remove the file")
    return out


# ---------------------------------------------------------------------------------------------------
# Locating split files


def _find_split_files(root: Path, data_cfg: Any, fmt: str) -> dict[str, Path]:
    """The split files a data config points at (explicit keys first, then the folder convention)."""
    base = root if root.is_dir() else root.parent
    found: dict[str, Path] = {}
    for split in SPLITS:
        explicit = getattr(data_cfg, f"{split}_file", None)
        if explicit:
            path = Path(explicit).expanduser()
            path = path if path.is_absolute() else base / path
            if not path.is_file():
                msg = f"Config key 'data.{split}_file' names '{explicit}', but '{_display(path)}' does not exist. Fix the path (relative to data.path)."
                raise DataError(msg)
            found[split] = path
    if root.is_file():  # the file is the training split, unless it is named as another split
        if "train" not in found and root.resolve() not in {p.resolve() for p in found.values()}:
            found["train"] = root
        return found
    suffixes = _SUFFIXES.get(fmt, (".jsonl",))
    for split in SPLITS:
        if split in found:
            continue
        for folder in (root / "qa", root):
            hits = [folder / f"{name}{suf}" for name in _SPLIT_NAMES[split] for suf in suffixes]
            hit = next((p for p in hits if p.is_file()), None)
            if hit is not None:
                found[split] = hit
                break
    if not found:
        wanted = ", ".join(f"{s}{_SUFFIXES.get(fmt, ('.jsonl',))[0]}" for s in SPLITS)
        msg = (
            f"Data folder '{_display(root)}' has no split files for format '{fmt}': expected {wanted} in "
            f"'{_display(root / 'qa')}' or '{_display(root)}'. Add them, or set data.train_file / data.test_file."
        )
        raise DataError(msg)
    return found


def _resolve_data_path(data_cfg: Any, base_dir: str | Path) -> Path:
    from domainllm.resources import resolve_path

    path = resolve_path(data_cfg.path, base_dir, key="data.path")
    if not path.exists():
        msg = f"Config key 'data.path' is '{data_cfg.path}', but '{_display(path)}' does not exist. Fix the path (relative paths resolve against the config file's folder)."
        raise DataError(msg)
    return path


def _documents_for(data_cfg: Any, root: Path | None, base_dir: str | Path) -> tuple[list[Any], str]:
    """Documents from ``data.docs_dir``, else ``<path>/docs`` when that folder exists."""
    from domainllm.data.documents import load_documents
    from domainllm.resources import resolve_path

    if data_cfg.docs_dir:
        folder = resolve_path(data_cfg.docs_dir, base_dir, key="data.docs_dir")
        if not folder.is_dir():
            msg = f"Config key 'data.docs_dir' is '{data_cfg.docs_dir}', but '{_display(folder)}' is not a folder. Fix the path or remove the key."
            raise DataError(msg)
        return load_documents(folder), _display(folder)
    if root is not None and root.is_dir() and (root / "docs").is_dir():
        return load_documents(root / "docs"), _display(root / "docs")
    return [], ""


# ---------------------------------------------------------------------------------------------------
# Format readers: each returns {split: [Located]} and possibly documents of its own.


def _read_line_format(
    fmt: str, files: Mapping[str, Path], fields: Mapping[str, str], errors: ErrorCollector
) -> dict[str, list[Located]]:
    out: dict[str, list[Located]] = {name: [] for name in SPLITS}
    for split, path in files.items():
        label = _display(path)
        rows = _csv_rows(path, errors) if fmt == "csv" else _json_rows(path, errors)
        transform = None
        if fmt == "mcq":
            from domainllm.data import formats

            rows, transform = formats.mcq_rows(list(rows), fields, label)
        routed = _records_from_rows(
            rows,
            errors,
            fields=fields,
            split=split,
            label=label,
            id_required=fmt == "folder",
            transform=transform,
        )
        for name, items in routed.items():
            out[name].extend(items)
    return out


def _hold_out_val(splits: dict[str, list[Located]], fraction: float) -> None:
    if splits["val"] or fraction <= 0 or len(splits["train"]) < 2:
        if splits["val"] and fraction > 0:
            logger.info("data.val_fraction ignored: the source already has a val split.")
        return
    n_val = max(1, round(len(splits["train"]) * fraction))
    chosen = set(random.Random(VAL_SEED).sample(range(len(splits["train"])), n_val))
    splits["val"] = [item for i, item in enumerate(splits["train"]) if i in chosen]
    splits["train"] = [item for i, item in enumerate(splits["train"]) if i not in chosen]
    logger.info(
        "Held out %d of %d training questions as val (val_fraction=%s, seed %d).",
        n_val,
        n_val + len(splits["train"]),
        fraction,
        VAL_SEED,
    )


def _finish(
    splits: dict[str, list[Located]],
    documents: list[Any],
    docs_label: str,
    data_cfg: Any,
    errors: ErrorCollector,
    source: str,
) -> QADataset:
    """Cross-split checks, val hold-out, and the dataset (or one DataError with every problem)."""
    errors.raise_if_any()
    check_unique_ids(splits, errors)
    check_doc_ids(splits, [d.metadata["doc_id"] for d in documents], docs_label, errors)
    check_answer_lengths(splits, data_cfg.max_answer_words, errors)
    errors.raise_if_any()
    if not any(splits.values()):
        msg = f"The dataset at '{source}' holds no questions. Add QA rows to its train and test files."
        raise DataError(msg)
    _hold_out_val(splits, data_cfg.val_fraction)
    dataset = QADataset(
        train=[item.record for item in splits["train"]],
        val=[item.record for item in splits["val"]],
        test=[item.record for item in splits["test"]],
        documents=documents,
        source=source,
    )
    warn_near_duplicates(dataset.train, dataset.test)
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
        from domainllm.data import formats

        splits, source = formats.read_hf(data_cfg, base_dir, fields, errors)
        documents, docs_label = _documents_for(data_cfg, None, base_dir)
        return _finish(splits, documents, docs_label, data_cfg, errors, source)

    root = _resolve_data_path(data_cfg, base_dir)
    source = _display(root)
    if fmt in ("squad", "pubmedqa"):
        from domainllm.data import formats

        reader = formats.read_squad if fmt == "squad" else formats.read_pubmedqa
        splits, documents = reader(root, data_cfg, errors)
        extra_docs, _ = _documents_for(data_cfg, None, base_dir)  # only an explicit docs_dir adds to them
        documents = formats.merge_documents(documents, extra_docs)
        return _finish(splits, documents, f"the {fmt} contexts", data_cfg, errors, source)

    files = _find_split_files(root, data_cfg, fmt)
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
) -> list[QARecord]:
    """The records of one split, or of one file, in any supported format.

    A file (jsonl, csv, mcq, squad) is read as the split ``split`` (default train; this names its
    generated ids ``<split>-<line>``); when its rows carry a ``split`` column they are routed by it,
    and ``split=None`` returns all of them. A folder, PubMedQA or HF source returns the split
    ``split`` (default train). Validation is :func:`load_domain`'s, so the public function accepts
    no more than the pipeline does: ``max_answer_words`` defaults to :data:`DEFAULT_MAX_ANSWER_WORDS`
    (20, as ``data.max_answer_words``) because the scorers assume short references. Pass ``None``
    explicitly to load long answers anyway (e.g. to inspect a dataset before trimming it); 0 or a
    negative count is an error rather than a silent "no limit". doc_ids are checked only when the
    source has documents.
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
        **split_file,
    )
    dataset = load_domain(cfg, base_dir=".")
    if split is None and file_mode:
        return [*dataset.train, *dataset.val, *dataset.test]
    return dataset.split(split or "train")


def slugify(text: str) -> str:
    """Lowercase words joined by hyphens: a doc_id safe in file names and URLs."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "doc"
