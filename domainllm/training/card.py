"""The run's README.md: a model card a colleague can read without opening the manifest.

Written from the resolved config and the manifest only, so the card can never claim a number the
manifest does not hold, and can be rewritten for an old run. The same card is written to
RUN/README.md and RUN/adapter/README.md (replacing PEFT's template card there), so the adapter
folder, the one pushed to the hub (:mod:`domainllm.training.hub`), describes itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from domainllm.config import DomainConfig
from domainllm.fsio import atomic_write_text

__all__ = ["render_model_card", "write_model_card"]


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return (
            f"{value:.{digits}g}"
            if abs(value) < 1e-2 and value != 0
            else f"{value:.{digits}f}".rstrip("0").rstrip(".")
        )
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def _table(rows: list[tuple[str, Any]], header: tuple[str, str] = ("", "")) -> str:
    lines = [f"| {header[0]} | {header[1]} |", "| --- | --- |"]
    lines += [f"| {key} | {_fmt(value)} |" for key, value in rows]
    return "\n".join(lines)


def _hub_id(cfg: DomainConfig, hub_model_id: str | None) -> str | None:
    if hub_model_id:
        return hub_model_id
    return cfg.training.hub_model_id if cfg.training.push_to_hub else None


def render_model_card(
    cfg: DomainConfig, manifest: dict[str, Any], run_path: str | Path, hub_model_id: str | None = None
) -> str:
    """The card's Markdown text; with a hub repo (``hub_model_id``, else training.hub_model_id when
    training.push_to_hub is on) the PEFT example loads the adapter from there."""
    run_path = Path(run_path)
    hub = _hub_id(cfg, hub_model_id)
    adapter_ref = hub or str(run_path / "adapter")
    where = f"on the hub as [`{hub}`](https://huggingface.co/{hub}); " if hub else ""
    base = manifest.get("base_model", {})
    data = manifest.get("data", {})
    examples = manifest.get("examples", {})
    params = manifest.get("parameters", {})
    t, lora = cfg.training, cfg.lora
    base_name = base.get("name_or_path", cfg.model.name_or_path)
    if base_name == "default":
        base_name = f"default ({base.get('name', 'SmolLM2-135M-Instruct')})"
    quant = base.get("quant_mode", "none")
    title = f"{cfg.data.name} adapter for {base.get('name', base_name)}"

    splits = []
    for split in ("train", "val", "test"):
        info = data.get(split) or {}
        splits.append(f"| {split} | {info.get('n', 0)} | `{str(info.get('sha256', ''))[:16]}` |")
    effective = (
        t.per_device_batch_size * t.gradient_accumulation_steps * int(manifest.get("num_processes", 1))
    )
    hyper = [
        ("LoRA rank r / alpha", f"{lora.r} / {lora.alpha}"),
        ("LoRA dropout", lora.dropout),
        ("target modules", manifest.get("target_modules", lora.target_modules)),
        ("rsLoRA / DoRA", f"{_fmt(lora.use_rslora)} / {_fmt(lora.use_dora)}"),
        ("base quantization", quant),
        ("learning rate", t.learning_rate),
        ("scheduler", t.lr_scheduler),
        ("warmup", f"{t.warmup_steps} steps" if t.warmup_steps > 0 else f"{t.warmup_ratio:.0%} of steps"),
        ("length", f"{t.max_steps} steps" if t.max_steps > 0 else f"{_fmt(t.num_epochs)} epochs"),
        (
            "batch size (per device x accumulation x processes)",
            f"{t.per_device_batch_size} x {t.gradient_accumulation_steps} x {manifest.get('num_processes', 1)} = {effective}",
        ),
        ("optimizer", t.optimizer),
        ("weight decay / max grad norm", f"{t.weight_decay} / {t.max_grad_norm}"),
        ("max sequence length", t.max_seq_length),
        ("loss on", "answer tokens only" if t.completion_only_loss else "whole sequence"),
        ("trained on", t.train_on),
        ("seed", t.seed),
    ]
    best_step = manifest.get("best_step")
    results = [
        ("eval loss before training", manifest.get("eval_loss_before")),
        ("eval loss after training", manifest.get("eval_loss_after")),
        (
            "best eval loss",
            f"{_fmt(manifest.get('best_eval_loss'))} (step {best_step})"
            if best_step
            else manifest.get("best_eval_loss"),
        ),
        ("last logged train loss", manifest.get("final_train_loss")),
        ("optimizer steps", manifest.get("global_step")),
        ("trained tokens/s", manifest.get("tokens_per_second")),
        ("training time (s)", manifest.get("train_runtime_s")),
        ("wall time incl. loading (s)", manifest.get("wall_time_s")),
        ("peak RSS (MiB)", manifest.get("peak_rss_mib")),
        ("peak CUDA memory (MiB)", manifest.get("peak_cuda_mib")),
        (
            "trainable / total parameters",
            f"{params.get('trainable', 'n/a'):,} / {params.get('total', 'n/a'):,}" if params else None,
        ),
    ]
    truncated = examples.get("truncated", 0)
    base_path = base.get("path", base_name)
    system = cfg.data.system_prompt.replace("\n", " ")
    return f"""---
library_name: peft
base_model: {base.get("name", base_name)}
tags: [domainllm, trl, sft, lora{", qlora" if quant in ("4bit", "8bit") else ""}]
---

# {title}

A LoRA adapter trained by `domainllm train` (TRL `SFTTrainer` + PEFT) to answer questions about the
**{cfg.data.name}** domain. {where}Status: **{manifest.get("status", "unknown")}**; config fingerprint
`{manifest.get("fingerprint", "")}`; domainllm {manifest.get("versions", {}).get("domainllm", "")}.

## Base model

{_table([("model", base_name), ("loaded from", base_path), ("dtype", base.get("dtype")), ("quantization", quant), ("device", base.get("device"))])}

## Data

Source: `{data.get("path", cfg.data.path)}` (format `{cfg.data.format}`), {data.get("documents", 0)} documents.

| split | examples | sha256 |
| --- | --- | --- |
{chr(10).join(splits)}

Training examples: {examples.get("train", 0)} (including {examples.get("doc_windows", 0)} document windows),
validation examples: {examples.get("val", 0)}; {truncated} training example(s) were longer than
{t.max_seq_length} tokens and truncated.

System prompt used in every example (use the same one at inference):

> {system}

## Hyperparameters

{_table(hyper, ("setting", "value"))}

## Results

{_table(results, ("metric", "value"))}

Loss curves (in the run directory): `plots/loss.png`; learning rate: `plots/lr.png`; every logged step: `metrics.jsonl`.

## How to use it

With domainllm, on the machine that holds the run directory (it carries its base model, system
prompt and config):

```bash
domainllm chat {run_path}                 # talk to it in the terminal (add --rag for retrieval)
domainllm compare --run {run_path}        # the comparison against prompt-only and RAG
domainllm merge {run_path}                # a standalone merged model in {run_path / "merged"}
```

With plain PEFT and transformers:

```python
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

base = AutoModelForCausalLM.from_pretrained("{base_path}")
model = PeftModel.from_pretrained(base, "{adapter_ref}")
tokenizer = AutoTokenizer.from_pretrained("{adapter_ref}")
messages = [
    {{"role": "system", "content": {system!r}}},
    {{"role": "user", "content": "your question"}},
]
inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
output = model.generate(**inputs, max_new_tokens=40, do_sample=False)
print(tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True))
```

Reproduce: `domainllm train --config {run_path / "config.yaml"} --output-dir NEW_DIR`.
"""


def write_model_card(
    cfg: DomainConfig, manifest: dict[str, Any], run_path: str | Path, hub_model_id: str | None = None
) -> Path:
    """Write RUN/README.md (and RUN/adapter/README.md when the adapter exists); return the first."""
    run_path = Path(run_path)
    text = render_model_card(cfg, manifest, run_path, hub_model_id)
    if (run_path / "adapter").is_dir():
        atomic_write_text(run_path / "adapter" / "README.md", text)
    return atomic_write_text(run_path / "README.md", text)
