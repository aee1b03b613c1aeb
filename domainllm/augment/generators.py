"""Generators for the augment stage: what writes paraphrases and questions, behind one small interface.

A generator proposes; :mod:`domainllm.augment.checks` decides what is kept. So a generator may
return too many, too few or malformed items: parsing drops what it cannot read and counts it.

* :class:`ChatGenerator`: any LangChain chat model, prompted with the two prompts below and parsed
  from plain text (one paraphrase per line; one JSON object per line for questions). Made by
  :func:`make_generator` from ``provider:model`` (``init_chat_model``, as ``compare.extra_arms``)
  or ``hf:PATH`` / ``hf:default`` (a local model through domainllm's own serving, batched).
* :class:`FileGenerator`: generator output written beforehand (``paraphrases.jsonl`` and
  ``generated.jsonl``, the format of ``data/dental-authored/README.md``), for offline
  builds and for output produced elsewhere.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from domainllm.data.records import QARecord
from domainllm.errors import ConfigError

__all__ = [
    "PARAPHRASE_PROMPT",
    "QUESTIONS_PROMPT",
    "Candidate",
    "ChatGenerator",
    "FileGenerator",
    "Generator",
    "make_generator",
    "parse_candidates",
    "parse_paraphrases",
]

log = logging.getLogger(__name__)

PARAPHRASE_PROMPT = (
    "Rewrite the question below in {n} different ways. Keep its meaning, so the same answer still answers "
    "it, but change the wording: other words, another order, a patient's or customer's framing. Write one "
    "question per line, nothing else.\n\nQuestion: {question}"
)
QUESTIONS_PROMPT = (
    "Write up to {m} questions that the passage below answers, each with a short answer (at most 12 words) "
    "copied from the passage. Write one JSON object per line, nothing else, with keys question, answer and "
    'evidence (the passage sentence that states the answer), e.g. {{"question": "...", "answer": "...", '
    '"evidence": "..."}}.\n\nPassage:\n{chunk}'
)


@dataclass
class Candidate:
    """One generated question-answer pair, before the checks."""

    question: str
    answer: str
    evidence: str = ""
    answer_type: str = "text"
    aliases: list[str] = field(default_factory=list)
    options: list[str] | None = None


class Generator(Protocol):
    """What :func:`domainllm.augment.augment` asks of a generator."""

    name: str

    def paraphrase(self, records: Sequence[QARecord], n: int) -> list[list[str]]:
        """Up to ``n`` rewordings of each record's question (raw: checks come later)."""
        ...

    def questions(self, chunks: Sequence[tuple[str, str, str]], m: int) -> list[list[Candidate]]:
        """For each ``(doc_id, chunk_id, text)``, up to ``m`` candidate pairs the chunk answers."""
        ...


_LIST_MARK = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)]|\(\d+\))\s*")


def parse_paraphrases(text: str, n: int) -> list[str]:
    """One question per line; list markers and quotes removed; blank and non-question lines dropped."""
    out = []
    for line in text.splitlines():
        line = _LIST_MARK.sub("", line).strip().strip('"').strip()
        if len(line) >= 8 and line.endswith("?"):
            out.append(line)
    return out[:n]


def parse_candidates(text: str, m: int) -> tuple[list[Candidate], int]:
    """JSON objects, one per line (code fences tolerated) -> candidates, and the count of unreadable lines."""
    found, bad = [], 0
    for line in text.splitlines():
        line = line.strip().rstrip(",")
        if not line or line.startswith("```"):
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            bad += 1
            continue
        if not isinstance(item, dict):
            bad += 1
            continue
        question, answer = item.get("question"), item.get("answer")
        if (
            not isinstance(question, str)
            or not isinstance(answer, (str, int, float))
            or not str(answer).strip()
        ):
            bad += 1
            continue
        found.append(
            Candidate(question.strip(), str(answer).strip(), str(item.get("evidence") or "").strip())
        )
    return found[:m], bad


class ChatGenerator:
    """A LangChain chat model as the generator; ``batch`` calls it for many prompts at once.

    Example::

        from langchain.chat_models import init_chat_model
        gen = ChatGenerator(init_chat_model("gpt-4o-mini", model_provider="openai", temperature=0.7), "openai:gpt-4o-mini")
    """

    def __init__(self, chat_model: Any, name: str) -> None:
        self.chat_model = chat_model
        self.name = name
        self.unreadable = 0
        self.replies: list[str] = []  # every raw reply, in order: what the model actually wrote

    def _ask(self, prompts: list[str]) -> list[str]:
        from langchain_core.messages import HumanMessage

        if not prompts:
            return []
        replies = self.chat_model.batch([[HumanMessage(content=p)] for p in prompts])
        texts = [str(getattr(r, "content", r)) for r in replies]
        self.replies.extend(texts)
        return texts

    def paraphrase(self, records: Sequence[QARecord], n: int) -> list[list[str]]:
        replies = self._ask([PARAPHRASE_PROMPT.format(n=n, question=r.question) for r in records])
        return [parse_paraphrases(text, n) for text in replies]

    def questions(self, chunks: Sequence[tuple[str, str, str]], m: int) -> list[list[Candidate]]:
        replies = self._ask([QUESTIONS_PROMPT.format(m=m, chunk=text) for _, _, text in chunks])
        out = []
        for text in replies:
            found, bad = parse_candidates(text, m)
            self.unreadable += bad
            out.append(found)
        return out


class FileGenerator:
    """Generator output written beforehand: ``DIR/paraphrases.jsonl`` and ``DIR/generated.jsonl``.

    A generated row is offered with the chunk that contains its ``evidence`` (else its answer), so the
    grounding check reads the same chunk text as for a model's output.
    """

    def __init__(self, folder: str | Path) -> None:
        from domainllm.data.rows import json_rows
        from domainllm.data.validate import ErrorCollector

        self.folder = Path(folder)
        self.name = f"files:{self.folder.name}"
        self._paraphrases: dict[str, list[str]] = {}
        self._generated: dict[str, list[Candidate]] = {}
        para, gen = self.folder / "paraphrases.jsonl", self.folder / "generated.jsonl"
        found = para.is_file() or gen.is_file()
        errors = ErrorCollector()  # the loaders' reader and error paragraph: file, line, field, fix
        for row, where, _ in json_rows(para, errors) if para.is_file() else ():
            if not isinstance(row.get("parent_id"), str):
                errors.add(
                    where, "parent_id", "is missing or not a string", "Give the id of the training row"
                )
            elif not isinstance(row.get("paraphrases"), list):
                errors.add(
                    where, "paraphrases", "is missing or not a list", "Write a list of question strings"
                )
            else:
                self._paraphrases[row["parent_id"]] = [str(p) for p in row["paraphrases"]]
        for row, where, _ in json_rows(gen, errors) if gen.is_file() else ():
            missing = [k for k in ("doc_id", "question", "answer") if not isinstance(row.get(k), str)]
            for key in missing:
                errors.add(where, key, "is missing or not a string", "Write a string")
            if missing:
                continue
            self._generated.setdefault(row["doc_id"], []).append(
                Candidate(
                    question=row["question"],
                    answer=row["answer"],
                    evidence=str(row.get("evidence") or ""),
                    answer_type=str(row.get("answer_type") or "text"),
                    aliases=[str(a) for a in row.get("aliases") or []],
                    options=[str(o) for o in row["options"]] if row.get("options") else None,
                )
            )
        errors.raise_if_any()
        if not found:
            msg = (
                f"Generator 'files:{folder}' found neither paraphrases.jsonl nor generated.jsonl in {self.folder}. "
                "Point it at a folder of generator output (see data/dental-authored/README.md)."
            )
            raise ConfigError(msg)

    def paraphrase(self, records: Sequence[QARecord], n: int) -> list[list[str]]:
        return [self._paraphrases.get(r.id, [])[:n] for r in records]

    def questions(self, chunks: Sequence[tuple[str, str, str]], m: int) -> list[list[Candidate]]:
        out: list[list[Candidate]] = [[] for _ in chunks]
        by_doc: dict[str, list[int]] = {}
        for i, (doc_id, _, _) in enumerate(chunks):
            by_doc.setdefault(doc_id, []).append(i)
        for doc_id, indices in by_doc.items():
            for cand in self._generated.get(doc_id, []):
                needle = (cand.evidence or cand.answer).lower()
                home = next((i for i in indices if needle in chunks[i][2].lower()), indices[0])
                out[home].append(cand)
        return out  # pre-written output is taken as written, however many rows a chunk has


def make_generator(spec: str, base_dir: str | Path = ".", max_new_tokens: int = 256) -> Generator:
    """``files:DIR`` | ``hf:PATH`` | ``hf:default`` | ``provider:model`` -> a generator."""
    kind, sep, rest = spec.partition(":")
    if not sep or not rest:
        msg = (
            f"--generator '{spec}' is not 'files:DIR', 'hf:PATH' (or hf:default) or 'provider:model' "
            "(e.g. openai:gpt-4o-mini)."
        )
        raise ConfigError(msg)
    if kind == "files":
        path = Path(rest).expanduser()
        return FileGenerator(path if path.is_absolute() else Path(base_dir) / path)
    if kind == "hf":
        from domainllm.config import GenerationConfig, load_config
        from domainllm.serve import load_expert

        cfg = load_config(None, [f"model.name_or_path={rest}"])
        expert = load_expert(config=cfg)
        gen = GenerationConfig(max_new_tokens=max_new_tokens, batch_size=cfg.generation.batch_size)
        return ChatGenerator(expert.chat_model(adapter=False, generation=gen), spec)
    from domainllm.benchmark.arms import check_extra_arm, parse_provider_model

    provider, model = parse_provider_model(spec, key="--generator")
    reason = check_extra_arm(spec, key="--generator")
    if reason:
        msg = f"--generator '{spec}' cannot run here: {reason}"
        raise ConfigError(msg)
    from langchain.chat_models import init_chat_model

    return ChatGenerator(init_chat_model(model, model_provider=provider, temperature=0.7), spec)
