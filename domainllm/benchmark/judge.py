"""LLM-as-judge: ``judge_correct`` for every answering arm through a ``provider:model`` chat model."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from domainllm.benchmark.arms import check_extra_arm, parse_provider_model
from domainllm.benchmark.build import chains_dir
from domainllm.config import DomainConfig
from domainllm.data.records import QARecord
from domainllm.eval.predictions import ArmRun
from domainllm.eval.scoring import judge_verdicts

__all__ = ["run_judge"]

log = logging.getLogger(__name__)


def run_judge(
    cfg: DomainConfig, records: Sequence[QARecord], runs: dict[str, ArmRun], scores: dict[str, list[dict]]
) -> dict[str, Any]:
    """Add ``judge_correct`` to ``scores`` (in place); skipped, with the reason, when the judge cannot run."""
    ccfg = cfg.compare
    assert ccfg.judge is not None
    reason = check_extra_arm(ccfg.judge, "compare.judge")
    if reason:
        log.warning("Judge '%s' skipped: %s", ccfg.judge, reason)
        return {"model": ccfg.judge, "status": f"skipped: {reason}"}
    from langchain.chat_models import init_chat_model

    from domainllm.chains import load_judge_spec

    spec = load_judge_spec(chains_dir(cfg))
    provider, model_name = parse_provider_model(ccfg.judge, "compare.judge")
    judge = init_chat_model(model_name, model_provider=provider, temperature=0)

    def build(record: QARecord, answer: str) -> list[tuple[str, str]]:
        reference = " / ".join([record.answer, *record.aliases])
        user = spec.user_template.format(question=record.question, reference=reference, candidate=answer)
        return [("system", spec.system_prompt), ("human", user)] if spec.system_prompt else [("human", user)]

    def invoke(batch: list) -> list[str]:
        return [str(getattr(m, "content", m)) for m in judge.batch(batch)]

    for name, run in runs.items():
        if run.ok and name in scores:
            verdicts = judge_verdicts(invoke, build, records, run.answers, labels=spec.labels)
            for s, v in zip(scores[name], verdicts, strict=True):
                s["judge_correct"] = v
    return {"model": ccfg.judge, "status": "ok", "prompt": spec.path}
