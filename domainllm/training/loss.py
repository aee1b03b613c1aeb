"""The loss head: logits only where a token is scored.

A completion-only loss scores the answer tokens, a small share of each example (the dental
examples: 6.4 of 52 tokens on average). TRL's fused LM head skips the other positions on CUDA, where its
Triton kernel runs, but off CUDA it projects every position, padding included, through the output
head (576 x 49152 for SmolLM2: about a fifth of the model's forward FLOPs) and recomputes that
projection in backward. :func:`kept_logits_trainer` returns an ``SFTTrainer`` whose loss asks the
model for the logits of the scored positions only (transformers' boolean ``logits_to_keep``), then
takes the same token-summed cross-entropy, divided by the same token count, as TRL: the loss and
its gradients are those of TRL's head to float rounding (``tests/unit/test_training_speed.py``).

The choice (:func:`loss_head`) is recorded in the manifest: ``"liger"`` (Liger's kernels with TRL's
fused head), ``"trl-fused"`` (TRL's fused head: on CUDA, or a model whose forward takes no
``logits_to_keep``) or ``"kept-logits"``.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

__all__ = ["kept_logits_trainer", "loss_head", "supports_kept_logits"]


def supports_kept_logits(model: Any) -> bool:
    """Whether the model's forward takes ``logits_to_keep`` (a transformers causal LM of 2025 or later)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    try:
        return "logits_to_keep" in inspect.signature(type(base).forward).parameters
    except (TypeError, ValueError):
        return False


def loss_head(device: str, model: Any, liger: bool) -> str:
    """Which loss head the run uses (see the module docstring)."""
    if liger:
        return "liger"
    if device in ("cuda", "xpu") or not supports_kept_logits(model):
        return "trl-fused"
    return "kept-logits"


@functools.cache
def kept_logits_trainer() -> type:
    """``trl.SFTTrainer`` with the kept-logits loss (built on first use: trl is a heavy import)."""
    import torch
    from trl import SFTTrainer

    class KeptLogitsSFTTrainer(SFTTrainer):
        """SFTTrainer whose loss computes logits at the scored positions only."""

        def compute_loss(
            self,
            model: Any,
            inputs: dict[str, Any],
            return_outputs: bool = False,
            num_items_in_batch: Any = None,
        ) -> Any:
            if return_outputs or self.args.loss_type != "nll" or self.label_smoother is not None:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            mode = "train" if self.model.training else "eval"
            labels = inputs["labels"]
            keep = torch.zeros_like(labels, dtype=torch.bool)
            keep[:, :-1] = labels[:, 1:] != -100  # position t predicts token t + 1
            targets = labels[:, 1:][keep[:, :-1]]
            forward = {k: v for k, v in inputs.items() if k != "labels"}
            logits = model(**forward, use_cache=False, logits_to_keep=keep).logits.float()
            token_losses = torch.nn.functional.cross_entropy(logits, targets, reduction="none")
            count = targets.numel() if num_items_in_batch is None else num_items_in_batch
            loss = token_losses.sum() / torch.as_tensor(count, device=logits.device).clamp(min=1)
            if self.args.average_tokens_across_devices and num_items_in_batch is not None:
                loss = loss * (self.accelerator.num_processes // self.get_tp_size())
            self._record(mode, inputs, logits.detach(), targets)
            return loss

        def _record(self, mode: str, inputs: dict[str, Any], logits: Any, targets: Any) -> None:
            """TRL's metrics, from the kept logits: entropy, token accuracy, trained tokens."""
            gather = self.accelerator.gather_for_metrics
            logprobs = torch.log_softmax(logits, dim=-1)
            entropy = -(logprobs.exp() * logprobs).sum(-1)
            valid = gather(torch.tensor(targets.numel(), device=logits.device)).sum()
            entropy_sum = gather(entropy.sum()).sum()
            correct = gather((logits.argmax(-1) == targets).sum()).sum()
            metrics = self._metrics[mode]
            metrics["entropy"].append((entropy_sum / valid).item() if valid > 0 else 0.0)
            metrics["mean_token_accuracy"].append((correct / valid).item() if valid > 0 else 0.0)
            if mode == "train":
                if "attention_mask" in inputs:
                    local = inputs["attention_mask"].sum()
                else:
                    local = torch.tensor(inputs["position_ids"].size(1), device=logits.device)
                self._total_train_tokens += gather(local).sum().item() // self._tp_size
            metrics["num_tokens"] = [self._total_train_tokens]

    return KeptLogitsSFTTrainer
