"""What ``train --resume`` may change, checked before anything is written.

A run's checkpoints hold an adapter of one shape, trained with one optimiser setting on one dataset:
the run's ``config.yaml`` and the manifest's data hashes record them. Resuming with another LoRA
rank fails deep inside the Trainer (a page of size mismatches); resuming with another learning rate
or other data silently continues into a run that is neither the old one nor the new one. So a
resume compares the config now given with the recorded one (the values the config fingerprint
hashes, :func:`domainllm.config.fingerprint_data`) and the data with the recorded hashes:

* a change in :data:`RESUMABLE_KEYS` (train longer, evaluate or save at another cadence, the same
  data found at another path) is allowed and recorded in the manifest (``resumed_with_changes``);
* any other change is refused, naming every key with its old and new value, and nothing is written
  (config.yaml keeps describing what the checkpoints were trained with).

Keys outside the fingerprint (``NOT_IN_FINGERPRINT``: where the run goes, logging, trackers, hub
settings) never matter here.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from domainllm.config import DomainConfig, fingerprint_data
from domainllm.errors import ConfigError, RunDirError
from domainllm.rundir import RunDir

if TYPE_CHECKING:
    from domainllm.data.records import QADataset

__all__ = ["RESUMABLE_KEYS", "check_resume", "config_changes", "resume_record"]

# Changes a resume may make: how long training goes on, how often it is evaluated and saved, settings
# that compute the same steps with less memory, and where the data is read from (its content is still
# compared by hash). The schedule's length follows num_epochs / max_steps from the resumed step on.
RESUMABLE_KEYS = (
    "training.num_epochs",
    "training.max_steps",
    "training.eval_strategy",
    "training.eval_steps",
    "training.save_steps",
    "training.save_total_limit",
    "training.early_stopping_patience",
    "training.load_best_model_at_end",
    "training.max_truncated_share",
    "training.gradient_checkpointing",
    "data.path",
    "data.docs_dir",
)


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: data}


def config_changes(before: DomainConfig, after: DomainConfig) -> dict[str, tuple[Any, Any]]:
    """The fingerprinted keys whose values differ: ``{"lora.r": (16, 8)}``."""
    old, new = _flatten(fingerprint_data(before)), _flatten(fingerprint_data(after))
    return {
        key: (old.get(key), new.get(key))
        for key in sorted(set(old) | set(new))
        if old.get(key) != new.get(key)
    }


def _data_changes(manifest: dict[str, Any], cfg: DomainConfig, data: QADataset) -> dict[str, tuple[Any, Any]]:
    """Splits (and, with train_on qa+docs, documents) whose hashes differ from the recorded ones."""
    from domainllm.data.records import documents_sha256, records_sha256

    recorded = manifest.get("data") or {}
    changes: dict[str, tuple[Any, Any]] = {}
    for split in ("train", "val"):
        old = (recorded.get(split) or {}).get("sha256")
        new = records_sha256(data.split(split))
        if old is not None and old != new:
            n_old = (recorded.get(split) or {}).get("n")
            changes[f"data: the {split} split"] = (
                f"{n_old} rows, sha256 {old[:12]}",
                f"{len(data.split(split))} rows, sha256 {new[:12]}",
            )
    if cfg.training.train_on != "qa":
        old = recorded.get("documents_sha256")
        new = documents_sha256(data.documents)
        if old is not None and old != new:
            changes["data: the documents"] = (f"sha256 {old[:12]}", f"sha256 {new[:12]}")
    return changes


def _show(key: str, value: Any) -> str:
    text = str(value) if key.startswith("data: ") else repr(value)  # data: already in words
    return text if len(text) <= 80 else text[:77] + "..."


def check_resume(
    run: RunDir, cfg: DomainConfig, data: QADataset, checkpoint: Path
) -> dict[str, tuple[Any, Any]]:
    """Refuse a resume of ``run`` with a config or data its checkpoints were not trained with.

    ``cfg`` is the config as training will write it (:func:`domainllm.training.manifest.portable_config`
    of the resolved config). Returns the allowed changes (empty when nothing changed); raises
    :class:`RunDirError` naming every other changed key. Changes nothing on disk.
    """
    try:
        recorded = run.load_config()
    except ConfigError as exc:
        msg = (
            f"Cannot resume '{run.path}': its config.yaml, which records what the checkpoints were trained with, "
            f"cannot be read ({exc}). Start the run over with --overwrite, or train into another --output-dir."
        )
        raise RunDirError(msg) from None
    changes = {**config_changes(recorded, cfg), **_data_changes(run.read_manifest(), cfg, data)}
    refused = {k: v for k, v in changes.items() if k not in RESUMABLE_KEYS}
    if refused:
        listed = ", ".join(
            f"{key} ({_show(key, old)} -> {_show(key, new)})" for key, (old, new) in refused.items()
        )
        own = f"domainllm train --config {run.config_path} --output-dir {run.path} --resume"
        msg = (
            f"Cannot resume '{run.path}' from {checkpoint.name}: its checkpoints were trained with other settings, "
            f"and a resume cannot change {listed}. Nothing was changed. Resume with the run's own config "
            f"({own}; other --set overrides may change only {', '.join(RESUMABLE_KEYS)}), or train these settings "
            "into another --output-dir (or start this run over with --overwrite)."
        )
        raise RunDirError(msg)
    return changes


def resume_record(run: RunDir, checkpoint: Path, changes: dict[str, tuple[Any, Any]]) -> dict[str, Any]:
    """The manifest field for a resume that changed allowed keys: every such resume, oldest first."""
    history = list(run.read_manifest().get("resumed_with_changes") or [])
    if changes:
        history.append(
            {
                "checkpoint": checkpoint.name,
                "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "changes": {key: {"before": old, "after": new} for key, (old, new) in changes.items()},
            }
        )
    return {"resumed_with_changes": history} if history else {}
