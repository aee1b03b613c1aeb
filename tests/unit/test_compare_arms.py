"""Running arms: batching, per-question latency, token counts, contained failures, extra-arm checks."""

from __future__ import annotations

import time
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.runnables import Runnable, RunnableLambda

from domainllm.benchmark.arms import Arm, arm_inputs, check_extra_arm, parse_provider_model, run_arm
from domainllm.benchmark.comparison import sample_questions
from domainllm.data.records import QARecord
from domainllm.errors import EvalError


class EchoChain(Runnable):
    """A real Runnable that answers with the question upper-cased and records its batch sizes."""

    def __init__(self, delay: float = 0.0, fail_on: str | None = None) -> None:
        self.batches: list[int] = []
        self.questions: list[list[str]] = []
        self.delay = delay
        self.fail_on = fail_on

    def invoke(self, input: dict, config: Any = None, **kwargs: Any) -> dict:
        return self.batch([input])[0]

    def batch(self, inputs: list[dict], config: Any = None, **kwargs: Any) -> list[dict]:
        self.batches.append(len(inputs))
        self.questions.append([i["question"] for i in inputs])
        if self.fail_on and any(self.fail_on in i["question"] for i in inputs):
            msg = "CUDA out of memory (simulated by the test chain)"
            raise RuntimeError(msg)
        time.sleep(self.delay)
        return [
            {
                "answer": " " + i["question"].upper() + " ",
                "prompt": "<prompt> " + i["question"],
                "sources": [Document("x", metadata={"doc_id": i["doc_id"], "chunk_id": f"{i['doc_id']}::0"})],
            }
            for i in inputs
        ]


def recs(n: int) -> list[QARecord]:
    return [QARecord(id=f"q{i}", question=f"question {i}", answer="a", doc_id=f"d{i}") for i in range(n)]


def test_run_arm_batches_times_and_counts() -> None:
    chain = EchoChain(delay=0.05)
    inputs = [arm_inputs(r) for r in recs(10)]
    run = run_arm(
        Arm("rag", chain, retrieval=True),
        inputs,
        batch_size=4,
        count_tokens=lambda t: len(t.split()),
        progress=False,
    )
    assert run.ok and chain.batches == [4, 4, 2]
    assert [o.answer for o in run.outputs][:2] == ["QUESTION 0", "QUESTION 1"]  # stripped, in input order
    assert run.outputs[0].doc_ids == ["d0"] and run.outputs[0].chunk_ids == ["d0::0"]
    assert run.outputs[0].prompt_tokens == 3 and run.outputs[0].generated_tokens == 2
    # latency = batch wall time / batch size: ~0.05/4 for the full batches, ~0.05/2 for the last
    assert run.outputs[0].latency_s == pytest.approx(0.05 / 4, abs=0.01)
    assert run.outputs[-1].latency_s == pytest.approx(0.05 / 2, abs=0.015)
    assert run.generation_s >= 0.15 and run.wall_s >= run.generation_s
    assert run.peak_rss_mb and run.peak_rss_mb > 10


def test_run_arm_buckets_questions_by_prompt_length_and_answers_in_input_order() -> None:
    chain = EchoChain()
    inputs = [arm_inputs(r) for r in recs(7)]
    length = {f"question {i}": n for i, n in enumerate([5, 90, 10, 80, 20, 70, 30])}
    arm = Arm("rag", chain, prompt_lengths=lambda xs: [length[x["question"]] for x in xs])
    run = run_arm(arm, inputs, batch_size=3, progress=False)
    # longest first, batched with their neighbours in length, not in input order
    assert chain.questions == [
        ["question 1", "question 3", "question 5"],
        ["question 6", "question 4", "question 2"],
        ["question 0"],
    ]
    assert run.answers == [f"QUESTION {i}" for i in range(7)]  # back in input order


def test_run_arm_records_a_crash_instead_of_raising() -> None:
    inputs = [arm_inputs(r) for r in recs(6)]
    run = run_arm(Arm("finetuned", EchoChain(fail_on="question 5")), inputs, batch_size=2, progress=False)
    assert run.status == "failed" and not run.ok
    assert run.error == "RuntimeError: CUDA out of memory (simulated by the test chain)"
    assert "RuntimeError" in run.traceback
    assert run.outputs == []  # no partial answers that could be scored as if complete


def test_run_arm_accepts_chat_messages_as_answers() -> None:
    from langchain_core.messages import AIMessage

    chain = RunnableLambda(lambda x: {"answer": AIMessage(content="Wednesday"), "sources": []})
    run = run_arm(
        Arm("x", chain, kind="extra"), [arm_inputs(r) for r in recs(2)], batch_size=2, progress=False
    )
    assert run.answers == ["Wednesday", "Wednesday"]


def test_arm_inputs_carry_options_and_gold_context() -> None:
    rec = QARecord(
        id="c", question="Which?", answer="B", answer_type="choice", options=("A", "B"), doc_id="d"
    )
    assert arm_inputs(rec) == {"question": "Which?", "options": ["A", "B"], "context": None, "doc_id": "d"}
    assert arm_inputs(rec, context="gold passage")["context"] == "gold passage"


def test_extra_arm_checks() -> None:
    reason = check_extra_arm("openai:gpt-4o-mini")
    assert reason is not None and "pip install langchain-openai" in reason
    reason = check_extra_arm("huggingface:HuggingFaceH4/zephyr-7b-beta")  # package installed here, no token
    assert reason is not None and "HUGGINGFACEHUB_API_TOKEN" in reason
    with pytest.raises(EvalError, match=r"provider 'opnai'.*Known providers:.*openai"):
        parse_provider_model("opnai:gpt-4o")
    with pytest.raises(EvalError, match="provider:model"):
        parse_provider_model("gpt-4o:")


def test_limit_is_a_seeded_random_subset_not_the_first_n() -> None:
    records = recs(100)
    a = sample_questions(records, 10, seed=0)
    assert len(a) == 10 and a == sample_questions(records, 10, seed=0)
    assert [r.id for r in a] != [f"q{i}" for i in range(10)]
    assert [int(r.id[1:]) for r in a] == sorted(int(r.id[1:]) for r in a)  # file order kept
    assert sample_questions(records, 10, seed=1) != a
    assert sample_questions(records, 0, seed=0) == records and sample_questions(records, 500, 0) == records
