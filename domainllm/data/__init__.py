"""Domain data: QA records, loaders for common formats, documents, and training examples.

Names are imported lazily (PEP 562) so ``import domainllm.data`` stays instant; the loaders pull in
LangChain, bs4, pypdf or ``datasets`` only when a format needs them.
"""

from __future__ import annotations

from domainllm._lazy import lazy_exports

__all__ = [
    "NEAR_DUPLICATE_THRESHOLD",
    "PROVENANCE_FIELDS",
    "LeakageReport",
    "NearDuplicate",
    "QADataset",
    "QARecord",
    "answer_text",
    "build_messages",
    "build_training_examples",
    "format_user_message",
    "leakage_report",
    "load_chunks",
    "load_documents",
    "load_domain",
    "load_qa",
    "log_leakage",
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
    "NEAR_DUPLICATE_THRESHOLD": "leakage",
    "LeakageReport": "leakage",
    "NearDuplicate": "leakage",
    "leakage_report": "leakage",
    "log_leakage": "leakage",
    "near_duplicates": "leakage",
    "PROVENANCE_FIELDS": "records",
}


__getattr__, __dir__ = lazy_exports(__name__, {k: f".{v}" for k, v in _WHERE.items()}, __all__)
