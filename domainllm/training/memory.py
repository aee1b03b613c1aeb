"""The memory model behind ``training.memory_budget_gib``, and the chooser that plans a run to fit.

Pure arithmetic, no torch: :func:`estimate_memory` adds up what one training step holds at its
peak (weights, adapter and its gradients, optimizer state, activations saved for backward with or
without checkpointing, the loss head's buffers, the transient recompute of a checkpointed layer, a
margin and a fixed overhead), and :func:`choose_plan` searches micro-batch size x checkpointed
layers for the fastest plan that fits while keeping the effective batch the user asked for
(micro-batch x accumulation = ``per_device_batch_size x gradient_accumulation_steps``).

Where the numbers come from:

* Weights: bitsandbytes NF4 stores 0.5 byte per weight plus one fp32 absmax per 64 weights
  (0.0625 B), or with double quantization an 8-bit absmax plus an fp32 constant per 256 blocks
  (~0.0159 B); LLM.int8 one byte plus a per-row scale. Embeddings, norms and the output head stay
  in the compute dtype (or fp32 where a recipe upcasts them: ``upcast=True`` models PEFT's
  ``prepare_model_for_kbit_training``, and then autocast also keeps a bf16 copy of the fp32 head).
* Activations of one decoder layer per token, counted from what autograd saves in a Llama-style
  block with LoRA (frozen base, bf16 autocast or fp32): both RMSNorm inputs in fp32 (8H bytes), the
  attention block's input, q, k, v, output and o_proj input, the MLP input, gate, up, SiLU(gate) and
  down_proj input, the LoRA-A outputs, and a fused q/k/v output that its views keep alive. Checked against the bytes autograd really saves on CPU
  (``tests/unit/test_memory_model.py``): the estimate must not fall below the measurement.
* Loss head: TRL's fused, chunked LM head (one 4096 x 32768 tile, the hidden states of the scored
  positions and their fp32 gradient) or the full logits (bf16 logits, their fp32 copy and gradient).
* Speed: a checkpointed layer recomputes its forward (``RECOMPUTE_COST`` = 0.4 of a layer's
  forward+backward, and every micro-step has a fixed cost worth ``STEP_OVERHEAD_TOKENS`` tokens.
  Both are read off the peer table in issue #14 (one H100, TRL 1.16: checkpointing off was 1.41x
  faster at batch 4; batch 8 was 1.13-1.16x faster than batch 4); they rank plans, they do not
  promise throughput.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from domainllm.errors import TrainingError

__all__ = [
    "GIB",
    "MemoryPlan",
    "ModelShape",
    "TrainSetup",
    "activation_bytes_per_token",
    "choose_plan",
    "estimate_memory",
    "spread_layers",
    "step_cost",
]

GIB = 2**30
RECOMPUTE_COST = 0.4
STEP_OVERHEAD_TOKENS = 1400
# Bytes per weight of a quantized linear layer (bitsandbytes).
QUANT_BYTES = {"4bit": 0.5 + 4 / 64, "4bit-dq": 0.5 + 1 / 64 + 4 / (64 * 256), "8bit": 1.0}
# Optimizer state bytes per trainable parameter, by state dtype: AdamW keeps two moments.
EIGHT_BIT_OPTIMIZERS = ("adamw_8bit", "paged_adamw_8bit")
TILE_TOKENS, TILE_VOCAB = 4096, 32768  # TRL's fused LM head tile
# What the per-layer count misses (autocast's fp32 copies around attention, allocator rounding): measured
# at up to 5% on CPU under bf16 autocast (tests/unit/test_memory_model.py), so 10% on top.
ACTIVATION_SAFETY = 1.1


@dataclass(frozen=True)
class ModelShape:
    """What the memory model needs to know about a decoder-only model and its adapter."""

    num_layers: int
    hidden: int
    intermediate: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    vocab: int
    # Weights of the decoder's linear layers (quantized in 4/8-bit), and everything else (embeddings,
    # norms, an untied output head): never quantized.
    linear_params: int
    other_params: int
    # Trainable LoRA parameters, adapted linear layers per decoder layer, and the rank.
    lora_params: int = 0
    lora_modules_per_layer: int = 0
    lora_rank: int = 0


@dataclass(frozen=True)
class TrainSetup:
    """How the run holds its tensors: quantization, dtypes, optimizer, loss head, overheads."""

    quant_mode: str = "none"  # "none", "4bit", "8bit"
    double_quant: bool = True
    weight_bytes: int = 2  # unquantized weights: 2 (bf16/fp16) or 4 (fp32)
    act_bytes: int = 2  # activations: 2 under bf16/fp16 autocast, 4 in fp32
    adapter_bytes: int = 4  # LoRA weights: fp32, or bf16 (TRL casts them for a quantized base)
    optimizer: str = "adamw_torch"
    # "fused": TRL's chunked LM head over the scored positions; "full": the whole logits tensor.
    loss_head: str = "fused"
    # Share of tokens the loss head scores (1.0 = every position; completion-only loss scores fewer).
    scored_share: float = 1.0
    attention: str = "sdpa"  # "eager" materializes the attention matrix; the others do not
    # Batches may be flattened under a dense block-diagonal mask (padding-free with eager/sdpa/flex).
    flat_batches: bool = False
    upcast: bool = False  # non-quantized weights cast to fp32 (prepare_model_for_kbit_training)
    overhead_gib: float = 0.5  # CUDA context / allocator reserve, or the process's own baseline on CPU
    margin: float = 0.10  # headroom on top of the estimate, for what the model does not count


@dataclass
class MemoryPlan:
    """The chooser's answer: how the run is batched and checkpointed, and what that is estimated to hold."""

    budget_gib: float
    estimate_gib: float
    per_device_batch_size: int
    gradient_accumulation_steps: int
    checkpointed_layers: list[int]
    num_layers: int
    tokens_per_example: int
    components_gib: dict[str, float] = field(default_factory=dict)
    considered: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The manifest's ``memory_plan`` record."""
        return asdict(self)


def activation_bytes_per_token(shape: ModelShape, setup: TrainSetup, seq_len: int) -> float:
    """Bytes one un-checkpointed decoder layer saves for backward, per token (see the module docstring)."""
    h, b = shape.hidden, setup.act_bytes
    q_dim = shape.num_heads * shape.head_dim
    kv_dim = shape.num_kv_heads * shape.head_dim
    norms = 2 * 4 * h  # both RMSNorms keep their input in fp32
    attention = (
        b * (h + q_dim + 2 * kv_dim + q_dim + q_dim) + 4 * shape.num_heads
    )  # in, q, k, v, out, o_in, lse
    attention += b * (q_dim + 2 * kv_dim)  # a fused qkv output kept alive by its views (Phi-3, Falcon)
    mlp = b * (h + 4 * shape.intermediate)  # in, gate, up, act(gate), down_in
    lora = b * shape.lora_rank * shape.lora_modules_per_layer
    quadratic = 0.0
    if setup.attention == "eager":
        quadratic = 2 * shape.num_heads * seq_len * b  # scores and probabilities, per query token
    return (norms + attention + mlp + lora + quadratic) * ACTIVATION_SAFETY


def _weight_bytes(shape: ModelShape, setup: TrainSetup) -> float:
    if setup.quant_mode == "4bit":
        per_linear = QUANT_BYTES["4bit-dq" if setup.double_quant else "4bit"]
    elif setup.quant_mode == "8bit":
        per_linear = QUANT_BYTES["8bit"]
    else:
        per_linear = 4 if setup.upcast else setup.weight_bytes
    other = 4 if setup.upcast else setup.weight_bytes
    # Under bf16/fp16 autocast an fp32 output head is cast for every matmul, and autocast keeps the copy.
    autocast_copy = (
        shape.vocab * shape.hidden * setup.act_bytes if setup.upcast and setup.act_bytes < 4 else 0
    )
    return shape.linear_params * per_linear + shape.other_params * other + autocast_copy


def _optimizer_bytes(setup: TrainSetup) -> float:
    if setup.optimizer in EIGHT_BIT_OPTIMIZERS:
        return 2.0
    return 2.0 * setup.adapter_bytes  # torch AdamW keeps its moments in the parameter's dtype


def _loss_head_bytes(shape: ModelShape, setup: TrainSetup, tokens: int) -> float:
    scored = max(1, math.ceil(tokens * setup.scored_share))
    if setup.loss_head == "full":
        return tokens * shape.vocab * (setup.act_bytes + 4 + 4)
    tile = min(scored, TILE_TOKENS) * min(shape.vocab, TILE_VOCAB) * max(setup.act_bytes, 4)
    return tile + scored * shape.hidden * (setup.act_bytes + 4) + scored * 7 * 4


def estimate_memory(
    shape: ModelShape, setup: TrainSetup, micro_batch: int, tokens_per_example: int, checkpointed: int
) -> dict[str, float]:
    """Peak bytes of one training step, by component, plus ``total`` (margin and overhead included)."""
    if not 0 <= checkpointed <= shape.num_layers:
        msg = f"checkpointed layers must be between 0 and {shape.num_layers}, not {checkpointed}"
        raise ValueError(msg)
    tokens = micro_batch * tokens_per_example
    per_layer = activation_bytes_per_token(shape, setup, tokens_per_example)
    stored = shape.num_layers - checkpointed
    parts = {
        "weights": _weight_bytes(shape, setup),
        "adapter_and_grads": shape.lora_params * setup.adapter_bytes * 2,
        "optimizer": shape.lora_params * _optimizer_bytes(setup),
        "activations": tokens * (per_layer * stored + shape.hidden * setup.act_bytes * checkpointed),
        "recompute": tokens * per_layer if checkpointed else 0.0,
        # embedding output, final norm, and the hidden-state gradients in flight during backward
        "hidden_states": tokens * shape.hidden * (3 * setup.act_bytes + 2 * 4),
        "loss_head": _loss_head_bytes(shape, setup, tokens),
        # the 4D attention mask: batch x longest^2, or (all tokens)^2 for a flattened row
        "attention_mask": 4.0
        * (tokens * tokens if setup.flat_batches else micro_batch * tokens_per_example**2),
    }
    counted = sum(parts.values())
    parts["margin"] = counted * setup.margin
    parts["overhead"] = setup.overhead_gib * GIB
    parts["total"] = counted + parts["margin"] + parts["overhead"]
    return parts


def step_cost(
    effective_batch: int, micro_batch: int, tokens_per_example: int, checkpointed: int, num_layers: int
) -> float:
    """Relative time of one optimizer step (lower is faster): tokens plus per-micro-step overhead,
    times the recompute of the checkpointed layers."""
    micro_steps = effective_batch // micro_batch
    work = effective_batch * tokens_per_example + micro_steps * STEP_OVERHEAD_TOKENS
    return work * (1 + RECOMPUTE_COST * checkpointed / max(num_layers, 1))


def spread_layers(count: int, num_layers: int) -> list[int]:
    """``count`` layer indices spread evenly over ``num_layers`` (which ones does not change the memory)."""
    if count <= 0:
        return []
    if count >= num_layers:
        return list(range(num_layers))
    return sorted({math.floor(i * num_layers / count) for i in range(count)})


def _divisors(n: int) -> list[int]:
    return [d for d in range(n, 0, -1) if n % d == 0]


def choose_plan(
    shape: ModelShape,
    setup: TrainSetup,
    *,
    effective_batch: int,
    tokens_per_example: int,
    budget_gib: float,
) -> MemoryPlan:
    """The fastest (micro-batch, checkpointed layers) whose estimate fits ``budget_gib``.

    The micro-batch divides ``effective_batch`` so that micro-batch x accumulation is exactly the
    effective batch asked for. Raises :class:`TrainingError` when not even one example per step with
    every layer checkpointed fits: the message gives what that smallest plan needs.
    """
    budget = budget_gib * GIB
    best: tuple[float, float, int, int] | None = None
    considered = 0
    for micro in _divisors(effective_batch):
        for ckpt in range(shape.num_layers + 1):
            considered += 1
            total = estimate_memory(shape, setup, micro, tokens_per_example, ckpt)["total"]
            if total > budget:
                continue
            cost = step_cost(effective_batch, micro, tokens_per_example, ckpt, shape.num_layers)
            if best is None or (cost, total) < (best[0], best[1]):
                best = (cost, total, micro, ckpt)
            break  # more checkpointing only saves memory this plan does not need
    if best is None:
        smallest = estimate_memory(shape, setup, 1, tokens_per_example, shape.num_layers)
        need = smallest["total"] / GIB
        weights = smallest["weights"] / GIB
        msg = (
            f"training.memory_budget_gib={budget_gib:g} is too small: even one example of {tokens_per_example} tokens "
            f"per step with every layer checkpointed needs an estimated {need:.2f} GiB ({weights:.2f} GiB of it the "
            "base weights). Raise the budget, quantize the base (quantization.mode=4bit), or shorten "
            "training.max_seq_length."
        )
        raise TrainingError(msg)
    _, total, micro, ckpt = best
    parts = estimate_memory(shape, setup, micro, tokens_per_example, ckpt)
    return MemoryPlan(
        budget_gib=budget_gib,
        estimate_gib=round(total / GIB, 3),
        per_device_batch_size=micro,
        gradient_accumulation_steps=effective_batch // micro,
        checkpointed_layers=spread_layers(ckpt, shape.num_layers),
        num_layers=shape.num_layers,
        tokens_per_example=tokens_per_example,
        components_gib={k: round(v / GIB, 3) for k, v in parts.items()},
        considered=considered,
    )
