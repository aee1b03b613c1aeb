"""Publishing a run on the Hugging Face Hub: RUN/adapter, with domainllm's model card as README.md.

The Trainer's own push is never used: it uploads ``checkpoints/`` and a card of its own. Instead,
with ``training.push_to_hub``, the adapter folder is uploaded through ``huggingface_hub.HfApi``
(``create_repo`` then one ``upload_folder`` commit): ``adapter_config.json``,
``adapter_model.safetensors``, the tokenizer files (with the chat template) and ``README.md``, the
run's model card (:mod:`domainllm.training.card`). Nothing else of the run leaves the machine
(no checkpoints, optimizer state, TensorBoard events or ``training_args.bin``). ``training.hub_strategy``:

* ``end``: one push, when the run is complete.
* ``every_save``: also at each checkpoint save, that checkpoint's adapter and tokenizer files (no
  card, no optimizer state), so a long run's progress is on the hub; the final push replaces them.
  A failed checkpoint push is logged and recorded, and training goes on.

A failed final push does not undo the run: it stays ``complete`` on disk (serve, merge and compare it
as usual), the manifest's ``hub`` entry records the error, and :func:`domainllm.training.train`
raises a TrainingError that says how to push again (:func:`push_run`).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from domainllm.errors import TrainingError
from domainllm.rundir import RunDir

__all__ = [
    "CHECKPOINT_IGNORE",
    "UPLOAD_IGNORE",
    "HubCheckpointPush",
    "check_can_push",
    "push_folder",
    "push_run",
    "uploaded_files",
]

log = logging.getLogger(__name__)

# What the Trainer writes beside an adapter and a hub repo never needs (training_args.bin is a pickle).
UPLOAD_IGNORE = [
    "training_args.bin",
    "trainer_state.json",
    "optimizer.pt",
    "scheduler.pt",
    "scaler.pt",
    "rng_state*.pth",
]
# A checkpoint's README.md is PEFT's template card, not ours: the card is pushed at the end only.
CHECKPOINT_IGNORE = [*UPLOAD_IGNORE, "README.md"]


def check_can_push(cfg: Any) -> None:
    """Refuse, before training, a push that cannot happen: the hub is switched off here."""
    from domainllm.defaults import _is_offline

    if cfg.training.push_to_hub and _is_offline():
        msg = (
            f"Config key 'training.push_to_hub' is true (repo '{cfg.training.hub_model_id}'), but HF_HUB_OFFLINE "
            "is set, so the push at the end would fail. Unset HF_HUB_OFFLINE (and log in with 'hf auth login' "
            "or set HF_TOKEN), or set training.push_to_hub=false and push the finished run later with "
            "domainllm.training.push_run."
        )
        raise TrainingError(msg)


def uploaded_files(folder: Path, ignore: list[str]) -> list[str]:
    """The files ``upload_folder`` sends from ``folder`` with ``ignore_patterns=ignore`` (its own filter)."""
    from huggingface_hub.utils import filter_repo_objects

    paths = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    return list(filter_repo_objects(paths, ignore_patterns=ignore))


def push_folder(repo_id: str, folder: Path, *, message: str, ignore: list[str]) -> dict[str, Any]:
    """Create ``repo_id`` if needed and upload ``folder`` as one commit; the record for the manifest."""
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id, repo_type="model", exist_ok=True)
    info = api.upload_folder(
        repo_id=repo_id,
        repo_type="model",
        folder_path=str(folder),
        commit_message=message,
        ignore_patterns=ignore,
    )
    return {
        "repo_id": repo_id,
        "folder": str(folder),
        "files": uploaded_files(folder, ignore),
        "commit": getattr(info, "oid", None),
        "commit_url": getattr(info, "commit_url", None),
        "pushed_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _retry_hint(run: RunDir, repo_id: str) -> str:
    return f"python -c \"from domainllm.training import push_run; push_run('{run.path}', '{repo_id}')\""


def push_run(run_dir: str | Path, repo_id: str | None = None) -> dict[str, Any]:
    """Push a complete run's adapter and model card to ``repo_id`` (default: its training.hub_model_id).

    The card is written to RUN/README.md and RUN/adapter/README.md first, naming the repo. The
    outcome goes to the manifest under ``hub`` (``status`` "pushed" or "failed"); a failure raises
    a TrainingError naming the run, the repo and the cause, and the run stays complete.
    """
    from domainllm.training.card import write_model_card

    run = RunDir.open(run_dir)
    cfg = run.load_config()
    repo = repo_id or cfg.training.hub_model_id
    if not repo:
        msg = (
            f"No hub repository to push '{run.path}' to: pass one (push_run(run_dir, 'user/repo-name')) or "
            "set training.hub_model_id."
        )
        raise TrainingError(msg)
    write_model_card(cfg, run.read_manifest(), run.path, hub_model_id=repo)
    strategy = cfg.training.hub_strategy
    try:
        record = push_folder(
            repo,
            run.adapter_dir,
            message=f"domainllm: adapter and model card of {run.path.name}",
            ignore=UPLOAD_IGNORE,
        )
    except Exception as exc:  # auth, network, permissions, a bad repo id: the hub client's message says which
        error = f"{exc.__class__.__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        run.update_manifest(hub={"repo_id": repo, "strategy": strategy, "status": "failed", "error": error})
        msg = (
            f"The run in '{run.path}' is complete (serve, merge and compare it as usual), but pushing "
            f"{run.adapter_dir} to the hub repository '{repo}' failed: {error}. Check the repo id and that you "
            f"are logged in with write access ('hf auth login' or HF_TOKEN), then push again with {_retry_hint(run, repo)}."
        )
        raise TrainingError(msg) from exc
    record.update(strategy=strategy, status="pushed", error=None)
    run.update_manifest(hub=record)
    log.info("Pushed %s (%d files) to https://huggingface.co/%s", run.adapter_dir, len(record["files"]), repo)
    return record


class HubCheckpointPush(TrainerCallback):
    """``hub_strategy: every_save``: push each saved checkpoint's adapter and tokenizer files."""

    def __init__(self, run: RunDir, repo_id: str) -> None:
        self.run = run
        self.repo_id = repo_id

    def on_save(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        try:
            record = push_folder(
                self.repo_id,
                folder,
                message=f"domainllm: adapter at step {state.global_step} ({self.run.path.name}, in progress)",
                ignore=CHECKPOINT_IGNORE,
            )
        except Exception as exc:  # the run goes on; the final push is what counts
            error = f"{exc.__class__.__name__}: {exc}"
            log.warning(
                "Pushing %s to the hub repo '%s' failed (training continues): %s", folder, self.repo_id, error
            )
            self.run.update_manifest(
                hub={
                    "repo_id": self.repo_id,
                    "status": "checkpoint push failed",
                    "step": state.global_step,
                    "error": error,
                }
            )
            return
        self.run.update_manifest(hub={**record, "status": "checkpoint pushed", "step": state.global_step})
