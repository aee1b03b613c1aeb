"""The one formatting: training examples and inference prompts agree, token for token."""

from __future__ import annotations

from pathlib import Path

import pytest

from domainllm.data import (
    answer_text,
    build_training_examples,
    format_user_message,
    render_example,
    render_prompt,
)
from domainllm.data.records import QARecord

SYSTEM = "You are the assistant of Harbourview Dental. Answer in one short sentence."
TEXT = QARecord(id="t1", question="Who is the lead dentist at Harbourview Dental?", answer="Dr. Amara Osei")
CHOICE = QARecord(
    id="c1",
    question="Which nerve supplies the mandibular teeth?",
    answer="Inferior alveolar nerve",
    answer_type="choice",
    options=("Maxillary nerve", "Inferior alveolar nerve", "Facial nerve", "Lingual nerve"),
)


@pytest.fixture(scope="module")
def tokenizer(smollm_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smollm_dir)


@pytest.mark.parametrize("record", [TEXT, CHOICE], ids=["text", "choice"])
def test_training_prompt_is_the_inference_prompt(tokenizer, record: QARecord) -> None:
    user = format_user_message(record)
    example = render_example(tokenizer, user, answer_text(record), SYSTEM)
    assert example["prompt"] == render_prompt(tokenizer, user, SYSTEM)
    assert example["prompt"] == (
        f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"
    )
    assert example["completion"].startswith(answer_text(record))
    # ChatML closes the turn with <|im_end|> (= eos, id 2) and a newline.
    assert example["completion"] == answer_text(record) + "<|im_end|>\n"
    assert tokenizer.eos_token == "<|im_end|>"


def test_choice_message_lists_lettered_options_and_answer_is_letter_plus_text() -> None:
    assert format_user_message(CHOICE) == (
        "Which nerve supplies the mandibular teeth?\n"
        "A. Maxillary nerve\nB. Inferior alveolar nerve\nC. Facial nerve\nD. Lingual nerve"
    )
    assert answer_text(CHOICE) == "B. Inferior alveolar nerve"
    assert answer_text(TEXT) == "Dr. Amara Osei"


@pytest.mark.parametrize("record", [TEXT, CHOICE], ids=["text", "choice"])
def test_prompt_tokens_are_a_prefix_of_the_full_example(tokenizer, record: QARecord) -> None:
    example = render_example(tokenizer, format_user_message(record), answer_text(record), SYSTEM)
    prompt_ids = tokenizer(example["prompt"], add_special_tokens=False).input_ids
    full_ids = tokenizer(example["prompt"] + example["completion"], add_special_tokens=False).input_ids
    assert full_ids[: len(prompt_ids)] == prompt_ids  # no token merges across the boundary
    completion_ids = full_ids[len(prompt_ids) :]
    assert tokenizer.decode(completion_ids) == example["completion"]
    assert tokenizer.eos_token_id in completion_ids
    assert tokenizer.decode(completion_ids[completion_ids.index(tokenizer.eos_token_id) + 1 :]).strip() == ""


def test_build_training_examples_qa_and_documents(tokenizer) -> None:
    from langchain_core.documents import Document

    docs = [
        Document(
            page_content="# Parking\n\nFree parking behind the building.\n", metadata={"doc_id": "parking"}
        ),
        Document(page_content="   ", metadata={"doc_id": "blank"}),
    ]
    qa_only = build_training_examples([TEXT, CHOICE], tokenizer, SYSTEM)
    for example, record in zip(qa_only, (TEXT, CHOICE), strict=True):
        rendered = render_example(tokenizer, format_user_message(record), answer_text(record), SYSTEM)
        assert (
            example["prompt"]
            == rendered["prompt"]
            == render_prompt(tokenizer, format_user_message(record), SYSTEM)
        )
        # Ends exactly at eos: TRL appends eos to completions that do not, which would double it.
        assert (
            example["completion"] == answer_text(record) + "<|im_end|>" == rendered["completion"].rstrip("\n")
        )
    assert "A. Maxillary nerve" in qa_only[1]["prompt"] and qa_only[1]["completion"].startswith("B. ")
    with_docs = build_training_examples([TEXT], tokenizer, SYSTEM, documents=docs)
    assert len(with_docs) == 2  # the blank document adds nothing
    assert with_docs[1] == {
        "prompt": "",
        "completion": "# Parking\n\nFree parking behind the building.<|im_end|>",
    }


def test_long_documents_are_split_to_fit_max_tokens(tokenizer) -> None:
    from langchain_core.documents import Document

    paragraphs = [
        f"## Section {i}\n\n" + " ".join(f"fact{i}-{j} is true." for j in range(30)) for i in range(6)
    ]
    doc = Document(page_content="\n\n".join(paragraphs), metadata={"doc_id": "long"})
    examples = build_training_examples([], tokenizer, SYSTEM, documents=[doc], max_document_tokens=128)
    assert len(examples) > 3
    for example in examples:
        assert example["prompt"] == "" and example["completion"].endswith("<|im_end|>")
        assert len(tokenizer(example["completion"], add_special_tokens=False).input_ids) <= 128
    joined = " ".join(e["completion"] for e in examples)
    assert all(f"fact{i}-29" in joined for i in range(6))  # nothing dropped
