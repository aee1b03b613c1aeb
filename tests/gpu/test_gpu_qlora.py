"""The GPU path for real: 4-bit NF4 QLoRA with bf16 compute and paged 8-bit AdamW on CUDA, then serving
and merging the result on the same GPU.

Deselected by default (marker ``gpu``); run with ``pytest -m gpu`` on a CUDA machine. The tiny Llama
keeps each test to seconds, so these check that the CUDA-only settings are wired through (quantized
base, bf16 autocast, paged optimizer, pinned memory, GPU generation), not speed: GPU throughput is
measured by the benchmark scripts.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


@pytest.fixture(scope="module")
def gpu_run(tmp_path_factory, tiny_model_dir):
    """One QLoRA run on the GPU with the settings of configs/gpu_llama_8b.yaml, shared by the tests."""
    from conftest import tiny_config_data, write_tiny_domain

    from domainllm.config import config_from_dict
    from domainllm.training import train

    root = tmp_path_factory.mktemp("gpu")
    domain = write_tiny_domain(root / "domain")
    gpu = {
        "model": {"device": "auto", "dtype": "auto"},
        "quantization": {"mode": "auto"},  # = 4-bit NF4 on CUDA
        "training": {
            "max_steps": 12,
            "optimizer": "paged_adamw_8bit",
            "gradient_checkpointing": True,
            "eval_strategy": "steps",
            "eval_steps": 6,
        },
    }
    cfg = config_from_dict(tiny_config_data(tiny_model_dir, domain, root, **gpu))
    return cfg, train(cfg)


def test_qlora_trains_on_cuda_with_a_4bit_base_and_paged_adamw(gpu_run):
    from domainllm.rundir import RunDir

    _, path = gpu_run
    run = RunDir(path)
    manifest = run.read_manifest()
    assert manifest["status"] == "complete"
    assert manifest["device"].startswith("cuda")
    assert manifest["base_model"]["quant_mode"] == "4bit"
    assert manifest["peak_cuda_mib"] > 0
    rows = [json.loads(line) for line in run.metrics_path.read_text().splitlines()]
    losses = [r["loss"] for r in rows if r["kind"] == "train"]
    assert len(losses) == 12 and all(math.isfinite(x) for x in losses)
    assert losses[0] - losses[-1] > 0.3, losses
    assert manifest["eval_loss_after"] < manifest["eval_loss_before"]
    # The CUDA-only settings reached TRL as asked: every checkpoint (steps 6 and 12, saved at each
    # evaluation) records the arguments it was trained with.
    checkpoint_args = sorted(path.glob("checkpoints/checkpoint-*/training_args.bin"))
    assert [p.parent.name for p in checkpoint_args] == ["checkpoint-12", "checkpoint-6"], checkpoint_args
    for saved in checkpoint_args:
        args = torch.load(saved, weights_only=False)
        assert args.optim == "paged_adamw_8bit"
        assert args.bf16 is torch.cuda.is_bf16_supported()


def test_the_gpu_run_serves_batched_on_cuda_and_the_adapter_switches(gpu_run):
    from domainllm.data.formatting import render_prompt
    from domainllm.serve import load_expert

    _, path = gpu_run
    expert = load_expert(path)
    assert next(expert.model.parameters()).device.type == "cuda"
    questions = ["How much is a check-up?", "When do you open?", "Do you take insurance?"]
    prompts = [render_prompt(expert.tokenizer, q, expert.system_prompt) for q in questions]
    llm = expert.llm()
    batched = llm.batch(prompts)
    assert batched == [llm.invoke(p) for p in prompts]  # greedy: batching changes nothing
    assert all(isinstance(text, str) for text in batched)
    base = expert.llm(adapter=False).batch(prompts)
    assert base != batched  # the trained adapter changes the answers


def test_merge_on_cuda_passes_parity(gpu_run):
    from safetensors import safe_open

    from domainllm.rundir import RunDir
    from domainllm.serve import merge_adapter

    _, path = gpu_run
    out = merge_adapter(path, parity_threshold=0.9)
    with safe_open(out / "model.safetensors", "pt") as fh:
        assert all(fh.get_tensor(k).dtype == torch.float32 for k in list(fh.keys())[:5])
    parity = RunDir(path).read_manifest()["merge"]
    assert parity["passed"] and parity["identical_share"] >= 0.9 and parity["merged_in"] == "float32"
