"""What a run records about itself: the manifest's fields and the portable config.

Pure assembly from objects training already holds (config, loaded model, data, Trainer state), so
every trainer writes the same manifest the rest of domainllm reads (:mod:`domainllm.rundir`).
"""

from __future__ import annotations

import dataclasses
import resource
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from domainllm.config import DomainConfig, config_fingerprint
from domainllm.data.records import documents_sha256, records_sha256

if TYPE_CHECKING:
    from domainllm.data.records import QADataset
    from domainllm.modeling import LoadedModel
    from domainllm.training.tokens import DataStats

__all__ = ["peak_rss_mib", "portable_config", "static_manifest", "training_summary"]


def static_manifest(
    cfg: DomainConfig,
    loaded: LoadedModel,
    data: QADataset,
    stats: DataStats,
    peft_config: Any,
    num_processes: int,
) -> dict[str, Any]:
    """Everything known before the first step: versions, device, base model, data hashes, examples."""
    from domainllm.versions import git_commit, library_versions

    name = cfg.model.name_or_path
    if name == "default":
        from domainllm.defaults import DEFAULT_MODEL_NAME

        name = DEFAULT_MODEL_NAME
    targets = peft_config.target_modules
    return {
        "fingerprint": config_fingerprint(cfg),
        "versions": library_versions(),
        "git_commit": git_commit(Path(__file__).resolve().parent),
        "device": loaded.device,
        "num_processes": num_processes,
        "base_model": {
            "name_or_path": cfg.model.name_or_path,
            "name": Path(name).name if Path(name).exists() else name,
            "path": loaded.path,
            "dtype": loaded.dtype,
            "quant_mode": loaded.quant_mode,
            "device": loaded.device,
        },
        "data": {
            "name": cfg.data.name,
            "format": cfg.data.format,
            "path": data.source or cfg.data.path,
            **{
                split: {"n": len(data.split(split)), "sha256": records_sha256(data.split(split))}
                for split in ("train", "val", "test")
            },
            "documents": len(data.documents),
            "documents_sha256": documents_sha256(data.documents),
            # carved splits, rows dropped by on_long_answer: skip, near-duplicates of val/test questions
            "splits": data.summary(),
        },
        "examples": dataclasses.asdict(stats),
        "target_modules": sorted(targets) if isinstance(targets, list | set) else targets,
    }


def training_summary(
    trainer: Any,
    result: Any,
    *,
    best_step: int | None,
    eval_loss_after: float | None,
    train_losses: list[float],
    train_runtime: float,
    started: float,
) -> dict[str, Any]:
    """The manifest's results once training ended: steps, losses, throughput, memory, wall time."""
    import torch

    s = trainer.state
    tokens = getattr(trainer, "_total_train_tokens", None)  # TRL's count of non-padding tokens, all processes
    return {
        "global_step": s.global_step,
        "epochs": s.epoch,
        "train_loss": result.training_loss,
        "final_train_loss": train_losses[-1] if train_losses else None,
        "best_checkpoint": s.best_model_checkpoint,
        "best_step": best_step,
        "best_eval_loss": s.best_metric,
        "eval_loss_after": eval_loss_after,
        "train_runtime_s": round(train_runtime, 2),
        "trained_tokens": tokens,
        "tokens_per_second": round(tokens / train_runtime, 1) if tokens else None,
        "peak_rss_mib": peak_rss_mib(),
        "peak_cuda_mib": round(torch.cuda.max_memory_allocated() / 2**20, 1)
        if torch.cuda.is_available()
        else None,
        "stopped_early": bool(s.max_steps and s.global_step < s.max_steps),
        "wall_time_s": round(time.perf_counter() - started, 2),
    }


def portable_config(cfg: DomainConfig) -> DomainConfig:
    """The config with data and model paths made absolute, so the run directory can be read from anywhere."""
    from domainllm.resources import BUILTIN_PREFIX, resolve_path

    def absolute(value: str | None, key: str, must_exist: bool = True) -> str | None:
        # Hub ids ("org/name", "default") stay as they are: only what resolves to a local path is rewritten.
        if value is None or value == "default" or value.startswith(BUILTIN_PREFIX):
            return value
        path = resolve_path(value, cfg.base_dir, key)
        return str(path.resolve()) if path.exists() or not must_exist else value

    data = dataclasses.replace(
        cfg.data,
        path=absolute(cfg.data.path, "data.path"),
        docs_dir=absolute(cfg.data.docs_dir, "data.docs_dir", must_exist=False),
    )
    model = dataclasses.replace(
        cfg.model, name_or_path=absolute(cfg.model.name_or_path, "model.name_or_path")
    )
    retrieval = dataclasses.replace(
        cfg.retrieval, store_dir=absolute(cfg.retrieval.store_dir, "retrieval.store_dir", must_exist=False)
    )
    compare = dataclasses.replace(
        cfg.compare, chains_dir=absolute(cfg.compare.chains_dir, "compare.chains_dir", must_exist=False)
    )
    return cfg.replace(data=data, model=model, retrieval=retrieval, compare=compare)


def peak_rss_mib() -> float:
    """This process's peak resident memory so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / 2**20 if sys.platform == "darwin" else peak / 1024, 1)  # bytes on macOS, KiB on Linux
