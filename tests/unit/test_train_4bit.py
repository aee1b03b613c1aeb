"""QLoRA for real on CPU: a 4-bit NF4 base (bitsandbytes >= 0.48 runs it without CUDA) trains."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math

import pytest

pytestmark = pytest.mark.skipif(importlib.util.find_spec("bitsandbytes") is None, reason="needs bitsandbytes")


def test_4bit_base_trains_with_finite_falling_loss(tiny_config):
    from safetensors import safe_open

    from domainllm.rundir import RunDir
    from domainllm.training import train

    cfg = tiny_config.replace(
        quantization=dataclasses.replace(tiny_config.quantization, mode="4bit"),
        training=dataclasses.replace(tiny_config.training, max_steps=12, eval_strategy="no"),
    )
    run = RunDir(train(cfg))
    manifest = run.read_manifest()
    assert manifest["status"] == "complete"
    assert manifest["base_model"]["quant_mode"] == "4bit"
    rows = [json.loads(line) for line in run.metrics_path.read_text().splitlines()]
    losses = [r["loss"] for r in rows if r["kind"] == "train"]
    assert len(losses) == 12 and all(math.isfinite(x) for x in losses)
    assert losses[0] - losses[-1] > 0.3, losses
    assert manifest["eval_loss_after"] < manifest["eval_loss_before"]  # val exists, so both are measured
    with safe_open(run.adapter_dir / "adapter_model.safetensors", "pt") as fh:
        keys = list(fh.keys())
        assert keys and all("lora_" in k for k in keys)
        assert any(fh.get_tensor(k).abs().sum() > 0 for k in keys if "lora_B" in k)
