"""Domain data: QA records, loaders for common formats, documents, and training examples.

Names are imported lazily (PEP 562) so ``import domainllm.data`` stays instant; the loaders pull in
LangChain, bs4, pypdf or ``datasets`` only when a format needs them.
"""

from __future__ import annotations

from domainllm._lazy import lazy_exports

__all__ = [
    "QADataset",
    "QARecord",
    "answer_text",
    "build_messages",
    "build_training_examples",
    "format_user_message",
    "load_chunks",
    "load_documents",
    "load_domain",
    "load_qa",
    "near_duplicates",
    "render_example",
    "render_prompt",
    "split_documents",
]

_WHERE = {
    "QADataset": "records",
    "QARecord": "records",
    "answer_text": "formatting",
    "build_messages": "formatting",
    "format_user_message": "formatting",
    "render_example": "formatting",
    "render_prompt": "formatting",
    "build_training_examples": "examples",
    "load_chunks": "documents",
    "load_documents": "documents",
    "split_documents": "documents",
    "load_domain": "loaders",
    "load_qa": "loaders",
    "near_duplicates": "validate",
}


__getattr__, __dir__ = lazy_exports(__name__, {k: f".{v}" for k, v in _WHERE.items()}, __all__)
