"""What the arms need before they run: the fine-tuned run, the knowledge base, the model.

The rule for runs: ``compare`` never replaces or deletes a finished run. A run at
``training.output_dir`` trained with the same config and data is reused; one trained differently is
kept as it is, and this comparison trains into a sibling folder named by its config fingerprint
(``runs/dental-<fingerprint>``), which a later ``compare`` with the same config reuses. An unfinished
run of the same config is resumed from its last checkpoint.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from domainllm.config import DomainConfig, config_fingerprint
from domainllm.data.records import QADataset, documents_sha256, records_sha256
from domainllm.errors import EvalError
from domainllm.rundir import STATUS_COMPLETE, RunDir

__all__ = ["RunInfo", "open_given_run", "prepare_run", "prepare_store", "stale_reason"]

log = logging.getLogger(__name__)


@dataclass
class RunInfo:
    """A fine-tuned run as the comparison uses it."""

    name: str
    path: Path
    reused: bool
    note: str
    manifest: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """What results.json records about the run (training facts, not the whole manifest)."""
        keys = (
            "wall_time_s",
            "train_runtime_s",
            "tokens_per_second",
            "global_step",
            "eval_loss_before",
            "eval_loss_after",
        )
        return {
            "run_dir": str(self.path),
            "reused": self.reused,
            "note": self.note,
            "fingerprint": self.manifest.get("fingerprint"),
            "training": {k: self.manifest[k] for k in keys if k in self.manifest},
        }


def stale_reason(manifest: dict[str, Any], cfg: DomainConfig, data: QADataset) -> str | None:
    """Why a run does not match the current config and data, or None if it does."""
    current = config_fingerprint(cfg)
    if manifest.get("fingerprint") != current:
        return f"it was trained with another config (fingerprint {manifest.get('fingerprint')}, this config is {current})"
    recorded = manifest.get("data") or {}
    for split in ("train", "val"):
        if (recorded.get(split) or {}).get("sha256") != records_sha256(data.split(split)):
            return f"its {split} split differs from the current data (sha256 mismatch)"
    if cfg.training.train_on != "qa" and recorded.get("documents_sha256") != documents_sha256(data.documents):
        return "its documents differ from the current documents"
    return None


def open_given_run(run_dir: str | Path) -> RunDir:
    """The run given with ``--run``, checked before anything else happens (a broken run fails at once)."""
    return RunDir.open(Path(run_dir).expanduser().resolve())  # absolute: the report names it from anywhere


def _reuse(name: str, run: RunDir, note: str) -> RunInfo:
    log.info("%s", note)
    return RunInfo(name, run.path, True, note, run.read_manifest())


def _state(path: Path) -> tuple[str | None, dict[str, Any]] | None:
    """None for a free folder (absent or empty); else (status, manifest) — status None for a non-run folder."""
    if not path.exists():
        return None
    if path.is_dir() and not any(path.iterdir()):
        return None
    run = RunDir(path)
    try:
        manifest = run.read_manifest()
    except Exception:  # an unreadable manifest: not ours to touch
        return (None, {})
    return (manifest.get("status"), manifest)


def prepare_run(cfg: DomainConfig, data: QADataset, given: RunDir | None, name: str = "default") -> RunInfo:
    """The run the fine-tuned arms use: the given one, a matching earlier one, a resumed one, or a new one."""
    if given is not None:
        stale = stale_reason(given.read_manifest(), cfg, data)
        note = f"reusing run {given.path} (given with --run)"
        if stale:
            note += f"; note: {stale}"
            log.warning("The run given with --run was trained differently: %s.", stale)
        return _reuse(name, given, note)
    from domainllm.training import last_checkpoint, train

    primary = Path(cfg.training.output_dir).expanduser().resolve()
    alternate = primary.with_name(f"{primary.name}-{config_fingerprint(cfg)[:8]}")
    passed: list[str] = []
    for path in (primary, alternate):
        state = _state(path)
        if state is None:
            note = "; ".join([*passed, f"trained run {path}"])
            if passed:
                log.warning("%s.", note)
            trained = Path(train(cfg, output_dir=path))
            manifest = RunDir(trained).read_manifest()
            return RunInfo(name, trained, False, f"{note} ({manifest.get('wall_time_s', '?')} s)", manifest)
        status, manifest = state
        stale = (
            stale_reason(manifest, cfg, data) if status is not None else "it is not a domainllm run directory"
        )
        run = RunDir(path)
        if (
            status == STATUS_COMPLETE
            and stale is None
            and (run.adapter_dir / "adapter_config.json").is_file()
        ):
            return _reuse(name, run, f"reusing run {path} (config fingerprint and dataset hashes match)")
        if status not in (None, STATUS_COMPLETE) and stale is None and last_checkpoint(run.checkpoints_dir):
            log.warning("Resuming the unfinished run %s (same config and data).", path)
            trained = Path(train(cfg, output_dir=path, resume=True))
            manifest = RunDir(trained).read_manifest()
            return RunInfo(name, trained, False, f"resumed and finished run {path}", manifest)
        what = f"a {status} run" if status else "files that are not a finished run of this config"
        passed.append(f"{path} holds {what} ({stale or 'no checkpoint to resume'}) and was left as it is")
    msg = (
        f"No free run directory for this config: {'; '.join(passed)}. domainllm never replaces a run it did "
        "not make for this config: set training.output_dir to a new folder, pass --run RUN_DIR to reuse a "
        "finished run, or remove one of those folders yourself."
    )
    raise EvalError(msg)


def prepare_store(cfg: DomainConfig, data: QADataset) -> tuple[Any, dict[str, Any]]:
    """Bring the Chroma store up to date with the domain's documents (cheap when unchanged) and open it."""
    from domainllm.rag import default_store_dir, index_documents, open_store

    store_dir = default_store_dir(cfg)
    stats = index_documents(data.documents, store_dir, cfg.retrieval, source=data.source)
    log.info("%s", stats.summary())
    info = {
        "store_dir": str(store_dir),
        "summary": stats.summary(),
        "documents_sha256": documents_sha256(data.documents),
        "stats": dataclasses.asdict(stats),
    }
    return open_store(store_dir, cfg.retrieval), info
