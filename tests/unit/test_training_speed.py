"""Padding-free batches and the kept-logits loss are the same computation as padded batches and TRL's head.

On the tiny Llama (fp32, CPU), with the real TRL collators and trainers: loss and LoRA gradients of
a padding-free batch equal those of the padded batch within 1e-5, for TRL's fused head and for
domainllm's kept-logits head alike; flattened examples never see each other (perturbing one
leaves the other's logits unchanged, where a plain causal row would change them); the prompt stays
out of the loss; the boundary probe tells an implementation that keeps examples apart from one
that does not; per-layer checkpointing recomputes exactly the chosen layers and changes no gradient.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

EXAMPLES = [  # (prompt tokens, answer tokens): uneven lengths, so the padded batch really pads
    ([11, 12, 13, 14, 15, 16], [21, 22, 23]),
    ([31, 32, 33], [41, 42, 43, 44, 45]),
    ([51, 52, 53, 54, 55, 56, 57, 58, 59], [61, 62]),
    ([71, 72], [81, 82, 83, 84]),
]


def _rows() -> list[dict]:
    rows = []
    for prompt, answer in EXAMPLES:
        ids = prompt + answer
        rows.append({"input_ids": ids, "labels": [-100] * len(prompt) + answer})
    return rows


def _model(model_dir, attn: str = "sdpa", layers: int | None = None):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(0)
    if layers is None:
        base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation=attn)
    else:
        config = AutoConfig.from_pretrained(model_dir, num_hidden_layers=layers, attn_implementation=attn)
        base = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules="all-linear"))
    with torch.no_grad():  # LoRA B starts at zero: give the adapter a value so its gradients are not trivial
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    return model


def _collate(rows, padding_free: bool):
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    return DataCollatorForLanguageModeling(pad_token_id=0, padding_free=padding_free)(rows)


@pytest.fixture(scope="module")
def trainers(tiny_model_dir, tmp_path_factory):
    """TRL's SFTTrainer and domainllm's kept-logits trainer on one tiny LoRA model."""
    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from domainllm.training.loss import kept_logits_trainer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = _model(tiny_model_dir)
    out = tmp_path_factory.mktemp("speed")
    args = SFTConfig(
        output_dir=str(out),
        use_cpu=True,
        report_to="none",
        max_length=None,
        bf16=False,
        per_device_train_batch_size=4,
    )
    data = Dataset.from_list(_rows())
    made = {}
    for name, cls in (("trl", SFTTrainer), ("kept", kept_logits_trainer())):
        made[name] = cls(model=model, args=args, train_dataset=data, processing_class=tokenizer)
    return model, made


def _loss_and_grads(model, trainer, batch):
    model.zero_grad(set_to_none=True)
    loss = trainer.compute_loss(model, dict(batch))
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    return loss.item(), grads


def test_padding_free_and_kept_logits_give_the_padded_loss_and_gradients(trainers):
    model, made = trainers
    model.train()
    results = {
        (head, flat): _loss_and_grads(model, made[head], _collate(_rows(), padding_free=flat))
        for head in ("trl", "kept")
        for flat in (False, True)
    }
    ref_loss, ref_grads = results[("trl", False)]  # TRL's own head on padded batches
    assert len(ref_grads) > 0 and all(g.abs().sum() > 0 for g in ref_grads.values())
    for key, (loss, grads) in results.items():
        assert loss == pytest.approx(ref_loss, abs=1e-5), key
        for name, grad in grads.items():
            assert torch.allclose(grad, ref_grads[name], atol=1e-5, rtol=1e-4), (key, name)


def test_the_padded_batch_really_pads_and_the_flat_one_does_not():
    padded, flat = _collate(_rows(), padding_free=False), _collate(_rows(), padding_free=True)
    real = sum(len(p) + len(a) for p, a in EXAMPLES)
    assert padded["input_ids"].numel() > real  # 4 rows of the longest
    assert flat["input_ids"].shape == (1, real) and "attention_mask" not in flat
    assert flat["position_ids"][0].tolist() == [i for p, a in EXAMPLES for i in range(len(p) + len(a))]


def test_completion_only_loss_still_masks_the_prompt_in_flat_batches(tiny_model_dir):
    model = _model(tiny_model_dir)
    flat = _collate(_rows(), padding_free=True)
    labels = flat["labels"][0].tolist()
    answers = [t for _, a in EXAMPLES for t in a]
    # Every prompt token (and each example's first token, the boundary) is out of the loss.
    assert [t for t in labels if t != -100] == answers
    with torch.no_grad():
        out = model(**{k: v for k, v in flat.items() if k != "labels"}, use_cache=False).logits[0].float()
    logp = torch.log_softmax(out[:-1], dim=-1)
    targets = torch.tensor(labels[1:])
    keep = targets != -100
    manual = -logp[keep].gather(1, targets[keep][:, None]).mean()
    with torch.no_grad():
        assert model(**flat, use_cache=False).loss.item() == pytest.approx(manual.item(), abs=1e-5)


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_flattened_examples_never_attend_to_each_other(tiny_model_dir, attn):
    model = _model(tiny_model_dir, attn=attn).eval()
    rows = _rows()
    changed = [dict(r) for r in rows]
    changed[0] = {**rows[0], "input_ids": [t + 100 for t in rows[0]["input_ids"]]}  # perturb example A only
    first = len(rows[0]["input_ids"])

    def logits(batch_rows, reset_positions: bool):
        batch = _collate(batch_rows, padding_free=True)
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        if not reset_positions:  # a plain causal row: what the mask must prevent
            inputs = {"input_ids": batch["input_ids"]}
        with torch.no_grad():  # no KV cache, as in training (with one, transformers skips the packed mask)
            return model(**inputs, use_cache=False).logits[0, first:]

    assert torch.allclose(logits(rows, True), logits(changed, True), atol=1e-6)  # B..D did not see A
    assert not torch.allclose(logits(rows, False), logits(changed, False), atol=1e-3)  # the test can fail


def _register_leaky_attention() -> str:
    """An attention that ignores every mask but causality: flattened examples see each other."""
    from transformers import AttentionInterface
    from transformers.integrations.sdpa_attention import sdpa_attention_forward
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    def leaky(module, query, key, value, attention_mask, **kwargs):
        return sdpa_attention_forward(module, query, key, value, None, is_causal=True, **kwargs)

    AttentionInterface.register("leaky_causal", leaky)
    AttentionMaskInterface.register("leaky_causal", sdpa_mask)
    return "leaky_causal"


def test_the_probe_tells_kept_apart_from_leaky_attention(tiny_model_dir):
    from domainllm.errors import ConfigError
    from domainllm.training.batching import choose_padding_free, probe_boundaries

    apart, detail = probe_boundaries(_model(tiny_model_dir, "sdpa").get_base_model(), 0)
    assert apart, detail
    choice = choose_padding_free("auto", _model(tiny_model_dir, "sdpa").get_base_model(), 0, packing=False)
    assert choice.enabled and choice.attention == "sdpa"

    leaky = _model(tiny_model_dir, _register_leaky_attention()).get_base_model()
    apart, detail = probe_boundaries(leaky, 0)
    assert not apart, detail
    with pytest.raises(ConfigError, match="padding_free"):
        choose_padding_free("on", leaky, 0, packing=False)
    leaky.config._attn_implementation = "sdpa"  # claims a known implementation; the probe still catches it
    leaky.config._attn_implementation_internal = "sdpa"
    off = choose_padding_free("off", leaky, 0, packing=False)
    assert not off.enabled and "off" in off.reason


def test_checkpointing_chosen_layers_recomputes_only_them_and_keeps_gradients(tiny_model_dir):
    from domainllm.training.layers import checkpoint_layers, checkpointed_layers, decoder_layers

    batch = _collate(_rows(), padding_free=False)

    def run(indices):
        model = _model(tiny_model_dir, layers=4).train()
        assert checkpoint_layers(model.get_base_model(), indices) == sorted(indices)
        assert checkpointed_layers(model) == sorted(indices)
        calls = [0] * 4
        for i, layer in enumerate(
            decoder_layers(model)
        ):  # the recompute replays forward(), so count inside it
            layer.mlp.register_forward_pre_hook(lambda *_, i=i: calls.__setitem__(i, calls[i] + 1))
        model(**batch).loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
        return calls, grads

    plain_calls, plain = run([])
    calls, grads = run([1, 3])
    assert plain_calls == [1, 1, 1, 1]
    assert calls == [1, 2, 1, 2]  # the checkpointed layers ran again in backward, the others did not
    for name, grad in grads.items():
        assert torch.allclose(grad, plain[name], atol=1e-6), name


def test_liger_is_used_only_where_it_can_run_and_a_request_without_it_names_the_extra(monkeypatch):
    import importlib.util

    from domainllm.errors import ConfigError, MissingDependencyError
    from domainllm.training.speed import resolve_liger

    if importlib.util.find_spec("liger_kernel") is None:
        with pytest.raises(MissingDependencyError, match=r"domainllm\[liger\]"):
            resolve_liger("on", "cuda")
        assert resolve_liger("auto", "cuda") is False
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: object() if name == "liger_kernel" else real(name)
    )
    assert resolve_liger("auto", "cuda") is True
    assert resolve_liger("auto", "cpu") is False  # Triton kernels: CUDA only
    with pytest.raises(ConfigError, match="CUDA"):
        resolve_liger("on", "cpu")
    assert resolve_liger("off", "cuda") is False


def test_the_layout_rule_flattens_only_where_it_computes_less():
    from domainllm.training.batching import LayoutCollator

    # SmolLM2-135M's decoder layer: 3.54 M linear weights, 9 heads x 64.
    dense = LayoutCollator(0, token_flops=2 * 3.54e6, pair_flops=4 * 576, varlen=False)
    assert not dense.flatten([128] * 8)  # nothing to save, only (8 x 128)^2 pairs to add
    assert dense.flatten([30, 45, 52, 60, 61, 70, 88, 100])  # the dental mix: padding dominates
    assert not dense.flatten([4000, 4000, 4000, 10])  # long rows: the dense mask costs more than the padding
    varlen = LayoutCollator(0, token_flops=2 * 3.54e6, pair_flops=4 * 576, varlen=True)
    assert varlen.flatten([128] * 8) is False  # equal lengths: the same work either way, padded is fine
    assert varlen.flatten([4000, 4000, 4000, 10])  # flash attention never attends across examples
    batch = dense(_rows())
    assert ("position_ids" in batch) == dense.flatten([len(p) + len(a) for p, a in EXAMPLES])
    assert sum(dense.counts.values()) == 1
