"""The arms as LCEL chains on the tiny model: specs, prompts, batching, sources, bad input."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from _runs import SYSTEM_PROMPT, make_tiny_run, one_torch_thread
from conftest import write_tiny_domain

from domainllm.errors import ConfigError, DataError, EvalError

__all__ = ["one_torch_thread"]

ARMS = ["prompt_only", "rag", "finetuned", "finetuned_rag"]
INPUTS = [
    {"question": "How much does a check-up cost at Quillby Dental?", "doc_id": "prices"},
    {
        "question": "Who is the orthodontist?",
        "doc_id": "staff",
        "options": ["Dr. Ines Marlow", "Dr. Tomas Reyes"],
    },
    {"question": "On which day is Quillby Dental closed?", "doc_id": "hours"},
]


@pytest.fixture(scope="module")
def domain(tmp_path_factory):
    return write_tiny_domain(tmp_path_factory.mktemp("domain"))


@pytest.fixture(scope="module")
def expert(tiny_model_dir, domain, tmp_path_factory):
    from domainllm.serve import load_expert

    # A repetition penalty: the random tiny base model answers greedy chat prompts with newlines only.
    root = tmp_path_factory.mktemp("chains")
    return load_expert(make_tiny_run(root, tiny_model_dir, domain, generation={"repetition_penalty": 2.0}))


@pytest.fixture(scope="module")
def retriever(expert, tmp_path_factory):
    from domainllm.rag import get_retriever, knowledge_base

    store = knowledge_base(expert.config, store_dir=tmp_path_factory.mktemp("store"))
    return get_retriever(store, expert.config.retrieval)


def _spec(name, **changes):
    from domainllm.chains import load_chain_spec

    return dataclasses.replace(load_chain_spec(name, domain="tiny"), **changes)


def test_shipped_specs_load_with_dental_and_generic_wording():
    from domainllm.chains import list_arms, load_chain_spec, load_judge_spec

    assert list_arms(domain="dental") == ["finetuned", "finetuned_rag", "oracle", "prompt_only", "rag"]
    assert list_arms(domain="tiny") == list_arms(domain="dental")  # generic/ serves unknown domains
    persona = load_chain_spec("prompt_only", domain="dental")
    assert persona.system_prompt == (
        "You are an experienced dentist at Larkspur Lane Dental in Eastmere. "
        "Answer the patient's question in one short sentence."
    )
    assert persona.model == "base" and persona.retrieval == "none" and not persona.adapter
    generic = load_chain_spec("prompt_only", domain="tiny")
    assert "generic" in generic.path and "Larkspur" not in (generic.system_prompt or "")
    tuned = load_chain_spec("finetuned", domain="dental")
    assert tuned.adapter and tuned.system_prompt == "from_run" and tuned.user_template is None
    assert load_chain_spec("finetuned_rag", domain="dental").uses_retrieval
    assert load_chain_spec("oracle", domain="dental").retrieval == "gold"
    judge = load_judge_spec()
    assert judge.labels == ("correct", "incorrect") and "{candidate}" in judge.user_template


def test_unknown_arm_and_bad_specs_are_refused(tmp_path):
    from domainllm.chains import load_chain_spec

    with pytest.raises(EvalError) as info:
        load_chain_spec("persona_v2", domain="dental")
    assert "finetuned, finetuned_rag, oracle, prompt_only, rag" in str(info.value)
    cases = {
        "typo.yaml": ("modle: base\n", "unknown key 'modle'"),
        "badmodel.yaml": ("model: large\n", "'model' is 'large'"),
        "noq.yaml": ("user_template: 'Answer: {context}'\nretrieval: retriever\n", "must contain {question}"),
        "noctx.yaml": ("user_template: 'Q: {question}'\nretrieval: retriever\n", "no {context}"),
        "badctx.yaml": ("context_template: '{title}: {text}'\n", "'context_template' uses ['title']"),
    }
    for name, (text, expected) in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(ConfigError, match=expected.replace("[", r"\[").replace("]", r"\]")):
            load_chain_spec(name[:-5], chains_dir=tmp_path)


def test_the_four_arms_answer(expert, retriever):
    from domainllm.chains import build_chain

    for arm in ARMS:
        chain = build_chain(_spec(arm), expert, retriever=retriever)
        answer = chain.invoke(INPUTS[0])
        assert isinstance(answer, str) and answer.strip(), arm


def test_finetuned_arm_prompts_exactly_as_training_did(expert):
    from domainllm.chains import build_chain
    from domainllm.data.formatting import format_user_message, render_example
    from domainllm.data.records import QARecord

    chain = build_chain(_spec("finetuned"), expert, return_sources=True)
    out = chain.invoke(INPUTS[0])
    trained = render_example(expert.tokenizer, INPUTS[0]["question"], "€85", SYSTEM_PROMPT)
    assert out["prompt"] == trained["prompt"]
    assert out["sources"] == []
    choice = chain.invoke(INPUTS[1])["prompt"]
    record = QARecord(
        id="x",
        question="Who is the orthodontist?",
        answer="Dr. Ines Marlow",
        options=("Dr. Ines Marlow", "Dr. Tomas Reyes"),
    )
    assert (
        choice
        == render_example(expert.tokenizer, format_user_message(record), "A. x", SYSTEM_PROMPT)["prompt"]
    )
    assert "A. Dr. Ines Marlow\nB. Dr. Tomas Reyes" in choice


def test_base_arms_run_with_the_adapter_off_and_finetuned_arms_with_it_on(expert):
    from domainllm.chains import build_chain

    persona = build_chain(_spec("prompt_only"), expert, return_sources=True).invoke(INPUTS[0])
    assert "You are an expert in this field" in persona["prompt"]
    assert persona["answer"] == expert.llm(adapter=False).invoke(persona["prompt"])
    assert persona["answer"] != expert.llm(adapter=True).invoke(persona["prompt"])
    tuned = build_chain(_spec("finetuned"), expert, return_sources=True).invoke(INPUTS[0])
    assert tuned["answer"] == expert.llm(adapter=True).invoke(tuned["prompt"])
    assert tuned["answer"] != expert.llm(adapter=False).invoke(tuned["prompt"])


def test_rag_arms_put_retrieved_chunks_in_the_prompt_and_return_them(expert, retriever):
    from domainllm.chains import build_chain

    out = build_chain(_spec("rag"), expert, retriever=retriever, return_sources=True).invoke(INPUTS[1])
    assert len(out["sources"]) == 2
    top = out["sources"][0]
    assert top.metadata["doc_id"] == "staff" and top.metadata["chunk_id"].startswith("staff::")
    assert f"[staff] {top.page_content.strip()}" in out["prompt"]
    assert "Reference information:" in out["prompt"] and "A. Dr. Ines Marlow" in out["prompt"]
    one = build_chain(_spec("finetuned_rag", k=1), expert, retriever=retriever, return_sources=True)
    result = one.invoke(INPUTS[1])
    assert len(result["sources"]) == 1 and SYSTEM_PROMPT in result["prompt"]


def test_batch_is_one_retrieval_batch_and_one_generation_and_equals_invoke(expert, retriever, monkeypatch):
    import domainllm.serve.langchain as wrappers
    from domainllm.chains import build_chain

    generate_calls, retrieval_calls = [], []
    original = wrappers.ExpertLLM._generate
    original_batch = type(retriever).batch

    def spy(self, prompts, *args, **kwargs):
        generate_calls.append(len(prompts))
        return original(self, prompts, *args, **kwargs)

    def spy_batch(self, inputs, *args, **kwargs):
        retrieval_calls.append(len(inputs))
        return original_batch(self, inputs, *args, **kwargs)

    monkeypatch.setattr(wrappers.ExpertLLM, "_generate", spy)
    monkeypatch.setattr(type(retriever), "batch", spy_batch)
    for arm in ARMS:
        for sources in (False, True):
            chain = build_chain(_spec(arm), expert, retriever=retriever, return_sources=sources)
            generate_calls.clear()
            retrieval_calls.clear()
            batched = chain.batch(INPUTS)
            assert generate_calls == [3], arm
            assert retrieval_calls == ([3] if arm.endswith("rag") else []), arm
            assert batched == [chain.invoke(i) for i in INPUTS], arm
    # The async path batches too (what an async server would call).
    generate_calls.clear()
    chain = build_chain(_spec("finetuned_rag"), expert, retriever=retriever, return_sources=True)
    assert asyncio.run(chain.abatch(INPUTS)) == chain.batch(INPUTS)
    assert generate_calls == [3, 3]


def test_oracle_uses_the_gold_context_or_the_gold_document(expert, retriever):
    from domainllm.chains import build_chain

    oracle = build_chain(_spec("oracle"), expert, retriever=retriever, return_sources=True)
    given = oracle.invoke({"question": "Price?", "context": "A check-up costs €85.", "doc_id": "prices"})
    assert "[prices] A check-up costs €85." in given["prompt"]
    looked_up = oracle.invoke({"question": "Price?", "doc_id": "prices"})
    assert "A scale and polish costs €60." in looked_up["prompt"]
    assert looked_up["sources"][0].metadata["doc_id"] == "prices"
    with pytest.raises(EvalError, match="gold document"):
        build_chain(_spec("oracle"), expert).invoke("Price?")


def test_inputs_strings_records_and_bad_ones(expert):
    from domainllm.chains import build_chain
    from domainllm.data.records import QARecord

    chain = build_chain(_spec("finetuned"), expert, return_sources=True)
    as_text = chain.invoke("  How much does a check-up cost at Quillby Dental?  ")
    as_record = chain.invoke(
        QARecord(id="q", question="How much does a check-up cost at Quillby Dental?", answer="€85")
    )
    assert as_text == as_record == chain.invoke(INPUTS[0])
    for bad in ("", "   ", {"question": ""}, {"doc_id": "prices"}):
        with pytest.raises(DataError, match="question is empty"):
            chain.invoke(bad)


def test_arms_that_cannot_run_say_why(expert, tiny_model_dir):
    from domainllm.chains import build_chain
    from domainllm.config import config_from_dict
    from domainllm.serve import load_expert

    with pytest.raises(EvalError, match="no retriever"):
        build_chain(_spec("rag"), expert)
    base_cfg = config_from_dict(
        {"model": {"name_or_path": str(tiny_model_dir)}, "quantization": {"mode": "none"}}
    )
    with pytest.raises(EvalError, match="needs the fine-tuned model"):
        build_chain(_spec("finetuned"), load_expert(config=base_cfg))


def test_chain_streams_tokens(expert):
    from domainllm.chains import build_chain

    chain = build_chain(_spec("finetuned"), expert)
    chunks = list(chain.stream(INPUTS[2]))
    assert len(chunks) > 1 and "".join(chunks) == chain.invoke(INPUTS[2])
