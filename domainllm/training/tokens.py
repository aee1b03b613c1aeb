"""Training examples -> token ids with an exact loss mask, and the truncation budget.

Tokenized here rather than by TRL so that truncation is counted (and refused past
``training.max_truncated_share``) and the mask is exact: the prompt is tokenized on its own, exactly
as inference tokenizes it, and the answer (with the end-of-turn token) after it. TRL turns
``completion_mask`` into labels (-100 on the prompt) when ``completion_only_loss`` is on.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any

from domainllm.config import DomainConfig
from domainllm.errors import TrainingError

if TYPE_CHECKING:
    from domainllm.data.records import QADataset

__all__ = ["DataStats", "build_datasets", "tokenize_examples"]

log = logging.getLogger(__name__)


@dataclasses.dataclass
class DataStats:
    """What tokenization did to the data; recorded in the manifest and the model card."""

    train: int = 0
    val: int = 0
    doc_windows: int = 0
    truncated: int = 0
    dropped: int = 0
    val_truncated: int = 0
    longest: int = 0
    train_tokens: int = 0
    # train_on raft: what the RAFT prompts hold (RaftStats.to_dict()); None otherwise
    raft: dict[str, int] | None = None


def tokenize_examples(
    examples: list[dict[str, str]], tokenizer: Any, max_length: int
) -> tuple[list[dict[str, list[int]]], int, int, int]:
    """Prompt/completion pairs -> ``input_ids`` + ``completion_mask``, cut to ``max_length``.

    Returns (rows, truncated, dropped, longest): ``truncated`` examples were longer than
    ``max_length``; ``dropped`` ones lost every answer token to truncation (no loss left to learn).
    """
    if not examples:
        return [], 0, 0, 0
    prompts = tokenizer([e["prompt"] for e in examples], add_special_tokens=False)["input_ids"]
    completions = tokenizer([e["completion"] for e in examples], add_special_tokens=False)["input_ids"]
    rows, truncated, dropped, longest = [], 0, 0, 0
    for prompt_ids, completion_ids in zip(prompts, completions, strict=True):
        input_ids = list(prompt_ids) + list(completion_ids)
        mask = [0] * len(prompt_ids) + [1] * len(completion_ids)
        longest = max(longest, len(input_ids))
        if len(input_ids) > max_length:
            truncated += 1
            input_ids, mask = input_ids[:max_length], mask[:max_length]
            if not any(mask):
                dropped += 1
                continue
        rows.append({"input_ids": input_ids, "completion_mask": mask})
    return rows, truncated, dropped, longest


def _document_windows(texts: list[str], tokenizer: Any, max_length: int) -> list[dict[str, list[int]]]:
    # Continued pretraining on documents: every token is a target. build_training_examples already
    # cut documents at Markdown boundaries to fit; a piece that still does not fit becomes
    # consecutive windows instead of losing its tail.
    rows = []
    for ids in tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []:
        for start in range(0, len(ids), max_length):
            window = list(ids[start : start + max_length])
            if len(window) >= 2:  # a single token has no next token to predict
                rows.append({"input_ids": window, "completion_mask": [1] * len(window)})
    return rows


def build_datasets(data: QADataset, tokenizer: Any, cfg: DomainConfig) -> tuple[Any, Any, DataStats]:
    """Train (QA pairs, plus document windows for train_on qa+docs) and val datasets, tokenized."""
    from datasets import Dataset

    from domainllm.data.examples import build_training_examples

    t = cfg.training
    documents = data.documents if t.train_on == "qa+docs" else None
    # The document splitter counts tokens piece by piece; re-tokenized, a piece can come out a token or
    # two longer at its edges, so it aims a little short and _document_windows catches the rest.
    piece_tokens = max(t.max_seq_length - 4, 8)
    raft = raft_env = None
    if t.train_on == "raft":
        from domainllm.training.raft import build_raft_examples, raft_setup

        raft_env = raft_setup(cfg, data)  # the store is indexed and opened once, for train and val
        examples, raft = build_raft_examples(cfg, data, tokenizer, "train", raft_env)
    else:
        examples = build_training_examples(
            data.train,
            tokenizer,
            cfg.data.system_prompt,
            documents=documents,
            max_document_tokens=piece_tokens,
        )
    qa = [e for e in examples if e["prompt"]]
    docs = [e["completion"] for e in examples if not e["prompt"]]
    rows, truncated, dropped, longest = tokenize_examples(qa, tokenizer, t.max_seq_length)
    share = truncated / max(len(qa), 1)
    if share > t.max_truncated_share:
        msg = (
            f"{truncated} of {len(qa)} training examples ({share:.1%}) are longer than training.max_seq_length="
            f"{t.max_seq_length} tokens (the longest has {longest}), more than training.max_truncated_share="
            f"{t.max_truncated_share:.0%} allows: they would lose the end of their answers. Raise "
            f"training.max_seq_length (e.g. --set training.max_seq_length={_round_up(longest)}), shorten the "
            "examples or the system prompt, or raise training.max_truncated_share to accept it."
        )
        raise TrainingError(msg)
    if truncated:
        log.warning(
            "%d of %d training examples were truncated to training.max_seq_length=%d tokens (%d lost every answer "
            "token and were dropped).",
            truncated,
            len(qa),
            t.max_seq_length,
            dropped,
        )
    windows = _document_windows(docs, tokenizer, t.max_seq_length)
    if not rows and not windows:
        msg = "No training example is left after truncation; raise training.max_seq_length."
        raise TrainingError(msg)
    train_rows = rows + windows
    val_rows: list[dict[str, list[int]]] = []
    val_truncated = 0
    if data.val:
        if t.train_on == "raft":  # eval loss on the task trained: the val questions with their gold chunk
            val_examples, _ = build_raft_examples(cfg, data, tokenizer, "val", raft_env)
        else:
            val_examples = build_training_examples(data.val, tokenizer, cfg.data.system_prompt)
        val_rows, val_truncated, _, _ = tokenize_examples(val_examples, tokenizer, t.max_seq_length)
        if val_truncated:
            log.warning(
                "%d validation examples were truncated to %d tokens.", val_truncated, t.max_seq_length
            )
    stats = DataStats(
        train=len(train_rows),
        val=len(val_rows),
        doc_windows=len(windows),
        truncated=truncated,
        dropped=dropped,
        val_truncated=val_truncated,
        longest=longest,
        train_tokens=sum(len(r["input_ids"]) for r in train_rows),
        raft=raft.to_dict() if raft is not None else None,
    )
    eval_ds = Dataset.from_list(val_rows) if val_rows else None
    return Dataset.from_list(train_rows), eval_ds, stats


def _round_up(n: int) -> int:
    step = 64
    return ((n + step - 1) // step) * step
