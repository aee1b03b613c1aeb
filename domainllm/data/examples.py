"""Training examples in TRL's prompt-completion form, built only through the one formatting.

QA pairs go through :func:`~domainllm.data.formatting.render_example`, so the prompt a model is
trained on is byte-identical to the prompt it is served with. Documents (``train_on: qa+docs``)
become plain-text items with an empty prompt: with completion-only loss that is loss on every
document token, i.e. continued pretraining on the knowledge base, ended by the end-of-sequence
token so the model does not learn to run on forever.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from domainllm.data.formatting import answer_text, format_user_message, render_example
from domainllm.data.records import QARecord
from domainllm.errors import DataError

__all__ = ["build_training_examples", "end_at_eos"]


def _document_pieces(text: str, tokenizer: Any, max_tokens: int) -> list[str]:
    """``text`` split at Markdown headings, paragraphs, lines, then words into pieces of <= max_tokens."""
    from langchain_text_splitters import Language, RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter.from_huggingface_tokenizer(
        tokenizer,
        chunk_size=max_tokens,
        chunk_overlap=0,
        separators=RecursiveCharacterTextSplitter.get_separators_for_language(Language.MARKDOWN),
        is_separator_regex=True,
    )
    return [piece for piece in splitter.split_text(text) if piece.strip()]


def end_at_eos(completion: str, eos: str | None) -> str:
    """Drop the whitespace a chat template puts after the end-of-turn token (ChatML: ``<|im_end|>\\n``).

    TRL appends eos to any completion that does not end with it, so ``...<|im_end|>\\n`` would be
    trained as ``...<|im_end|>\\n<|im_end|>``. Generation stops at the first eos, so the newline is
    never produced at inference anyway.
    """
    if eos and eos in completion and not completion[completion.rindex(eos) + len(eos) :].strip():
        return completion[: completion.rindex(eos) + len(eos)]
    return completion


def build_training_examples(
    records: Sequence[QARecord],
    tokenizer: Any,
    system_prompt: str | None,
    documents: Sequence[Any] | None = None,
    *,
    max_document_tokens: int | None = None,
) -> list[dict[str, str]]:
    """``{"prompt", "completion"}`` dicts: one per QA record, then one per document (or document piece).

    QA prompts hold the system prompt and the question (with lettered options for choice questions),
    rendered by the tokenizer's chat template with the generation prompt; the completion is the
    answer (``"B. <option>"`` for choices) plus the template's end-of-turn token, ending exactly at
    the eos token when the template closes the turn with it. Documents are not
    wrapped in the chat template (they are knowledge, not dialogue) and carry no system prompt.

    ``max_document_tokens`` (e.g. ``training.max_seq_length``) splits long documents into pieces
    that fit, instead of letting the trainer truncate away everything past the limit; None keeps
    each document whole.
    """
    examples = []
    eos = getattr(tokenizer, "eos_token", None)
    for record in records:
        user = format_user_message(record)
        example = render_example(tokenizer, user, answer_text(record), system_prompt)
        examples.append({"prompt": example["prompt"], "completion": end_at_eos(example["completion"], eos)})
    if documents:
        if not eos:
            msg = "The tokenizer has no eos_token, so document examples cannot be terminated. Set tokenizer.eos_token, or train_on: qa."
            raise DataError(msg)
        for doc in documents:
            text = doc.page_content.strip()
            if not text:
                continue
            pieces = (
                [text]
                if max_document_tokens is None
                else _document_pieces(text, tokenizer, max_document_tokens - 1)
            )
            examples.extend({"prompt": "", "completion": piece + eos} for piece in pieces)
    return examples
