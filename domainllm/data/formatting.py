"""The one formatting: training examples and inference prompts come from the same function.

A fine-tuned model only answers well when it sees at inference exactly the token layout it was
trained on. Both paths therefore render messages through the tokenizer's own chat template here;
training adds the assistant turn, inference stops at the generation prompt, and a test asserts the
two agree up to the answer.
"""

from __future__ import annotations

import string
from typing import Any

from domainllm.data.records import QARecord

__all__ = [
    "answer_text",
    "build_messages",
    "format_user_message",
    "render_example",
    "render_prompt",
]


def format_user_message(
    record: QARecord | str, context: str | None = None, template: str | None = None
) -> str:
    """The user turn: the question (with lettered options for choice questions), optionally with context.

    ``template`` uses ``{question}`` and ``{context}`` placeholders (the RAG prompt in chains/); without
    it, context (when given) is prepended under a "Context:" heading.
    """
    question = record if isinstance(record, str) else record.question
    if not isinstance(record, str) and record.options:
        letters = string.ascii_uppercase
        lines = [f"{letters[i]}. {opt}" for i, opt in enumerate(record.options)]
        question = question + "\n" + "\n".join(lines)
    if template is not None:
        return template.format(question=question, context=context or "")
    if context:
        return f"Context:\n{context}\n\nQuestion: {question}"
    return question


def answer_text(record: QARecord) -> str:
    """The assistant turn a model is trained to produce: the letter and text for choices, else the answer."""
    if record.options:
        letter = string.ascii_uppercase[record.answer_index or 0]
        return f"{letter}. {record.answer}"
    return record.answer


def build_messages(
    user: str, system_prompt: str | None = None, answer: str | None = None
) -> list[dict[str, str]]:
    """Chat messages in the role/content form every chat template understands."""
    messages = []
    if system_prompt:
        messages.append({"role": "system", "content": system_prompt})
    messages.append({"role": "user", "content": user})
    if answer is not None:
        messages.append({"role": "assistant", "content": answer})
    return messages


def render_prompt(tokenizer: Any, user: str, system_prompt: str | None = None) -> str:
    """The inference prompt: system + user turns and the assistant generation prompt, as text."""
    messages = build_messages(user, system_prompt)
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def render_example(
    tokenizer: Any, user: str, answer: str, system_prompt: str | None = None
) -> dict[str, str]:
    """A training example split into ``prompt`` (identical to :func:`render_prompt`) and ``completion``.

    The completion is whatever the chat template appends for the assistant turn, end-of-turn token
    included, so the model learns to stop exactly where inference stops it.
    """
    prompt = render_prompt(tokenizer, user, system_prompt)
    full = tokenizer.apply_chat_template(build_messages(user, system_prompt, answer), tokenize=False)
    if not full.startswith(prompt):
        msg = (
            "The tokenizer's chat template renders the assistant turn differently from the generation "
            "prompt, so training and inference formats would disagree. Use a template whose "
            "add_generation_prompt output is a prefix of the full conversation."
        )
        raise ValueError(msg)
    return {"prompt": prompt, "completion": full[len(prompt) :]}
