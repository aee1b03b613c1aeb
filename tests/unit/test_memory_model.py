"""The memory model and the budget chooser: pure function tests, and the model checked against autograd.

The chooser is tested against the memory model itself (brute force over every plan: the chosen one
fits and no faster one does; the effective batch is kept; an impossible budget is refused with the
numbers). The model's activation term is checked against the bytes autograd really saves for
backward inside each decoder layer (counted with ``saved_tensors_hooks``), for four architectures:
the estimate may be generous but must never fall below the measurement, or a plan could run out of
memory at domainllm's own choice.
"""

from __future__ import annotations

import pytest

from domainllm.errors import TrainingError
from domainllm.training.memory import (
    GIB,
    ModelShape,
    TrainSetup,
    activation_bytes_per_token,
    choose_plan,
    estimate_memory,
    spread_layers,
    step_cost,
)

# Llama-3-8B as in the peer table, with LoRA r=16 on all seven linear layers.
LLAMA_8B = ModelShape(
    num_layers=32,
    hidden=4096,
    intermediate=14336,
    num_heads=32,
    num_kv_heads=8,
    head_dim=128,
    vocab=128256,
    linear_params=32 * (2 * 4096 * 4096 + 2 * 4096 * 1024 + 3 * 4096 * 14336),
    other_params=2 * 128256 * 4096 + 65 * 4096,
    lora_params=32 * 16 * (2 * 8192 + 2 * 5120 + 3 * 18432),
    lora_modules_per_layer=7,
    lora_rank=16,
)
QLORA = TrainSetup(quant_mode="4bit", adapter_bytes=2, optimizer="paged_adamw_8bit")


def test_the_estimate_adds_up_and_moves_the_right_way():
    parts = estimate_memory(LLAMA_8B, QLORA, 4, 1024, 0)
    counted = sum(v for k, v in parts.items() if k not in ("margin", "overhead", "total"))
    assert parts["total"] == pytest.approx(counted * 1.1 + 0.5 * GIB)
    assert (
        4.5 < parts["weights"] / GIB < 6.5
    )  # 4-bit 8B: ~3.6 GiB of NF4 linears + ~2 GiB bf16 embeddings/head
    full = estimate_memory(LLAMA_8B, QLORA, 4, 1024, 32)
    half = estimate_memory(LLAMA_8B, QLORA, 4, 1024, 16)
    assert full["total"] < half["total"] < parts["total"]
    assert estimate_memory(LLAMA_8B, QLORA, 8, 1024, 16)["total"] > half["total"]
    with pytest.raises(ValueError):
        estimate_memory(LLAMA_8B, QLORA, 1, 1024, 33)


def test_upcasting_a_4bit_base_costs_what_prepare_model_for_kbit_training_casts():
    upcast = TrainSetup(quant_mode="4bit", adapter_bytes=2, optimizer="paged_adamw_8bit", upcast=True)
    extra = (
        estimate_memory(LLAMA_8B, upcast, 4, 1024, 32)["weights"]
        - estimate_memory(LLAMA_8B, QLORA, 4, 1024, 32)["weights"]
    )
    # embeddings + head + norms in fp32 instead of bf16, plus autocast's bf16 copy of the fp32 head
    assert extra == pytest.approx(LLAMA_8B.other_params * 2 + LLAMA_8B.vocab * LLAMA_8B.hidden * 2)
    assert extra / GIB == pytest.approx(2.94, abs=0.02)


def _all_plans(shape, setup, effective, tokens):
    for micro in [d for d in range(1, effective + 1) if effective % d == 0]:
        for ckpt in range(shape.num_layers + 1):
            total = estimate_memory(shape, setup, micro, tokens, ckpt)["total"]
            yield micro, ckpt, total, step_cost(effective, micro, tokens, ckpt, shape.num_layers)


@pytest.mark.parametrize("budget", [7.5, 10.0, 16.0, 24.0, 40.0, 80.0])
def test_the_chooser_picks_the_fastest_plan_that_fits(budget):
    plan = choose_plan(LLAMA_8B, QLORA, effective_batch=8, tokens_per_example=1024, budget_gib=budget)
    assert plan.per_device_batch_size * plan.gradient_accumulation_steps == 8
    ckpt = len(plan.checkpointed_layers)
    assert plan.estimate_gib <= budget
    chosen = step_cost(8, plan.per_device_batch_size, 1024, ckpt, 32)
    fitting = [
        (cost, total) for _, _, total, cost in _all_plans(LLAMA_8B, QLORA, 8, 1024) if total <= budget * GIB
    ]
    assert chosen == min(cost for cost, _ in fitting)
    assert plan.components_gib["total"] == pytest.approx(plan.estimate_gib, abs=1e-3)


def test_a_bigger_budget_never_gives_a_slower_plan():
    costs = []
    for budget in (7.5, 9, 12, 16, 24, 32, 48, 80):
        plan = choose_plan(LLAMA_8B, QLORA, effective_batch=8, tokens_per_example=1024, budget_gib=budget)
        costs.append(step_cost(8, plan.per_device_batch_size, 1024, len(plan.checkpointed_layers), 32))
    assert costs == sorted(costs, reverse=True) and costs[0] > costs[-1]
    roomy = choose_plan(LLAMA_8B, QLORA, effective_batch=8, tokens_per_example=1024, budget_gib=200)
    assert (roomy.per_device_batch_size, roomy.checkpointed_layers) == (8, [])


def test_an_impossible_budget_is_refused_with_what_the_smallest_plan_needs():
    with pytest.raises(
        TrainingError, match=r"memory_budget_gib=4 is too small.*needs an estimated \d+\.\d+ GiB"
    ):
        choose_plan(LLAMA_8B, QLORA, effective_batch=4, tokens_per_example=1024, budget_gib=4)


def test_checkpointed_layers_are_spread_over_the_model():
    assert spread_layers(0, 8) == [] and spread_layers(8, 8) == list(range(8))
    assert spread_layers(4, 8) == [0, 2, 4, 6]
    assert len(spread_layers(5, 32)) == 5 and len(set(spread_layers(31, 32))) == 31


# --- the activation term against autograd ------------------------------------------------------------


def _measured_bytes_per_token(model, seq: int) -> float:
    """Bytes autograd saves inside one decoder layer per token (parameters excluded), averaged over layers."""
    import torch

    from domainllm.training.layers import decoder_layers

    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    inside = [False]
    saved: dict[int, int] = {}

    def pack(t):
        storage = t.untyped_storage()
        if inside[0] and storage.data_ptr() not in params:
            saved[storage.data_ptr()] = max(saved.get(storage.data_ptr(), 0), storage.nbytes())
        return t

    layers = decoder_layers(model)
    for layer in layers:
        layer.register_forward_pre_hook(lambda *_: inside.__setitem__(0, True))
        layer.register_forward_hook(lambda *_: inside.__setitem__(0, False))
    ids = torch.randint(3, 500, (2, seq))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(input_ids=ids, labels=ids, use_cache=False)
    return sum(saved.values()) / (2 * seq * len(layers))


ARCHS = {
    "llama": ("LlamaConfig", {}),
    "qwen2": ("Qwen2Config", {}),
    "phi3": ("Phi3Config", {"pad_token_id": 0}),
    "falcon": ("FalconConfig", {"new_decoder_architecture": True, "num_kv_heads": 2, "alibi": False}),
}


@pytest.mark.parametrize(
    ("arch", "precision"), [(a, "fp32") for a in sorted(ARCHS)] + [("llama", "bf16-autocast")]
)
def test_the_activation_estimate_is_never_below_what_autograd_saves(arch, precision):
    import torch
    import transformers
    from peft import LoraConfig, get_peft_model

    from domainllm.training.layers import model_shape

    name, extra = ARCHS[arch]
    common = {
        "vocab_size": 512,
        "hidden_size": 256,
        "intermediate_size": 688,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 256,
    }
    if arch == "falcon":
        common = {k: v for k, v in common.items() if k not in ("intermediate_size", "num_key_value_heads")}
        common["ffn_hidden_size"] = 688
    config = getattr(transformers, name)(**common, **extra, attn_implementation="sdpa")
    torch.manual_seed(0)
    bf16 = precision == "bf16-autocast"  # as on a GPU: bf16 weights, bf16 autocast (here on the CPU)
    base = transformers.AutoModelForCausalLM.from_config(
        config, dtype=torch.bfloat16 if bf16 else torch.float32
    )
    shape = model_shape(base, "all-linear", 8)
    model = get_peft_model(
        base, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules="all-linear")
    )
    model.train()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        measured = _measured_bytes_per_token(model, 64)
    size = 2 if bf16 else 4
    estimate = activation_bytes_per_token(shape, TrainSetup(act_bytes=size, weight_bytes=size), 64)
    assert estimate >= measured, (arch, estimate, measured)
    assert estimate <= 2.0 * measured, (arch, estimate, measured)  # generous, not wildly so
