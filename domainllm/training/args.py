"""Our ``training`` section as a TRL trainer config: the mapping every trainer shares.

:func:`trainer_arguments` holds what any ``transformers.TrainingArguments`` subclass needs from the
config (optimisation, precision and placement, evaluation, checkpoints and best-checkpoint restore,
logging), with the checks that refuse settings the Trainer would accept and then fail on. A trainer
adds its own fields on top (``build_sft_config`` in :mod:`domainllm.training.sft`). The Trainer's own
hub push is always off: domainllm pushes the run's adapter and model card itself
(:mod:`domainllm.training.hub`).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
from pathlib import Path
from typing import Any

from domainllm.config import DomainConfig
from domainllm.errors import ConfigError, MissingDependencyError

__all__ = ["device_map", "resolve_trackers", "trainer_arguments"]

log = logging.getLogger(__name__)


def resolve_trackers(requested: list[str]) -> list[str]:
    """TensorBoard (always, when installed) plus the requested trackers, each checked to be installed."""
    trackers = []
    if (
        importlib.util.find_spec("tensorboard") is not None
        or importlib.util.find_spec("tensorboardX") is not None
    ):
        trackers.append("tensorboard")
    else:
        log.warning("TensorBoard is not installed, so no event files are written; 'pip install tensorboard'.")
    for name in requested:
        if name == "tensorboard":
            continue
        if importlib.util.find_spec(name) is None:
            msg = (
                f"Config key 'training.report_to' asks for {name!r}, which is not installed. Install it with "
                f"\"pip install 'domainllm[{name}]'\" (or 'pip install {name}'), or remove it from training.report_to."
            )
            raise MissingDependencyError(msg)
        trackers.append(name)
    return trackers


def _save_schedule(cfg: DomainConfig) -> tuple[str, int]:
    """``(save_strategy, save_steps)``: checkpoints at each evaluation unless save_steps says otherwise."""
    t = cfg.training
    load_best = t.load_best_model_at_end and t.eval_strategy != "no"
    if t.eval_strategy == "steps":
        save_steps = t.save_steps or t.eval_steps
        if load_best and save_steps % t.eval_steps:
            msg = (
                f"Config key 'training.save_steps' is {t.save_steps}, not a multiple of training.eval_steps="
                f"{t.eval_steps}, so the best checkpoint could not be restored. Use 0 (save at each evaluation) "
                "or a multiple of eval_steps, or set training.load_best_model_at_end=false."
            )
            raise ConfigError(msg)
        return "steps", save_steps
    if t.save_steps > 0:
        if load_best:
            msg = (
                f"Config key 'training.save_steps' is {t.save_steps} while training.eval_strategy is 'epoch', so the "
                "best checkpoint could not be restored. Use save_steps=0 (save at each evaluation), "
                "eval_strategy=steps, or training.load_best_model_at_end=false."
            )
            raise ConfigError(msg)
        return "steps", t.save_steps
    return "epoch", 500  # save at each evaluation (epoch), or each epoch when there is no evaluation


def trainer_arguments(
    cfg: DomainConfig,
    run_path: Path,
    *,
    device: str,
    quant_mode: str,
    report_to: list[str],
    config_class: type,
) -> dict[str, Any]:
    """Keyword arguments for ``config_class`` (a TrainingArguments subclass); checkpoints go to RUN/checkpoints."""
    from domainllm.modeling import resolve_dtype

    t = cfg.training
    if t.optimizer.startswith("paged_") and device != "cuda":
        msg = (
            f"Config key 'training.optimizer' is '{t.optimizer}', but paged optimizers page their state between "
            f"GPU and CPU memory and need CUDA; the device is '{device}'. Use training.optimizer=adamw_torch."
        )
        raise ConfigError(msg)
    evaluate = t.eval_strategy != "no"
    save_strategy, save_steps = _save_schedule(cfg)
    dtype = resolve_dtype(cfg.quantization.compute_dtype if quant_mode != "none" else cfg.model.dtype, device)
    dtype_name = str(dtype).replace("torch.", "")
    # transformers >= 5.2x renamed gradient_checkpointing to activation_checkpointing (the old name warns).
    fields = {f.name for f in dataclasses.fields(config_class)}
    prefix = "activation" if "activation_checkpointing" in fields else "gradient"
    return {
        f"{prefix}_checkpointing": t.gradient_checkpointing,
        f"{prefix}_checkpointing_kwargs": {"use_reentrant": False} if t.gradient_checkpointing else None,
        "output_dir": str(run_path / "checkpoints"),
        "run_name": run_path.name,
        # optimisation
        "learning_rate": t.learning_rate,
        "lr_scheduler_type": t.lr_scheduler,
        "warmup_steps": t.warmup_steps if t.warmup_steps > 0 else min(t.warmup_ratio, 0.999),
        "num_train_epochs": t.num_epochs,
        "max_steps": t.max_steps,
        "per_device_train_batch_size": t.per_device_batch_size,
        "per_device_eval_batch_size": t.per_device_batch_size,
        "gradient_accumulation_steps": t.gradient_accumulation_steps,
        "optim": t.optimizer,
        "weight_decay": t.weight_decay,
        "max_grad_norm": t.max_grad_norm,
        "seed": t.seed,
        "data_seed": t.seed,
        # precision and placement: mixed precision only where the GPU computes in it
        "bf16": device == "cuda" and dtype_name == "bfloat16",
        "fp16": device == "cuda" and dtype_name == "float16",
        "use_cpu": device == "cpu",
        "dataloader_num_workers": t.dataloader_num_workers,
        "dataloader_pin_memory": device == "cuda",
        "ddp_find_unused_parameters": False,
        # evaluation, checkpoints, best-checkpoint restore
        "eval_strategy": t.eval_strategy,
        "eval_steps": t.eval_steps if t.eval_strategy == "steps" else None,
        "prediction_loss_only": True,
        "save_strategy": save_strategy,
        "save_steps": save_steps,
        "save_total_limit": t.save_total_limit,
        "load_best_model_at_end": t.load_best_model_at_end and evaluate,
        "metric_for_best_model": "eval_loss" if evaluate else None,
        "greater_is_better": False if evaluate else None,
        # logging: our own progress bar; the Trainer's shows neither loss nor tokens/s
        "logging_strategy": "steps",
        "logging_steps": t.logging_steps,
        "logging_first_step": True,
        "report_to": report_to or "none",
        "disable_tqdm": True,
        # the hub: never the Trainer's push (it uploads checkpoints/ and its own card)
        "push_to_hub": False,
    }


def device_map(device: str, state: Any) -> Any:
    """Where each process loads the base: one process per GPU under accelerate/torchrun, else the default."""
    if device == "cuda" and state.num_processes > 1:
        return {"": state.local_process_index}
    return None
