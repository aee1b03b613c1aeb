"""The adapter: our ``lora`` config section turned into a PEFT ``LoraConfig`` for the model at hand.

Target modules are resolved against the loaded model, not taken on trust: a misspelt module name
would otherwise make PEFT fail deep inside ``get_peft_model`` (or, with a suffix that happens to
match something else, silently adapt the wrong layers). The error lists the model's real linear
layer names so the fix is a copy and paste.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from domainllm.errors import ConfigError

if TYPE_CHECKING:
    from domainllm.config import LoraConfig

__all__ = ["ATTENTION_MODULE_NAMES", "build_peft_config", "linear_layer_names", "resolve_target_modules"]

# Attention projections across the common architectures (Llama/Mistral/Qwen/Gemma/Phi use q/k/v/o_proj).
ATTENTION_MODULE_NAMES = (
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "qkv_proj",
    "query_key_value",
    "c_attn",
    "Wqkv",
    "out_proj",
    "query",
    "key",
    "value",
)


def _output_head_names(model: Any) -> set[str]:
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    return {name for name, module in model.named_modules() if head is not None and module is head}


def linear_layer_names(model: Any) -> list[str]:
    """Leaf names of the model's linear layers (bitsandbytes 4/8-bit layers included), output head excluded.

    These are the names LoRA can target; the output head is left out because TRL computes the
    log-probabilities from its weight directly, so an adapter there would never train.
    """
    import torch

    heads = _output_head_names(model)
    names = {
        full.rsplit(".", 1)[-1]
        for full, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and full not in heads
    }
    return sorted(names)


def _attention_leaves(model: Any) -> list[str]:
    """Leaf names of linear layers that sit only inside attention blocks (Falcon's ``self_attention.dense``).

    A name also used outside attention (BERT's ``dense`` is in the MLP too) is left out: PEFT matches
    targets by leaf name, so it would adapt those layers as well.
    """
    import torch

    inside: dict[str, bool] = {}
    for full, module in model.named_modules():
        if not isinstance(module, torch.nn.Linear) or "." not in full:
            continue
        parent = full.rsplit(".", 1)[0].rsplit(".", 1)[-1].lower()
        leaf = full.rsplit(".", 1)[-1]
        in_attention = "attn" in parent or "attention" in parent
        inside[leaf] = inside.get(leaf, True) and in_attention
    return sorted(name for name, only in inside.items() if only)


def resolve_target_modules(model: Any, target: str | list[str]) -> str | list[str]:
    """``"all-linear"`` passes through to PEFT; ``"attention"`` and explicit lists are checked against ``model``."""
    if target == "all-linear":
        return "all-linear"
    available = linear_layer_names(model)
    listing = ", ".join(available) or "(none)"
    if target == "attention":
        found = [name for name in ATTENTION_MODULE_NAMES if name in available]
        found += [name for name in _attention_leaves(model) if name not in found]
        if not found:
            msg = (
                "Config key 'lora.target_modules' is 'attention', but the model has none of the usual attention "
                f"projection names ({', '.join(ATTENTION_MODULE_NAMES[:4])}, ...). Its linear layers are: "
                f"{listing}. List the attention projections explicitly, e.g. lora.target_modules=[{available[0] if available else 'name'}]."
            )
            raise ConfigError(msg)
        return found
    full_names = [full for full, _ in model.named_modules()]
    heads = _output_head_names(model)
    missing = []
    for name in target:
        if name in heads or name.rsplit(".", 1)[-1] in {h.rsplit(".", 1)[-1] for h in heads}:
            msg = (
                f"Config key 'lora.target_modules' contains {name!r}, the output head: TRL computes the loss "
                "from its weight directly, so an adapter there would never train. Remove it; the model's "
                f"linear layers are: {listing}."
            )
            raise ConfigError(msg)
        leaf_ok = name in available
        suffix_ok = any(full == name or full.endswith("." + name) for full in full_names) and (
            name.rsplit(".", 1)[-1] in available
        )
        if not (leaf_ok or suffix_ok):
            missing.append(name)
    if missing:
        msg = (
            f"Config key 'lora.target_modules' names {', '.join(repr(m) for m in missing)}, which "
            f"{'is not a linear layer' if len(missing) == 1 else 'are not linear layers'} of this model. "
            f"Its linear layers are: {listing}. Use some of these, or 'attention' / 'all-linear'."
        )
        raise ConfigError(msg)
    return list(target)


def build_peft_config(lora: LoraConfig, model: Any) -> Any:
    """The PEFT ``LoraConfig`` for causal-LM training of ``model``."""
    from peft import LoraConfig as PeftLoraConfig
    from peft import TaskType

    return PeftLoraConfig(
        task_type=TaskType.CAUSAL_LM,
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=resolve_target_modules(model, lora.target_modules),
        bias=lora.bias,
        use_rslora=lora.use_rslora,
        use_dora=lora.use_dora,
    )
