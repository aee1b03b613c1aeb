"""The output directory's life cycle: may training use it, and what to resume from.

A finished run is replaced only with ``overwrite``; a failed, interrupted or killed (still
"running") run is refused unless ``resume`` (continue from its newest complete checkpoint) or
``overwrite`` (start over) says which; a non-empty folder that is not a run is never deleted. The checks change nothing, so every
process of a multi-process launch can make them before the main one prepares the directory.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
from pathlib import Path

from domainllm.errors import RunDirError
from domainllm.fsio import atomic_write_jsonl
from domainllm.rundir import STATUS_COMPLETE, STATUS_RUNNING, RunDir
from domainllm.training.plots import read_metrics

__all__ = ["check_run_dir", "last_checkpoint", "prepare_run_dir", "rewind_metrics"]

log = logging.getLogger(__name__)

# What a run directory may hold; a non-empty folder with anything else is not ours to delete.
_RUN_ENTRIES = {
    "manifest.json",
    "config.yaml",
    "adapter",
    "metrics.jsonl",
    "plots",
    "README.md",
    "checkpoints",
    "tensorboard",
    "merged",
}


def last_checkpoint(checkpoints_dir: Path) -> Path | None:
    """The newest checkpoint that was written completely (the Trainer writes trainer_state.json last)."""
    if not checkpoints_dir.is_dir():
        return None
    found = []
    for path in checkpoints_dir.glob("checkpoint-*"):
        suffix = path.name.rsplit("-", 1)[-1]
        if path.is_dir() and suffix.isdigit() and (path / "trainer_state.json").is_file():
            found.append((int(suffix), path))
    return max(found)[1] if found else None


def rewind_metrics(path: str | Path, step: int) -> int:
    """Drop the rows after ``step`` (a resume from that checkpoint logs them again); return rows kept.

    Rewritten through a temporary file and a rename, so a crash here leaves the old file intact.
    """
    path = Path(path)
    if not path.is_file():
        return 0
    kept = [row for row in read_metrics(path) if int(row.get("step", 0)) <= step]
    atomic_write_jsonl(path, kept)
    return len(kept)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def check_run_dir(run: RunDir, resume: bool, overwrite: bool) -> Path | None:
    """Decide, without changing anything, whether training may use ``run``; return the checkpoint to resume."""
    if resume and overwrite:
        msg = "--resume continues a run and --overwrite deletes it; pass only one of them."
        raise RunDirError(msg)
    if run.path.exists() and not run.path.is_dir():
        msg = f"The output directory '{run.path}' is a file. Choose a directory with --output-dir."
        raise RunDirError(msg)
    entries = sorted(p.name for p in run.path.iterdir()) if run.path.is_dir() else []
    try:
        manifest = run.read_manifest() if entries else {}
    except RunDirError:
        if not overwrite:
            raise
        manifest = {}
    status = manifest.get("status")
    if entries and not manifest:
        if not set(entries) <= _RUN_ENTRIES:
            msg = (
                f"The output directory '{run.path}' is not empty and has no manifest.json, so it is not a domainllm "
                f"run directory (it holds {', '.join(entries[:5])}{', ...' if len(entries) > 5 else ''}). domainllm "
                "will not delete files it did not write: choose a new or empty directory with --output-dir."
            )
            raise RunDirError(msg)
        if not overwrite:
            msg = (
                f"The output directory '{run.path}' holds the remains of a run without a manifest.json "
                f"({', '.join(entries)}). Pass --overwrite to start over there, or choose another --output-dir."
            )
            raise RunDirError(msg)
    if (
        status == STATUS_RUNNING
        and manifest.get("hostname") == socket.gethostname()
        and isinstance(manifest.get("pid"), int)
        and manifest["pid"] != os.getpid()
        and _pid_alive(manifest["pid"])
    ):
        msg = (
            f"The run in '{run.path}' is still in progress (process {manifest['pid']} on this machine). Wait for it, "
            "stop it, or choose another --output-dir."
        )
        raise RunDirError(msg)
    if resume:
        if status is None:
            msg = f"Nothing to resume: '{run.path}' holds no training run. Train without --resume."
            raise RunDirError(msg)
        if status == STATUS_COMPLETE:
            msg = (
                f"The run in '{run.path}' is already complete; there is nothing to resume. Pass --overwrite to "
                "train it again, or choose another --output-dir."
            )
            raise RunDirError(msg)
        checkpoint = last_checkpoint(run.checkpoints_dir)
        if checkpoint is None:
            msg = (
                f"Cannot resume '{run.path}': it has no complete checkpoint in {run.checkpoints_dir} (the run "
                "stopped before its first save). Start it again with --overwrite."
            )
            raise RunDirError(msg)
        return checkpoint
    if status == STATUS_COMPLETE and not overwrite:
        msg = (
            f"The output directory '{run.path}' already holds a finished run. Pass --overwrite to replace it, or "
            "choose another --output-dir."
        )
        raise RunDirError(msg)
    if status is not None and status != STATUS_COMPLETE and not overwrite:
        error = manifest.get("error")
        ckpt = last_checkpoint(run.checkpoints_dir)
        detail = f" (error: {error})" if error else ""
        how = (
            f"Pass --resume to continue from {ckpt.name}, or --overwrite to start over."
            if ckpt
            else "It has no checkpoint to resume from; pass --overwrite to start over."
        )
        msg = f"The output directory '{run.path}' holds a {status} run{detail}. {how}"
        raise RunDirError(msg)
    return None


def prepare_run_dir(run: RunDir, checkpoint: Path | None, overwrite: bool) -> None:
    """Make ``run`` ready after :func:`check_run_dir` allowed it (main process only).

    Resuming rewinds metrics.jsonl and drops torn checkpoints newer than ``checkpoint``; overwriting
    empties the directory first, so nothing of the old run can be mistaken for the new one.
    """
    if checkpoint is not None:
        step = int(checkpoint.name.rsplit("-", 1)[-1])
        kept = rewind_metrics(run.metrics_path, step)
        for path in run.checkpoints_dir.glob("checkpoint-*"):  # torn saves newer than the resume point
            suffix = path.name.rsplit("-", 1)[-1]
            if suffix.isdigit() and int(suffix) > step:
                shutil.rmtree(path, ignore_errors=True)
        log.info("Resuming %s from %s (%d metric rows kept)", run.path, checkpoint.name, kept)
    elif overwrite and run.path.is_dir():
        for entry in run.path.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    run.path.mkdir(parents=True, exist_ok=True)
    run.plots_dir.mkdir(exist_ok=True)
