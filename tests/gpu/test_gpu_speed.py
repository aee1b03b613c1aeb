"""The GPU speed path for real: 8-bit training, the memory budget on CUDA, padding-free in bf16, compiled decoding.

Deselected by default (marker ``gpu``); run with ``pytest -m gpu`` on a CUDA machine (with
bitsandbytes). None of this has run yet: no GPU was lent while it was written (issue #14); the
CPU suite proves the same logic on the CPU paths.
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


def test_8bit_base_trains_on_cuda(tmp_path, tiny_model_dir):
    from conftest import tiny_config_data, write_tiny_domain

    from domainllm.config import config_from_dict
    from domainllm.rundir import RunDir
    from domainllm.serve import load_expert
    from domainllm.training import train

    domain = write_tiny_domain(tmp_path / "domain")
    gpu = {
        "model": {"device": "auto", "dtype": "auto"},
        "quantization": {"mode": "8bit"},
        "training": {
            "max_steps": 12,
            "optimizer": "adamw_torch",
            "eval_strategy": "no",
            "load_best_model_at_end": False,
        },
    }
    run = train(config_from_dict(tiny_config_data(tiny_model_dir, domain, tmp_path, **gpu)))
    manifest = RunDir(run).read_manifest()
    assert manifest["status"] == "complete" and manifest["base_model"]["quant_mode"] == "8bit"
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if r["kind"] == "train"]
    assert all(math.isfinite(x) for x in losses) and losses[-1] < losses[0]
    assert manifest["speed"]["loss_head"] in ("trl-fused", "liger")
    expert = load_expert(run)
    assert expert.quant_mode == "8bit" and isinstance(expert.llm().invoke("Hello?"), str)


def test_the_memory_budget_holds_on_cuda_and_the_estimate_is_not_below_the_peak():
    """A 4-layer Llama-3.2-1B-shaped model, 4-bit, seq 1024, effective batch 8, on a budget that forces checkpointing."""
    import tempfile
    from pathlib import Path

    from domainllm.bench.shapes import SHAPES, build_random_model, example_lengths, random_rows
    from domainllm.bench.train_variants import run_variant

    SHAPES["llama-1b-4l"] = {**SHAPES["llama-1b"], "num_hidden_layers": 4}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            model = build_random_model("llama-1b-4l", Path(tmp) / "m", dtype="bfloat16", device="cuda")
            rows = Path(tmp) / "rows.jsonl"
            rows.write_text(
                "".join(json.dumps(r) + "\n" for r in random_rows(example_lengths("fixed", 64, 1024), 128256))
            )
            opts = {"seq": 1024, "batch": 8, "steps": 5, "warmup": 2, "device": "auto"}
            free = run_variant("domainllm", model, rows, opts)
            budget = round(free["peak_gib"] * 0.6, 2)
            tight = run_variant("domainllm", model, rows, {**opts, "budget_gib": budget})
    finally:
        SHAPES.pop("llama-1b-4l")
    assert "checkpointed" in tight["plan"] and tight["plan"] != free["plan"], (free, tight)
    assert tight["peak_gib"] <= budget, (budget, tight)  # never out of its budget at its own choice


def test_padding_free_is_probed_and_kept_in_bf16_on_cuda(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    from domainllm.training.batching import choose_padding_free

    model = AutoModelForCausalLM.from_pretrained(
        tiny_model_dir, dtype=torch.bfloat16, attn_implementation="sdpa"
    )
    choice = choose_padding_free("auto", model.to("cuda"), 0, packing=False)
    assert choice.enabled, choice


def test_compiled_decoding_is_the_cuda_default_and_gives_the_eager_tokens(tmp_path, tiny_model_dir):
    import dataclasses

    from _runs import make_tiny_run
    from conftest import write_tiny_domain

    from domainllm.data.formatting import render_prompt
    from domainllm.serve import load_expert
    from domainllm.serve.generate import generate_texts, generation_kwargs

    run = make_tiny_run(
        tmp_path, tiny_model_dir, write_tiny_domain(tmp_path / "domain"), model={"device": "cuda"}
    )
    expert = load_expert(run)
    assert expert.generation_mode == "batched greedy, static KV cache + torch.compile"
    prompts = [
        render_prompt(expert.tokenizer, q, expert.system_prompt) for q in ("Prices?", "Closed when?", "Hi")
    ]
    gen = generation_kwargs(dataclasses.replace(expert.config.generation, max_new_tokens=10))
    outs = {
        mode: [
            o.token_ids
            for o in generate_texts(
                expert.model, expert.tokenizer, prompts, gen_kwargs=gen, batch_size=2, decoding=mode
            )
        ]
        for mode in ("eager", "static", "compiled")
    }
    assert outs["static"] == outs["eager"] and outs["compiled"] == outs["eager"]


def test_bench_train_runs_on_cuda_with_cuda_memory():
    import subprocess
    import sys

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "domainllm",
            "bench",
            "train",
            "--shape",
            "tiny",
            "--steps",
            "4",
            "--warmup",
            "1",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "CUDA allocated" in done.stdout and "| domainllm |" in done.stdout
