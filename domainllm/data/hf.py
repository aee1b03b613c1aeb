"""Hugging Face datasets as a domain's questions: ``save_to_disk`` folders, local data files, hub names.

Rows go through the same :func:`~domainllm.data.validate.record_from_row` checks as every other
format; columns are mapped with ``data.fields`` and splits picked with ``data.hf_splits``. Nothing is
downloaded while the hub is unreachable (``HF_HUB_OFFLINE=1`` included): a hub name then fails with
a message that says how to make a local copy.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from domainllm.data.formats import mcq_rows
from domainllm.data.rows import (
    SPLITS,
    RowFile,
    canonical_split,
    check_mapped_columns,
    display_path,
    records_from_rows,
)
from domainllm.data.validate import ErrorCollector, Located
from domainllm.errors import DataError

__all__ = ["read_hf"]


def _hub_error(name: str, exc: BaseException) -> DataError:
    offline = any(
        os.environ.get(v, "").lower() in ("1", "true", "yes")
        for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    )
    why = (
        "the hub is unreachable (offline mode is on)"
        if offline
        else "the hub is unreachable or the name is wrong"
    )
    msg = (
        f"Config key 'data.path' names the Hugging Face dataset '{name}', which could not be loaded: {why} "
        f"({type(exc).__name__}: {str(exc)[:200]}). Use a local path instead: on a machine with internet run "
        f"datasets.load_dataset('{name}').save_to_disk('my_data') (or download its parquet/jsonl files), copy "
        "the folder here and set data.path to it."
    )
    return DataError(msg)


def _open_hf(data_cfg: Any, base_dir: str | Path) -> tuple[dict[str, Any], str]:
    """{split name: Dataset} from a save_to_disk folder, a local data folder/file, or a hub name."""
    import datasets

    from domainllm.resources import resolve_path

    local = resolve_path(data_cfg.path, base_dir, key="data.path")
    if local.exists():
        source = display_path(local)
        try:
            if local.is_dir() and (
                (local / "dataset_dict.json").is_file() or (local / "state.json").is_file()
            ):
                loaded = datasets.load_from_disk(str(local))
            elif local.is_file():
                builder = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}.get(
                    local.suffix.lower()
                )
                if builder is None:
                    msg = f"Config key 'data.path' names the file '{source}', which is not .jsonl, .json, .csv or .parquet. Convert it or point at a dataset folder."
                    raise DataError(msg)
                loaded = datasets.load_dataset(builder, data_files=str(local))
            else:
                loaded = datasets.load_dataset(str(local))
        except DataError:
            raise
        except Exception as exc:
            msg = f"Could not load the local Hugging Face dataset '{source}' ({type(exc).__name__}: {str(exc)[:300]}). Check that it was written with save_to_disk, or holds train/validation/test data files."
            raise DataError(msg) from exc
    else:
        source = str(data_cfg.path)
        try:
            loaded = datasets.load_dataset(source)
        except Exception as exc:
            raise _hub_error(source, exc) from exc
    if isinstance(loaded, datasets.Dataset):
        return {"train": loaded}, source
    return dict(loaded), source


def read_hf(
    data_cfg: Any, base_dir: str | Path, fields: Mapping[str, str], errors: ErrorCollector
) -> tuple[dict[str, list[Located]], str]:
    """Records from a Hugging Face dataset, its splits picked by ``data.hf_splits``.

    Default split names: train = "train", val = the first of "validation", "val", "dev", test =
    "test"; a split named explicitly in ``hf_splits`` must exist. Rows with MedMCQA columns (opa..opd,
    cop) are read as multiple choice; SQuAD-style ``answers`` dicts give answer + aliases.
    """
    for ours in data_cfg.hf_splits:
        if ours not in SPLITS:
            msg = f"Config key 'data.hf_splits' maps '{ours}'; the keys are our split names train, val, test (values are the dataset's)."
            raise DataError(msg)
    available, source = _open_hf(data_cfg, base_dir)
    chosen: dict[str, str] = {}
    for split in SPLITS:
        if split in data_cfg.hf_splits:
            theirs = data_cfg.hf_splits[split]
            if theirs not in available:
                msg = f"Config key 'data.hf_splits.{split}' is '{theirs}', but '{source}' has the splits {', '.join(sorted(available))}. Use one of those."
                raise DataError(msg)
            chosen[split] = theirs
        else:
            theirs = next((name for name in available if canonical_split(name) == split), None)
            if theirs is not None:
                chosen[split] = theirs
    if not chosen:
        msg = f"The dataset '{source}' has the splits {', '.join(sorted(available))}, none of which is train, validation or test. Map them with data.hf_splits, e.g. {{train: {next(iter(available))}}}."
        raise DataError(msg)

    splits: dict[str, list[Located]] = {name: [] for name in SPLITS}
    read: dict[str, RowFile] = {}
    for split, theirs in chosen.items():
        label = f"{source} split '{theirs}'"
        rows = [(dict(row), f"{label} row {i}", i) for i, row in enumerate(available[theirs], 1)]
        read[split] = RowFile(label, rows, list(available[theirs].column_names), "columns")
    instead = (fields.get("answer_index", "answer_index"), fields.get("cop", "cop"))
    unreadable = check_mapped_columns(
        list(read.values()), fields, errors, required_unless={"answer": instead}
    )
    for split, row_file in read.items():
        if row_file.label in unreadable:
            continue
        label, rows = row_file.label, row_file.rows
        transform = None
        if fields.get("cop", "cop") in row_file.columns:
            rows_iter, transform = mcq_rows(rows, fields, label)
        else:
            rows_iter = iter(rows)
        routed = records_from_rows(
            rows_iter, errors, fields=fields, split=split, label=label, transform=transform, route=False
        )
        splits[split].extend(routed[split])
    return splits, source
