"""The run skeleton every trainer shares: directory -> trainer -> train -> save -> publish.

A trainer module (:mod:`domainllm.training.sft`; a preference trainer beside it later) does its own
setup (data, base model, datasets, its TRL config), all checks first, then hands the rest to these
pieces, so the run directory, manifest, metrics, plots, model card and hub push are written one way:

1. :func:`resolve_run`: the absolute run path, and the config pointing at it.
2. :func:`start_run`: once every check passed, prepare the directory (:mod:`.outdir`), write the
   portable config.yaml and mark the run running with what is known before the first step.
3. :func:`recording_failure`: anything that raises before the run is complete marks it failed,
   with the error, before it propagates; Ctrl-C or SIGTERM marks it interrupted instead, with the
   exact command that resumes it (raised as :class:`~domainllm.errors.Interrupted`).
4. :func:`trainer_callbacks`: metrics.jsonl, the progress bar, manifest progress, early stopping.
5. :func:`fit_and_save`: eval loss before, train (or resume), eval loss after, the adapter (the best
   checkpoint when evaluating), summary, plots, card, ``complete``, and the hub push.

Under ``accelerate launch`` every process runs the same calls; only the main process writes files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from domainllm.config import DomainConfig, save_config
from domainllm.errors import Interrupted
from domainllm.fsio import umask_modes
from domainllm.rundir import STATUS_COMPLETE, RunDir
from domainllm.training.manifest import portable_config, training_summary
from domainllm.training.outdir import prepare_run_dir

__all__ = [
    "fit_and_save",
    "recording_failure",
    "resolve_run",
    "start_run",
    "train_resume_command",
    "trainer_callbacks",
]

log = logging.getLogger(__name__)


def resolve_run(cfg: DomainConfig, output_dir: str | Path | None) -> tuple[DomainConfig, RunDir]:
    """The run directory (``output_dir`` or training.output_dir, absolute) and the config naming it."""
    run = RunDir(Path(output_dir or cfg.training.output_dir).expanduser().resolve())
    return cfg.replace(training=dataclasses.replace(cfg.training, output_dir=str(run.path))), run


def start_run(
    cfg: DomainConfig,
    run: RunDir,
    state: Any,
    *,
    checkpoint: Path | None,
    overwrite: bool,
    manifest: dict[str, Any],
) -> None:
    """Prepare the directory and mark the run running (main process), between two barriers.

    ``state`` is the Accelerate ``PartialState`` of the launch; ``manifest`` the fields known before
    the first step (:func:`domainllm.training.manifest.static_manifest`).
    """
    state.wait_for_everyone()  # every process has checked the directory before the main one changes it
    if state.is_main_process:
        prepare_run_dir(run, checkpoint, overwrite)
        save_config(portable_config(cfg), run.config_path)
        run.mark_running(
            run_name=run.path.name,
            output_dir=str(run.path),
            resumed_from=str(checkpoint) if checkpoint else None,
            pid=os.getpid(),
            hostname=socket.gethostname(),
            **manifest,
        )
    state.wait_for_everyone()


@contextlib.contextmanager
def recording_failure(run: RunDir, is_main: bool) -> Iterator[None]:
    """Mark the run failed with the error when the block raises (then re-raise); interrupted on Ctrl-C/SIGTERM.

    An interrupt is not a failure: the run is marked ``interrupted`` with the command that resumes it
    from its last checkpoint, and :class:`Interrupted` (a KeyboardInterrupt) is raised saying so. A
    run already marked complete stays complete: what can fail after that (the hub push) leaves the
    run usable on disk and records its own error in the manifest.
    """
    try:
        yield
    except KeyboardInterrupt as exc:
        if not is_main or run.is_complete or isinstance(exc, Interrupted):
            raise
        raise _record_interrupt(run) from exc
    except BaseException as exc:
        if is_main and not run.is_complete:
            run.mark_failed(exc)
        raise


def train_resume_command(run: RunDir) -> str:
    """The exact command that continues the run in ``run`` from its last checkpoint."""
    from domainllm.invocation import resume_command

    return resume_command(
        "train", run.path, f"domainllm.train(cfg, output_dir={str(run.path)!r}, resume=True)"
    )


def _record_interrupt(run: RunDir) -> Interrupted:
    """Mark ``run`` interrupted (with the resume command when a checkpoint exists); the exception saying so."""
    from domainllm.training.outdir import last_checkpoint

    checkpoint = last_checkpoint(run.checkpoints_dir)
    if checkpoint is None:
        run.mark_interrupted(None, resumable_from=None)
        return Interrupted(
            f"training stopped before its first checkpoint, so there is nothing to resume; '{run.path}' is marked "
            "interrupted. Start it over with the same command and --overwrite."
        )
    command = train_resume_command(run)
    run.mark_interrupted(command, resumable_from=str(checkpoint))
    return Interrupted(
        f"training stopped; '{run.path}' is marked interrupted and resumes from its last checkpoint "
        f"({checkpoint.name}) with: {command}"
    )


def trainer_callbacks(cfg: DomainConfig, run: RunDir) -> list[Any]:
    """The callbacks every trainer gets: metrics file, progress bar, manifest progress, early stopping, hub."""
    from transformers import EarlyStoppingCallback

    from domainllm.training.callbacks import ManifestProgress, MetricsLogger, ProgressBar

    t = cfg.training
    callbacks: list[Any] = [MetricsLogger(run.metrics_path), ProgressBar(), ManifestProgress(run)]
    if t.early_stopping_patience > 0:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=t.early_stopping_patience))
    if t.push_to_hub and t.hub_strategy == "every_save":
        from domainllm.training.hub import HubCheckpointPush

        callbacks.append(HubCheckpointPush(run, t.hub_model_id))
    return callbacks


def _tidy_callbacks(trainer: Any, run: RunDir) -> None:
    from transformers import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # raw dicts on stdout; our bar and metrics.jsonl replace them
    for cb in trainer.callback_handler.callbacks:  # TensorBoard writes under RUN/, not under checkpoints/
        if type(cb).__name__ == "TensorBoardCallback":
            cb.logging_dir = str(run.tensorboard_dir)


def _eval_loss_after(trainer: Any, best_step: int | None, has_eval: bool) -> float | None:
    """The best checkpoint's eval loss, else the last step's (measured again if it was not)."""
    s = trainer.state
    last_eval = next((row for row in reversed(s.log_history) if "eval_loss" in row), None)
    if best_step is not None:
        return s.best_metric
    if last_eval is not None and last_eval.get("step") == s.global_step:
        return last_eval["eval_loss"]
    if has_eval:
        return trainer.evaluate()["eval_loss"]
    return None


def fit_and_save(
    cfg: DomainConfig,
    run: RunDir,
    trainer: Any,
    *,
    has_eval: bool,
    checkpoint: Path | None,
    started: float,
) -> Path:
    """Train ``trainer`` (a TRL/transformers Trainer built with :func:`trainer_callbacks`) and save the run."""
    from domainllm.training.card import write_model_card
    from domainllm.training.plots import read_metrics, write_plots

    _tidy_callbacks(trainer, run)
    is_main = trainer.is_world_process_zero()
    trainable, total = trainer.model.get_nb_trainable_parameters()
    targets = trainer.model.peft_config["default"].target_modules
    if is_main:
        run.update_manifest(
            parameters={"trainable": trainable, "total": total, "share": trainable / total},
            target_modules=sorted({name.rsplit(".", 1)[-1] for name in targets})
            if isinstance(targets, list | set)
            else targets,
        )

    if checkpoint is None and has_eval:
        eval_loss_before = trainer.evaluate()["eval_loss"]
        if is_main:
            run.update_manifest(eval_loss_before=eval_loss_before)

    train_start = time.perf_counter()
    try:
        result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    finally:
        for cb in trainer.callback_handler.callbacks:
            if hasattr(cb, "close") and type(cb).__name__ == "ProgressBar":
                cb.close()
    train_runtime = time.perf_counter() - train_start

    s = trainer.state
    best_step = (
        s.best_global_step if trainer.args.load_best_model_at_end and s.best_model_checkpoint else None
    )
    eval_loss_after = _eval_loss_after(trainer, best_step, has_eval)
    trainer.save_model(str(run.adapter_dir))  # every process: FSDP gathers the adapter before rank 0 writes
    if not is_main:
        return run.path
    umask_modes(run.adapter_dir)  # safetensors writes the weights 0600; the adapter is meant to be shared

    rows = read_metrics(run.metrics_path)
    summary = training_summary(
        trainer,
        result,
        best_step=best_step,
        eval_loss_after=eval_loss_after,
        train_losses=[r["loss"] for r in rows if r.get("loss") is not None],
        train_runtime=train_runtime,
        started=started,
    )
    manifest = run.update_manifest(**summary)
    write_plots(run.metrics_path, run.plots_dir, title=run.path.name, best_step=best_step)
    write_model_card(cfg, {**manifest, "status": STATUS_COMPLETE}, run.path)
    run.mark_complete()
    log.info(
        "Trained %d steps in %.0f s (%.0f tokens/s); eval loss %s -> %s. Run: %s",
        s.global_step,
        train_runtime,
        summary["tokens_per_second"] or 0,
        manifest.get("eval_loss_before"),
        eval_loss_after,
        run.path,
    )
    if cfg.training.push_to_hub:
        from domainllm.training.hub import push_run

        push_run(
            run.path, cfg.training.hub_model_id
        )  # a failure leaves the run complete and says how to retry
    return run.path
