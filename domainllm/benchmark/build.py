"""The arms of a comparison, built from chain specs: names, what each needs, and what its answers depend on.

An arm is a chain spec (``chains/<domain>/<name>.yaml``) run with or without the adapter and the
retriever, or an extra ``provider:model`` chat model. Each arm gets a key (:func:`arm_key`) that
``compare --resume`` compares with a saved arm's key before reusing its answers.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from domainllm.benchmark.arms import Arm, check_extra_arm, extra_arm
from domainllm.benchmark.resume import arm_key, file_digest
from domainllm.chains import ChainSpec, chains_dir
from domainllm.config import CompareConfig, DomainConfig, config_to_dict
from domainllm.data.records import QADataset, QARecord, documents_sha256
from domainllm.eval.predictions import ArmRun

__all__ = [
    "ArmPlan",
    "build_arm",
    "chains_dir",
    "check_extras",
    "gold_contexts",
    "load_specs",
    "option_logliks",
    "plan_arms",
]

log = logging.getLogger(__name__)


def load_specs(cfg: DomainConfig) -> dict[str, ChainSpec]:
    """The chain spec of every requested arm; an unknown name fails here, listing the available arms."""
    from domainllm.chains import load_chain_spec

    names = list(dict.fromkeys([*cfg.compare.arms, *(["oracle"] if cfg.compare.oracle else [])]))
    where = chains_dir(cfg)
    return {name: load_chain_spec(name, chains_dir=where, domain=cfg.data.name) for name in names}


def check_extras(ccfg: CompareConfig) -> dict[str, str | None]:
    """provider:model -> None (runs) or the reason it is skipped; syntax errors raise at once."""
    reasons = {}
    for spec in ccfg.extra_arms:
        reason = check_extra_arm(spec)
        if reason:
            log.warning("Extra arm '%s' skipped: %s", spec, reason)
        reasons[spec] = reason
    return reasons


@dataclasses.dataclass
class ArmPlan:
    """One arm before it runs: its name, its spec (local) or provider (extra), and its key."""

    name: str
    kind: str  # "local" | "extra"
    spec: ChainSpec | None = None
    run: str | None = None  # name of the fine-tuned run for adapter arms
    skip_reason: str | None = None
    key: str = ""

    @property
    def adapter(self) -> bool:
        return bool(self.spec and self.spec.adapter)

    @property
    def retrieval(self) -> bool:
        return bool(self.spec and self.spec.uses_retrieval)


def _answer_settings(cfg: DomainConfig) -> dict[str, Any]:
    """The config that decides every arm's answers (not its scoring, not where files go)."""
    data = config_to_dict(cfg)
    return {
        "model": data["model"],
        "quantization": data["quantization"],
        "generation": data["generation"],
        "system_prompt": data["data"]["system_prompt"],
        "split": cfg.compare.split,
        "seed": cfg.compare.seed,
        "loglik_choices": cfg.compare.loglik_choices,
    }


def plan_arms(
    cfg: DomainConfig,
    specs: dict[str, ChainSpec],
    extras: dict[str, str | None],
    records: Sequence[QARecord],
    data: QADataset,
    runs: dict[str, Path],
) -> list[ArmPlan]:
    """Every arm with its key, in config order; adapter arms once per fine-tuned run.

    ``runs`` maps a run name to its directory; with one run named ``default`` the adapter arms keep
    their spec names (``finetuned``), with named runs they are ``<spec>@<run>``.
    """
    common = {**_answer_settings(cfg), "questions": [r.id for r in records]}
    docs = (
        documents_sha256(data.documents)
        if any(s.uses_retrieval or s.retrieval == "gold" for s in specs.values())
        else None
    )
    adapters = {
        name: file_digest(Path(path) / "adapter" / "adapter_model.safetensors") for name, path in runs.items()
    }
    plans: list[ArmPlan] = []
    for name, spec in specs.items():
        spec_data = {k: v for k, v in dataclasses.asdict(spec).items() if k != "path"}
        parts = {**common, "spec": spec_data}
        if spec.uses_retrieval or spec.retrieval == "gold":
            parts["retrieval"] = {**config_to_dict(cfg)["retrieval"], "documents": docs}
        if not spec.adapter:
            plans.append(ArmPlan(name, "local", spec, key=arm_key(parts)))
            continue
        for run_name in runs:
            arm = name if run_name == "default" else f"{name}@{run_name}"
            plans.append(
                ArmPlan(
                    arm, "local", spec, run=run_name, key=arm_key({**parts, "adapter": adapters[run_name]})
                )
            )
    for spec_str, reason in extras.items():
        parts = {"extra": spec_str, "questions": common["questions"], "generation": common["generation"]}
        plans.append(ArmPlan(spec_str, "extra", skip_reason=reason, key=arm_key(parts)))
    return plans


def _not_run(plan: ArmPlan, status: str, error: Any) -> ArmRun:
    text = error if isinstance(error, str) else f"{error.__class__.__name__}: {error}"
    if status == "failed":
        log.error("Arm '%s' could not be built: %s", plan.name, text)
    return ArmRun(
        name=plan.name,
        kind=plan.kind,
        adapter=plan.adapter,
        retrieval=plan.retrieval,
        run=plan.run,
        status=status,  # type: ignore[arg-type]
        error=text,
        key=plan.key,
    )


def _prompt_lengths(prompt_chain: Any, tokenizer: Any) -> Any:
    """Token counts of the rendered prompts (retrieval included, no generation) for length bucketing."""

    def lengths(inputs: Any) -> list[int]:
        rendered = prompt_chain.batch(list(inputs))
        return [len(tokenizer(item["prompt"], add_special_tokens=False)["input_ids"]) for item in rendered]

    return lengths


def build_arm(
    plan: ArmPlan, cfg: DomainConfig, expert: Any, retriever: Any, prompt_spec: ChainSpec | None
) -> Arm | ArmRun:
    """The runnable arm, or a skipped/failed :class:`ArmRun` when it cannot be built."""
    from domainllm.chains import FROM_RUN, build_chain, build_prompt_chain

    if plan.skip_reason is not None:
        return _not_run(plan, "skipped", plan.skip_reason)
    try:
        if plan.kind == "extra":
            # The "just ask a frontier model" reference: the prompt_only arm's persona and template.
            system, template = None, None
            if prompt_spec is not None:
                system = (
                    cfg.data.system_prompt
                    if prompt_spec.system_prompt == FROM_RUN
                    else prompt_spec.system_prompt
                )
                template = prompt_spec.user_template
            return extra_arm(plan.name, system, template, cfg.generation.max_new_tokens)
        spec = plan.spec
        assert spec is not None
        activate = None
        if plan.run is not None and hasattr(expert, "set_adapter"):
            run_name = plan.run

            def activate() -> None:
                expert.set_adapter(run_name)

            activate()  # before the chain is built: it reads the run's system prompt from the expert
        chain = build_chain(spec, expert, retriever=retriever, return_sources=True)
        k = (spec.k or cfg.retrieval.k) if spec.uses_retrieval else None
        lengths = _prompt_lengths(build_prompt_chain(spec, expert, retriever), expert.tokenizer)

        return Arm(
            plan.name,
            chain,
            "local",
            spec.adapter,
            spec.uses_retrieval,
            spec.description or "",
            k,
            lengths,
            plan.run,
            activate,
        )
    except Exception as exc:
        return _not_run(plan, "failed", exc)


def gold_contexts(records: Sequence[QARecord], data: QADataset) -> dict[str, str]:
    """The gold passage per question for the oracle arm: the record's context, else its document."""
    docs = {}
    for doc in data.documents:
        doc_id = (getattr(doc, "metadata", {}) or {}).get("doc_id")
        if doc_id is not None:
            docs[str(doc_id)] = doc.page_content
    out = {}
    for r in records:
        if r.context:
            out[r.id] = r.context
        elif r.doc_id and r.doc_id in docs:
            out[r.id] = docs[r.doc_id]
    return out


def option_logliks(expert: Any, records: Sequence[QARecord], run: ArmRun) -> list | None:
    """Option log-likelihoods under the arm's own prompt and adapter setting (choice questions only)."""
    idx = [i for i, r in enumerate(records) if r.answer_type == "choice" and r.options]
    if not idx or not hasattr(expert, "option_loglikelihoods"):
        return None
    prompts = [run.outputs[i].prompt for i in idx]
    if any(p is None for p in prompts):
        log.warning("Arm %s returns no prompt; choice log-likelihoods skipped.", run.name)
        return None
    from domainllm.data.formatting import answer_text

    # The option strings are scored as the fine-tuned model was trained to answer: "B. text".
    options = [
        [answer_text(dataclasses.replace(records[i], answer=o)) for o in records[i].options or ()]
        for i in idx
    ]
    t0 = time.perf_counter()
    scores = expert.option_loglikelihoods(prompts, options, adapter=run.adapter)
    run.loglik_s = time.perf_counter() - t0
    out: list = [None] * len(records)
    for i, s in zip(idx, scores, strict=True):
        out[i] = list(s)
    return out
