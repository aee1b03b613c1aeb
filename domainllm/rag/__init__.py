"""The knowledge base for retrieval-augmented arms: a persistent Chroma store, built incrementally.

Names are imported lazily (PEP 562) so ``import domainllm.rag`` stays instant; chromadb,
sentence-transformers and LangChain load when a name is first used.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "STORE_FILE",
    "IndexStats",
    "build_index",
    "default_store_dir",
    "embedder_identity",
    "get_retriever",
    "index_documents",
    "knowledge_base",
    "open_store",
]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        msg = f"module 'domainllm.rag' has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module("domainllm.rag.store"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
