"""``domainllm train``: (Q)LoRA supervised fine-tuning with TRL's SFTTrainer, as one readable recipe.

setup -> train -> save, like a torchtune recipe:

1. **Setup, all checks first.** Trackers, device and quantization mode, the run directory's state,
   the data (train required, val when evaluation asks for it), the base model, tokenization with
   the truncation budget, and the LoRA targets are all validated before anything is written, so a
   mistake costs seconds and leaves an existing run untouched.
2. **Train.** The run directory is (re)created, its manifest marked running, and TRL trains with
   eval loss measured once before the first step. A run that raises is marked failed with the
   error before the error propagates; Ctrl-C or SIGTERM marks it interrupted, with the command
   that resumes it. A resume must use the config and data the checkpoints were trained with
   (:mod:`domainllm.training.resume`: more epochs, another eval/save cadence are allowed and
   recorded), checked before anything is written.
3. **Save.** The adapter (best checkpoint when eval is on), plots, model card, and the completed
   manifest: the contract in :mod:`domainllm.rundir` that ``merge``, ``chat`` and ``compare`` read;
   then, with ``training.push_to_hub``, the adapter and card go to the hub (:mod:`.hub`).

Steps 2 and 3 are the shared run skeleton in :mod:`domainllm.training.run`; what is SFT's own lives
here: the data checks, tokenization (:mod:`domainllm.training.tokens`, which counts truncation and
builds the exact loss mask), the speed plan (:mod:`domainllm.training.speed`: padding-free batches,
the loss head, the memory budget) and the ``SFTTrainer``. Existing directories: a finished run is
replaced only with ``overwrite``; a failed, interrupted or killed (still "running") run is
refused unless ``resume`` (continue from its last complete checkpoint) or ``overwrite`` (start over)
says which (:mod:`domainllm.training.outdir`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from domainllm.config import DomainConfig
from domainllm.errors import ConfigError, DataError, TrainingError
from domainllm.training.args import device_map, resolve_trackers, trainer_arguments
from domainllm.training.outdir import check_run_dir
from domainllm.training.run import fit_and_save, recording_failure, resolve_run, start_run, trainer_callbacks
from domainllm.training.tokens import build_datasets

if TYPE_CHECKING:
    from domainllm.data.records import QADataset
    from domainllm.training.speed import SpeedSetup

__all__ = ["build_sft_config", "build_trainer", "train"]


def train(
    cfg: DomainConfig, output_dir: str | Path | None = None, resume: bool = False, overwrite: bool = False
) -> Path:
    """Fine-tune ``cfg.model`` on ``cfg.data`` with (Q)LoRA and return the run directory."""
    if cfg.training.method == "dpo":  # preference tuning: its own setup, the same run skeleton
        from domainllm.training.dpo import train_dpo

        return train_dpo(cfg, output_dir, resume=resume, overwrite=overwrite)
    started = time.perf_counter()
    cfg, run = resolve_run(cfg, output_dir)
    t = cfg.training

    # -- Setup: everything that can fail on user input, before anything is written. ---------------
    from domainllm.defaults import select_device
    from domainllm.modeling import load_base_model, resolve_quant_mode
    from domainllm.training.hub import check_can_push
    from domainllm.training.lora import build_peft_config
    from domainllm.training.manifest import portable_config, static_manifest
    from domainllm.training.resume import check_resume, resume_record
    from domainllm.training.speed import plan_speed

    check_can_push(cfg)
    report_to = resolve_trackers(t.report_to)
    device = select_device(cfg.model.device)
    quant_mode = resolve_quant_mode(cfg.quantization, device)
    val_needed = t.eval_strategy != "no" or t.early_stopping_patience > 0
    args = build_sft_config(cfg, run.path, device=device, quant_mode=quant_mode, report_to=report_to)
    state = args.distributed_state
    checkpoint = check_run_dir(run, resume=resume, overwrite=overwrite)

    data = _load_data(cfg, val_needed)
    changes = check_resume(run, portable_config(cfg), data, checkpoint) if checkpoint is not None else {}
    loaded = load_base_model(cfg.model, cfg.quantization, device_map=device_map(device, state))
    train_ds, eval_ds, stats = build_datasets(data, loaded.tokenizer, cfg)
    peft_config = build_peft_config(cfg.lora, loaded.model)
    # No prepare_model_for_kbit_training: it casts a 4/8-bit base's embeddings, norms and head to fp32
    # (+1.96 GiB on the Llama-3-8B shape); TRL's own handling runs instead (see training/speed.py).
    speed = plan_speed(cfg, loaded, train_ds, peft_config)
    planned = cfg.replace(training=speed.training_config(t))
    args = build_sft_config(
        planned, run.path, device=device, quant_mode=quant_mode, report_to=report_to, speed=speed
    )

    # -- The run directory: only now is anything written. -----------------------------------------
    is_main = state.is_main_process
    manifest = static_manifest(cfg, loaded, data, stats, peft_config, state.num_processes) if is_main else {}
    if is_main:
        manifest["speed"] = speed.as_dict()
        if checkpoint is not None:
            manifest.update(resume_record(run, checkpoint, changes))
    start_run(cfg, run, state, checkpoint=checkpoint, overwrite=overwrite, manifest=manifest)

    # -- Train and save. ----------------------------------------------------------------------------
    with recording_failure(run, is_main):
        trainer = build_trainer(
            loaded, args, speed, train_ds, eval_ds, peft_config, callbacks=trainer_callbacks(cfg, run)
        )
        return fit_and_save(
            cfg, run, trainer, has_eval=eval_ds is not None, checkpoint=checkpoint, started=started
        )


def build_trainer(
    loaded: Any,
    args: Any,
    speed: SpeedSetup,
    train_ds: Any,
    eval_ds: Any,
    peft_config: Any,
    callbacks: list[Any] | None = None,
) -> Any:
    """The ``SFTTrainer`` (the kept-logits one when the plan says so) for a planned run.

    :func:`train` builds its trainer here, and so does ``domainllm bench train``, so the benchmark
    measures exactly the training path a user's run takes.
    """
    from trl import SFTTrainer

    from domainllm.training.loss import kept_logits_trainer

    trainer_class = kept_logits_trainer() if speed.loss_head == "kept-logits" else SFTTrainer
    with _quiet_datasets():  # TRL's map() calls over already-tokenized data: bars with nothing to say
        return trainer_class(
            model=loaded.model,
            args=args,
            train_dataset=train_ds,
            eval_dataset=eval_ds,
            processing_class=loaded.tokenizer,
            peft_config=peft_config,
            data_collator=speed.collator(loaded.tokenizer.pad_token_id),
            callbacks=callbacks or [],
        )


def build_sft_config(
    cfg: DomainConfig,
    run_path: Path,
    device: str,
    quant_mode: str,
    report_to: list[str],
    speed: SpeedSetup | None = None,
) -> Any:
    """Map our ``training`` section onto TRL's ``SFTConfig`` (checkpoints under RUN/checkpoints).

    ``speed`` (:func:`domainllm.training.speed.plan_speed`) adds Liger; its padding-free collator is
    given to the trainer by :func:`build_trainer`.
    """
    from trl import SFTConfig

    t = cfg.training
    shared = trainer_arguments(
        cfg, run_path, device=device, quant_mode=quant_mode, report_to=report_to, config_class=SFTConfig
    )
    return SFTConfig(
        **shared,
        # data (already tokenized and truncated by build_datasets; TRL builds the labels from the mask)
        max_length=t.max_seq_length,
        packing=t.packing,
        completion_only_loss=t.completion_only_loss,
        use_liger_kernel=bool(speed and speed.liger),
        torch_compile=t.compile,
    )


# ---------------------------------------------------------------------------------------------------
# Setup helpers


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
def _quiet_datasets() -> Iterator[None]:
    from datasets.utils import logging as ds_logging

    was_enabled = ds_logging.is_progress_bar_enabled()
    ds_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            ds_logging.enable_progress_bar()
