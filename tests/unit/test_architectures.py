"""Beyond Llama: tiny Falcon (fused ``query_key_value``), Qwen2 and Phi-3 (fused ``qkv_proj``, ``gate_up_proj``).

Each architecture is a genuine transformers model built from a config with the SmolLM2 tokenizer
(vocab size from it), like the tiny Llama in conftest. Per architecture, one ``compare`` (arms
prompt_only and finetuned) trains a real run on the tiny domain with the target modules that fit it
(``attention``, ``all-linear`` or an explicit list of its own fused names), then the run is served
(batched answers equal single ones, the adapter changes them) and merged with parity.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _runs import one_torch_thread

__all__ = ["one_torch_thread"]

# Per architecture: config class, its extra keys, the target modules this test trains with, and what
# "attention" must resolve to (its own attention projections, fused ones included).
ARCHS = {
    "falcon": (
        "FalconConfig",
        {
            "multi_query": True,
            "parallel_attn": True,
            "new_decoder_architecture": False,
            "alibi": False,
            "bias": False,
        },
        "attention",
        ["query_key_value", "dense"],
    ),
    "qwen2": (
        "Qwen2Config",
        {"intermediate_size": 128, "num_key_value_heads": 2},
        "all-linear",
        ["q_proj", "k_proj", "v_proj", "o_proj"],
    ),
    "phi3": (
        "Phi3Config",
        {"intermediate_size": 128, "num_key_value_heads": 2},
        ["qkv_proj", "gate_up_proj"],
        ["o_proj", "qkv_proj"],
    ),
}


def _model_dir(arch: str, smollm_dir: Path, root: Path) -> Path:
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    name, extra, _, _ = ARCHS[arch]
    tokenizer = AutoTokenizer.from_pretrained(smollm_dir)
    config = getattr(transformers, name)(
        vocab_size=len(tokenizer),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=1024,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
        **extra,
    )
    torch.manual_seed(0)
    path = root / f"tiny-{arch}"
    AutoModelForCausalLM.from_config(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module", params=sorted(ARCHS))
def arch_run(request, smollm_dir, tmp_path_factory):
    """One tiny compare (training included) per architecture."""
    from conftest import write_tiny_domain

    from domainllm.benchmark.comparison import compare
    from domainllm.config import config_from_dict

    arch = request.param
    root = tmp_path_factory.mktemp(arch)
    model_dir = _model_dir(arch, smollm_dir, root)
    targets = ARCHS[arch][2]
    cfg = config_from_dict(
        {
            "model": {"name_or_path": str(model_dir), "device": "cpu"},
            "quantization": {"mode": "none"},
            "lora": {"r": 8, "dropout": 0.0, "target_modules": targets},
            "training": {
                "output_dir": str(root / "run"),
                "learning_rate": 5e-3,
                "max_steps": 8,
                "per_device_batch_size": 4,
                "warmup_ratio": 0.0,
                "max_seq_length": 128,
                "eval_strategy": "no",
                "load_best_model_at_end": False,
                "logging_steps": 1,
                "seed": 0,
            },
            "data": {"name": "tiny", "format": "folder", "path": str(write_tiny_domain(root / "domain"))},
            "generation": {"max_new_tokens": 6, "batch_size": 4},
            "compare": {
                "output_dir": str(root / "compare"),
                "arms": ["prompt_only", "finetuned"],
                "n_bootstrap": 100,
            },
        }
    )
    out = compare(cfg)
    return arch, cfg, out, root / "run", model_dir


def test_attention_resolves_to_each_architectures_own_projections(arch_run):
    from transformers import AutoModelForCausalLM

    from domainllm.training.lora import linear_layer_names, resolve_target_modules

    arch, _, _, _, model_dir = arch_run
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    assert resolve_target_modules(model, "attention") == ARCHS[arch][3]
    assert "lm_head" not in linear_layer_names(model)


def test_the_run_trains_the_fused_modules_and_the_comparison_records_it(arch_run):
    from domainllm.rundir import RunDir

    arch, _, out, run, _ = arch_run
    manifest = RunDir(run).read_manifest()
    assert manifest["status"] == "complete" and manifest["global_step"] == 8
    expected = {"falcon": ["dense", "query_key_value"], "phi3": ["gate_up_proj", "qkv_proj"]}
    if arch in expected:
        assert manifest["target_modules"] == expected[arch]
    else:  # all-linear on Qwen2: every linear layer but the head
        assert set(manifest["target_modules"]) >= {
            "q_proj",
            "k_proj",
            "v_proj",
            "o_proj",
            "gate_proj",
            "up_proj",
            "down_proj",
        }
    losses = [
        json.loads(line)["loss"]
        for line in (run / "metrics.jsonl").read_text().splitlines()
        if '"train"' in line
    ]
    assert len(losses) == 8 and losses[-1] < losses[0]
    assert manifest["speed"]["padding_free"]["enabled"] is True, manifest["speed"]  # probed for this model
    results = json.loads((out / "results.json").read_text())
    for arm in ("prompt_only", "finetuned"):
        assert results["arms"][arm]["generation_mode"] == "batched greedy, eager generate (dynamic KV cache)"


def test_the_run_serves_batched_and_its_adapter_changes_the_answers(arch_run):
    from domainllm.data.formatting import render_prompt
    from domainllm.serve import load_expert

    _, _, _, run, _ = arch_run
    expert = load_expert(run)
    prompts = [
        render_prompt(expert.tokenizer, q, expert.system_prompt)
        for q in ("Prices?", "Who is the orthodontist?", "Hi")
    ]
    llm = expert.llm()
    batched = llm.batch(prompts)
    assert batched == [llm.invoke(p) for p in prompts]
    with expert.adapter_enabled(True):
        on = expert.model(**expert.tokenizer(prompts[0], return_tensors="pt")).logits
    with expert.adapter_enabled(False):
        off = expert.model(**expert.tokenizer(prompts[0], return_tensors="pt")).logits
    assert (on - off).abs().max() > 1e-4  # the trained adapter is live on this architecture


def test_the_run_merges_with_parity(arch_run):
    from domainllm.rundir import RunDir
    from domainllm.serve import merge_adapter

    _, _, _, run, _ = arch_run
    out = merge_adapter(run, parity_threshold=0.9)
    record = RunDir(run).read_manifest()["merge"]
    assert (out / "config.json").is_file() and record["passed"] and record["identical_share"] >= 0.9
