"""The run-directory contract: what a training run writes where, and how later stages read it.

A run directory describes itself, so ``merge``, ``chat`` and ``compare`` never ask again for what
training already knew (base model, system prompt, data hashes)::

    RUN/
      manifest.json        status (running | complete | failed | interrupted), error, resume_command,
                           versions, device, git commit,
                           base model, dataset hashes and sizes, parameter counts, wall time,
                           trained tokens/s, peak memory, best checkpoint, eval loss before/after
      config.yaml          the resolved DomainConfig (every default spelled out)
      adapter/             adapter_config.json + adapter_model.safetensors + tokenizer files
      metrics.jsonl        one line per logging step: step, epoch, loss, eval_loss, lr, grad_norm
      plots/loss.png       train and eval loss against step
      plots/lr.png         learning rate against step
      README.md            model card
      checkpoints/         trainer checkpoints (resume, best-checkpoint restore)
      tensorboard/         TensorBoard event files
      merged/              written by ``domainllm merge``

A directory is complete only when its manifest says so; a run that raised is marked failed with
the error, one stopped by Ctrl-C or SIGTERM is marked interrupted with the command that resumes it
(neither is complete; both resume from their last checkpoint). Writes of the manifest are atomic
(temporary file + rename).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from domainllm.errors import RunDirError
from domainllm.fsio import atomic_write_json

__all__ = ["STATUS_COMPLETE", "STATUS_FAILED", "STATUS_INTERRUPTED", "STATUS_RUNNING", "RunDir"]

STATUS_RUNNING = "running"
STATUS_COMPLETE = "complete"
STATUS_FAILED = "failed"
STATUS_INTERRUPTED = "interrupted"


class RunDir:
    """A training run directory (see the module docstring for its layout)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    # Layout --------------------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.path / "manifest.json"

    @property
    def config_path(self) -> Path:
        return self.path / "config.yaml"

    @property
    def adapter_dir(self) -> Path:
        return self.path / "adapter"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def plots_dir(self) -> Path:
        return self.path / "plots"

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / "checkpoints"

    @property
    def tensorboard_dir(self) -> Path:
        return self.path / "tensorboard"

    @property
    def merged_dir(self) -> Path:
        return self.path / "merged"

    @property
    def card_path(self) -> Path:
        return self.path / "README.md"

    # Manifest ------------------------------------------------------------------------------------
    def read_manifest(self) -> dict[str, Any]:
        if not self.manifest_path.is_file():
            return {}
        try:
            return json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            msg = f"The manifest '{self.manifest_path}' is not valid JSON ({exc}). Re-run training with --overwrite."
            raise RunDirError(msg) from exc

    def update_manifest(self, **fields: Any) -> dict[str, Any]:
        manifest = self.read_manifest()
        manifest.update(fields)
        atomic_write_json(self.manifest_path, manifest)
        return manifest

    @property
    def status(self) -> str | None:
        return self.read_manifest().get("status")

    @property
    def is_complete(self) -> bool:
        return self.status == STATUS_COMPLETE

    def mark_running(self, **fields: Any) -> None:
        self.update_manifest(
            status=STATUS_RUNNING,
            error=None,
            resume_command=None,
            started_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            **fields,
        )

    def mark_complete(self, **fields: Any) -> None:
        self.update_manifest(
            status=STATUS_COMPLETE, error=None, finished_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"), **fields
        )

    def mark_interrupted(self, resume_command: str | None, **fields: Any) -> None:
        """Stopped by Ctrl-C or SIGTERM: not a failure; ``resume_command`` continues it (None: nothing to resume)."""
        self.update_manifest(
            status=STATUS_INTERRUPTED,
            error=None,
            resume_command=resume_command,
            finished_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            **fields,
        )

    def mark_failed(self, error: BaseException | str, **fields: Any) -> None:
        text = error if isinstance(error, str) else f"{error.__class__.__name__}: {error}"
        self.update_manifest(
            status=STATUS_FAILED, error=text, finished_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"), **fields
        )

    # Opening -------------------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path, require_adapter: bool = True) -> RunDir:
        """Open a finished run for serving; a clear RunDirError names what is missing."""
        run = cls(path)
        if not run.path.is_dir():
            msg = f"Run directory '{run.path}' does not exist. Train one with 'domainllm train --output-dir {run.path}'."
            raise RunDirError(msg)
        status = run.status
        if status is None:
            msg = f"'{run.path}' has no manifest.json, so it is not a domainllm run directory."
            raise RunDirError(msg)
        if status != STATUS_COMPLETE:
            manifest = run.read_manifest()
            error = manifest.get("error")
            detail = f" It failed with: {error}." if error else ""
            resume = manifest.get("resume_command") or f"domainllm train --output-dir {run.path} --resume"
            msg = (
                f"Run directory '{run.path}' is marked '{status}', not complete.{detail} "
                f"Resume it with '{resume}' or train again with --overwrite."
            )
            raise RunDirError(msg)
        if require_adapter:
            run.check_adapter()
        return run

    def check_adapter(self) -> None:
        """The adapter's config and weights are present and readable (a cheap header check, no tensors
        loaded), so a damaged copy is named before a model is loaded or an output written."""
        from domainllm.weights import check_adapter_weights

        weights = self.adapter_dir / "adapter_model.safetensors"
        legacy = self.adapter_dir / "adapter_model.bin"  # PEFT's pickle format, from older runs
        if not (self.adapter_dir / "adapter_config.json").is_file() or not (
            weights.is_file() or legacy.is_file()
        ):
            msg = (
                f"Run directory '{self.path}' has no adapter (expected {self.adapter_dir}/adapter_config.json and "
                "adapter_model.safetensors). Train again with --overwrite."
            )
            raise RunDirError(msg)
        check_adapter_weights(
            self.adapter_dir,
            f"Copy the run again from where it came from, or train it again with 'domainllm train --output-dir "
            f"{self.path} --overwrite'.",
        )

    def load_config(self):
        """The resolved config the run was trained with."""
        from domainllm.config import load_config

        if not self.config_path.is_file():
            msg = f"Run directory '{self.path}' has no config.yaml; it was not written by domainllm train."
            raise RunDirError(msg)
        return load_config(self.config_path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"
