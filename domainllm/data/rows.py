"""Raw rows: reading JSONL/CSV files, finding split files, and turning rows into located records.

Shared by :mod:`domainllm.data.loaders` (the line formats) and :mod:`domainllm.data.formats` (SQuAD,
PubMedQA, MCQ, HF), so neither imports the other. A row travels as a ``(row, where, line)`` triple:
``where`` ("data/qa/train.jsonl line 17") is what every error message starts with.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from domainllm.data.validate import ErrorCollector, Located, record_from_row
from domainllm.errors import DataError

__all__ = [
    "REQUIRED_COLUMNS",
    "SPLITS",
    "SPLIT_NAMES",
    "Row",
    "RowFile",
    "canonical_split",
    "check_mapped_columns",
    "csv_rows",
    "display_path",
    "find_split_files",
    "json_rows",
    "read_row_file",
    "records_from_rows",
    "slugify",
]

SPLITS = ("train", "val", "test")
SPLIT_NAMES = {
    "train": ("train", "training"),
    "val": ("val", "validation", "valid", "dev"),
    "test": ("test",),
}
SUFFIXES = {
    "folder": (".jsonl",),
    "jsonl": (".jsonl", ".json"),
    "mcq": (".jsonl", ".json"),
    "csv": (".csv", ".tsv"),
    "squad": (".json",),
}
# Fields every row of a file needs: a mapping of one of these to a column the file lacks is an error
# per file. Other mapped fields need their column in at least one file (``seen_in_train`` is often
# only in the test file). ``id`` counts only when it is mapped (most formats generate ids).
REQUIRED_COLUMNS = ("id", "question", "answer")
# Mapping keys that are settings, not columns.
_NOT_COLUMNS = ("cop_base",)

Row = tuple[dict[str, Any], str, int]
"""A raw row, where it is ("<file> line 17"), and its 1-based line (or item/row number)."""


def display_path(path: Path) -> str:
    """A path as the user would write it: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def canonical_split(value: Any) -> str | None:
    """``train``/``val``/``test`` for a split name a dataset uses (``validation``, ``dev``, ...), else None."""
    text = str(value).strip().lower()
    for split, names in SPLIT_NAMES.items():
        if text in names:
            return split
    return None


def slugify(text: str) -> str:
    """Lowercase words joined by hyphens: a doc_id safe in file names and URLs."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "doc"


# ---------------------------------------------------------------------------------------------------
# Raw rows of the line formats


def json_rows(path: Path, errors: ErrorCollector) -> Iterator[Row]:
    """Rows of a JSONL file, or of a JSON file holding a list of objects."""
    label = display_path(path)
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


def csv_rows(path: Path, errors: ErrorCollector, header: list[str] | None = None) -> Iterator[Row]:
    """Rows of a CSV (or TSV) file with a header line; line numbers count the header as line 1.

    ``header``, when given, receives the file's column names (for :func:`check_mapped_columns`).
    """
    label = display_path(path)
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh, delimiter=delimiter)
            if not reader.fieldnames:
                errors.add(label, None, "is empty", "Add a header line (question,answer,...) and rows")
                return
            if header is not None:
                header.extend(reader.fieldnames)
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


@dataclass
class RowFile:
    """The rows of one file (or dataset split) and its column names, for :func:`check_mapped_columns`."""

    label: str  # the file as error messages name it
    rows: list[Row]
    columns: list[str]
    # Where the columns come from: "header" (CSV/TSV), "keys" (the union of a JSON file's row keys)
    # or "columns" (a Hugging Face dataset's column_names).
    kind: str = "header"


def read_row_file(path: Path, fmt: str, errors: ErrorCollector) -> RowFile:
    """All rows of a JSONL/JSON/CSV file, with its columns."""
    if fmt == "csv":
        header: list[str] = []
        rows = list(csv_rows(path, errors, header))
        return RowFile(display_path(path), rows, header, "header")
    rows = list(json_rows(path, errors))
    keys = dict.fromkeys(k for row, _, _ in rows for k in row)
    return RowFile(display_path(path), rows, list(keys), "keys")


def _columns_text(columns: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(columns[:limit]) + (", ..." if len(columns) > limit else "")
    return shown or "none"


def check_mapped_columns(
    files: Sequence[RowFile],
    fields: Mapping[str, str],
    errors: ErrorCollector,
    *,
    required_unless: Mapping[str, Sequence[str]] | None = None,
) -> set[str]:
    """One error per mapped column a file lacks, instead of one per row or a silent None.

    A mapped required field (:data:`REQUIRED_COLUMNS`) must be a column of every file; any other
    mapped field a column of at least one (``seen_in_train`` is often only in the test file): an
    optional column that is nowhere would otherwise turn every value into None (a mapped ``doc_id``
    then silently drops recall@k). ``required_unless`` exempts a required field in a file that has
    one of the listed columns instead (``answer`` when a choice file gives ``answer_index``).
    Returns the labels of files whose rows cannot be read (a required column is missing), so the
    caller skips them rather than adding an error for each of their rows.
    """
    unreadable: set[str] = set()
    readable = [f for f in files if f.rows]
    for ours, theirs in fields.items():
        if ours in _NOT_COLUMNS or not readable:
            continue
        missing = [f for f in readable if theirs not in f.columns]
        if ours in REQUIRED_COLUMNS:
            alternatives = (required_unless or {}).get(ours, ())
            missing = [f for f in missing if not any(alt in f.columns for alt in alternatives)]
        elif len(missing) < len(readable):
            continue
        for f in missing:
            errors.add(f.label, None, _missing_column(theirs, ours, f), "Fix data.fields or the file")
            if ours in REQUIRED_COLUMNS:
                unreadable.add(f.label)
    return unreadable


def _missing_column(theirs: str, ours: str, f: RowFile) -> str:
    where = {
        "header": f"is not in the header ({_columns_text(f.columns)})",
        "keys": f"is not a key of any row (keys seen in the file: {_columns_text(f.columns)})",
        "columns": f"is not a column ({_columns_text(f.columns)})",
    }[f.kind]
    return f"column '{theirs}' (data.fields.{ours}) {where}"


def records_from_rows(
    rows: Iterable[Row],
    errors: ErrorCollector,
    *,
    fields: Mapping[str, str],
    split: str,
    label: str,
    id_required: bool = False,
    transform: Callable[[dict[str, Any], str, ErrorCollector], dict[str, Any] | None] | None = None,
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
            target = canonical_split(row[split_key]) or ""
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


def find_split_files(root: Path, data_cfg: Any, fmt: str) -> dict[str, Path]:
    """The split files a data config points at (explicit keys first, then the folder convention)."""
    base = root if root.is_dir() else root.parent
    found: dict[str, Path] = {}
    for split in SPLITS:
        explicit = getattr(data_cfg, f"{split}_file", None)
        if explicit:
            path = Path(explicit).expanduser()
            path = path if path.is_absolute() else base / path
            if not path.is_file():
                msg = f"Config key 'data.{split}_file' names '{explicit}', but '{display_path(path)}' does not exist. Fix the path (relative to data.path)."
                raise DataError(msg)
            found[split] = path
    if root.is_file():  # the file is the training split, unless it is named as another split
        if "train" not in found and root.resolve() not in {p.resolve() for p in found.values()}:
            found["train"] = root
        return found
    suffixes = SUFFIXES.get(fmt, (".jsonl",))
    for split in SPLITS:
        if split in found:
            continue
        for folder in (root / "qa", root):
            hits = [folder / f"{name}{suf}" for name in SPLIT_NAMES[split] for suf in suffixes]
            hit = next((p for p in hits if p.is_file()), None)
            if hit is not None:
                found[split] = hit
                break
    if not found:
        wanted = ", ".join(f"{s}{SUFFIXES.get(fmt, ('.jsonl',))[0]}" for s in SPLITS)
        msg = (
            f"Data folder '{display_path(root)}' has no split files for format '{fmt}': expected {wanted} in "
            f"'{display_path(root / 'qa')}' or '{display_path(root)}'. Add them, or set data.train_file / data.test_file."
        )
        raise DataError(msg)
    return found
