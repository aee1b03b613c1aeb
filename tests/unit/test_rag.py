"""The knowledge base: real Chroma on disk, real embeddings from the embedded all-MiniLM-L6-v2."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import TINY_DOCS

from domainllm.config import RetrievalConfig
from domainllm.errors import DataError, StoreError

RCFG = RetrievalConfig(chunk_size=80, chunk_overlap=10, k=2)


@pytest.fixture
def docs(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    for doc_id, text in TINY_DOCS.items():
        (folder / f"{doc_id}.md").write_text(text + "\n", encoding="utf-8")
    return folder


def _chunk_count(folder, rcfg=RCFG):
    from domainllm.data import load_documents, split_documents

    return len(split_documents(load_documents(folder), rcfg.chunk_size, rcfg.chunk_overlap))


def _chunks_of(store, doc_id):
    got = store.get(where={"doc_id": doc_id}, include=["documents", "metadatas"])
    return sorted(zip(got["ids"], got["documents"], strict=True))


def test_indexing_twice_adds_nothing(docs, tmp_path):
    from domainllm.rag import build_index

    first = build_index(docs, tmp_path / "store", RCFG)
    assert (first.added, first.updated, first.removed, first.unchanged) == (4, 0, 0, 0)
    assert first.total_chunks == first.chunks_added == _chunk_count(docs) > 4
    second = build_index(docs, tmp_path / "store", RCFG)
    assert (second.added, second.updated, second.removed, second.unchanged) == (0, 0, 0, 4)
    assert second.chunks_added == second.chunks_removed == 0
    assert second.total_chunks == first.total_chunks
    assert "0 added" in second.summary() and "4 unchanged" in second.summary()


def test_an_edited_document_has_its_chunks_replaced(docs, tmp_path):
    from domainllm.rag import build_index, open_store

    store_dir = tmp_path / "store"
    build_index(docs, store_dir, RCFG)
    before = _chunks_of(open_store(store_dir, RCFG), "prices")
    new_text = (
        "# Prices\n\nA check-up at Quillby Dental now costs €95. A scale and polish costs €65. "
        "Whitening costs €250 and includes two follow-up visits. X-rays are €20 each."
    )
    (docs / "prices.md").write_text(new_text + "\n", encoding="utf-8")
    stats = build_index(docs, store_dir, RCFG)
    assert (stats.added, stats.updated, stats.removed, stats.unchanged) == (0, 1, 0, 3)
    after = _chunks_of(open_store(store_dir, RCFG), "prices")
    assert stats.chunks_removed == len(before) and stats.chunks_added == len(after)
    assert len(after) > len(before)
    texts = " ".join(text for _, text in after)
    assert "€95" in texts and "€85" not in texts
    assert [i for i, _ in after] == sorted(f"prices::{n}" for n in range(len(after)))
    assert stats.total_chunks == _chunk_count(docs)


def test_a_deleted_document_is_removed(docs, tmp_path):
    from domainllm.rag import build_index, open_store

    store_dir = tmp_path / "store"
    build_index(docs, store_dir, RCFG)
    (docs / "hours.md").unlink()
    stats = build_index(docs, store_dir, RCFG)
    assert (stats.added, stats.updated, stats.removed, stats.unchanged) == (0, 0, 1, 3)
    assert _chunks_of(open_store(store_dir, RCFG), "hours") == []
    assert stats.total_chunks == _chunk_count(docs)


def test_retriever_returns_relevant_chunks_with_their_ids(docs, tmp_path):
    from domainllm.rag import build_index, get_retriever, open_store

    build_index(docs, tmp_path / "store", RCFG)
    store = open_store(tmp_path / "store", RCFG)
    retriever = get_retriever(store, RCFG)
    found = retriever.invoke("Who is the orthodontist?")
    assert len(found) == 2
    assert found[0].metadata["doc_id"] == "staff"
    assert found[0].metadata["source"] == "staff.md"
    assert found[0].metadata["chunk_id"].startswith("staff::")
    batched = retriever.batch(["Who is the orthodontist?", "Which day are you closed?"])
    assert [d.metadata["chunk_id"] for d in batched[0]] == [d.metadata["chunk_id"] for d in found]
    assert batched[1][0].metadata["doc_id"] == "hours"
    mmr = get_retriever(store, RetrievalConfig(chunk_size=80, chunk_overlap=10, k=3, search_type="mmr"))
    assert len(mmr.invoke("prices")) == 3
    assert len(get_retriever(store, RCFG, k=1).invoke("prices")) == 1


def test_store_records_what_built_it(docs, tmp_path):
    from domainllm.defaults import default_embedder_dir
    from domainllm.rag import STORE_FILE, build_index, open_store

    build_index(docs, tmp_path / "store", RCFG)
    info = json.loads((tmp_path / "store" / STORE_FILE).read_text())
    assert info["status"] == "complete"
    assert info["embedding"] == {
        "name": "default",
        "id": "default:all-MiniLM-L6-v2",
        "path": str(default_embedder_dir()),
        "dimension": 384,
    }
    assert info["chunking"] == {"chunk_size": 80, "chunk_overlap": 10}
    meta = open_store(tmp_path / "store", RCFG)._collection.metadata
    assert meta["hnsw:space"] == "cosine" and meta["domainllm:dimension"] == 384


def test_a_store_built_with_another_embedder_is_refused_then_rebuilt(docs, tmp_path):
    """Identity is the embedder's name/path plus its dimension: a renamed copy is another embedder."""
    from domainllm.defaults import default_embedder_dir
    from domainllm.rag import build_index, open_store

    store_dir = tmp_path / "store"
    build_index(docs, store_dir, RCFG)
    other = tmp_path / "my-minilm-copy"
    shutil.copytree(default_embedder_dir(), other)
    other_cfg = RetrievalConfig(chunk_size=80, chunk_overlap=10, k=2, embedding_model=str(other))
    with pytest.raises(StoreError) as info:
        open_store(store_dir, other_cfg)
    msg = str(info.value)
    assert "'default'" in msg and "my-minilm-copy" in msg and "domainllm index" in msg
    stats = build_index(docs, store_dir, other_cfg)
    assert stats.rebuilt and stats.added == 4 and stats.total_chunks == _chunk_count(docs)
    assert open_store(store_dir, other_cfg) is not None
    with pytest.raises(StoreError, match="my-minilm-copy"):
        open_store(store_dir, RCFG)


def test_changed_chunking_rebuilds(docs, tmp_path):
    from domainllm.rag import build_index

    build_index(docs, tmp_path / "store", RCFG)
    bigger = RetrievalConfig(chunk_size=400, chunk_overlap=0)
    stats = build_index(docs, tmp_path / "store", bigger)
    assert stats.rebuilt and stats.added == 4
    assert stats.total_chunks == _chunk_count(docs, bigger) == 4


def test_missing_or_unfinished_store_and_empty_docs_are_refused(docs, tmp_path):
    from domainllm.rag import STORE_FILE, build_index, open_store

    with pytest.raises(StoreError, match="does not exist"):
        open_store(tmp_path / "nowhere", RCFG)
    build_index(docs, tmp_path / "store", RCFG)
    info_path = tmp_path / "store" / STORE_FILE
    info = json.loads(info_path.read_text())
    info_path.write_text(json.dumps({**info, "status": "building"}))
    with pytest.raises(StoreError, match="did not finish"):
        open_store(tmp_path / "store", RCFG)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="holds no documents"):
        build_index(empty, tmp_path / "store2", RCFG)
    assert not (tmp_path / "store2").exists()


def test_cli_index_prints_the_summary(docs, tmp_path, capsys):
    from domainllm.cli import main

    store = tmp_path / "store"
    args = ["index", str(docs), "--store", str(store), "--set", "retrieval.chunk_size=80"]
    assert main([*args, "--set", "retrieval.chunk_overlap=10"]) == 0
    assert "4 added" in capsys.readouterr().out
    assert main([*args, "--set", "retrieval.chunk_overlap=10"]) == 0
    assert "0 added" in capsys.readouterr().out
