"""How a run trains fast: every speed choice made in one place, before the trainer is built.

:func:`plan_speed` decides, for the loaded model and the tokenized data:

* **padding-free batches** (:mod:`.batching`): on where the attention implementation is checked to
  keep flattened examples apart;
* **the loss head** (:mod:`.loss`): logits only at the scored positions off CUDA, TRL's fused head on
  CUDA, Liger's kernels when asked for or installed (``training.liger_kernel``);
* **the memory plan** (:mod:`.memory`, :mod:`.layers`): with ``training.memory_budget_gib``, the
  per-device batch size, accumulation (the effective batch unchanged) and which decoder layers are
  checkpointed, chosen to fit the budget as fast as the memory model says;
* ``training.compile`` (``torch.compile``) is passed through.

The result (:class:`SpeedSetup`) is applied to the model (checkpointed layers) and to the TRL
config, and recorded in the manifest under ``speed``. domainllm does not call PEFT's
``prepare_model_for_kbit_training``: it casts embeddings, norms and the output head of a 4/8-bit
base to fp32 (+1.96 GiB for the Llama-3-8B shape, +0.49 GiB for Llama-3.2-1B, counted by
``python -m domainllm bench train --upcast-report``); TRL's own handling (adapters in bf16, the base
frozen by PEFT, input gradients only for reentrant checkpointing) is what runs.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from domainllm.errors import ConfigError, MissingDependencyError, TrainingError
from domainllm.training.batching import PaddingFreeChoice, attention_implementation, choose_padding_free
from domainllm.training.memory import GIB, MemoryPlan, ModelShape, TrainSetup, choose_plan

if TYPE_CHECKING:
    from domainllm.config import DomainConfig, TrainingConfig
    from domainllm.modeling import LoadedModel

__all__ = ["SpeedSetup", "device_memory_gib", "plan_speed", "resolve_liger", "train_setup"]

log = logging.getLogger(__name__)


@dataclass
class SpeedSetup:
    """Every speed choice of a run (see the module docstring)."""

    padding_free: PaddingFreeChoice
    loss_head: str
    liger: bool
    compile: bool
    per_device_batch_size: int
    gradient_accumulation_steps: int
    # Decoder layers checkpointed by domainllm itself (a memory plan); None = training.gradient_checkpointing
    # as configured (every layer or none, through the Trainer).
    checkpointed_layers: list[int] | None = None
    memory_plan: MemoryPlan | None = None
    # A decoder layer's FLOPs per token and per query-key pair: the per-batch layout rule's costs.
    token_flops: float = 0.0
    pair_flops: float = 0.0
    packing: bool = False

    def collator(self, pad_token_id: int) -> Any:
        """The data collator: per-batch padded-or-flattened where flattening is allowed, else TRL's default."""
        if not self.padding_free.enabled or self.packing:
            return None  # padded batches, or TRL's BFD packing (its own padding-free collator)
        from domainllm.training.batching import VARLEN, LayoutCollator

        varlen = self.padding_free.attention in VARLEN
        return LayoutCollator(pad_token_id, self.token_flops, self.pair_flops, varlen)

    def training_config(self, t: TrainingConfig) -> TrainingConfig:
        """The training section the trainer is built from (batching and checkpointing as planned)."""
        return dataclasses.replace(
            t,
            per_device_batch_size=self.per_device_batch_size,
            gradient_accumulation_steps=self.gradient_accumulation_steps,
            gradient_checkpointing=t.gradient_checkpointing if self.checkpointed_layers is None else False,
        )

    def as_dict(self) -> dict[str, Any]:
        """The manifest's ``speed`` record."""
        return {
            "padding_free": {
                **self.padding_free.as_dict(),
                "layout": "TRL's BFD packing"
                if self.packing
                else (
                    "per batch, flattened when that computes less" if self.padding_free.enabled else "padded"
                ),
            },
            "loss_head": self.loss_head,
            "liger_kernel": self.liger,
            "compile": self.compile,
            "per_device_batch_size": self.per_device_batch_size,
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
            "checkpointed_layers": self.checkpointed_layers,
            "memory_plan": self.memory_plan.as_dict() if self.memory_plan else None,
        }


def resolve_liger(setting: str, device: str) -> bool:
    """``training.liger_kernel``: auto = on CUDA when liger-kernel is installed; on = required."""
    installed = importlib.util.find_spec("liger_kernel") is not None
    if setting == "off":
        return False
    if setting == "on":
        if not installed:
            msg = (
                "Config key 'training.liger_kernel' is 'on', but liger-kernel is not installed. Install it with "
                "\"pip install 'domainllm[liger]'\" (it needs CUDA and Triton), or set training.liger_kernel=auto."
            )
            raise MissingDependencyError(msg)
        if device != "cuda":
            msg = (
                f"Config key 'training.liger_kernel' is 'on', but the device is '{device}': Liger's kernels are Triton "
                "kernels for CUDA GPUs. Set training.liger_kernel=auto (used on CUDA only) or off."
            )
            raise ConfigError(msg)
        return True
    return installed and device == "cuda"


def device_memory_gib(device: str) -> float:
    """Total memory of the training device: the GPU's, or the machine's RAM on CPU."""
    if device == "cuda":
        import torch

        return torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory / GIB
    import psutil

    return psutil.virtual_memory().total / GIB


def _scored_share(train_ds: Any) -> float:
    """Share of tokens the loss scores (answer tokens under completion-only loss, else all)."""
    masks = train_ds["completion_mask"] if "completion_mask" in train_ds.column_names else None
    lengths = [len(ids) for ids in train_ds["input_ids"]]
    if masks is None:
        return 1.0
    return sum(sum(m) for m in masks) / max(sum(lengths), 1)


def train_setup(
    cfg: DomainConfig,
    loaded: LoadedModel,
    *,
    loss_head: str,
    scored_share: float,
    attention: str,
    flat_batches: bool = False,
) -> TrainSetup:
    """The memory model's view of this run's dtypes, optimizer and loss head."""
    autocast = loaded.device == "cuda" and loaded.dtype in ("bfloat16", "float16")
    weight_bytes = 4 if loaded.dtype == "float32" else 2
    quantized = loaded.quant_mode in ("4bit", "8bit")
    compact = loaded.device in ("cuda", "xpu") or loss_head == "kept-logits"
    return TrainSetup(
        quant_mode=loaded.quant_mode,
        double_quant=cfg.quantization.double_quant,
        weight_bytes=weight_bytes,
        act_bytes=2 if autocast else weight_bytes,
        adapter_bytes=2 if quantized else 4,  # TRL casts the adapter of a quantized base to bf16
        optimizer=cfg.training.optimizer,
        loss_head="kept" if loss_head == "kept-logits" else "fused",
        scored_share=scored_share if compact and cfg.training.completion_only_loss else 1.0,
        attention=attention,
        flat_batches=flat_batches,
    )


def _memory_plan(
    cfg: DomainConfig, loaded: LoadedModel, train_ds: Any, shape: ModelShape, loss_head: str, flat: bool
) -> MemoryPlan:
    t = cfg.training
    capacity = device_memory_gib(loaded.device)
    if t.memory_budget_gib > capacity:
        msg = (
            f"Config key 'training.memory_budget_gib' is {t.memory_budget_gib:g}, but the {loaded.device} device has "
            f"{capacity:.1f} GiB in all. Use at most {capacity:.1f} (less what else runs there)."
        )
        raise ConfigError(msg)
    setup = train_setup(
        cfg,
        loaded,
        loss_head=loss_head,
        scored_share=_scored_share(train_ds),
        attention=attention_implementation(loaded.model),
        flat_batches=flat,
    )
    longest = max(len(ids) for ids in train_ds["input_ids"])
    plan = choose_plan(
        shape,
        setup,
        effective_batch=t.per_device_batch_size * t.gradient_accumulation_steps,
        tokens_per_example=min(longest, t.max_seq_length),
        budget_gib=t.memory_budget_gib,
    )
    log.info(
        "Memory plan for %.1f GiB: batch %d x %d accumulation, %d of %d layers checkpointed (estimate %.2f GiB)",
        plan.budget_gib,
        plan.per_device_batch_size,
        plan.gradient_accumulation_steps,
        len(plan.checkpointed_layers),
        plan.num_layers,
        plan.estimate_gib,
    )
    return plan


def plan_speed(cfg: DomainConfig, loaded: LoadedModel, train_ds: Any, peft_config: Any) -> SpeedSetup:
    """Decide every speed choice for this run and apply the checkpointing to ``loaded.model``."""
    from domainllm.training.layers import checkpoint_layers, model_shape
    from domainllm.training.loss import loss_head as pick_loss_head

    t = cfg.training
    liger = resolve_liger(t.liger_kernel, loaded.device)
    padding_free = choose_padding_free(
        t.padding_free, loaded.model, loaded.tokenizer.pad_token_id, packing=t.packing
    )
    head = pick_loss_head(loaded.device, loaded.model, liger)
    try:
        shape = model_shape(loaded.model, peft_config.target_modules, cfg.lora.r)
    except TrainingError:
        if t.memory_budget_gib is not None:
            raise  # the budget needs the decoder layers; the message says so
        shape = None  # a model without transformers decoder layers: padded batches, no layout costs
        padding_free = PaddingFreeChoice(
            False, padding_free.attention, "no decoder layers to cost the layout"
        )
    speed = SpeedSetup(
        padding_free=padding_free,
        loss_head=head,
        liger=liger,
        compile=t.compile,
        per_device_batch_size=t.per_device_batch_size,
        gradient_accumulation_steps=t.gradient_accumulation_steps,
        token_flops=2.0 * shape.linear_params / shape.num_layers if shape else 0.0,
        pair_flops=4.0 * shape.num_heads * shape.head_dim if shape else 0.0,
        packing=t.packing,
    )
    if t.memory_budget_gib is not None and shape is not None:
        from domainllm.training.batching import VARLEN

        flat = padding_free.enabled and padding_free.attention not in VARLEN
        plan = _memory_plan(cfg, loaded, train_ds, shape, head, flat)
        speed.memory_plan = plan
        speed.per_device_batch_size = plan.per_device_batch_size
        speed.gradient_accumulation_steps = plan.gradient_accumulation_steps
        speed.checkpointed_layers = checkpoint_layers(loaded.model, plan.checkpointed_layers)
        if t.gradient_checkpointing:
            log.info(
                "training.memory_budget_gib is set: the memory plan decides the checkpointing, not training.gradient_checkpointing."
            )
    return speed
