"""Trainer callbacks: the run's metrics file, a console progress bar, and manifest progress.

All three act on the main process only (``state.is_world_process_zero``), so a multi-process
launch writes each file once. None of them touches tensors: they read the numbers the Trainer (and
TRL, which already counts non-padding tokens per batch) has put in its logs, so they add no device
synchronisation to a training step.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from domainllm.fsio import umask_modes
from domainllm.rundir import RunDir

__all__ = ["ManifestProgress", "MetricsLogger", "ProgressBar"]

# Trainer log keys -> metrics.jsonl keys (everything else numeric is kept under its own name).
_RENAMES = {"learning_rate": "lr"}
# End-of-training summary keys: they go to the manifest, not to the per-step file.
_SUMMARY_KEYS = {
    "train_runtime",
    "train_samples_per_second",
    "train_steps_per_second",
    "total_flos",
    "train_loss",
}


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN; a NaN loss still shows up as a null in the file
    return value


class MetricsLogger(TrainerCallback):
    """Appends one JSON line per Trainer log event (train and eval) to RUN/metrics.jsonl."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs or _SUMMARY_KEYS & set(logs):
            return
        row: dict[str, Any] = {"step": state.global_step, "epoch": round(float(state.epoch or 0.0), 4)}
        row["kind"] = "eval" if any(key.startswith("eval_") for key in logs) else "train"
        for key, value in logs.items():
            if isinstance(value, int | float) and key != "epoch":
                row[_RENAMES.get(key, key)] = _clean(value)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")


class ProgressBar(TrainerCallback):
    """A tqdm bar over optimizer steps showing the last loss and trained tokens per second.

    Replaces the Trainer's own bar (``disable_tqdm=True``), which shows neither; the tokens are
    TRL's running count of non-padding tokens, read from the logs rather than from tensors.
    """

    def __init__(self) -> None:
        self.bar = None
        self.start = 0.0

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        from tqdm.auto import tqdm

        self.start = time.perf_counter()
        self.bar = tqdm(
            total=state.max_steps, initial=state.global_step, desc="train", unit="step", dynamic_ncols=True
        )

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(1)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.bar is None or not logs:
            return
        postfix = {}
        if "loss" in logs:
            postfix["loss"] = f"{logs['loss']:.4f}"
        if "eval_loss" in logs:
            postfix["eval_loss"] = f"{logs['eval_loss']:.4f}"
        if "num_tokens" in logs:
            elapsed = max(time.perf_counter() - self.start, 1e-9)
            postfix["tok/s"] = f"{logs['num_tokens'] / elapsed:.0f}"
        if postfix:
            self.bar.set_postfix(postfix, refresh=False)

    def on_train_end(self, args, state, control, **kwargs):
        self.close()

    def close(self) -> None:
        """End the bar (also when training raised, so the error is the last thing on the console)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class ManifestProgress(TrainerCallback):
    """Records how far a run got at each checkpoint, so a failed or killed run's manifest says where it stopped."""

    def __init__(self, run: RunDir) -> None:
        self.run = run

    def on_save(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        checkpoint = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if checkpoint.is_dir():
            umask_modes(checkpoint)  # safetensors writes the weights 0600
        self.run.update_manifest(
            progress={
                "global_step": state.global_step,
                "max_steps": state.max_steps,
                "epoch": state.epoch,
                "last_checkpoint": str(Path(args.output_dir) / f"checkpoint-{state.global_step}"),
                "best_checkpoint": state.best_model_checkpoint,
                "best_eval_loss": state.best_metric,
            }
        )
