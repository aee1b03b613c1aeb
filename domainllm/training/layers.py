"""The decoder layers of a loaded model: their shape for the memory model, and checkpointing N of them.

transformers' own switch checkpoints every layer, or every n-th (``every_n_layers``); the memory
budget needs any count, so :func:`checkpoint_layers` sets the per-layer flag that transformers'
``GradientCheckpointingLayer`` reads (non-reentrant ``torch.utils.checkpoint``, so the frozen
embeddings need no ``requires_grad`` trick). A checkpointed layer keeps only its input during the
forward and recomputes the rest in backward; the others keep their activations.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from domainllm.errors import TrainingError
from domainllm.training.memory import ModelShape

__all__ = ["checkpoint_layers", "checkpointed_layers", "decoder_layers", "model_shape"]


def decoder_layers(model: Any) -> list[Any]:
    """The repeated decoder blocks of ``model`` (a transformers or PEFT model), in order."""
    from transformers.modeling_layers import GradientCheckpointingLayer

    layers = [m for m in model.modules() if isinstance(m, GradientCheckpointingLayer)]
    if not layers:
        msg = (
            f"{type(model).__name__} has no transformers decoder layers (GradientCheckpointingLayer), so domainllm "
            "cannot checkpoint some of them. Leave training.memory_budget_gib unset, or use a model whose code ships "
            "with transformers (trust_remote_code models may not)."
        )
        raise TrainingError(msg)
    return layers


def checkpoint_layers(model: Any, indices: Sequence[int]) -> list[int]:
    """Checkpoint exactly the decoder layers at ``indices`` (and no others); returns them sorted."""
    from torch.utils.checkpoint import checkpoint

    layers = decoder_layers(model)
    chosen = sorted(set(indices))
    if chosen and (chosen[0] < 0 or chosen[-1] >= len(layers)):
        msg = f"layer indices {chosen} are outside the model's {len(layers)} decoder layers"
        raise ValueError(msg)
    func = functools.partial(checkpoint, use_reentrant=False)
    for i, layer in enumerate(layers):
        layer._gradient_checkpointing_func = func
        layer.gradient_checkpointing = i in chosen
    config = getattr(model, "config", None)
    if chosen and config is not None:
        config.use_cache = False  # a cache is rebuilt by the recompute; training never needs one
    return chosen


def checkpointed_layers(model: Any) -> list[int]:
    """Indices of the decoder layers that are checkpointed now."""
    return [
        i for i, layer in enumerate(decoder_layers(model)) if getattr(layer, "gradient_checkpointing", False)
    ]


def _config_value(config: Any, *names: str, default: Any = None) -> Any:
    for name in names:
        value = getattr(config, name, None)
        if value is not None:
            return value
    return default


def model_shape(model: Any, target_modules: str | list[str], lora_rank: int) -> ModelShape:
    """The memory model's view of a loaded model (quantized or not) with LoRA on ``target_modules``.

    Linear layers are counted from ``in_features x out_features`` (a bitsandbytes 4-bit layer packs
    two weights per byte, so its parameter count would be half); the output head counts as an
    unquantized weight, as bitsandbytes leaves it.
    """
    import torch

    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    head = model.get_output_embeddings()
    layers = decoder_layers(model)
    linear_params, lora_params, adapted = 0, 0, 0
    linear_ids: set[int] = set()
    targets = None if target_modules == "all-linear" else set(target_modules)
    first_layer = {id(m) for m in layers[0].modules()}
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.Linear) or module is head:
            continue
        linear_ids.update(id(p) for p in module.parameters(recurse=False))
        linear_params += module.in_features * module.out_features
        leaf = name.rsplit(".", 1)[-1]
        if targets is None or leaf in targets or any(name.endswith("." + t) for t in targets):
            lora_params += lora_rank * (module.in_features + module.out_features)
            adapted += id(module) in first_layer
    seen: set[int] = set()
    other = 0
    for p in model.parameters():
        if id(p) in linear_ids or id(p) in seen:
            continue
        seen.add(id(p))
        other += p.numel()
    hidden = int(_config_value(config, "hidden_size", "n_embd", "d_model"))
    heads = int(_config_value(config, "num_attention_heads", "n_head"))
    kv = _config_value(config, "num_key_value_heads", "num_kv_heads")
    if kv is None:
        kv = 1 if getattr(config, "multi_query", False) else heads
    return ModelShape(
        num_layers=len(layers),
        hidden=hidden,
        intermediate=int(_config_value(config, "intermediate_size", "ffn_hidden_size", default=4 * hidden)),
        num_heads=heads,
        num_kv_heads=int(kv),
        head_dim=int(_config_value(config, "head_dim", default=hidden // heads)),
        vocab=int(config.vocab_size),
        linear_params=linear_params,
        other_params=other,
        lora_params=lora_params,
        lora_modules_per_layer=adapted,
        lora_rank=lora_rank,
    )
