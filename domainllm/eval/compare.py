"""``domainllm compare``: the dentist comparison as a benchmark a skeptical ML engineer accepts.

The same test questions go through every arm (persona prompt, RAG, fine-tuned, fine-tuned + RAG,
optionally the oracle and chat models from other providers) with identical decoding settings and
seeds; each arm is scored identically; every number gets a 95% bootstrap interval, every pair of
arms a paired test; and the verdict says only what those numbers support.

Phases (each timed; their wall times are in the report):

1. **Check** (seconds, before anything expensive): arm names against the chain specs, extra arms'
   ``provider:model`` syntax, the evaluation split non-empty and every question scorable.
2. **Prepare**: reuse ``run_dir``, or a complete run at ``training.output_dir`` whose config
   fingerprint and dataset hashes match, else train; build or reuse the Chroma store. Only what the
   requested arms need is loaded (no training without a fine-tuned arm, no index without retrieval).
3. **Arms**: each arm's chain ``.batch()`` over batches of ``generation.batch_size``; a crashing arm
   is recorded as failed and the others still run. Choice questions are also scored by option
   log-likelihood for local arms.
4. **Score** (:mod:`domainllm.eval.scoring`), **statistics** (:mod:`domainllm.eval.stats`) and
   **report** (:mod:`domainllm.eval.report`).

``results.json`` layout (what the report renders): ``status``, ``error``, ``domain``, ``split``,
``split_source``, ``n_questions``, ``n_total``, ``limit``, ``seed``, ``question_ids``,
``answer_types``, ``seen_counts``, ``arms`` (name -> ``status``, ``kind``, ``adapter``,
``retrieval``, ``error``, ``summary`` from :func:`scoring.summarize_scores`, ``costs``),
``skipped_arms``, ``pairwise``, ``pairwise_by_seen``, ``baselines``, ``examples``, ``phases``,
``verdict``, ``judge``, ``run``, ``store``, ``model``, ``config``, ``versions``, ``git_commit``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from domainllm.config import CompareConfig, DomainConfig, config_fingerprint, config_to_dict
from domainllm.data.records import QARecord, documents_sha256, records_sha256
from domainllm.errors import EvalError
from domainllm.eval.arms import (
    Arm,
    ArmRun,
    arm_inputs,
    check_extra_arm,
    extra_arm,
    parse_provider_model,
    run_arm,
)
from domainllm.eval.metrics import MAIN_METRIC
from domainllm.eval.scoring import (
    EmbeddingScorer,
    add_embedding_similarity,
    check_records,
    compute_baselines,
    judge_verdicts,
    loglik_choice_correct,
    retrieval_recall,
    score_records,
    summarize_scores,
)
from domainllm.eval.stats import pairwise_tests

__all__ = ["assemble_results", "compare", "sample_questions", "score_runs"]

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------------
# The entry point


def compare(
    cfg: DomainConfig, run_dir: str | Path | None = None, output_dir: str | Path | None = None
) -> Path:
    """Run the comparison configured by ``cfg.compare`` and return the report folder.

    ``run_dir`` reuses a finished training run instead of training; ``output_dir`` overrides
    ``compare.output_dir``. Raises :class:`EvalError` for an unknown arm, an empty split or an
    unscorable question before any model is loaded; any later failure is written to
    ``results.json`` (status failed) before it propagates.
    """
    started = time.perf_counter()
    ccfg = cfg.compare
    out = Path(output_dir or ccfg.output_dir).expanduser().resolve()
    timer = _PhaseTimer()

    # -- 1. Checks: cheap, before anything expensive. -----------------------------------------------
    with timer("check: arms, data and questions"):
        specs = _load_specs(cfg)
        extra = _check_extras(ccfg)
        if ccfg.judge:
            parse_provider_model(ccfg.judge, "compare.judge")
        from domainllm.data import load_domain

        data = load_domain(cfg.data, cfg.base_dir)
        where = _split_source(cfg, data)
        all_records = list(data.split(ccfg.split))
        check_records(all_records, where)
        records = sample_questions(all_records, ccfg.limit, ccfg.seed)
        if any(_spec_flag(spec, "retrieval") for spec in specs.values()) and not data.documents:
            msg = (
                f"Arms {[n for n, s in specs.items() if _spec_flag(s, 'retrieval')]} retrieve from the knowledge "
                f"base, but the domain '{cfg.data.name}' has no documents. Set data.docs_dir to a folder of "
                "documents (or put them in <data.path>/docs), or drop those arms from compare.arms."
            )
            raise EvalError(msg)

    from domainllm.eval.report import clear_previous, verdict, write_artifacts, write_failure, write_summary

    results = _header(cfg, records, all_records, where, run_dir)
    clear_previous(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(
        json.dumps({**results, "status": "running"}, default=str), encoding="utf-8"
    )
    try:
        runs, expert, run_info, store_info = _run_all(cfg, specs, extra, data, records, run_dir, timer)
        results["run"], results["store"] = run_info, store_info
        if expert is not None:
            results["model"] = _model_info(expert, cfg)
            results["device"] = _hardware(str(getattr(expert, "device", "cpu")))
        with timer("scoring and statistics"):
            scores = score_runs(
                records,
                runs,
                ccfg=ccfg,
                k=cfg.retrieval.k,
                embedder=EmbeddingScorer(cfg.retrieval.embedding_model, device=_embed_device(expert)),
                logliks={name: r.logliks for name, r in runs.items() if r.logliks is not None},
            )
            judge_info = _run_judge(cfg, records, runs, scores) if ccfg.judge else None
            results.update(
                assemble_results(records, list(runs.values()), scores, train=data.train, ccfg=ccfg)
            )
            results["judge"] = judge_info
            results["skipped_arms"] = {name: r.error for name, r in runs.items() if r.status == "skipped"}
            _add_training_costs(results, run_info)
        with timer("report"):
            results["verdict"] = verdict(results)
            results["status"] = "complete"
            write_artifacts(results, _prediction_rows(records, list(runs.values()), scores), out)
        # report.md and results.json (the success marker) last, with every phase's time known.
        results["phases"] = timer.phases
        results["wall_s"] = round(time.perf_counter() - started, 2)
        write_summary(results, out)
    except BaseException as exc:
        results["error"] = f"{exc.__class__.__name__}: {exc}"
        results["phases"] = timer.phases
        write_failure(results, out)
        raise
    log.info("Comparison written to %s (%.0f s)", out, time.perf_counter() - started)
    return out


# --------------------------------------------------------------------------------------------------
# Phases


class _PhaseTimer:
    """Times each phase and reports it as it ends (a line under the progress bars, on stderr)."""

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        log.info("phase: %s", name)
        ok = False
        try:
            yield
            ok = True
        finally:
            seconds = time.perf_counter() - t0
            self.phases[name] = round(self.phases.get(name, 0.0) + seconds, 2)
            from tqdm.auto import tqdm

            tqdm.write(f"compare | {name}: {seconds:.1f} s{'' if ok else ' (failed)'}", file=sys.stderr)


def _load_specs(cfg: DomainConfig) -> dict[str, Any]:
    """The chain spec of every requested arm; an unknown name fails here, listing the available arms."""
    from domainllm.chains import load_chain_spec

    names = list(dict.fromkeys([*cfg.compare.arms, *(["oracle"] if cfg.compare.oracle else [])]))
    chains_dir = _chains_dir(cfg)
    return {name: load_chain_spec(name, chains_dir=chains_dir, domain=cfg.data.name) for name in names}


def _chains_dir(cfg: DomainConfig) -> Path | None:
    if not cfg.compare.chains_dir:
        return None
    from domainllm.resources import resolve_path

    return resolve_path(cfg.compare.chains_dir, cfg.base_dir, "compare.chains_dir")


def _check_extras(ccfg: CompareConfig) -> dict[str, str | None]:
    """provider:model -> None (runs) or the reason it is skipped; syntax errors raise at once."""
    reasons = {}
    for spec in ccfg.extra_arms:
        reason = check_extra_arm(spec)
        if reason:
            log.warning("Extra arm '%s' skipped: %s", spec, reason)
        reasons[spec] = reason
    return reasons


def _split_source(cfg: DomainConfig, data: Any) -> str:
    """Where the evaluation split comes from, in words a user can find on disk."""
    explicit = getattr(cfg.data, f"{cfg.compare.split}_file", None)
    if explicit:
        return f"the {cfg.compare.split} file '{explicit}'"
    source = getattr(data, "source", "") or cfg.data.path
    if cfg.data.format == "folder":
        return f"the {cfg.compare.split} split '{Path(str(source)) / 'qa' / (cfg.compare.split + '.jsonl')}'"
    return f"the {cfg.compare.split} split of '{source}'"


def sample_questions(records: Sequence[QARecord], limit: int, seed: int) -> list[QARecord]:
    """A seeded random subset of ``limit`` questions (0 = all), kept in file order.

    Never the first N: benchmark files are often sorted (PubMedQA's test file is ordered by label),
    and the first N would be a biased sample.
    """
    if not limit or limit >= len(records):
        return list(records)
    keep = sorted(random.Random(seed).sample(range(len(records)), limit))
    return [records[i] for i in keep]


def _run_all(
    cfg: DomainConfig,
    specs: dict[str, Any],
    extra: dict[str, str | None],
    data: Any,
    records: list[QARecord],
    run_dir: str | Path | None,
    timer: _PhaseTimer,
) -> tuple[dict[str, ArmRun], Any, dict, dict | None]:
    """Prepare what the arms need (run, store, model), then run every arm."""
    needs_adapter = any(_spec_flag(spec, "adapter") for spec in specs.values())
    needs_store = any(_spec_flag(spec, "retrieval") for spec in specs.values())
    run_path, run_info = None, {"note": "no fine-tuned arm requested: nothing trained"}
    if needs_adapter:
        label = "prepare: reuse run" if run_dir else "prepare: train or reuse run"
        with timer(label):
            run_path, run_info = _prepare_run(cfg, data, run_dir)
    store, store_info = None, None
    if needs_store:
        with timer("prepare: knowledge base"):
            store, store_info = _prepare_store(cfg, data)
    expert = None
    if specs:
        with timer("load model"):
            from domainllm.serve import load_expert

            expert = load_expert(run_dir=run_path, config=None if run_path else cfg)
    arms = _build_arms(cfg, specs, extra, expert, store)
    contexts = _gold_contexts(records, data) if "oracle" in specs else {}
    inputs = [arm_inputs(r, contexts.get(r.id)) for r in records]
    count_tokens = expert.count_tokens if expert is not None else None
    batch_size = cfg.generation.batch_size
    runs: dict[str, ArmRun] = {}
    for arm in arms:
        if isinstance(arm, ArmRun):  # skipped, or failed while being built
            runs[arm.name] = arm
            continue
        with timer(f"arm: {arm.name}"):
            run = run_arm(arm, inputs, batch_size, count_tokens=count_tokens, seed=cfg.compare.seed)
            if run.ok and arm.kind == "local" and cfg.compare.loglik_choices:
                try:
                    run.logliks = _option_logliks(expert, records, run, arm)
                except Exception as exc:  # the generated answers still count; only this score is lost
                    run.loglik_error = f"{exc.__class__.__name__}: {exc}"
                    log.warning("Choice log-likelihoods of arm %s failed: %s", arm.name, run.loglik_error)
        runs[arm.name] = run
    return runs, expert, run_info, store_info


def _spec_flag(spec: Any, flag: str) -> bool:
    """Whether an arm's chain uses the adapter (``adapter``) or the knowledge base (``retrieval``)."""
    return bool(spec.adapter if flag == "adapter" else spec.uses_retrieval)


def _prompt_lengths(prompt_chain: Any, tokenizer: Any) -> Any:
    """Token counts of the rendered prompts (retrieval included, no generation) for length bucketing."""

    def lengths(inputs: Any) -> list[int]:
        rendered = prompt_chain.batch(list(inputs))
        return [len(tokenizer(item["prompt"], add_special_tokens=False)["input_ids"]) for item in rendered]

    return lengths


def _build_arms(cfg: DomainConfig, specs: dict, extra: dict, expert: Any, store: Any) -> list[Arm | ArmRun]:
    """The arms in config order; an arm that cannot be built becomes a failed (or skipped) ArmRun."""
    from domainllm.chains import build_chain, build_prompt_chain

    arms: list[Arm | ArmRun] = []
    retriever = None
    if store is not None:
        from domainllm.rag import get_retriever

        retriever = get_retriever(store, cfg.retrieval)
    for name, spec in specs.items():
        adapter, uses_retrieval = _spec_flag(spec, "adapter"), _spec_flag(spec, "retrieval")
        try:
            chain = build_chain(spec, expert, retriever=retriever, return_sources=True)
        except Exception as exc:
            arms.append(_not_run(name, "local", "failed", exc, adapter=adapter, retrieval=uses_retrieval))
            continue
        k = (spec.k or cfg.retrieval.k) if uses_retrieval else None
        lengths = _prompt_lengths(build_prompt_chain(spec, expert, retriever), expert.tokenizer)
        arms.append(Arm(name, chain, "local", adapter, uses_retrieval, spec.description or "", k, lengths))
    prompt_spec = specs.get("prompt_only")
    if prompt_spec is None and any(reason is None for reason in extra.values()):
        from domainllm.chains import load_chain_spec

        prompt_spec = load_chain_spec("prompt_only", chains_dir=_chains_dir(cfg), domain=cfg.data.name)
    for spec_str, reason in extra.items():
        if reason is not None:
            arms.append(_not_run(spec_str, "extra", "skipped", reason))
            continue
        system, template = _spec_prompt(prompt_spec, cfg)
        try:
            arms.append(extra_arm(spec_str, system, template, cfg.generation.max_new_tokens))
        except Exception as exc:
            arms.append(_not_run(spec_str, "extra", "failed", exc))
    return arms


def _not_run(name: str, kind: str, status: str, error: Any, **flags: bool) -> ArmRun:
    text = error if isinstance(error, str) else f"{error.__class__.__name__}: {error}"
    if status == "failed":
        log.error("Arm '%s' could not be built: %s", name, text)
    return ArmRun(name=name, kind=kind, status=status, error=text, **flags)  # type: ignore[arg-type]


def _spec_prompt(spec: Any, cfg: DomainConfig) -> tuple[str | None, str | None]:
    """The system prompt and user template of a chain spec (the extra arms reuse prompt_only's)."""
    from domainllm.chains import FROM_RUN

    system = cfg.data.system_prompt if spec.system_prompt == FROM_RUN else spec.system_prompt
    return system, spec.user_template


def _gold_contexts(records: Sequence[QARecord], data: Any) -> dict[str, str]:
    """The gold passage per question for the oracle arm: the record's context, else its document."""
    docs = {}
    for doc in getattr(data, "documents", []) or []:
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


def _option_logliks(expert: Any, records: list[QARecord], run: ArmRun, arm: Arm) -> list | None:
    """Option log-likelihoods under the arm's own prompt and adapter setting (choice questions only)."""
    idx = [i for i, r in enumerate(records) if r.answer_type == "choice" and r.options]
    if not idx or not hasattr(expert, "option_loglikelihoods"):
        return None
    prompts = [run.outputs[i].prompt for i in idx]
    if any(p is None for p in prompts):
        log.warning("Arm %s returns no prompt; choice log-likelihoods skipped.", arm.name)
        return None
    from domainllm.data.formatting import answer_text

    # The option strings are scored as the fine-tuned model was trained to answer: "B. text".
    options = [
        [answer_text(dataclasses.replace(records[i], answer=o)) for o in records[i].options] for i in idx
    ]
    t0 = time.perf_counter()
    scores = expert.option_loglikelihoods(prompts, options, adapter=arm.adapter)
    run.loglik_s = time.perf_counter() - t0
    out: list = [None] * len(records)
    for i, s in zip(idx, scores, strict=True):
        out[i] = list(s)
    return out


# --------------------------------------------------------------------------------------------------
# Training run and knowledge base


def _stale_reason(manifest: dict, cfg: DomainConfig, data: Any) -> str | None:
    """Why a finished run does not match the current config and data, or None if it does."""
    if manifest.get("fingerprint") != config_fingerprint(cfg):
        return f"its config fingerprint {manifest.get('fingerprint')} differs from the current {config_fingerprint(cfg)}"
    recorded = manifest.get("data") or {}
    for split in ("train", "val"):
        current = records_sha256(data.split(split))
        if (recorded.get(split) or {}).get("sha256") != current:
            return f"its {split} split differs from the current data (sha256 mismatch)"
    if cfg.training.train_on == "qa+docs" and recorded.get("documents_sha256") != documents_sha256(
        data.documents
    ):
        return "its documents differ from the current documents"
    return None


def _prepare_run(cfg: DomainConfig, data: Any, run_dir: str | Path | None) -> tuple[Path, dict]:
    """The run the fine-tuned arms use: the given one, a matching previous one, or a fresh one."""
    from domainllm.rundir import RunDir

    if run_dir is not None:
        run = RunDir.open(Path(run_dir).expanduser().resolve())  # the report names it from anywhere
        manifest = run.read_manifest()
        stale = _stale_reason(manifest, cfg, data)
        note = f"reusing run {run.path} (given with --run)"
        if stale:
            note += f"; note: {stale}"
            log.warning("The run given with --run was trained differently: %s.", stale)
        log.info("%s", note)
        return run.path, {"run_dir": str(run.path), "reused": True, "note": note, "manifest": manifest}
    candidate = RunDir(Path(cfg.training.output_dir).expanduser().resolve())
    overwrite = False
    if candidate.path.exists() and candidate.status is not None:
        manifest = candidate.read_manifest()
        stale = _stale_reason(manifest, cfg, data) if candidate.is_complete else f"it is {candidate.status}"
        if stale is None and (candidate.adapter_dir / "adapter_config.json").is_file():
            note = f"reusing run {candidate.path} (config fingerprint and dataset hashes match)"
            log.warning("%s", note[0].upper() + note[1:])
            return candidate.path, {
                "run_dir": str(candidate.path),
                "reused": True,
                "note": note,
                "manifest": manifest,
            }
        log.warning("Not reusing %s: %s. Training again (it is replaced).", candidate.path, stale)
        overwrite = True
    from domainllm.training import train

    path = Path(train(cfg, overwrite=overwrite))
    manifest = RunDir(path).read_manifest()
    note = f"trained run {path} ({manifest.get('wall_time_s', '?')} s)"
    return path, {"run_dir": str(path), "reused": False, "note": note, "manifest": manifest}


def _prepare_store(cfg: DomainConfig, data: Any) -> tuple[Any, dict]:
    """Bring the Chroma store up to date with the domain's documents (cheap when unchanged) and open it."""
    from domainllm.rag import default_store_dir, index_documents, open_store

    store_dir = default_store_dir(cfg)
    stats = index_documents(data.documents, store_dir, cfg.retrieval, source=getattr(data, "source", ""))
    log.info("%s", stats.summary())
    info = {"store_dir": str(store_dir), "summary": stats.summary(), "stats": dataclasses.asdict(stats)}
    return open_store(store_dir, cfg.retrieval), info


# --------------------------------------------------------------------------------------------------
# Judge


def _run_judge(cfg: DomainConfig, records, runs: dict[str, ArmRun], scores: dict) -> dict:
    """``judge_correct`` for every ok arm through ``compare.judge``; skipped (with the reason) if unavailable."""
    ccfg = cfg.compare
    reason = check_extra_arm(ccfg.judge, "compare.judge")
    if reason:
        log.warning("Judge '%s' skipped: %s", ccfg.judge, reason)
        return {"model": ccfg.judge, "status": f"skipped: {reason}"}
    from langchain.chat_models import init_chat_model

    from domainllm.chains import load_judge_spec

    spec = load_judge_spec(_chains_dir(cfg))
    provider, model_name = parse_provider_model(ccfg.judge, "compare.judge")
    judge = init_chat_model(model_name, model_provider=provider, temperature=0)

    def build(record: QARecord, answer: str) -> list[tuple[str, str]]:
        reference = " / ".join([record.answer, *record.aliases])
        user = spec.user_template.format(question=record.question, reference=reference, candidate=answer)
        return [("system", spec.system_prompt), ("human", user)] if spec.system_prompt else [("human", user)]

    def invoke(batch: list) -> list[str]:
        return [str(getattr(m, "content", m)) for m in judge.batch(batch)]

    for name, run in runs.items():
        if run.ok:
            verdicts = judge_verdicts(invoke, build, records, run.answers, labels=spec.labels)
            for s, v in zip(scores[name], verdicts, strict=True):
                s["judge_correct"] = v
    return {"model": ccfg.judge, "status": "ok", "prompt": spec.path}


# --------------------------------------------------------------------------------------------------
# Scoring and assembly (pure: hand-made ArmRuns in, results out; unit-tested without models)


def score_runs(
    records: Sequence[QARecord],
    runs: dict[str, ArmRun] | Sequence[ArmRun],
    ccfg: CompareConfig,
    k: int | None = None,
    embedder: EmbeddingScorer | None = None,
    logliks: dict[str, Sequence] | None = None,
) -> dict[str, list[dict[str, float]]]:
    """Per-question scores of every successful arm: metrics, embedding similarity, loglik, recall@k."""
    runs = runs if isinstance(runs, dict) else {r.name: r for r in runs}
    scores: dict[str, list[dict[str, float]]] = {}
    for name, run in runs.items():
        if not run.ok:
            continue
        answers = run.answers
        per_q = score_records(records, answers, ccfg.number_rel_tol)
        if embedder is not None:
            add_embedding_similarity(records, answers, per_q, embedder)
        if logliks and logliks.get(name) is not None:
            for s, v in zip(per_q, loglik_choice_correct(records, logliks[name]), strict=True):
                if v == v:  # not nan
                    s["choice_loglik_acc"] = v
        if run.retrieval and (run.k or k):
            recall = retrieval_recall(records, [o.doc_ids for o in run.outputs], run.k or k)
            for s, v in zip(per_q, recall, strict=True):
                if v == v:
                    s["recall_at_k"] = v
        scores[name] = per_q
    return scores


def _percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo, hi = int(pos), min(int(pos) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _costs(run: ArmRun) -> dict[str, Any]:
    latencies = [o.latency_s for o in run.outputs]
    gen = [o.generated_tokens for o in run.outputs if o.generated_tokens is not None]
    prompt = [o.prompt_tokens for o in run.outputs if o.prompt_tokens is not None]
    costs: dict[str, Any] = {
        "wall_s": round(run.wall_s, 2),
        "generation_s": round(run.generation_s, 2),
        "latency_p50_s": _percentile(latencies, 0.5),
        "latency_p95_s": _percentile(latencies, 0.95),
        "generated_tokens": sum(gen) if gen else None,
        "generated_tokens_per_s": sum(gen) / run.generation_s if gen and run.generation_s > 0 else None,
        "mean_prompt_tokens": statistics.fmean(prompt) if prompt else None,
        "mean_generated_tokens": statistics.fmean(gen) if gen else None,
        "peak_rss_mb": run.peak_rss_mb,
        "cuda_peak_mb": run.cuda_peak_mb,
    }
    if run.loglik_s is not None:
        costs["loglik_s"] = round(run.loglik_s, 2)
    return costs


def _examples(
    records: Sequence[QARecord], runs: Sequence[ArmRun], scores: dict, n: int, seed: int
) -> list[dict]:
    """``n`` questions picked with the seed, round-robin over answer types so each type shows up."""
    if n <= 0 or not records:
        return []
    rng = random.Random(seed)
    by_type: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        by_type.setdefault(r.answer_type, []).append(i)
    for idx in by_type.values():
        rng.shuffle(idx)
    picked: list[int] = []
    while len(picked) < min(n, len(records)):
        for idx in by_type.values():
            if idx and len(picked) < n:
                picked.append(idx.pop())
    out = []
    for i in sorted(picked):
        r = records[i]
        out.append(
            {
                "id": r.id,
                "question": r.question + ("" if not r.options else " [" + " / ".join(r.options) + "]"),
                "answer_type": r.answer_type,
                "reference": r.answer,
                "seen_in_train": r.seen_in_train,
                "answers": {run.name: run.outputs[i].answer for run in runs if run.ok},
                "correct": {run.name: scores[run.name][i][MAIN_METRIC] for run in runs if run.ok},
            }
        )
    return out


def assemble_results(
    records: Sequence[QARecord],
    runs: Sequence[ArmRun],
    scores: dict[str, list[dict[str, float]]],
    train: Sequence[QARecord] = (),
    ccfg: CompareConfig | None = None,
) -> dict[str, Any]:
    """Summaries with CIs, paired tests (overall and per seen/unseen), baselines, costs and examples."""
    ccfg = ccfg or CompareConfig()
    nb, seed = ccfg.n_bootstrap, ccfg.seed
    arms: dict[str, Any] = {}
    for run in runs:
        entry: dict[str, Any] = {
            "status": run.status,
            "kind": run.kind,
            "adapter": run.adapter,
            "retrieval": run.retrieval,
            "description": run.description,
            "error": run.error,
            "traceback": run.traceback,
            "loglik_error": run.loglik_error,
            "costs": _costs(run) if run.ok else {"wall_s": round(run.wall_s, 2)},
        }
        if run.ok:
            entry["summary"] = summarize_scores(records, scores[run.name], run.answers, nb, seed)
        arms[run.name] = entry
    ok = [r for r in runs if r.ok]
    correct = {r.name: [s[MAIN_METRIC] for s in scores[r.name]] for r in ok}
    pairwise = pairwise_tests(correct, seed=seed) if len(correct) > 1 else []
    by_seen = {}
    for subset, flag in (("seen", True), ("unseen", False)):
        idx = [i for i, r in enumerate(records) if r.seen_in_train is flag]
        if idx and len(correct) > 1:
            by_seen[subset] = pairwise_tests({k: [v[i] for i in idx] for k, v in correct.items()}, seed=seed)
    return {
        "arms": arms,
        "pairwise": pairwise,
        "pairwise_by_seen": by_seen,
        "baselines": compute_baselines(train, records, ccfg.number_rel_tol, nb, seed),
        "examples": _examples(records, runs, scores, ccfg.n_examples, seed),
    }


def _prediction_rows(records: Sequence[QARecord], runs: Sequence[ArmRun], scores: dict) -> list[dict]:
    rows = []
    for run in runs:
        if not run.ok:
            continue
        for i, (record, output) in enumerate(zip(records, run.outputs, strict=True)):
            rows.append(
                {
                    "id": record.id,
                    "arm": run.name,
                    "question": record.question,
                    "answer_type": record.answer_type,
                    "reference": record.answer,
                    "aliases": list(record.aliases),
                    "options": list(record.options) if record.options else None,
                    "seen_in_train": record.seen_in_train,
                    "answer": output.answer,
                    "scores": scores[run.name][i],
                    "gold_doc_id": record.doc_id,
                    "retrieved_chunk_ids": output.chunk_ids,
                    "retrieved_doc_ids": output.doc_ids,
                    "prompt_tokens": output.prompt_tokens,
                    "generated_tokens": output.generated_tokens,
                    "latency_s": round(output.latency_s, 4),
                    "prompt": output.prompt,
                }
            )
    return rows


# --------------------------------------------------------------------------------------------------
# Header facts


def _header(cfg: DomainConfig, records, all_records, where: str, run_dir) -> dict[str, Any]:
    from domainllm.versions import git_commit, library_versions

    seen = Counter("seen" if r.seen_in_train else "unseen" for r in records if r.seen_in_train is not None)
    if "compare" in sys.argv[1:4]:  # the CLI (possibly after --debug / -v)
        command = "domainllm " + " ".join(sys.argv[1:])
    else:
        command = "domainllm.compare(cfg" + (f", run_dir={str(run_dir)!r}" if run_dir else "") + ")"
    return {
        "status": "running",
        "error": None,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": command,
        "domain": cfg.data.name,
        "split": cfg.compare.split,
        "split_source": where,
        "n_questions": len(records),
        "n_total": len(all_records),
        "limit": cfg.compare.limit,
        "seed": cfg.compare.seed,
        "n_bootstrap": cfg.compare.n_bootstrap,
        "main_metric": MAIN_METRIC,
        "question_ids": [r.id for r in records],
        "answer_types": dict(Counter(r.answer_type for r in records)),
        "seen_counts": {k: seen[k] for k in ("seen", "unseen") if seen[k]},
        "arms": {},
        "skipped_arms": {},
        "model": {"name": cfg.model.name_or_path},
        "config": config_to_dict(cfg),
        "config_fingerprint": config_fingerprint(cfg),
        "versions": library_versions(),
        "git_commit": git_commit(Path(__file__).resolve().parent),
    }


def _model_info(expert: Any, cfg: DomainConfig) -> dict[str, Any]:
    name = cfg.model.name_or_path
    if name == "default":
        from domainllm.defaults import DEFAULT_MODEL_NAME

        name = DEFAULT_MODEL_NAME
    info = {"name": name}
    for attr in ("device", "dtype", "quant_mode"):
        value = getattr(expert, attr, None)
        if value is not None:
            info[attr] = str(value)
    return info


def _hardware(device: str) -> str:
    """The machine in words, for the report header (timings mean little without it)."""
    import os
    import platform

    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return f"cuda ({torch.cuda.get_device_name(0)})"
    cpu = platform.processor() or platform.machine()
    return f"{device} ({cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads)"


def _embed_device(expert: Any) -> str:
    device = str(getattr(expert, "device", "cpu") or "cpu")
    return "cuda" if device.startswith("cuda") else "cpu"


def _add_training_costs(results: dict, run_info: dict) -> None:
    manifest = (run_info or {}).get("manifest") or {}
    params = manifest.get("parameters") or {}
    for arm in results["arms"].values():
        if arm.get("adapter") and manifest:
            arm["costs"]["training_wall_s"] = manifest.get("wall_time_s")
            arm["costs"]["trainable_params"] = params.get("trainable")
            arm["costs"]["total_params"] = params.get("total")
    if run_info:
        run_info.pop("manifest", None)
        run_info["training"] = {
            k: manifest.get(k)
            for k in (
                "wall_time_s",
                "train_runtime_s",
                "tokens_per_second",
                "global_step",
                "eval_loss_before",
                "eval_loss_after",
            )
            if k in manifest
        }
