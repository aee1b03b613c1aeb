"""Cheap, real run directories for serving tests (no TRL run needed).

A run is made the way training makes one, minus the optimisation: the tiny Llama gets a real PEFT
LoRA adapter whose ``lora_B`` weights are set to small random values (so the adapter visibly changes
outputs; a few optimizer steps cannot teach the random tiny model anything: its tied embeddings keep
the logits near uniform). The adapter, tokenizer, resolved config and a complete manifest are written
following ``domainllm/rundir.py``, with the manifest's base model recorded as training records it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

SYSTEM_PROMPT = "You are the assistant of Quillby Dental."


def tiny_run_config(model_dir: Path, domain_dir: Path, root: Path, **sections: dict[str, Any]) -> Any:
    """The tiny test config (like conftest's tiny_config) with paths under ``root``."""
    from domainllm.config import config_from_dict

    data: dict[str, Any] = {
        "model": {"name_or_path": str(model_dir), "device": "cpu"},
        "quantization": {"mode": "none"},
        "lora": {"r": 8, "target_modules": "all-linear", "dropout": 0.0},
        "training": {"output_dir": str(root / "run"), "max_seq_length": 128, "seed": 0},
        "data": {"name": "tiny", "format": "folder", "path": str(domain_dir), "system_prompt": SYSTEM_PROMPT},
        "retrieval": {"k": 2, "chunk_size": 200, "chunk_overlap": 20},
        "generation": {"max_new_tokens": 8, "batch_size": 4},
        "compare": {"output_dir": str(root / "compare"), "n_bootstrap": 200},
    }
    for name, values in sections.items():
        data[name] = {**data.get(name, {}), **values}
    return config_from_dict(data)


def make_tiny_run(
    root: Path,
    model_dir: Path,
    domain_dir: Path,
    *,
    lora_std: float = 0.3,
    seed: int = 0,
    **sections: dict[str, Any],
) -> Path:
    """Write a complete run directory under ``root/run`` and return its path."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from domainllm.config import save_config
    from domainllm.rundir import RunDir

    cfg = tiny_run_config(model_dir, domain_dir, root, **sections)
    run_path = root / "run"
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    dtype = getattr(torch, cfg.model.dtype) if cfg.model.dtype != "auto" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
    lora = LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=0.0, target_modules="all-linear")
    model = get_peft_model(model, lora)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * lora_std)
    model.save_pretrained(run_path / "adapter")
    tokenizer.save_pretrained(run_path / "adapter")
    save_config(cfg, run_path / "config.yaml")
    RunDir(run_path).mark_complete(
        base_model={"name_or_path": str(model_dir), "name": model_dir.name, "path": str(model_dir)},
        test_helper=True,
    )
    return run_path


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Run the module's torch work on one thread.

    The test machine's two cores are shared with other processes; under that contention OpenMP's
    spinning worker threads made tiny-model generation up to 100x slower with two threads than with
    one (5.7 s vs 0.05 s for a batch of five). Results do not depend on it.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
