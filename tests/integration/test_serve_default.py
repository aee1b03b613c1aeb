"""Serving the real embedded SmolLM2-135M-Instruct: stopping, batching, retrieval, scoring (slow)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow

QUESTIONS = [
    "What time does the practice close on Saturdays?",
    "How much notice do I need to give to cancel an appointment?",
    "Who is the specialist orthodontist?",
    "Do you see children?",
    "Is there parking near the practice?",
    "How often should I see the hygienist?",
    "What should I do if I knock out a tooth?",
    "Can I pay in instalments?",
]


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """One torch thread: on a shared 2-core machine, contention made two threads ~6x slower here."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def expert(smollm_dir):
    from domainllm.serve import load_expert

    return load_expert()


# Stopping at the end-of-turn token on this model is checked in tests/unit/test_defaults.py (not slow).


def test_batched_generation_equals_single_calls_on_the_real_model(expert):
    from domainllm.data.formatting import render_prompt
    from domainllm.serve.generate import generate_texts, generation_kwargs

    prompts = [render_prompt(expert.tokenizer, q, expert.system_prompt) for q in QUESTIONS]
    kw = generation_kwargs(expert.config.generation)
    batched = generate_texts(expert.model, expert.tokenizer, prompts, gen_kwargs=kw, batch_size=8)
    single = generate_texts(expert.model, expert.tokenizer, prompts, gen_kwargs=kw, batch_size=1)
    assert [b.token_ids for b in batched] == [s.token_ids for s in single]
    llm = expert.llm()
    assert "".join(llm.stream(prompts[2])) == llm.invoke(prompts[2])
    chat = expert.chat_model().batch(QUESTIONS[:3])
    assert all(m.content for m in chat)


def test_rag_chain_retrieves_the_right_document(expert, tmp_path):
    from domainllm.chains import build_chain, load_chain_spec
    from domainllm.rag import get_retriever, knowledge_base

    cfg = expert.config
    store = knowledge_base(cfg, store_dir=tmp_path / "store")
    chain = build_chain(
        load_chain_spec("rag", domain="dental"),
        expert,
        get_retriever(store, cfg.retrieval),
        return_sources=True,
    )
    outs = chain.batch(QUESTIONS[:2])
    assert outs[0]["sources"][0].metadata["doc_id"] == "opening-hours"
    assert outs[1]["sources"][0].metadata["doc_id"] == "cancellation-policy"
    assert "48" in outs[1]["answer"]


def test_option_loglikelihoods_prefer_the_sensible_option(expert):
    from domainllm.data.formatting import render_prompt

    prompt = render_prompt(
        expert.tokenizer, "What colour is a clear daytime sky? Answer with one word.", None
    )
    [[blue, green]] = expert.option_loglikelihoods([prompt], [["Blue", "Green"]], adapter=False)
    assert blue > green


def test_generation_speed_benchmark_batches(smollm_dir):
    from domainllm.bench.generation_speed import run_benchmark

    # Smaller than the benchmark's own 16 questions and 2x bar, for time: 8 single calls plus a batch
    # keep this test near a minute on a shared 2-core CPU. A batch of 8 has half the rows to share
    # each forward pass over, so the bar is lowered with it; identical answers are still required.
    result = run_benchmark(n=8, max_new_tokens=16)
    assert result["mismatches"] == []
    assert result["speedup"] > 1.5
