"""Document loading (Markdown, text, HTML, PDF) and chunking with stable ids and hashes."""

from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path

import pytest
from conftest import TESTS_DIR

from domainllm.config import DataConfig
from domainllm.data import load_chunks, load_documents, load_domain, split_documents
from domainllm.errors import ConfigError, DataError

DOCS = TESTS_DIR / "data" / "docs_sample"


@pytest.fixture(scope="module")
def sample_docs() -> list:
    return load_documents(DOCS)


def test_one_document_per_file_in_sorted_order_with_ids(sample_docs) -> None:
    assert [d.metadata["doc_id"] for d in sample_docs] == [
        "billing/insurance",
        "brochure",
        "clinic",
        "hours",
        "services",
    ]
    assert [d.metadata["source"] for d in sample_docs] == [
        "billing/insurance.md",
        "brochure.pdf",
        "clinic.md",
        "hours.txt",
        "services.html",
    ]
    assert [d.metadata["format"] for d in sample_docs] == ["md", "pdf", "md", "txt", "html"]


def test_markdown_and_text_are_read_verbatim(sample_docs) -> None:
    docs = {d.metadata["doc_id"]: d for d in sample_docs}
    assert docs["clinic"].page_content == (DOCS / "clinic.md").read_text(encoding="utf-8")
    assert docs["hours"].page_content == (DOCS / "hours.txt").read_text(encoding="utf-8")


def test_pdf_pages_are_joined_into_one_document(sample_docs) -> None:
    pdf = next(d for d in sample_docs if d.metadata["doc_id"] == "brochure")
    assert pdf.metadata["pages"] == 2
    assert pdf.page_content == (
        "Harbourview Dental brochure\nTeeth whitening costs 240 euros per session.\n\n"
        "Emergency line\nCall 555-0199 for emergencies on weekends."
    )


def test_html_keeps_visible_text_and_headings_without_scripts(sample_docs) -> None:
    html = next(d for d in sample_docs if d.metadata["doc_id"] == "services")
    assert html.metadata["title"] == "Services at Harbourview Dental"
    assert html.page_content.startswith(
        "# Services\n\nWe offer check-ups, fillings and root canal treatment."
    )
    # One line per list item: BSHTMLLoader's get_text() would glue them ("70 eurosFilling").
    assert {"Check-up: 70 euros", "Filling: from 95 euros"} <= set(html.page_content.splitlines())
    for hidden in ("should-not-appear", "also-hidden", "font-family", "Home"):
        assert hidden not in html.page_content


def test_unsupported_and_hidden_files(tmp_path: Path, caplog) -> None:
    shutil.copy(DOCS / "clinic.md", tmp_path / "clinic.md")
    (tmp_path / "photo.png").write_bytes(b"\x89PNG")
    (tmp_path / ".notes.md").write_text("# secret draft", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        docs = load_documents(tmp_path)
    assert [d.metadata["doc_id"] for d in docs] == ["clinic"]
    assert any(
        "Skipped 1 file(s)" in r.getMessage() and "photo.png" in r.getMessage() for r in caplog.records
    )


@pytest.mark.parametrize(
    ("files", "pattern"),
    [
        ({}, r"holds no documents"),
        ({"faq.md": "# FAQ", "faq.txt": "FAQ"}, r"both have doc_id 'faq'"),
        ({"blank.md": "  \n"}, r"blank\.md' is empty"),
        ({"latin.txt": "caf\xe9".encode("latin-1")}, r"latin\.txt' is not UTF-8"),
        ({"broken.pdf": b"%PDF-1.4 not really"}, r"broken\.pdf' (could not be read as PDF|is empty)"),
    ],
)
def test_bad_document_folders_raise(tmp_path: Path, files: dict, pattern: str) -> None:
    for name, content in files.items():
        path = tmp_path / name
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(
            content, encoding="utf-8"
        )
    with pytest.raises(DataError, match=pattern):
        load_documents(tmp_path)


def test_missing_folder_raises(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"does not exist or is not a folder"):
        load_documents(tmp_path / "nope")


def test_chunks_carry_stable_ids_and_hashes(sample_docs) -> None:
    chunks = split_documents(sample_docs, chunk_size=100, chunk_overlap=20)
    clinic = [c for c in chunks if c.metadata["doc_id"] == "clinic"]
    assert [c.metadata["chunk_id"] for c in clinic] == ["clinic::0", "clinic::1", "clinic::2"]
    assert [c.metadata["chunk_index"] for c in clinic] == [0, 1, 2]
    # Split at the Markdown headings; each chunk starts with its section heading.
    assert [c.page_content.split("\n")[0] for c in clinic] == [
        "# Harbourview Dental",
        "## Team",
        "## Parking",
    ]
    doc_hash = hashlib.sha256(sample_docs[2].page_content.encode()).hexdigest()[:16]
    for chunk in chunks:
        assert chunk.metadata["content_hash"] == hashlib.sha256(chunk.page_content.encode()).hexdigest()[:16]
        assert chunk.metadata["source"].startswith(chunk.metadata["doc_id"])
    assert {c.metadata["doc_hash"] for c in clinic} == {doc_hash}
    text = sample_docs[2].page_content
    for chunk in clinic:
        assert text[chunk.metadata["start_index"] :].startswith(chunk.page_content)
    assert split_documents(sample_docs, 100, 20) == chunks  # deterministic


def test_load_chunks_reads_every_format_and_splits_in_one_call(sample_docs) -> None:
    chunks = load_chunks(DOCS, chunk_size=100, chunk_overlap=20)
    assert chunks == split_documents(sample_docs, 100, 20)
    assert {c.metadata["format"] for c in chunks} == {"md", "txt", "html", "pdf"}
    assert all(
        c.metadata["source"] and c.metadata["chunk_id"].startswith(c.metadata["doc_id"]) for c in chunks
    )


def test_editing_one_document_changes_only_its_hashes(sample_docs) -> None:
    from langchain_core.documents import Document

    before = split_documents(sample_docs, 100, 20)
    edited = [
        Document(page_content=d.page_content.replace("two hours", "three hours"), metadata=d.metadata)
        if d.metadata["doc_id"] == "clinic"
        else d
        for d in sample_docs
    ]
    after = split_documents(edited, 100, 20)
    changed = {a.metadata["chunk_id"] for a, b in zip(before, after, strict=True) if a.metadata != b.metadata}
    assert changed == {"clinic::0", "clinic::1", "clinic::2"}  # doc_hash changes on all of clinic
    content_changed = {
        a.metadata["chunk_id"]
        for a, b in zip(before, after, strict=True)
        if a.metadata["content_hash"] != b.metadata["content_hash"]
    }
    assert content_changed == {"clinic::2"}


def test_long_text_respects_chunk_size_and_overlap() -> None:
    from langchain_core.documents import Document

    words = " ".join(f"word{i}" for i in range(400))
    doc = Document(page_content=words, metadata={"doc_id": "long", "source": "long.txt"})
    chunks = split_documents([doc], chunk_size=200, chunk_overlap=50)
    assert len(chunks) > 10
    assert all(len(c.page_content) <= 200 for c in chunks)
    first, second = chunks[0].page_content.split(), chunks[1].page_content.split()
    assert set(first) & set(second)  # overlap shares words


def test_split_rejects_bad_sizes_and_documents_without_ids() -> None:
    from langchain_core.documents import Document

    with pytest.raises(ConfigError, match="chunk_overlap"):
        split_documents([], chunk_size=100, chunk_overlap=100)
    with pytest.raises(DataError, match="has no 'doc_id'"):
        split_documents([Document(page_content="x", metadata={})], 100, 10)


def test_nested_doc_ids_link_records_to_documents(tmp_path: Path) -> None:
    root = tmp_path / "domain"
    shutil.copytree(DOCS, root / "docs")
    (root / "qa").mkdir()
    row = '{"id": "q1", "question": "Which insurers are billed directly?", "answer": "Atlas Health", "doc_id": "billing/insurance"}'
    (root / "qa" / "test.jsonl").write_text(row + "\n", encoding="utf-8")
    ds = load_domain(DataConfig(format="folder", path=str(root)))
    assert ds.test[0].doc_id == "billing/insurance" and len(ds.documents) == 5
