"""``domainllm train --method dpo``: preference tuning with TRL's DPOTrainer, the reference for free.

The classic recipe keeps a second, frozen copy of the model whose log-probabilities the KL term
holds the policy to. With a LoRA adapter that copy costs nothing:

* **from the base** (``training.from_run`` null): a fresh adapter is trained and the reference is the
  same model with the adapter disabled (TRL with a PEFT config and ``ref_model=None``);
* **from an SFT run** (``--from RUN``): the run's adapter is loaded *trainable* as ``default`` and
  TRL adds a frozen copy of it as adapter ``ref`` on the same base, so the reference log-probabilities
  are the SFT model's while the base weights exist once.

Setup is checked before anything is written (the preference data with file/line errors and the
leakage check against val/test questions, the SFT run, the base), then the shared run skeleton of
:mod:`domainllm.training.run` writes the same run directory as SFT (resolved config, manifest,
metrics, loss/LR plots, model card, resume). The val preference accuracy and reward margin before
and after training (:mod:`.prefscore`) go into the manifest (``preferences``), ``metrics_dpo.json``
and ``plots/preferences.png``.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any

from domainllm.config import DomainConfig
from domainllm.errors import ConfigError, DataError

log = logging.getLogger(__name__)

__all__ = ["build_dpo_config", "build_dpo_trainer", "load_policy", "train_dpo"]


def _preference_data(cfg: DomainConfig) -> tuple[Any, Any]:
    """The preference pairs (checked for leakage against val/test questions) and the QA splits."""
    from domainllm.data import load_domain
    from domainllm.data.preferences import check_preference_leakage, load_preferences

    if not cfg.data.preferences:
        msg = (
            "Config key 'data.preferences' is not set, but training.method is 'dpo', which trains on preference "
            "pairs. Point it at a folder with train.jsonl/val.jsonl of prompt/chosen/rejected rows (the shipped "
            "dental set is builtin:dental/preferences), or build pairs with 'domainllm preferences RUN'."
        )
        raise ConfigError(msg)
    prefs = load_preferences(cfg.data.preferences, cfg.base_dir)
    data = load_domain(cfg.data, cfg.base_dir)
    for split in ("val", "test"):
        check_preference_leakage(prefs.train, data.split(split), split)
    return prefs, data


def _from_run(cfg: DomainConfig) -> Any:
    """The SFT run DPO starts from (complete, adapter readable, same base), or None for the base."""
    from domainllm.rundir import RunDir
    from domainllm.serve.adapters import check_same_base

    value = cfg.training.from_run
    if value is None:
        return None
    if value.startswith("recipe:"):
        msg = (
            f"Config key 'training.from_run' is {value!r}, which names another recipe of a comparison; it is "
            "resolved only by 'domainllm compare' (compare.recipes). For 'domainllm train' give the SFT run "
            "directory: --from runs/dental."
        )
        raise ConfigError(msg)
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = (Path(cfg.base_dir) / path) if (Path(cfg.base_dir) / path).exists() else path.resolve()
    run = RunDir.open(path)
    check_same_base({"from": run.path}, cfg)
    return run


def load_policy(cfg: DomainConfig, loaded: Any, start: Any) -> tuple[Any, Any]:
    """``(model, peft_config)`` for the DPOTrainer: the base with a LoRA config, or the SFT run's adapter trainable.

    From an SFT run the model is a PeftModel whose ``default`` adapter is the run's, trainable;
    DPOTrainer then adds the frozen ``ref`` copy itself (TRL 1.x), so no peft_config is passed.
    """
    from domainllm.training.lora import build_peft_config

    if start is None:
        return loaded.model, build_peft_config(cfg.lora, loaded.model)
    from peft import PeftModel

    model = PeftModel.from_pretrained(loaded.model, str(start.adapter_dir), is_trainable=True)
    return model, None


def build_dpo_config(
    cfg: DomainConfig, run_path: Path, device: str, quant_mode: str, report_to: list[str]
) -> Any:
    """Our ``training`` section as TRL's ``DPOConfig`` (beta, loss type, label smoothing, lengths)."""
    from trl import DPOConfig

    from domainllm.training.args import trainer_arguments

    t = cfg.training
    shared = trainer_arguments(
        cfg, run_path, device=device, quant_mode=quant_mode, report_to=report_to, config_class=DPOConfig
    )
    return DPOConfig(
        **shared,
        beta=t.dpo_beta,
        loss_type=[t.dpo_loss_type],
        label_smoothing=t.dpo_label_smoothing,
        max_length=t.max_seq_length,
    )


def build_dpo_trainer(
    model: Any,
    tokenizer: Any,
    args: Any,
    train_rows: list[dict],
    val_rows: list[dict],
    peft_config: Any,
    callbacks: list[Any],
) -> Any:
    """TRL's DPOTrainer with ``ref_model=None``: the reference is the adapter disabled, or the ``ref`` adapter."""
    from datasets import Dataset
    from trl import DPOTrainer

    from domainllm.training.sft import _quiet_datasets

    with _quiet_datasets():
        return DPOTrainer(
            model=model,
            ref_model=None,
            args=args,
            train_dataset=Dataset.from_list(train_rows),
            eval_dataset=Dataset.from_list(val_rows) if val_rows else None,
            processing_class=tokenizer,
            peft_config=peft_config,
            callbacks=callbacks,
        )


def train_dpo(
    cfg: DomainConfig, output_dir: str | Path | None = None, resume: bool = False, overwrite: bool = False
) -> Path:
    """Preference-tune ``cfg.model`` (or the SFT run ``training.from_run``) on ``data.preferences``."""
    from domainllm.data.preferences import to_trl_rows
    from domainllm.defaults import select_device
    from domainllm.fsio import atomic_write_json
    from domainllm.modeling import load_base_model, resolve_quant_mode
    from domainllm.training.args import device_map, resolve_trackers
    from domainllm.training.manifest import portable_config, static_manifest
    from domainllm.training.outdir import check_run_dir
    from domainllm.training.prefscore import pair_logps, plot_preferences, preference_metrics
    from domainllm.training.resume import check_resume, resume_record
    from domainllm.training.run import (
        fit_and_save,
        recording_failure,
        resolve_run,
        start_run,
        trainer_callbacks,
    )
    from domainllm.training.tokens import DataStats

    started = time.perf_counter()
    from domainllm.data.preferences import with_default_preferences

    cfg, run = resolve_run(with_default_preferences(cfg), output_dir)
    t = cfg.training

    # -- Setup: all checks before anything is written. ----------------------------------------------
    report_to = resolve_trackers(t.report_to)
    device = select_device(cfg.model.device)
    quant_mode = resolve_quant_mode(cfg.quantization, device)
    args = build_dpo_config(cfg, run.path, device, quant_mode, report_to)
    state = args.distributed_state
    checkpoint = check_run_dir(run, resume=resume, overwrite=overwrite)
    start = _from_run(cfg)
    prefs, data = _preference_data(cfg)
    if t.eval_strategy != "no" and not prefs.val:
        msg = (
            f"The preference set {prefs.source} has no val pairs, but training.eval_strategy is '{t.eval_strategy}' "
            "and the before/after preference accuracy is measured on them. Add val.jsonl beside train.jsonl, or set "
            "training.eval_strategy=no."
        )
        raise DataError(msg)
    changes = check_resume(run, portable_config(cfg), data, checkpoint) if checkpoint is not None else {}
    loaded = load_base_model(cfg.model, cfg.quantization, device_map=device_map(device, state))
    model, peft_config = load_policy(cfg, loaded, start)
    train_rows = to_trl_rows(prefs.train, cfg.data.system_prompt)
    val_rows = to_trl_rows(prefs.val, cfg.data.system_prompt)

    is_main = state.is_main_process
    stats = DataStats(train=len(train_rows), val=len(val_rows))
    manifest: dict[str, Any] = {}
    if is_main:
        lora = peft_config if peft_config is not None else model.peft_config["default"]
        manifest = static_manifest(cfg, loaded, data, stats, lora, state.num_processes)
        manifest["method"] = "dpo"
        manifest["dpo"] = {
            "beta": t.dpo_beta,
            "loss_type": t.dpo_loss_type,
            "label_smoothing": t.dpo_label_smoothing,
            "from_run": str(start.path) if start is not None else None,
            "reference": "sft adapter (frozen copy 'ref')"
            if start is not None
            else "base (adapter disabled)",
            "preferences": {"source": prefs.source, "train": len(train_rows), "val": len(val_rows)},
        }
        if checkpoint is not None:
            manifest.update(resume_record(run, checkpoint, changes))
    start_run(cfg, run, state, checkpoint=checkpoint, overwrite=overwrite, manifest=manifest)

    # -- Train and save. ------------------------------------------------------------------------------
    with recording_failure(run, is_main):
        trainer = build_dpo_trainer(
            model, loaded.tokenizer, args, train_rows, val_rows, peft_config, trainer_callbacks(cfg, run)
        )
        before_logps = (
            pair_logps(trainer.model, loaded.tokenizer, val_rows, t.max_seq_length) if val_rows else []
        )
        path = fit_and_save(
            cfg,
            run,
            trainer,
            has_eval=bool(val_rows) and t.eval_strategy != "no",
            checkpoint=checkpoint,
            started=started,
        )
        shutil.rmtree(
            run.adapter_dir / "ref", ignore_errors=True
        )  # the frozen reference copy is not the run's adapter
        if is_main and val_rows:
            after_logps = pair_logps(trainer.model, loaded.tokenizer, val_rows, t.max_seq_length)
            record = {
                "before": preference_metrics(before_logps, before_logps, t.dpo_beta),
                "after": preference_metrics(after_logps, before_logps, t.dpo_beta),
                "resumed": checkpoint is not None,
            }
            atomic_write_json(run.path / "metrics_dpo.json", record)
            plot_preferences(
                record["before"], record["after"], run.plots_dir / "preferences.png", run.path.name
            )
            run.update_manifest(preferences=record)
        return path
