"""Decoding strategies give the eager tokens: static KV cache (and compiled, slow) against eager generate.

The tiny run's adapter (random LoRA B weights) makes the answers vary by prompt, so equal tokens
across strategies mean something; prompts of different lengths in batches of two exercise the
left padding that the static modes round up to a multiple of ``STATIC_WIDTH``.
"""

from __future__ import annotations

import dataclasses

import pytest
from _runs import make_tiny_run, one_torch_thread
from conftest import write_tiny_domain

__all__ = ["one_torch_thread"]  # the autouse fixture, imported to apply to this module

QUESTIONS = [
    "How much does a check-up cost?",
    "Who is the orthodontist at Quillby Dental, and what does she do on a Monday morning?",
    "Hi",
    "On which day is the practice closed?",
    "Can I cancel?",
]


@pytest.fixture(scope="module")
def expert(tiny_model_dir, tmp_path_factory):
    from domainllm.serve import load_expert

    root = tmp_path_factory.mktemp("decoding")
    return load_expert(make_tiny_run(root, tiny_model_dir, write_tiny_domain(root / "domain")))


def _generate(expert, decoding: str, batch_size: int = 2):
    from domainllm.data.formatting import render_prompt
    from domainllm.serve.generate import generate_texts, generation_kwargs

    prompts = [render_prompt(expert.tokenizer, q, expert.system_prompt) for q in QUESTIONS]
    with expert.adapter_enabled(True):
        return generate_texts(
            expert.model,
            expert.tokenizer,
            prompts,
            gen_kwargs=generation_kwargs(expert.config.generation, {"max_new_tokens": 12}),
            batch_size=batch_size,
            eos_ids=expert.eos_ids,
            decoding=decoding,
        )


def test_static_cache_gives_the_eager_greedy_tokens(expert):
    eager = _generate(expert, "eager")
    static = _generate(expert, "static")
    assert [o.token_ids for o in static] == [o.token_ids for o in eager]
    assert len({tuple(o.token_ids) for o in eager}) > 1  # the prompts get different answers
    assert all(o.token_ids for o in eager)


@pytest.mark.slow
def test_compiled_decoding_gives_the_eager_greedy_tokens(expert):
    """torch.compile on a CPU: correct but slow to compile (about a minute here), hence slow."""
    eager = _generate(expert, "eager")
    assert [o.token_ids for o in _generate(expert, "compiled")] == [o.token_ids for o in eager]


def test_auto_is_eager_on_cpu_and_the_mode_is_what_the_expert_reports(expert):
    from domainllm.serve.decoding import decoding_mode, describe_decoding

    assert decoding_mode(expert.model, "auto") == "eager"
    assert expert.generation_mode == describe_decoding("eager")
    gen = dataclasses.replace(expert.config.generation, decoding="static")
    expert.config = expert.config.replace(generation=gen)
    try:
        assert expert.generation_mode == "batched greedy, static KV cache"
        llm = expert.llm()
        assert llm.invoke(QUESTIONS[0]) == expert.llm(
            generation=dataclasses.replace(gen, decoding="eager")
        ).invoke(QUESTIONS[0])
    finally:
        expert.config = expert.config.replace(generation=dataclasses.replace(gen, decoding="auto"))


def test_a_model_without_static_cache_support_is_refused_by_name(expert, monkeypatch):
    from domainllm.errors import ConfigError
    from domainllm.serve.decoding import decoding_mode

    base = expert.model.get_base_model()
    monkeypatch.setattr(type(base), "_can_compile_fullgraph", False)
    assert decoding_mode(expert.model, "auto") == "eager"
    with pytest.raises(ConfigError, match=r"generation\.decoding.*static KV cache"):
        decoding_mode(expert.model, "static")
