"""Preference pairs for DPO: JSONL ``prompt``/``chosen``/``rejected``, read and checked like the QA splits.

Rows are plain (three strings: the user's question, a preferred and a dispreferred answer) or
conversational (``prompt`` a list of chat messages, ``chosen``/``rejected`` lists holding the
assistant turn), as TRL defines them. Plain rows are rendered with the same chat formatting as SFT
(:func:`domainllm.data.formatting.build_messages`, the domain's system prompt), so DPO sees exactly
the prompt format the model was fine-tuned and is served with. Problems are collected per file and
line and raised as one :class:`~domainllm.errors.DataError`; prompts that are near-duplicates of a
val/test question are refused with the leakage rule of :mod:`domainllm.data.leakage`.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from domainllm.data.formatting import build_messages
from domainllm.data.records import QARecord
from domainllm.data.rows import display_path, json_rows
from domainllm.data.validate import ErrorCollector
from domainllm.errors import DataError

if TYPE_CHECKING:
    from domainllm.config import DomainConfig

__all__ = [
    "BUILTIN_DENTAL_PREFERENCES",
    "PreferencePair",
    "PreferenceSet",
    "check_preference_leakage",
    "load_preferences",
    "to_trl_rows",
    "with_default_preferences",
]

log = logging.getLogger(__name__)

# The shipped dental pairs: what a DPO run on the shipped dental set trains on when data.preferences is unset.
BUILTIN_DENTAL_PREFERENCES = "builtin:dental/preferences"


def with_default_preferences(cfg: DomainConfig) -> DomainConfig:
    """``cfg`` with ``data.preferences`` filled in where the rule gives one (DPO on the shipped dental set).

    One rule for training and for the comparison: the run's fingerprint hashes the filled-in config,
    so the comparison must fill it in the same way before asking whether a finished DPO run matches."""
    if cfg.training.method != "dpo" or cfg.data.preferences or cfg.data.path != "builtin:dental":
        return cfg
    log.info("data.preferences is not set: using the shipped dental pairs, %s.", BUILTIN_DENTAL_PREFERENCES)
    return cfg.replace(data=dataclasses.replace(cfg.data, preferences=BUILTIN_DENTAL_PREFERENCES))


@dataclass(frozen=True)
class PreferencePair:
    """One comparison: for ``prompt`` (text, or chat messages) ``chosen`` is preferred over ``rejected``."""

    id: str
    prompt: str | list[dict[str, str]]
    chosen: str | list[dict[str, str]]
    rejected: str | list[dict[str, str]]
    where: str = ""
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def question(self) -> str:
        """The user's last turn: what the leakage check compares with val/test questions."""
        if isinstance(self.prompt, str):
            return self.prompt
        users = [m.get("content", "") for m in self.prompt if m.get("role") == "user"]
        return users[-1] if users else ""


@dataclass(frozen=True)
class PreferenceSet:
    """The train pairs (required) and val pairs (may be empty) with the files they came from."""

    train: list[PreferencePair]
    val: list[PreferencePair]
    source: str


def _is_messages(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(m, dict) and isinstance(m.get("content"), str) and "role" in m for m in value)
    )


def _read_file(path: Path, errors: ErrorCollector) -> list[PreferencePair]:
    pairs: list[PreferencePair] = []
    for row, where, n in json_rows(path, errors):
        bad = False
        kinds = set()
        for key in ("prompt", "chosen", "rejected"):
            value = row.get(key)
            if isinstance(value, str) and value.strip():
                kinds.add("plain")
            elif _is_messages(value):
                kinds.add("conversational")
            else:
                fix = "Write a non-empty string, or a list of {role, content} chat messages"
                problem = "is missing" if value is None else f"is {type(value).__name__} {str(value)[:40]!r}"
                errors.add(where, key, problem, fix)
                bad = True
        if bad:
            continue
        if len(kinds) > 1 and not (isinstance(row["prompt"], str) and kinds == {"plain", "conversational"}):
            errors.add(
                where, None, "mixes plain and conversational fields", "Use strings for all three, or messages"
            )
            continue
        if isinstance(row["chosen"], str) != isinstance(row["rejected"], str):
            errors.add(
                where, "rejected", "is not the same kind as chosen", "Use strings for both, or messages"
            )
            continue
        if row["chosen"] == row["rejected"]:
            errors.add(where, "rejected", "equals chosen", "A pair needs two different answers")
            continue
        meta = {k: v for k, v in row.items() if k not in ("id", "prompt", "chosen", "rejected")}
        pair_id = str(row.get("id") or f"{path.stem}-{n}")
        pairs.append(PreferencePair(pair_id, row["prompt"], row["chosen"], row["rejected"], where, meta))
    return pairs


def load_preferences(value: str, base_dir: str | Path = ".", key: str = "data.preferences") -> PreferenceSet:
    """Read the pairs ``value`` names: a folder with train.jsonl (+ val.jsonl), or one JSONL file (train only)."""
    from domainllm.resources import resolve_path

    root = resolve_path(value, base_dir, key)
    if root.is_dir():
        files = {"train": root / "train.jsonl", "val": root / "val.jsonl"}
        if not files["train"].exists():
            msg = (
                f"Config key '{key}' names the folder '{display_path(root)}', which has no train.jsonl. Add "
                "train.jsonl (and val.jsonl) with prompt/chosen/rejected rows, or point it at a JSONL file."
            )
            raise DataError(msg)
    elif root.is_file():
        files = {"train": root}
    else:
        msg = f"Config key '{key}' names '{value}', which does not exist ({root}). Point it at a folder or JSONL file."
        raise DataError(msg)
    errors = ErrorCollector()
    splits = {name: _read_file(path, errors) for name, path in files.items() if path.exists()}
    errors.raise_if_any()
    if not splits.get("train"):
        raise DataError(
            f"{display_path(files['train'])} has no preference pairs; add prompt/chosen/rejected rows."
        )
    return PreferenceSet(splits["train"], splits.get("val", []), str(root))


def check_preference_leakage(pairs: list[PreferencePair], held_out: list[QARecord], split: str) -> None:
    """Refuse training pairs whose prompt is a near-duplicate of a ``split`` question (the SFT leakage rule)."""
    from domainllm.data.leakage import near_duplicates

    as_records = [QARecord(id=p.id, question=p.question, answer="-", meta={"where": p.where}) for p in pairs]
    found = near_duplicates(as_records, held_out)
    if not found:
        return
    shown = "; ".join(
        f"{a.meta['where']} ({a.question[:60]!r}) ~ {split} {b.id} ({b.question[:60]!r}, {score:.2f})"
        for a, b, score in found[:5]
    )
    msg = (
        f"{len(found)} preference training prompt(s) are near-duplicates of {split} questions, so DPO would train "
        f"on what is scored: {shown}. Remove or reword those pairs."
    )
    raise DataError(msg)


def to_trl_rows(pairs: list[PreferencePair], system_prompt: str | None) -> list[dict[str, Any]]:
    """TRL's conversational preference rows: plain pairs get SFT's chat messages (system prompt included)."""
    rows = []
    for p in pairs:
        prompt = p.prompt if not isinstance(p.prompt, str) else build_messages(p.prompt, system_prompt)
        chosen = p.chosen if not isinstance(p.chosen, str) else [{"role": "assistant", "content": p.chosen}]
        rejected = (
            p.rejected if not isinstance(p.rejected, str) else [{"role": "assistant", "content": p.rejected}]
        )
        rows.append({"prompt": prompt, "chosen": chosen, "rejected": rejected})
    return rows
