"""``domainllm preferences RUN``: preference pairs from a run's own mistakes (on-policy negatives).

Users rarely have preference data, but every fine-tuned run has a training split and a scorer. For
each training question the run answers greedily (its own system prompt, the generation settings of
its config); an answer the scorer marks wrong becomes ``rejected`` and the reference answer
``chosen``. The pairs are what DPO needs most: the mistakes this very model makes. Answers the
scorer accepts give no pair. Written atomically as JSONL (``prompt``/``chosen``/``rejected`` plus
``id``, ``source_id``, ``doc_id``, ``kind: on_policy``) with ``<name>.counts.json`` beside it;
an existing file is replaced only with ``overwrite``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from domainllm.errors import RunDirError

__all__ = ["build_preferences"]

log = logging.getLogger(__name__)


def _counts_path(out: Path) -> Path:
    return out.with_name(out.stem + ".counts.json")


def build_preferences(
    run_dir: str | Path, output: str | Path | None = None, *, overwrite: bool = False, limit: int = 0
) -> Path:
    """Write the run's on-policy preference pairs (default ``RUN/preferences/train.jsonl``) and return the path."""
    from domainllm.data import load_domain
    from domainllm.data.formatting import format_user_message, render_prompt
    from domainllm.eval.scoring import score_records
    from domainllm.fsio import atomic_write_json, atomic_write_jsonl
    from domainllm.rundir import RunDir
    from domainllm.serve import load_expert
    from domainllm.serve.generate import generate_texts

    run = RunDir.open(Path(run_dir).expanduser().resolve())
    out = Path(output).expanduser().resolve() if output else run.path / "preferences" / "train.jsonl"
    for path in (out, _counts_path(out)):
        if path.exists() and not overwrite:
            msg = f"'{path}' already exists; nothing was changed. Pass --overwrite to replace it, or choose another --output."
            raise RunDirError(msg)
    cfg = run.load_config()
    data = load_domain(cfg.data, cfg.base_dir)
    records = list(data.train)[: limit or None]
    expert = load_expert(run.path)
    prompts = [render_prompt(expert.tokenizer, format_user_message(r), expert.system_prompt) for r in records]
    gen = cfg.generation
    texts = generate_texts(
        expert.model,
        expert.tokenizer,
        prompts,
        gen_kwargs={"max_new_tokens": gen.max_new_tokens, "do_sample": False},
        batch_size=gen.batch_size,
        eos_ids=expert.eos_ids,
        context_length=expert.context_length,
    )
    answers = [t.text.strip() for t in texts]
    scores = score_records(records, answers, cfg.compare.number_rel_tol)
    rows: list[dict[str, Any]] = []
    for record, answer, score in zip(records, answers, scores, strict=True):
        if score["correct"] >= 1.0 or not answer or answer == record.answer:
            continue
        rows.append(
            {
                "id": f"onpolicy-{record.id}",
                "prompt": record.question,
                "chosen": record.answer,
                "rejected": answer,
                "kind": "on_policy",
                "doc_id": record.doc_id,
                "source_id": record.id,
            }
        )
    counts = {
        "run": str(run.path),
        "questions": len(records),
        "answered_correctly": sum(1 for s in scores if s["correct"] >= 1.0),
        "pairs": len(rows),
        "skipped_empty_or_identical": len(records)
        - len(rows)
        - sum(1 for s in scores if s["correct"] >= 1.0),
        "rule": "greedy answer scored wrong by domainllm.eval.scoring -> rejected; reference answer -> chosen",
    }
    atomic_write_jsonl(out, rows)
    atomic_write_json(_counts_path(out), counts)
    log.info(
        "%d of %d training answers were wrong: %d pairs written to %s",
        len(rows),
        len(records),
        len(rows),
        out,
    )
    return out
