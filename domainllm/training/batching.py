"""Padding-free batches: no compute on padding, and examples that never see each other.

With ``padding_free``, TRL's collator concatenates a batch's examples into one row, restarts the
position ids at every example and sends no attention mask. Whether the examples then stay apart
depends on the attention implementation: in transformers 5 the ``eager``, ``sdpa`` and
``flex_attention`` paths build a block-diagonal causal mask from the position ids
(``masking_utils.find_packed_sequence_indices``), and the flash-attention kernels take the
sequence boundaries (``cu_seq_lens``) directly; a model with its own attention code may do neither.
The labels are cut at every boundary, so no example predicts the next one's first token.

So ``training.padding_free: auto`` is decided per model, not assumed: the implementation must be one
of :data:`BOUNDARY_AWARE` *and* :func:`probe_boundaries` must show it, by running two short examples
through the model both ways (flattened by TRL's own collator, and alone) and checking that the
second example's logits do not depend on the first. ``on`` insists (an error when the check fails),
``off`` keeps padded batches. The decision and its reason go into the manifest.

Where flattening is allowed, :class:`LayoutCollator` still decides per batch: a flattened row saves
the padding's linear-layer work, but the ``eager``/``sdpa``/``flex`` paths then attend over the whole
row under a block-diagonal mask ((sum of lengths)^2 query-key pairs instead of batch x longest^2),
so for equal-length examples (nothing to save) it would only add attention work. The batch is
flattened when that computes less, counted with the model's own per-token and per-pair FLOPs; the
flash-attention kernels take the boundaries directly and always gain.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from domainllm.errors import ConfigError

__all__ = [
    "BOUNDARY_AWARE",
    "PaddingFreeChoice",
    "attention_implementation",
    "choose_padding_free",
    "probe_boundaries",
]

log = logging.getLogger(__name__)

# Attention implementations that keep flattened examples apart in transformers >= 5.
BOUNDARY_AWARE = ("eager", "sdpa", "flex_attention", "flash_attention_2", "flash_attention_3")
VARLEN = ("flash_attention_2", "flash_attention_3")  # attend within each example only


class LayoutCollator:
    """Padded or flattened, per batch, whichever computes less (see the module docstring).

    ``token_flops``: a decoder layer's linear-layer FLOPs per token (2 x its weights);
    ``pair_flops``: its attention FLOPs per query-key pair (4 x the query width). Both layouts are
    built by TRL's own collator, so labels, boundaries and position ids are TRL's.
    """

    def __init__(self, pad_token_id: int, token_flops: float, pair_flops: float, varlen: bool) -> None:
        from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

        self.padded = DataCollatorForLanguageModeling(pad_token_id=pad_token_id)
        self.flat = DataCollatorForLanguageModeling(pad_token_id=pad_token_id, padding_free=True)
        self.token_flops, self.pair_flops, self.varlen = token_flops, pair_flops, varlen
        self.counts = {"flat": 0, "padded": 0}

    def flatten(self, lengths: list[int]) -> bool:
        """Whether a batch of these example lengths computes less flattened."""
        n, longest, total = len(lengths), max(lengths), sum(lengths)
        padded = n * longest * self.token_flops + n * longest * longest * self.pair_flops
        pairs = sum(x * x for x in lengths) if self.varlen else total * total
        return total * self.token_flops + pairs * self.pair_flops < padded

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        flat = self.flatten([len(e["input_ids"]) for e in examples])
        self.counts["flat" if flat else "padded"] += 1
        return (self.flat if flat else self.padded)(examples)


@dataclass
class PaddingFreeChoice:
    """Whether batches are flattened, and why (recorded in the manifest)."""

    enabled: bool
    attention: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "attention": self.attention, "reason": self.reason}


def attention_implementation(model: Any) -> str:
    """The attention implementation transformers resolved for ``model`` ("sdpa", "eager", ...)."""
    config = getattr(model, "config", None)
    return str(getattr(config, "_attn_implementation", None) or "unknown")


def probe_boundaries(model: Any, pad_token_id: int) -> tuple[bool, str]:
    """Run two examples flattened (TRL's padding-free collator) and alone; ``(apart, detail)``.

    The test is relative, so it holds in any dtype: the second example's logits must be far closer
    to its logits alone than to its logits with the first example as a visible prefix (what a
    plain causal mask over the flattened row would give).
    """
    import torch
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    vocab = int(model.get_output_embeddings().weight.shape[0])
    generator = torch.Generator().manual_seed(0)
    first, second = (torch.randint(3, vocab, (n,), generator=generator).tolist() for n in (5, 7))
    collate = DataCollatorForLanguageModeling(pad_token_id=pad_token_id, padding_free=True)
    batch = collate([{"input_ids": first}, {"input_ids": second}])
    device = next(model.parameters()).device
    batch = {k: v.to(device) if hasattr(v, "to") else v for k, v in batch.items() if k != "labels"}
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            flat = model(**batch, use_cache=False).logits[0, len(first) :].float()
            alone = model(input_ids=torch.tensor([second], device=device), use_cache=False).logits[0].float()
            leaky = model(input_ids=torch.tensor([first + second], device=device), use_cache=False).logits
            leaky = leaky[0, len(first) :].float()
    except (TypeError, ValueError, RuntimeError) as exc:  # a forward that cannot take the flattened batch
        return False, f"the model's forward refused a padding-free batch ({exc.__class__.__name__}: {exc})"
    finally:
        model.train(was_training)
    error = (flat - alone).abs().max().item()
    leak = (leaky - alone).abs().max().item()
    apart = leak > 0 and error < 0.05 * leak
    detail = f"flattened vs alone max |diff| {error:.2e}, vs a visible prefix {leak:.2e}"
    return apart, detail


def choose_padding_free(setting: str, model: Any, pad_token_id: int, packing: bool) -> PaddingFreeChoice:
    """Resolve ``training.padding_free`` (``auto``/``on``/``off``) for ``model``; see the module docstring."""
    attention = attention_implementation(model)
    if packing:
        # TRL's BFD packing is padding-free already (flattened rows with reset position ids).
        return PaddingFreeChoice(True, attention, "training.packing: TRL's BFD packing is padding-free")
    if setting == "off":
        return PaddingFreeChoice(False, attention, "training.padding_free is off")
    if attention not in BOUNDARY_AWARE:
        reason = (
            f"attention implementation {attention!r} is not known to keep flattened examples apart "
            f"(known: {', '.join(BOUNDARY_AWARE)})"
        )
        if setting == "on":
            msg = (
                f"Config key 'training.padding_free' is 'on', but {reason}. Set model.attn_implementation=sdpa (or "
                "flash_attention_2), or training.padding_free=auto to fall back to padded batches."
            )
            raise ConfigError(msg)
        return PaddingFreeChoice(False, attention, reason + "; padded batches")
    apart, detail = probe_boundaries(model, pad_token_id)
    if apart:
        return PaddingFreeChoice(True, attention, f"{attention} keeps examples apart ({detail})")
    if setting == "on":
        msg = (
            f"Config key 'training.padding_free' is 'on', but with attention {attention!r} a flattened example sees "
            f"the one before it ({detail}). Use training.padding_free=auto (padded batches) or another "
            "model.attn_implementation."
        )
        raise ConfigError(msg)
    log.warning(
        "Padding-free batches would let examples attend to each other here (%s); padding instead.", detail
    )
    return PaddingFreeChoice(False, attention, f"examples would see each other ({detail}); padded batches")
