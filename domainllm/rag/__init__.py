"""The knowledge base for retrieval-augmented arms: a persistent Chroma store, built incrementally.

Names are imported lazily (PEP 562) so ``import domainllm.rag`` stays instant; chromadb,
sentence-transformers and LangChain load when a name is first used.
"""

from __future__ import annotations

from domainllm._lazy import lazy_exports

__all__ = [
    "STORE_FILE",
    "IndexStats",
    "build_index",
    "default_store_dir",
    "document_chunks",
    "embedder_identity",
    "get_retriever",
    "index_documents",
    "knowledge_base",
    "open_store",
]


__getattr__, __dir__ = lazy_exports(__name__, dict.fromkeys(__all__, ".store"), __all__)
