"""One variant of ``domainllm bench train``, run in a process of its own: load, train a few steps, measure.

Variants (all on the same random model, the same token rows, LoRA r=16 / alpha 32 / dropout 0 on the
seven linear layers of every block):

* ``trl-defaults``: TRL's ``SFTTrainer`` as ``../shared/bench/trl_sft_peer.py`` runs it (4-bit NF4
  with double quantization and bf16 compute, gradient checkpointing on, paged 8-bit AdamW, padded
  batches, TRL's fused LM head). On CPU: full precision, no bf16, AdamW (the CUDA-only parts off).
* ``trl-packing``: the same with ``packing=True`` (TRL's BFD packing), the QA-mix peer.
* ``domainllm``: domainllm's own training path, built by the functions ``domainllm train`` uses
  (``load_base_model`` -> ``plan_speed`` -> ``build_sft_config`` -> ``build_trainer``) from a config
  with the same model, adapter, batch and optimizer, plus ``training.memory_budget_gib`` when given.

A worker prints one JSON line (its measurements) on stdout.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["VARIANTS", "run_variant"]

VARIANTS = ("trl-defaults", "trl-packing", "domainllm")
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def _trl_variant(model_dir: Path, rows: list[dict], opts: dict[str, Any], cuda: bool, packing: bool) -> tuple:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig
    from trl import SFTConfig, SFTTrainer

    quant = None
    if cuda:
        quant = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
        )
    model = AutoModelForCausalLM.from_pretrained(
        model_dir,
        quantization_config=quant,
        dtype=torch.bfloat16 if cuda else torch.float32,
        device_map={"": 0} if cuda else None,
    )
    args = SFTConfig(
        output_dir=tempfile.mkdtemp(prefix="domainllm-bench-"),
        max_length=opts["seq"],
        per_device_train_batch_size=opts["batch"],
        gradient_checkpointing=True,
        bf16=cuda,
        use_cpu=not cuda,
        optim="paged_adamw_8bit" if cuda else "adamw_torch",
        max_steps=opts["steps"],
        logging_steps=10**6,
        report_to="none",
        save_strategy="no",
        dataset_num_proc=1,
        packing=packing,
        disable_tqdm=True,
    )
    lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, task_type="CAUSAL_LM", target_modules=TARGETS)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=lora,
    )
    layers = model.config.num_hidden_layers
    plan = f"batch {opts['batch']}, {layers}/{layers} layers checkpointed, {'BFD packing' if packing else 'padded'}"
    return trainer, plan, 1


def _domainllm_variant(model_dir: Path, rows: list[dict], opts: dict[str, Any], cuda: bool) -> tuple:
    from datasets import Dataset

    from domainllm.config import config_from_dict
    from domainllm.modeling import load_base_model
    from domainllm.training.lora import build_peft_config
    from domainllm.training.sft import build_sft_config, build_trainer
    from domainllm.training.speed import plan_speed

    out = Path(tempfile.mkdtemp(prefix="domainllm-bench-"))
    cfg = config_from_dict(
        {
            "model": {"name_or_path": str(model_dir), "device": "cuda" if cuda else "cpu", "dtype": "auto"},
            "quantization": {"mode": "4bit" if cuda else "none", "double_quant": True},
            "lora": {"r": 16, "alpha": 32, "dropout": 0.0, "target_modules": "all-linear"},
            "training": {
                "output_dir": str(out),
                "per_device_batch_size": opts["batch"],
                "gradient_accumulation_steps": 1,
                "optimizer": "paged_adamw_8bit" if cuda else "adamw_torch",
                "max_seq_length": opts["seq"],
                "max_steps": opts["steps"],
                "eval_strategy": "no",
                "logging_steps": 10**6,
                "memory_budget_gib": opts.get("budget_gib"),
                "seed": 42,
            },
        }
    )
    loaded = load_base_model(cfg.model, cfg.quantization)
    peft_config = build_peft_config(cfg.lora, loaded.model)
    train_ds = Dataset.from_list(rows)
    speed = plan_speed(cfg, loaded, train_ds, peft_config)
    planned = cfg.replace(training=speed.training_config(cfg.training))
    args = build_sft_config(
        planned, out, device=loaded.device, quant_mode=loaded.quant_mode, report_to=[], speed=speed
    )
    args = dataclasses.replace(args, save_strategy="no", load_best_model_at_end=False, disable_tqdm=True)
    trainer = build_trainer(loaded, args, speed, train_ds, None, peft_config)
    layers = len(speed.checkpointed_layers) if speed.checkpointed_layers is not None else None
    total = loaded.model.config.num_hidden_layers
    ckpt = layers if layers is not None else (total if planned.training.gradient_checkpointing else 0)
    plan = (
        f"batch {speed.per_device_batch_size} x {speed.gradient_accumulation_steps}, {ckpt}/{total} layers "
        f"checkpointed, {'padding-free allowed' if speed.padding_free.enabled else 'padded'}, {speed.loss_head} loss"
    )
    return trainer, plan, speed.gradient_accumulation_steps


def run_variant(variant: str, model_dir: Path, rows_path: Path, opts: dict[str, Any]) -> dict[str, Any]:
    """Train ``variant`` for ``opts['steps']`` steps and return its measurements."""
    import torch

    from domainllm.bench.measure import PeakMemory, TokenCounter, step_timer, throughput

    cuda = torch.cuda.is_available() and opts.get("device", "auto") != "cpu"
    rows = [json.loads(line) for line in rows_path.read_text(encoding="utf-8").splitlines()]
    memory = PeakMemory(cuda)
    if not cuda:
        memory.start()  # on CPU: the RSS above the process's start, model included
    if variant == "domainllm":
        trainer, plan, accumulation = _domainllm_variant(model_dir, rows, opts, cuda)
    else:
        trainer, plan, accumulation = _trl_variant(
            model_dir, rows, opts, cuda, packing=variant == "trl-packing"
        )
    timer = step_timer(cuda)
    trainer.add_callback(timer)
    counter = TokenCounter(trainer.data_collator)
    trainer.data_collator = counter
    if cuda:
        memory.start()  # on CUDA: max_memory_allocated from here (the model's weights are still allocated)
    trainer.train()
    peak = memory.stop()
    counts = getattr(counter.collator, "counts", None)  # domainllm's per-batch layout choice
    if counts:
        plan += f" ({counts['flat']} of {sum(counts.values())} batches flattened)"
    result = throughput(timer.times, counter, accumulation, opts["warmup"])
    return {"variant": variant, "plan": plan, "peak_gib": peak, **result}


if __name__ == "__main__":  # python -m domainllm.bench.train_variants VARIANT MODEL_DIR ROWS OPTS_JSON
    import logging

    logging.basicConfig(level=logging.ERROR)
    name, directory, rows_file, options = sys.argv[1:5]
    measured = run_variant(name, Path(directory), Path(rows_file), json.loads(options))
    sys.stdout.write(json.dumps(measured) + "\n")
