"""The knowledge base as LangChain documents: loading a folder, and chunking it for retrieval.

A document is a whole file (one ``Document`` per file, PDFs joined across pages), identified by a
``doc_id`` that QA records point at: the file name without suffix, or the relative path without
suffix for nested folders (``billing/insurance``). Keeping documents whole at load time lets the
same list serve continued pretraining (``train_on: qa+docs``), the oracle arm and the RAG index,
which chunks them with :func:`split_documents`.

Chunks carry a stable ``chunk_id`` (``doc_id::index``) and content hashes, so an index can tell
which chunks changed when documents are edited, instead of re-embedding everything.
"""

from __future__ import annotations

import hashlib
import logging
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from domainllm.errors import ConfigError, DataError

__all__ = ["DOCUMENT_SUFFIXES", "load_chunks", "load_documents", "split_documents", "text_hash"]

logger = logging.getLogger(__name__)

DOCUMENT_SUFFIXES = (".md", ".markdown", ".txt", ".html", ".htm", ".pdf")
_DROP_HTML_TAGS = ("script", "style", "noscript", "template", "svg", "head", "nav")
_BLOCK_HTML_TAGS = (
    "p", "div", "section", "article", "header", "footer", "main", "aside", "li", "ul", "ol", "table",
    "tr", "pre", "blockquote", "dt", "dd", "figcaption", "h1", "h2", "h3", "h4", "h5", "h6",
)  # fmt: skip
_HEADING_ONLY = re.compile(r"#{1,6} [^\n]*")
# A line this long is not prose a reader wrote (a minified export, a table dumped on one line, a
# binary read as text): it splits only at spaces, into many chunks that take long to embed.
LONG_LINE = 20_000


def text_hash(text: str) -> str:
    """First 16 hex digits of the SHA-256 of ``text`` (enough to detect edits; short in metadata)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _community_loaders() -> Any:
    """Import langchain_community's loaders without its package-level sunset DeprecationWarning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from langchain_community import document_loaders
    return document_loaders


def _read_text(path: Path) -> str:
    loaders = _community_loaders()
    try:
        docs = loaders.TextLoader(str(path), encoding="utf-8").load()
    except RuntimeError as exc:  # TextLoader wraps UnicodeDecodeError in RuntimeError
        msg = f"Document '{path}' is not UTF-8 text ({exc.__cause__ or exc}). Re-save it as UTF-8."
        raise DataError(msg) from exc
    return docs[0].page_content


def _read_html(path: Path) -> tuple[str, dict[str, Any]]:
    """Visible text of an HTML page: one line per block element, headings as Markdown ``#`` lines.

    The one format not read through a LangChain loader, on purpose: ``BSHTMLLoader`` returns
    ``soup.get_text()``, which keeps ``<nav>`` text, glues adjacent block elements together ("70
    eurosFilling") and drops the headings the Markdown-aware splitter cuts at; LangChain's other
    HTML readers need packages we do not depend on (unstructured, html2text). So this is bs4 itself
    (what BSHTMLLoader wraps) with the standard-library parser; the caller wraps the text in a
    LangChain ``Document`` with the same metadata as every other file.
    """
    from bs4 import BeautifulSoup

    try:
        raw = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        msg = f"Document '{path}' is not UTF-8 text ({exc}). Re-save it as UTF-8."
        raise DataError(msg) from exc
    soup = BeautifulSoup(raw, "html.parser")
    title = soup.title.get_text(strip=True) if soup.title else ""
    for tag in soup(_DROP_HTML_TAGS):
        tag.decompose()
    for br in soup("br"):
        br.replace_with("\n")
    for tag in soup(_BLOCK_HTML_TAGS):
        if tag.name in ("h1", "h2", "h3", "h4", "h5", "h6"):
            tag.insert_before("\n\n" + "#" * int(tag.name[1]) + " ")
            tag.insert_after("\n\n")
        else:
            tag.insert_before("\n")
            tag.insert_after("\n")
    lines = (" ".join(line.split()) for line in soup.get_text().splitlines())
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    return text, ({"title": title} if title else {})


def _read_pdf(path: Path) -> tuple[str, dict[str, Any]]:
    loaders = _community_loaders()
    try:
        pages = loaders.PyPDFLoader(str(path)).load()
    except Exception as exc:  # pypdf raises many types for broken files
        msg = f"Document '{path}' could not be read as PDF ({type(exc).__name__}: {exc}). Check the file."
        raise DataError(msg) from exc
    text = "\n\n".join(page.page_content.strip() for page in pages if page.page_content.strip())
    return text, {"pages": len(pages)}


def _load_file(path: Path) -> tuple[str, dict[str, Any]]:
    suffix = path.suffix.lower()
    if suffix in (".html", ".htm"):
        return _read_html(path)
    if suffix == ".pdf":
        return _read_pdf(path)
    return _read_text(path), {}


def load_documents(folder: str | Path, key: str = "data.docs_dir") -> list[Any]:
    """One LangChain ``Document`` per supported file under ``folder`` (recursively, sorted by path).

    Metadata: ``doc_id`` (relative path without suffix), ``source`` (relative path with suffix),
    ``format`` (the suffix), plus ``title`` for HTML and ``pages`` for PDF. Markdown and text are read
    as-is (Markdown structure helps the splitter) with LangChain's ``TextLoader``, PDF with its
    ``PyPDFLoader``; HTML with BeautifulSoup directly (see :func:`_read_html` for why). Hidden files
    are ignored; other suffixes are skipped with a warning. An empty folder, an empty or unreadable file, or two files with the same
    ``doc_id`` (``faq.md`` and ``faq.txt``) raise :class:`DataError`. ``key`` is what the error messages
    call the folder (``DOCS_DIR`` for ``domainllm index``).
    """
    from langchain_core.documents import Document

    root = Path(folder)
    if not root.is_dir():
        msg = f"Document folder '{root}' ({key}) does not exist or is not a folder. Point {key} at a folder of .md/.txt/.html/.pdf files."
        raise DataError(msg)
    files, skipped = [], []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        (files if path.suffix.lower() in DOCUMENT_SUFFIXES else skipped).append(path)
    if skipped:
        logger.warning(
            "Skipped %d file(s) in %s with unsupported suffixes (supported: %s): %s",
            len(skipped),
            root,
            ", ".join(DOCUMENT_SUFFIXES),
            ", ".join(str(p.relative_to(root)) for p in skipped[:5]),
        )
    if not files:
        msg = f"Document folder '{root}' holds no documents. Add files with suffixes {', '.join(DOCUMENT_SUFFIXES)}."
        raise DataError(msg)

    documents, seen = [], {}
    for path in files:
        rel = path.relative_to(root)
        doc_id = rel.with_suffix("").as_posix()
        if doc_id in seen:
            msg = (
                f"Documents '{root / seen[doc_id]}' and '{path}' both have doc_id '{doc_id}' (file name without "
                "suffix). Rename one of them: QA records point at documents by doc_id."
            )
            raise DataError(msg)
        seen[doc_id] = rel
        text, extra = _load_file(path)
        if not text.strip():
            hint = " (a scanned PDF needs OCR first)" if path.suffix.lower() == ".pdf" else ""
            msg = f"Document '{path}' is empty or has no extractable text{hint}. Fill it or remove it."
            raise DataError(msg)
        metadata = {"doc_id": doc_id, "source": rel.as_posix(), "format": path.suffix.lower().lstrip(".")}
        documents.append(Document(page_content=text, metadata={**metadata, **extra}))
    logger.info("Loaded %d document(s) from %s", len(documents), root)
    return documents


def _attach_lone_headings(pieces: list[Any]) -> list[Any]:
    """Prepend a chunk that is only a Markdown heading to the next chunk of the same document.

    A heading alone retrieves nothing useful, while a chunk that starts with its section heading
    carries the topic words a query uses ("Parking", "Insurance").
    """
    out: list[Any] = []
    pending = None
    for piece in pieces:
        if pending is not None:
            piece.page_content = pending.page_content + "\n\n" + piece.page_content
            if "start_index" in pending.metadata:
                piece.metadata["start_index"] = pending.metadata["start_index"]
            pending = None
        if _HEADING_ONLY.fullmatch(piece.page_content.strip()):
            pending = piece
            continue
        out.append(piece)
    if pending is not None:
        out.append(pending)
    return out


def _warn_long_lines(doc: Any, n_chunks: int, chunk_size: int) -> None:
    """Warn about a document with a line of more than LONG_LINE characters (it indexes slowly and badly)."""
    text = doc.page_content
    if len(text) <= LONG_LINE:
        return
    longest = max(map(len, text.splitlines()), default=0)
    if longest > LONG_LINE:
        source = doc.metadata.get("source") or doc.metadata.get("doc_id")
        logger.warning(
            "Document '%s' has a line of %s characters (no line or paragraph breaks), split only at spaces into "
            "%s chunks of at most %s characters, which take a while to embed and retrieve as arbitrary cuts. "
            "If it is an export on one line (minified HTML or JSON, a table), convert it to text with line breaks.",
            source,
            f"{longest:,}",
            f"{n_chunks:,}",
            chunk_size,
        )


def split_documents(documents: Sequence[Any], chunk_size: int = 800, chunk_overlap: int = 100) -> list[Any]:
    """Chunks for the vector store, split at Markdown headings first, then paragraphs, lines, words.

    Sizes are in characters (what RecursiveCharacterTextSplitter counts). Each chunk keeps the
    document's metadata and adds ``chunk_index``, ``chunk_id`` (``doc_id::index``, stable while the
    document is unchanged), ``start_index`` (character offset in the document), ``content_hash``
    (of the chunk) and ``doc_hash`` (of the whole document).
    """
    from langchain_core.documents import Document
    from langchain_text_splitters import Language, RecursiveCharacterTextSplitter

    if chunk_size < 1:
        msg = (
            f"Config key 'retrieval.chunk_size' is {chunk_size}. Use a positive size such as 800 characters."
        )
        raise ConfigError(msg)
    if not 0 <= chunk_overlap < chunk_size:
        msg = f"Config key 'retrieval.chunk_overlap' is {chunk_overlap}. Use 0 <= overlap < chunk_size ({chunk_size})."
        raise ConfigError(msg)
    splitter = RecursiveCharacterTextSplitter(
        separators=RecursiveCharacterTextSplitter.get_separators_for_language(Language.MARKDOWN),
        is_separator_regex=True,
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        add_start_index=True,
        strip_whitespace=True,
    )
    chunks = []
    for n, doc in enumerate(documents):
        doc_id = doc.metadata.get("doc_id")
        if not doc_id:
            msg = f"Document #{n} (source {doc.metadata.get('source', '?')!r}) has no 'doc_id' in its metadata. Load documents with load_documents()."
            raise DataError(msg)
        doc_hash = text_hash(doc.page_content)
        pieces = _attach_lone_headings(splitter.split_documents([doc]))
        _warn_long_lines(doc, len(pieces), chunk_size)
        for index, piece in enumerate(pieces):
            text = re.sub(r"\n{3,}", "\n\n", piece.page_content)
            metadata = {
                **piece.metadata,
                "chunk_index": index,
                "chunk_id": f"{doc_id}::{index}",
                "content_hash": text_hash(text),
                "doc_hash": doc_hash,
            }
            chunks.append(Document(page_content=text, metadata=metadata))
    return chunks


def load_chunks(folder: str | Path, chunk_size: int = 800, chunk_overlap: int = 100) -> list[Any]:
    """A folder of documents as knowledge-base chunks, in one call: :func:`load_documents`, then
    :func:`split_documents`. The two stay separate functions because the Chroma store needs the whole
    documents as well (a document's hash decides whether its chunks are replaced on re-indexing)."""
    return split_documents(load_documents(folder), chunk_size=chunk_size, chunk_overlap=chunk_overlap)
