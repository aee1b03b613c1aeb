"""Preference accuracy and reward margin on the val pairs, measured before and after DPO.

DPO's implicit reward of an answer is ``beta * (log p_policy(answer) - log p_ref(answer))`` summed
over the answer's tokens. Before training the policy is the reference, so the reward margin is 0 by
definition; what is informative before training is the model's own preference: the share of pairs
whose chosen answer it gives a higher log-probability than the rejected one (``accuracy``) and the
mean log-probability margin. After training both are measured again, with the reward margin
against the reference log-probabilities recorded before the first step (the reference is frozen,
so they do not change). Everything is computed here, not read from TRL's logs, so the same numbers
can be recomputed from a run's adapter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["pair_logps", "plot_preferences", "preference_metrics"]


def _rendered(tokenizer: Any, row: dict[str, Any]) -> tuple[list[int], list[int], list[int]]:
    """Token ids of the prompt (with generation prompt), and of the chosen and rejected completions."""
    prompt = tokenizer.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True)
    ids = []
    for key in ("chosen", "rejected"):
        full = tokenizer.apply_chat_template(row["prompt"] + row[key], tokenize=False)
        completion = full[len(prompt) :] if full.startswith(prompt) else full
        ids.append(tokenizer(completion, add_special_tokens=False)["input_ids"])
    return tokenizer(prompt, add_special_tokens=False)["input_ids"], ids[0], ids[1]


def pair_logps(
    model: Any, tokenizer: Any, rows: list[dict[str, Any]], max_length: int = 512
) -> list[tuple[float, float]]:
    """``(log p(chosen), log p(rejected))`` per TRL conversational row, summed over the answer tokens."""
    import torch

    device = next(model.parameters()).device
    out = []
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for row in rows:
            prompt, chosen, rejected = _rendered(tokenizer, row)
            pair = []
            for completion in (chosen, rejected):
                ids = (prompt + completion)[-max_length:]
                n = min(len(completion), len(ids) - 1)
                x = torch.tensor([ids], device=device)
                logits = model(input_ids=x).logits[0, :-1].float()
                logp = torch.log_softmax(logits, dim=-1).gather(1, x[0, 1:, None])[:, 0]
                pair.append(float(logp[-n:].sum()))
            out.append((pair[0], pair[1]))
    if was_training:
        model.train()
    return out


def preference_metrics(
    policy: list[tuple[float, float]], reference: list[tuple[float, float]], beta: float
) -> dict[str, float]:
    """Accuracy (log p(chosen) > log p(rejected)), mean log-prob margin, and DPO's reward accuracy and margin."""
    n = max(len(policy), 1)
    margins = [c - r for c, r in policy]
    rewards = [beta * ((pc - rc) - (pr - rr)) for (pc, pr), (rc, rr) in zip(policy, reference, strict=True)]
    return {
        "pairs": len(policy),
        "accuracy": sum(m > 0 for m in margins) / n,
        "logp_margin": sum(margins) / n,
        "reward_accuracy": sum(r > 0 for r in rewards) / n,
        "reward_margin": sum(rewards) / n,
    }


def plot_preferences(before: dict[str, float], after: dict[str, float], path: Path, title: str) -> Path:
    """plots/preferences.png: val preference accuracy and margins before and after DPO, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    names = ["before", "after"]
    axes[0].bar(names, [before["accuracy"], after["accuracy"]], color=["#999999", "#2a7ab9"])
    axes[0].set_ylim(0, 1)
    axes[0].set_title("val accuracy: log p(chosen) > log p(rejected)", fontsize=9)
    axes[1].bar(
        ["logp margin\nbefore", "logp margin\nafter", "reward margin\nafter"],
        [before["logp_margin"], after["logp_margin"], after["reward_margin"]],
        color=["#999999", "#2a7ab9", "#d9822b"],
    )
    axes[1].axhline(0, color="black", linewidth=0.6)
    axes[1].set_title("mean margin (chosen - rejected)", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    from domainllm.fsio import atomic_write

    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    finally:
        plt.close(fig)
