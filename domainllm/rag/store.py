"""The knowledge base: a persistent Chroma store of document chunks, updated incrementally.

Chunks get stable ids (``doc_id::index``) and carry their document's hash, so indexing a folder
again compares hashes instead of re-embedding: unchanged documents are skipped, an edited document's
chunks are replaced, a deleted document's chunks are removed. Embeddings come from the configured
sentence-transformers model (the embedded all-MiniLM-L6-v2 by default), never from Chroma's own
default embedder, which would download one.

A store remembers what built it, in ``domainllm-store.json`` beside Chroma's files and in the
collection metadata: the embedding model (config name, resolved path, dimension) and the chunking.
Vectors from two embedders are not comparable, so :func:`open_store` refuses a store built with
another embedding model, and :func:`build_index` rebuilds one from scratch. Two embedders are the
same when their identity (``default:<name>`` for the embedded one, else the resolved folder path or
hub id) and their dimension agree: a copy of a model in another folder counts as another model.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from domainllm.config import RetrievalConfig
from domainllm.errors import DataError, StoreError

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

log = logging.getLogger(__name__)

STORE_FILE = "domainllm-store.json"
# Chunks embedded and added per call: small enough that the progress bar moves every few seconds on
# a CPU (~15 chunks/s with the default embedder on one core), large enough to batch well.
_ADD_BATCH = 128
# From this many chunks to embed on, a progress bar shows how far indexing is (stderr).
_PROGRESS_FROM = 256


@dataclass
class IndexStats:
    """What an indexing pass did. Document counts; chunk counts in the ``chunks_*`` fields."""

    added: int
    updated: int
    removed: int
    unchanged: int
    total_chunks: int
    seconds: float
    chunks_added: int = 0
    chunks_removed: int = 0
    rebuilt: bool = False
    store_dir: str = ""

    def summary(self) -> str:
        """One line for the CLI."""
        docs = self.added + self.updated + self.unchanged
        rebuilt = " (rebuilt: embedding model or chunking changed)" if self.rebuilt else ""
        return (
            f"Indexed {docs} documents into {self.store_dir}{rebuilt}: {self.added} added, {self.updated} updated, "
            f"{self.removed} removed, {self.unchanged} unchanged; {self.total_chunks} chunks in the store "
            f"(+{self.chunks_added}/-{self.chunks_removed}) in {self.seconds:.1f} s."
        )


# --------------------------------------------------------------------------------------------------
# Embedder and identity


def _embedding_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@functools.lru_cache(maxsize=4)
def _load_embeddings(path: str, device: str) -> Any:
    from langchain_huggingface import HuggingFaceEmbeddings

    return HuggingFaceEmbeddings(
        model_name=path, model_kwargs={"device": device}, encode_kwargs={"normalize_embeddings": True}
    )


def _embedder(rcfg: RetrievalConfig) -> tuple[Any, dict[str, Any]]:
    """The LangChain embeddings object for the config, and its identity (see the module docstring)."""
    from domainllm.defaults import DEFAULT_EMBEDDER_NAME, resolve_embedder

    path = resolve_embedder(rcfg.embedding_model)
    embeddings = _load_embeddings(path, _embedding_device())
    client = embeddings._client
    getter = getattr(client, "get_embedding_dimension", None) or client.get_sentence_embedding_dimension
    dimension = getter() or len(embeddings.embed_query("dimension"))
    if rcfg.embedding_model == "default":
        ident = f"default:{DEFAULT_EMBEDDER_NAME}"
    elif Path(path).exists():
        ident = str(Path(path).resolve())
    else:
        ident = path
    return embeddings, {"name": rcfg.embedding_model, "id": ident, "path": path, "dimension": int(dimension)}


def embedder_identity(rcfg: RetrievalConfig) -> dict[str, Any]:
    """Name, identity, resolved path and dimension of the configured embedder (loads it)."""
    return _embedder(rcfg)[1]


def _same_embedder(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a.get("dimension") == b.get("dimension") and a.get("id") == b.get("id")


def _describe(ident: dict[str, Any]) -> str:
    return f"'{ident.get('name')}' ({ident.get('path')}, dimension {ident.get('dimension')})"


# --------------------------------------------------------------------------------------------------
# Chroma


def _chroma(
    store_dir: Path, rcfg: RetrievalConfig, embeddings: Any, ident: dict[str, Any], create: bool
) -> Any:
    from chromadb.config import Settings
    from langchain_chroma import Chroma

    metadata = {
        "hnsw:space": "cosine",
        "domainllm:embedder": ident["id"],
        "domainllm:dimension": ident["dimension"],
        "domainllm:chunk_size": rcfg.chunk_size,
        "domainllm:chunk_overlap": rcfg.chunk_overlap,
    }
    return Chroma(
        collection_name=rcfg.collection,
        embedding_function=embeddings,
        persist_directory=str(store_dir),
        client_settings=Settings(anonymized_telemetry=False, is_persistent=True),
        collection_metadata=metadata,
        create_collection_if_not_exists=create,
    )


def _read_store_file(store_dir: Path) -> dict[str, Any] | None:
    import json

    path = store_dir / STORE_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        msg = f"The store description '{path}' is not valid JSON ({exc}). Delete the store folder and index again."
        raise StoreError(msg) from exc


def _write_store_file(store_dir: Path, **fields: Any) -> None:
    from domainllm.fsio import atomic_write_json

    atomic_write_json(store_dir / STORE_FILE, {"format": 1, **fields})


def _clean_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """Chroma stores str/int/float/bool only: drop None, join lists."""
    out: dict[str, Any] = {}
    for key, value in metadata.items():
        if value is None:
            continue
        if isinstance(value, list | tuple):
            value = ", ".join(map(str, value))
        elif not isinstance(value, str | int | float | bool):
            value = str(value)
        out[key] = value
    return out


# --------------------------------------------------------------------------------------------------
# Building


def index_documents(
    documents: Sequence[Any], store_dir: str | Path, rcfg: RetrievalConfig, source: str = ""
) -> IndexStats:
    """Chunk ``documents`` (LangChain Documents with a ``doc_id``) and bring the store up to date with them."""
    from domainllm.data.documents import split_documents

    start = time.perf_counter()
    store_dir = Path(store_dir)
    _check_store_dir(store_dir)
    chunks = split_documents(documents, rcfg.chunk_size, rcfg.chunk_overlap)
    embeddings, ident = _embedder(rcfg)
    chunking = {"chunk_size": rcfg.chunk_size, "chunk_overlap": rcfg.chunk_overlap}
    previous = _read_store_file(store_dir)
    store_dir.mkdir(parents=True, exist_ok=True)
    try:
        store = _chroma(store_dir, rcfg, embeddings, ident, create=True)
        store._collection.count()  # reads the database: a damaged one fails here, not halfway through
    except Exception as exc:  # chromadb's InternalError for a damaged chroma.sqlite3, and its kin
        msg = (
            f"The knowledge base '{store_dir}' cannot be opened ({exc.__class__.__name__}: {' '.join(str(exc).split())}): "
            "its Chroma files are damaged or from an incompatible chromadb. It can be rebuilt from the documents: "
            "remove the folder (or pass another --store / retrieval.store_dir) and index again."
        )
        raise StoreError(msg) from exc
    rebuilt = False
    if previous is not None and (
        not _same_embedder(previous.get("embedding", {}), ident) or previous.get("chunking") != chunking
    ):
        log.warning(
            "Rebuilding %s: it was built with embedding model %s and chunking %s; now %s and %s",
            store_dir,
            _describe(previous.get("embedding", {})),
            previous.get("chunking"),
            _describe(ident),
            chunking,
        )
        store.reset_collection()
        rebuilt = True
    _write_store_file(
        store_dir, status="building", embedding=ident, chunking=chunking, collection=rcfg.collection
    )

    existing: dict[str, dict[str, Any]] = {}
    got = store.get(include=["metadatas"])
    for chunk_id, meta in zip(got["ids"], got["metadatas"], strict=True):
        entry = existing.setdefault(str((meta or {}).get("doc_id", "")), {"hash": None, "ids": []})
        entry["ids"].append(chunk_id)
        entry["hash"] = (meta or {}).get("doc_hash")
    incoming: dict[str, list[Any]] = {}
    for chunk in chunks:
        incoming.setdefault(chunk.metadata["doc_id"], []).append(chunk)

    to_add: list[Any] = []
    to_delete: list[str] = []
    added = updated = unchanged = 0
    for doc_id, doc_chunks in incoming.items():
        old = existing.get(doc_id)
        if old is None:
            added += 1
        elif old["hash"] == doc_chunks[0].metadata["doc_hash"]:
            unchanged += 1
            continue
        else:
            updated += 1
            to_delete.extend(old["ids"])
        to_add.extend(doc_chunks)
    removed_docs = [doc_id for doc_id in existing if doc_id not in incoming]
    for doc_id in removed_docs:
        to_delete.extend(existing[doc_id]["ids"])
    if to_delete:
        store.delete(ids=to_delete)
    _add_chunks(store, to_add)
    total = store._collection.count()
    _write_store_file(
        store_dir,
        status="complete",
        embedding=ident,
        chunking=chunking,
        collection=rcfg.collection,
        documents=len(incoming),
        chunks=total,
        source=source,
        updated_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )
    return IndexStats(
        added=added,
        updated=updated,
        removed=len(removed_docs),
        unchanged=unchanged,
        total_chunks=total,
        seconds=round(time.perf_counter() - start, 2),
        chunks_added=len(to_add),
        chunks_removed=len(to_delete),
        rebuilt=rebuilt,
        store_dir=str(store_dir),
    )


def _add_chunks(store: Any, chunks: list[Any]) -> None:
    """Embed and add ``chunks`` in batches, with a progress bar on stderr when there are many."""
    from tqdm.auto import tqdm

    if len(chunks) >= _PROGRESS_FROM:
        log.info("Embedding %d chunks into the knowledge base", len(chunks))
    with tqdm(total=len(chunks), desc="embed", unit="chunk", disable=len(chunks) < _PROGRESS_FROM) as bar:
        for first in range(0, len(chunks), _ADD_BATCH):
            batch = chunks[first : first + _ADD_BATCH]
            for chunk in batch:
                chunk.metadata = _clean_metadata(chunk.metadata)
            store.add_documents(batch, ids=[c.metadata["chunk_id"] for c in batch])
            bar.update(len(batch))


def _check_store_dir(store_dir: Path) -> None:
    """A store path that exists must be a folder (Chroma would fail on a file with an OS error)."""
    if store_dir.exists() and not store_dir.is_dir():
        msg = (
            f"The knowledge base path '{store_dir}' is a file, not a folder. Pass a folder (a new one, or one written "
            "by 'domainllm index') with --store, or set retrieval.store_dir to one; the file is left as it is."
        )
        raise StoreError(msg)


def build_index(
    docs_dir: str | Path, store_dir: str | Path, rcfg: RetrievalConfig, docs_key: str = "docs_dir"
) -> IndexStats:
    """``domainllm index DOCS_DIR --store DIR``: load the folder's documents and update the store.

    ``docs_key`` is what error messages call ``docs_dir`` (the CLI passes ``DOCS_DIR``).
    """
    from domainllm.data.documents import load_documents

    _check_store_dir(Path(store_dir))  # before the documents are read: the cheap check first
    documents = load_documents(docs_dir, key=docs_key)
    return index_documents(documents, store_dir, rcfg, source=str(docs_dir))


# --------------------------------------------------------------------------------------------------
# Opening and retrieving


def open_store(store_dir: str | Path, rcfg: RetrievalConfig) -> Any:
    """The Chroma store in ``store_dir``, refusing one that is missing, unfinished or built with another embedder."""
    store_dir = Path(store_dir)
    _check_store_dir(store_dir)
    info = _read_store_file(store_dir)
    fix = f"Build it with 'domainllm index DOCS_DIR --store {store_dir}'."
    if info is None:
        what = (
            "does not exist"
            if not store_dir.exists()
            else f"has no {STORE_FILE}, so domainllm did not build it"
        )
        msg = f"The knowledge base '{store_dir}' {what}. {fix}"
        raise StoreError(msg)
    if info.get("status") != "complete":
        msg = f"The knowledge base '{store_dir}' is incomplete: the last 'domainllm index' did not finish. Run it again. {fix}"
        raise StoreError(msg)
    if info.get("collection", rcfg.collection) != rcfg.collection:
        msg = (
            f"The knowledge base '{store_dir}' holds collection '{info.get('collection')}', but "
            f"retrieval.collection is '{rcfg.collection}'. Set retrieval.collection to '{info.get('collection')}', "
            "or index into this store with the new collection name."
        )
        raise StoreError(msg)
    embeddings, ident = _embedder(rcfg)
    built = info.get("embedding", {})
    if not _same_embedder(built, ident):
        msg = (
            f"The knowledge base '{store_dir}' was built with embedding model {_describe(built)}, but "
            f"retrieval.embedding_model is {_describe(ident)}. Vectors of different embedders cannot be compared. "
            f"Rebuild the store with 'domainllm index DOCS_DIR --store {store_dir}' using the new embedder, or set "
            f"retrieval.embedding_model back to '{built.get('name')}'."
        )
        raise StoreError(msg)
    try:
        return _chroma(store_dir, rcfg, embeddings, ident, create=False)
    except Exception as exc:  # chromadb raises its own NotFoundError/ValueError types
        msg = f"The knowledge base '{store_dir}' cannot be opened ({exc.__class__.__name__}: {exc}). {fix}"
        raise StoreError(msg) from exc


def document_chunks(store: Any, doc_id: str) -> list[tuple[dict[str, Any], str]]:
    """Every chunk of one document in the store, in document order: ``(metadata, text)`` pairs.

    The oracle arm joins them into the gold context; RAFT picks the one that states the answer.
    """
    got = store.get(where={"doc_id": doc_id}, include=["documents", "metadatas"])
    return sorted(
        zip(got["metadatas"], got["documents"], strict=True), key=lambda p: p[0].get("chunk_index", 0)
    )


def get_retriever(store: Any, rcfg: RetrievalConfig, k: int | None = None) -> Any:
    """A LangChain retriever over the store: ``retrieval.k`` chunks by similarity or MMR."""
    k = k or rcfg.k
    kwargs: dict[str, Any] = {"k": k}
    if rcfg.search_type == "mmr":
        kwargs["fetch_k"] = max(20, 4 * k)
    return store.as_retriever(search_type=rcfg.search_type, search_kwargs=kwargs)


# --------------------------------------------------------------------------------------------------
# The domain's knowledge base, for chat, the examples and the comparison


def default_store_dir(cfg: Any) -> Path:
    """Where a domain's knowledge base lives: the one rule ``compare``, ``index``, ``chat`` and the examples share.

    ``retrieval.store_dir`` when set (relative to the config file's folder), else
    ``<folder of compare.output_dir>/stores/<data.name>`` (``runs/stores/dental`` by default), so
    every run and every comparison of a domain reads the same store; it is updated incrementally
    when the documents change.
    """
    from domainllm.resources import resolve_path

    if cfg.retrieval.store_dir:
        return resolve_path(cfg.retrieval.store_dir, cfg.base_dir, key="retrieval.store_dir").resolve()
    return Path(cfg.compare.output_dir).expanduser().resolve().parent / "stores" / cfg.data.name


def knowledge_base(cfg: Any, store_dir: str | Path | None = None) -> Any:
    """The domain's documents indexed (incrementally) into a store, opened: what the RAG arms retrieve from."""
    from domainllm.data.loaders import load_domain

    target = Path(store_dir) if store_dir else default_store_dir(cfg)
    dataset = load_domain(cfg.data, cfg.base_dir)
    if not dataset.documents:
        msg = (
            f"The domain '{cfg.data.name}' has no documents to retrieve from. Set data.docs_dir to a folder of "
            "documents (or put them in <data.path>/docs), or use an arm without retrieval."
        )
        raise DataError(msg)
    stats = index_documents(dataset.documents, target, cfg.retrieval, source=dataset.source)
    log.info("%s", stats.summary())
    return open_store(target, cfg.retrieval)
