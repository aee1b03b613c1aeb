"""``augment``: setup (source domain, generator) -> generate -> check -> write the new domain folder."""

from __future__ import annotations

import json
import logging
import shutil
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from domainllm.augment.checks import DROP_REASONS, check_candidate, leaked, question_key
from domainllm.augment.generators import Generator, make_generator
from domainllm.data.records import QADataset, QARecord
from domainllm.errors import ConfigError, DataError, RunDirError

if TYPE_CHECKING:
    from domainllm.config import DomainConfig

__all__ = ["AugmentConfig", "augment"]

log = logging.getLogger(__name__)

_MARKER = "datasheet.json"  # a folder holding it was written by augment (and may be replaced with overwrite)


@dataclass
class AugmentConfig:
    """What :func:`augment` builds; the CLI flags of ``domainllm augment`` map one to one.

    Example::

        from domainllm.augment import AugmentConfig, augment
        from domainllm.config import load_config
        out = augment(AugmentConfig(load_config("configs/dental.yaml"), "data/my-augmented", "openai:gpt-4o-mini"))
    """

    # The source domain: its data section (train rows, val/test, documents) and retrieval chunking.
    config: DomainConfig
    # The new domain folder (qa/, docs/, README.md, datasheet.json).
    output_dir: str | Path
    # "files:DIR" (pre-written output), "hf:PATH" / "hf:default" (a local model) or "provider:model".
    generator: str
    # Rewordings asked for per training question (--paraphrases); 0 = none.
    paraphrases: int = 3
    # Question-answer pairs asked for per document chunk (--questions-per-chunk); 0 = none.
    questions_per_chunk: int = 5
    # Replace an earlier augment output in output_dir (--overwrite); any other existing folder is never touched.
    overwrite: bool = False
    # An already built generator (the Python API, tests); overrides `generator`'s construction.
    generator_obj: Generator | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.paraphrases < 0:
            msg = f"--paraphrases is {self.paraphrases}; use 0 or more."
            raise ConfigError(msg)
        if self.questions_per_chunk < 0:
            msg = f"--questions-per-chunk is {self.questions_per_chunk}; use 0 or more."
            raise ConfigError(msg)


def _check_output(out: Path, overwrite: bool) -> None:
    if not out.exists():
        return
    if out.is_file():
        msg = f"--output-dir '{out}' is a file. Name a folder for the augmented domain."
        raise ConfigError(msg)
    if not (out / _MARKER).is_file():
        if any(out.iterdir()):
            msg = f"'{out}' exists and was not written by domainllm augment; it is never replaced. Choose another --output-dir."
            raise RunDirError(msg)
        return
    if not overwrite:
        msg = f"'{out}' already holds an augmented domain. Pass --overwrite to rebuild it, or choose another --output-dir."
        raise RunDirError(msg)


def _row(record: QARecord, **provenance: Any) -> dict[str, Any]:
    row = record.to_dict()
    row.pop("seen_in_train", None)
    row.update({k: v for k, v in provenance.items() if v is not None})
    return row


def _copied_splits(cfg: DomainConfig, data: QADataset) -> dict[str, Path]:
    """The val/test files a JSONL-folder source was read from, to copy byte for byte (the loaders' rule
    for where splits live); a split carved from train, or read from another format, is written instead."""
    from domainllm.data.loaders import split_files

    if cfg.data.format != "folder":
        return {}
    files = split_files(cfg.data, cfg.base_dir)
    return {
        s: p
        for s, p in files.items()
        if s in ("val", "test") and s not in data.carved and p.suffix == ".jsonl"
    }


def augment(options: AugmentConfig) -> Path:
    """Build the augmented domain folder described by ``options`` and return its path."""
    from domainllm.data.documents import split_documents
    from domainllm.data.loaders import documents_folder, load_domain
    from domainllm.fsio import atomic_write_json, atomic_write_text, replace_dir, temp_dir_beside

    cfg = options.config
    out = Path(options.output_dir).expanduser().resolve()
    _check_output(out, options.overwrite)
    data = load_domain(cfg.data, cfg.base_dir)
    if not data.train:
        msg = f"The domain '{cfg.data.name}' has no training rows to augment."
        raise DataError(msg)
    gen = options.generator_obj or make_generator(
        options.generator
    )  # a flag: relative to the working directory
    held_out = [*data.val, *data.test]
    drops: Counter[tuple[str, str]] = Counter()
    seen = {question_key(r.question) for r in data.train}
    rows: list[dict[str, Any]] = [_row(r, source="original") for r in data.train]

    # paraphrases: the parent's answer, aliases, options and doc_id apply unchanged
    paraphrased: list[QARecord] = []
    para_offered = 0
    if options.paraphrases:
        for record, texts in zip(data.train, gen.paraphrase(data.train, options.paraphrases), strict=True):
            for i, text in enumerate(texts, start=1):
                para_offered += 1
                text = text.strip()
                if not text.endswith("?") or len(text.split()) < 3:
                    drops["paraphrase", "not a question"] += 1
                    continue
                if question_key(text) in seen:
                    drops["paraphrase", "duplicate question"] += 1
                    continue
                seen.add(question_key(text))
                paraphrased.append(
                    replace(record, id=f"{record.id}-p{i}", question=text, meta={"parent_id": record.id})
                )

    # questions from document chunks, each checked against its chunk
    generated: list[tuple[QARecord, dict[str, Any]]] = []
    per_doc: Counter[str] = Counter()  # numbers each document's generated rows
    offered = 0
    if options.questions_per_chunk and data.documents:
        chunks = split_documents(data.documents, cfg.retrieval.chunk_size, cfg.retrieval.chunk_overlap)
        triples = [
            (c.metadata["doc_id"], str(c.metadata.get("chunk_id", "")), c.page_content) for c in chunks
        ]
        for (doc_id, chunk_id, text), cands in zip(
            triples, gen.questions(triples, options.questions_per_chunk), strict=True
        ):
            for cand in cands:
                offered += 1
                reason = check_candidate(cand, text, cfg.data.max_answer_words)
                if reason is None and question_key(cand.question) in seen:
                    reason = "duplicate question"
                if reason:
                    drops["generated", reason] += 1
                    continue
                seen.add(question_key(cand.question))
                per_doc[doc_id] += 1
                record = QARecord(
                    id=f"gen-{doc_id}-{per_doc[doc_id]:03d}",
                    question=cand.question.strip(),
                    answer=cand.answer.strip(),
                    answer_type=cand.answer_type,
                    aliases=tuple(cand.aliases),
                    options=tuple(cand.options) if cand.options else None,
                    doc_id=doc_id,
                )
                generated.append((record, {"chunk_id": chunk_id, "evidence": cand.evidence or None}))
    drops["generated", "unreadable"] += getattr(gen, "unreadable", 0)

    # leakage: no paraphrase or generated question may be a near-duplicate of a val/test question
    bad = leaked([*paraphrased, *(r for r, _ in generated)], held_out)
    for record in paraphrased:
        if record.id in bad:
            drops["paraphrase", "near-duplicate of a val/test question"] += 1
        else:
            rows.append(
                _row(record, source="paraphrase", parent_id=record.meta["parent_id"], generator=gen.name)
            )
    for record, extra in generated:
        if record.id in bad:
            drops["generated", "near-duplicate of a val/test question"] += 1
        else:
            rows.append(_row(record, source="generated", generator=gen.name, **extra))

    counts = Counter(r["source"] for r in rows)
    sheet = {
        "made_by": "domainllm augment",
        "source_domain": data.source,
        "generator": gen.name,
        "command": f"domainllm augment --generator {options.generator} -o {Path(options.output_dir).as_posix()} "
        f"--paraphrases {options.paraphrases} --questions-per-chunk {options.questions_per_chunk}",
        "paraphrases_per_question": options.paraphrases,
        "questions_per_chunk": options.questions_per_chunk,
        "kept": {k: counts.get(k, 0) for k in ("original", "paraphrase", "generated")},
        "offered": {"paraphrase": para_offered, "generated": offered},
        "dropped": {
            kind: {r: drops[kind, r] for r in DROP_REASONS if drops[kind, r]}
            for kind in ("paraphrase", "generated")
        },
        "val_test": "copied byte for byte from the source; never read by the generator",
        "leakage_rule": "token-set Jaccard >= 0.8 against every val and test question (domainllm.data.leakage)",
    }
    tmp = temp_dir_beside(out, "augment")
    try:
        (tmp / "qa").mkdir()
        with open(tmp / "qa" / "train.jsonl", "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        copied = _copied_splits(cfg, data)
        for split in ("val", "test"):
            src = copied.get(split)
            if src is not None:
                shutil.copyfile(src, tmp / "qa" / f"{split}.jsonl")
            elif data.split(split):
                with open(tmp / "qa" / f"{split}.jsonl", "w", encoding="utf-8") as fh:
                    fh.writelines(
                        json.dumps(r.to_dict(), ensure_ascii=False) + "\n" for r in data.split(split)
                    )
        docs = documents_folder(cfg.data, cfg.base_dir)
        if docs is not None:
            shutil.copytree(docs, tmp / "docs")
        elif data.documents:
            (tmp / "docs").mkdir()
            for doc in data.documents:
                atomic_write_text(tmp / "docs" / f"{doc.metadata['doc_id']}.md", doc.page_content)
        atomic_write_json(tmp / _MARKER, sheet)
        atomic_write_text(tmp / "README.md", _datasheet_markdown(sheet))
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("Augmented domain written to %s: %s", out, sheet["kept"])
    return out


def _datasheet_markdown(sheet: dict[str, Any]) -> str:
    lines = [
        "# Augmented domain (written by `domainllm augment`)",
        "",
        f"Source domain: `{sheet['source_domain']}`; generator: `{sheet['generator']}`; "
        f"{sheet['paraphrases_per_question']} paraphrases asked per training question, "
        f"{sheet['questions_per_chunk']} questions per document chunk.",
        "",
        f"Built with: `{sheet['command']}` (plus the source's config).",
        "",
        "Only the source's training rows and documents were given to the generator. `qa/val.jsonl` and "
        "`qa/test.jsonl` are byte-for-byte copies of the source's; every paraphrase and generated question "
        f"was checked against them ({sheet['leakage_rule']}) and dropped when it matched.",
        "",
        "| rows | kept | offered |",
        "|---|---|---|",
        f"| original | {sheet['kept']['original']} | |",
        f"| paraphrase | {sheet['kept']['paraphrase']} | {sheet['offered']['paraphrase']} |",
        f"| generated | {sheet['kept']['generated']} | {sheet['offered']['generated']} |",
        "",
        "Dropped, and why:",
        "",
    ]
    for kind, reasons in sheet["dropped"].items():
        for reason, n in reasons.items():
            lines.append(f"- {kind}: {n} {reason}")
    if not any(sheet["dropped"].values()):
        lines.append("- nothing")
    lines += [
        "",
        "Every training row carries its provenance: `source` (original | paraphrase | generated), "
        "`parent_id` (paraphrases), `generator`, and for generated rows `doc_id`, `chunk_id` and `evidence` "
        "(the passage text that states the answer). Train on a subset with `data.train_sources`.",
        "",
    ]
    return "\n".join(lines)
