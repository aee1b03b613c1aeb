"""Serving a run that ``domainllm.training.train`` really produced (TRL + PEFT on the tiny model)."""

from __future__ import annotations

import pytest
from _runs import one_torch_thread

__all__ = ["one_torch_thread"]


@pytest.fixture(scope="module")
def trained_run(tiny_config, tmp_path_factory):
    import dataclasses

    from domainllm.training import train

    short = dataclasses.replace(
        tiny_config.training, num_epochs=1, eval_strategy="no", load_best_model_at_end=False
    )
    return train(tiny_config.replace(training=short), output_dir=tmp_path_factory.mktemp("trained") / "run")


@pytest.fixture(scope="module")
def tiny_config(tiny_model_dir, tmp_path_factory):
    """A module-scoped copy of conftest's tiny_config (that one is per test)."""
    from conftest import write_tiny_domain

    from domainllm.config import config_from_dict

    root = tmp_path_factory.mktemp("trained-domain")
    domain = write_tiny_domain(root / "domain")
    return config_from_dict(
        {
            "model": {"name_or_path": str(tiny_model_dir), "device": "cpu"},
            "quantization": {"mode": "none"},
            "lora": {"r": 8, "target_modules": "all-linear", "dropout": 0.0},
            "training": {"learning_rate": 5e-3, "per_device_batch_size": 8, "max_seq_length": 128, "seed": 0},
            "data": {
                "name": "tiny",
                "path": str(domain),
                "system_prompt": "You are the assistant of Quillby Dental.",
            },
            "retrieval": {"k": 2, "chunk_size": 200, "chunk_overlap": 20},
            "generation": {"max_new_tokens": 6, "batch_size": 4, "repetition_penalty": 2.0},
        }
    )


def test_a_trained_run_serves_through_the_chains(trained_run, tiny_config):
    from domainllm.chains import build_chain, load_chain_spec
    from domainllm.rundir import RunDir
    from domainllm.serve import load_expert

    assert RunDir(trained_run).is_complete
    expert = load_expert(trained_run)
    assert expert.has_adapter
    assert expert.system_prompt == tiny_config.data.system_prompt
    questions = [
        "How much does a check-up cost at Quillby Dental?",
        "Who is the orthodontist at Quillby Dental?",
    ]
    tuned = build_chain(load_chain_spec("finetuned", domain="tiny"), expert, return_sources=True)
    base = build_chain(load_chain_spec("prompt_only", domain="tiny"), expert, return_sources=True)
    tuned_out, base_out = tuned.batch(questions), base.batch(questions)
    assert all(o["answer"] for o in tuned_out)
    assert [o["answer"] for o in tuned_out] == [tuned.invoke(q)["answer"] for q in questions]
    # Training moved the adapter away from zero: the fine-tuned and base arms answer differently.
    assert expert.llm(adapter=True).batch([o["prompt"] for o in tuned_out]) != expert.llm(
        adapter=False
    ).batch([o["prompt"] for o in tuned_out])
    assert base_out[0]["prompt"] != tuned_out[0]["prompt"]
