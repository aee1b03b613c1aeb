"""``domainllm train``: (Q)LoRA supervised fine-tuning with TRL's SFTTrainer, as one readable recipe.

setup -> train -> save, like a torchtune recipe:

1. **Setup, all checks first.** Trackers, device and quantization mode, the run directory's state,
   the data (train required, val when evaluation asks for it), the base model, tokenization with
   the truncation budget, and the LoRA targets are all validated before anything is written, so a
   mistake costs seconds and leaves an existing run untouched.
2. **Train.** The run directory is (re)created, its manifest marked running, and TRL trains with
   eval loss measured once before the first step. A run that raises, Ctrl-C included, is marked
   failed with the error before the error propagates.
3. **Save.** The adapter (best checkpoint when eval is on), plots, model card, and the completed
   manifest: the contract in :mod:`domainllm.rundir` that ``merge``, ``chat`` and ``compare`` read.

Existing directories: a finished run is replaced only with ``overwrite``; a failed or interrupted
(still "running") run is refused unless ``resume`` (continue from its last complete checkpoint) or
``overwrite`` (start over) says which (:mod:`domainllm.training.outdir`). Examples are tokenized by
:mod:`domainllm.training.tokens`, which counts truncation and builds the exact loss mask. Under
``accelerate launch`` every process runs this same function; only the main process writes files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import resource
import socket
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from domainllm.config import DomainConfig, config_fingerprint, save_config
from domainllm.data.records import documents_sha256, records_sha256
from domainllm.errors import ConfigError, DataError, MissingDependencyError, TrainingError
from domainllm.rundir import STATUS_COMPLETE, RunDir
from domainllm.training.outdir import check_run_dir, prepare_run_dir
from domainllm.training.tokens import DataStats, build_datasets

if TYPE_CHECKING:
    from domainllm.data.records import QADataset

__all__ = ["build_sft_config", "portable_config", "resolve_trackers", "train"]

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------------
# The entry point


def train(
    cfg: DomainConfig, output_dir: str | Path | None = None, resume: bool = False, overwrite: bool = False
) -> Path:
    """Fine-tune ``cfg.model`` on ``cfg.data`` with (Q)LoRA and return the run directory."""
    started = time.perf_counter()
    t = cfg.training
    run = RunDir(Path(output_dir or t.output_dir).expanduser().resolve())
    cfg = cfg.replace(training=dataclasses.replace(t, output_dir=str(run.path)))

    # -- Setup: everything that can fail on user input, before anything is written. ---------------
    from domainllm.defaults import select_device
    from domainllm.modeling import load_base_model, resolve_quant_mode

    report_to = resolve_trackers(t.report_to)
    device = select_device(cfg.model.device)
    quant_mode = resolve_quant_mode(cfg.quantization, device)
    val_needed = t.eval_strategy != "no" or t.early_stopping_patience > 0
    args = build_sft_config(cfg, run.path, device=device, quant_mode=quant_mode, report_to=report_to)
    state = args.distributed_state
    checkpoint = check_run_dir(run, resume=resume, overwrite=overwrite)

    data = _load_data(cfg, val_needed)
    loaded = load_base_model(cfg.model, cfg.quantization, device_map=_device_map(device, state))
    train_ds, eval_ds, stats = build_datasets(data, loaded.tokenizer, cfg)
    from domainllm.training.lora import build_peft_config

    peft_config = build_peft_config(cfg.lora, loaded.model)
    if loaded.quant_mode in ("4bit", "8bit"):
        from peft import prepare_model_for_kbit_training

        loaded.model = prepare_model_for_kbit_training(
            loaded.model,
            use_gradient_checkpointing=t.gradient_checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False},
        )

    # -- The run directory: only now is anything written. -----------------------------------------
    is_main = state.is_main_process
    state.wait_for_everyone()  # every process has checked the directory before the main one changes it
    if is_main:
        prepare_run_dir(run, checkpoint, overwrite)
        save_config(portable_config(cfg), run.config_path)
        run.mark_running(
            run_name=run.path.name,
            output_dir=str(run.path),
            resumed_from=str(checkpoint) if checkpoint else None,
            pid=os.getpid(),
            hostname=socket.gethostname(),
            **_static_manifest(cfg, loaded, data, stats, peft_config, state.num_processes),
        )
    state.wait_for_everyone()

    try:
        return _train_and_save(cfg, run, args, loaded, peft_config, train_ds, eval_ds, checkpoint, started)
    except BaseException as exc:
        if is_main:
            run.mark_failed(exc)
        raise


def _train_and_save(cfg, run, args, loaded, peft_config, train_ds, eval_ds, checkpoint, started) -> Path:
    import torch
    from transformers import EarlyStoppingCallback, PrinterCallback
    from trl import SFTTrainer

    from domainllm.training.callbacks import ManifestProgress, MetricsLogger, ProgressBar
    from domainllm.training.card import write_model_card
    from domainllm.training.plots import read_metrics, write_plots

    t = cfg.training
    callbacks: list[Any] = [MetricsLogger(run.metrics_path), ProgressBar(), ManifestProgress(run)]
    if t.early_stopping_patience > 0:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=t.early_stopping_patience))
    with _quiet_datasets():  # TRL's map() calls over already-tokenized data: bars with nothing to say
        trainer = SFTTrainer(
            model=loaded.model,
            args=args,
            train_dataset=train_ds,
            eval_dataset=eval_ds,
            processing_class=loaded.tokenizer,
            peft_config=peft_config,
            callbacks=callbacks,
        )
    trainer.remove_callback(PrinterCallback)  # raw dicts on stdout; our bar and metrics.jsonl replace them
    for cb in trainer.callback_handler.callbacks:  # TensorBoard writes under RUN/, not under checkpoints/
        if type(cb).__name__ == "TensorBoardCallback":
            cb.logging_dir = str(run.tensorboard_dir)
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

    if checkpoint is None and eval_ds is not None:
        eval_loss_before = trainer.evaluate()["eval_loss"]
        if is_main:
            run.update_manifest(eval_loss_before=eval_loss_before)

    train_start = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    train_runtime = time.perf_counter() - train_start

    s = trainer.state
    best_step = s.best_global_step if args.load_best_model_at_end and s.best_model_checkpoint else None
    last_eval = next((row for row in reversed(s.log_history) if "eval_loss" in row), None)
    if best_step is not None:
        eval_loss_after = s.best_metric
    elif last_eval is not None and last_eval.get("step") == s.global_step:
        eval_loss_after = last_eval["eval_loss"]
    elif eval_ds is not None:
        eval_loss_after = trainer.evaluate()["eval_loss"]
    else:
        eval_loss_after = None

    trainer.save_model(str(run.adapter_dir))  # every process: FSDP gathers the adapter before rank 0 writes
    if not is_main:
        return run.path

    tokens = getattr(trainer, "_total_train_tokens", None)  # TRL's count of non-padding tokens, all processes
    rows = read_metrics(run.metrics_path)
    train_losses = [r["loss"] for r in rows if r.get("loss") is not None]
    summary = {
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
        "peak_rss_mib": _peak_rss_mib(),
        "peak_cuda_mib": round(torch.cuda.max_memory_allocated() / 2**20, 1)
        if torch.cuda.is_available()
        else None,
        "stopped_early": bool(s.max_steps and s.global_step < s.max_steps),
        "wall_time_s": round(time.perf_counter() - started, 2),
    }
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
    return run.path


# ---------------------------------------------------------------------------------------------------
# Setup helpers


def resolve_trackers(requested: list[str]) -> list[str]:
    """TensorBoard (always, when installed) plus the requested trackers, each checked to be installed."""
    import importlib.util

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


def build_sft_config(
    cfg: DomainConfig, run_path: Path, device: str, quant_mode: str, report_to: list[str]
) -> Any:
    """Map our ``training`` section onto TRL's ``SFTConfig`` (checkpoints under RUN/checkpoints)."""
    from trl import SFTConfig

    from domainllm.modeling import resolve_dtype

    t = cfg.training
    if t.optimizer.startswith("paged_") and device != "cuda":
        msg = (
            f"Config key 'training.optimizer' is '{t.optimizer}', but paged optimizers page their state between "
            f"GPU and CPU memory and need CUDA; the device is '{device}'. Use training.optimizer=adamw_torch."
        )
        raise ConfigError(msg)
    evaluate = t.eval_strategy != "no"
    load_best = t.load_best_model_at_end and evaluate
    if t.eval_strategy == "steps":
        save_strategy, save_steps = "steps", t.save_steps or t.eval_steps
        if load_best and save_steps % t.eval_steps:
            msg = (
                f"Config key 'training.save_steps' is {t.save_steps}, not a multiple of training.eval_steps="
                f"{t.eval_steps}, so the best checkpoint could not be restored. Use 0 (save at each evaluation) "
                "or a multiple of eval_steps, or set training.load_best_model_at_end=false."
            )
            raise ConfigError(msg)
    elif t.save_steps > 0:
        save_strategy, save_steps = "steps", t.save_steps
        if load_best:
            msg = (
                f"Config key 'training.save_steps' is {t.save_steps} while training.eval_strategy is 'epoch', so the "
                "best checkpoint could not be restored. Use save_steps=0 (save at each evaluation), "
                "eval_strategy=steps, or training.load_best_model_at_end=false."
            )
            raise ConfigError(msg)
    else:  # save at each evaluation (epoch), or each epoch when there is no evaluation
        save_strategy, save_steps = "epoch", 500
    dtype = resolve_dtype(cfg.quantization.compute_dtype if quant_mode != "none" else cfg.model.dtype, device)
    dtype_name = str(dtype).replace("torch.", "")
    # transformers >= 5.2x renamed gradient_checkpointing to activation_checkpointing (the old name warns).
    fields = {f.name for f in dataclasses.fields(SFTConfig)}
    prefix = "activation" if "activation_checkpointing" in fields else "gradient"
    checkpointing = {
        f"{prefix}_checkpointing": t.gradient_checkpointing,
        f"{prefix}_checkpointing_kwargs": {"use_reentrant": False} if t.gradient_checkpointing else None,
    }
    return SFTConfig(
        **checkpointing,
        output_dir=str(run_path / "checkpoints"),
        run_name=run_path.name,
        # optimisation
        learning_rate=t.learning_rate,
        lr_scheduler_type=t.lr_scheduler,
        warmup_steps=t.warmup_steps if t.warmup_steps > 0 else min(t.warmup_ratio, 0.999),
        num_train_epochs=t.num_epochs,
        max_steps=t.max_steps,
        per_device_train_batch_size=t.per_device_batch_size,
        per_device_eval_batch_size=t.per_device_batch_size,
        gradient_accumulation_steps=t.gradient_accumulation_steps,
        optim=t.optimizer,
        weight_decay=t.weight_decay,
        max_grad_norm=t.max_grad_norm,
        seed=t.seed,
        data_seed=t.seed,
        # precision and placement: mixed precision only where the GPU computes in it
        bf16=device == "cuda" and dtype_name == "bfloat16",
        fp16=device == "cuda" and dtype_name == "float16",
        use_cpu=device == "cpu",
        dataloader_num_workers=t.dataloader_num_workers,
        dataloader_pin_memory=device == "cuda",
        ddp_find_unused_parameters=False,
        # data (already tokenized and truncated by build_datasets; TRL builds the labels from the mask)
        max_length=t.max_seq_length,
        packing=t.packing,
        completion_only_loss=t.completion_only_loss,
        # evaluation, checkpoints, best-checkpoint restore
        eval_strategy=t.eval_strategy,
        eval_steps=t.eval_steps if t.eval_strategy == "steps" else None,
        prediction_loss_only=True,
        save_strategy=save_strategy,
        save_steps=save_steps,
        save_total_limit=t.save_total_limit,
        load_best_model_at_end=load_best,
        metric_for_best_model="eval_loss" if evaluate else None,
        greater_is_better=False if evaluate else None,
        # logging: our own progress bar; the Trainer's shows neither loss nor tokens/s
        logging_strategy="steps",
        logging_steps=t.logging_steps,
        logging_first_step=True,
        report_to=report_to or "none",
        disable_tqdm=True,
        # hub
        push_to_hub=t.push_to_hub,
        hub_model_id=t.hub_model_id,
        hub_strategy=t.hub_strategy,
    )


def _device_map(device: str, state: Any) -> Any:
    # One process per GPU under accelerate/torchrun: each loads its copy onto its own device.
    if device == "cuda" and state.num_processes > 1:
        return {"": state.local_process_index}
    return None


def _split_source(cfg: DomainConfig, split: str) -> str:
    from domainllm.resources import resolve_path

    explicit = getattr(cfg.data, f"{split}_file")
    try:
        root = resolve_path(cfg.data.path, cfg.base_dir, "data.path")
    except ConfigError:
        root = Path(cfg.data.path)
    if explicit:
        return str(root / explicit)
    if cfg.data.format == "folder":
        return str(root / "qa" / f"{split}.jsonl")
    return f"the {split} split of {cfg.data.path}"


def _load_data(cfg: DomainConfig, val_needed: bool) -> QADataset:
    from domainllm.data import load_domain

    data = load_domain(cfg.data, cfg.base_dir)
    if not data.train:
        msg = (
            f"The training split is empty ({_split_source(cfg, 'train')}): there is nothing to fine-tune on. Add "
            "question/answer pairs to it, or point data.path / data.train_file at a non-empty file."
        )
        raise DataError(msg)
    if val_needed and not data.val:
        t = cfg.training
        needs = ["eval loss", "best-checkpoint restore"] + (
            ["early stopping"] if t.early_stopping_patience else []
        )
        msg = (
            f"The validation split is empty ({_split_source(cfg, 'val')}), but training.eval_strategy is "
            f"'{t.eval_strategy}'{' and training.early_stopping_patience is ' + str(t.early_stopping_patience) if t.early_stopping_patience else ''}, "
            f"which need it ({', '.join(needs)}). Add a val split, set data.val_fraction=0.1 to hold out part of "
            "train, or set training.eval_strategy=no (with training.early_stopping_patience=0)."
        )
        raise TrainingError(msg)
    return data


@contextlib.contextmanager
def _quiet_datasets():
    from datasets.utils import logging as ds_logging

    was_enabled = ds_logging.is_progress_bar_enabled()
    ds_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            ds_logging.enable_progress_bar()


# ---------------------------------------------------------------------------------------------------
# Manifest and config helpers


def _static_manifest(cfg, loaded, data, stats: DataStats, peft_config, num_processes: int) -> dict[str, Any]:
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
        },
        "examples": dataclasses.asdict(stats),
        "target_modules": sorted(targets) if isinstance(targets, list | set) else targets,
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


def _peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / 2**20 if sys.platform == "darwin" else peak / 1024, 1)  # bytes on macOS, KiB on Linux
