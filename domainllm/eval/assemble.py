"""From arm predictions to results: per-question scores, summaries with intervals, paired tests, examples.

Pure: hand-made :class:`ArmRun` records and test questions in, a filled :class:`Results` out; no
model is loaded here (the embedding scorer is passed in), so every number of a report can be
recomputed from the predictions on disk and is unit-tested without a model.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence

from domainllm.config import CompareConfig
from domainllm.data.records import QARecord
from domainllm.eval.baselines import compute_baselines
from domainllm.eval.metrics import MAIN_METRIC
from domainllm.eval.predictions import ArmRun
from domainllm.eval.results import ArmResult, Baselines, Costs, Example, PairTest, Results, Summary
from domainllm.eval.scoring import (
    EmbeddingScorer,
    add_embedding_similarity,
    loglik_choice_correct,
    retrieval_recall,
    score_records,
    summarize_scores,
)
from domainllm.eval.stats import pairwise_tests

__all__ = ["assemble_results", "planned_pairs", "prediction_rows", "score_runs", "spec_name"]

Scores = dict[str, list[dict[str, float]]]


def score_runs(
    records: Sequence[QARecord],
    runs: dict[str, ArmRun] | Sequence[ArmRun],
    ccfg: CompareConfig,
    k: int | None = None,
    embedder: EmbeddingScorer | None = None,
) -> Scores:
    """Per-question scores of every successful arm: metrics, embedding similarity, loglik, recall@k."""
    runs = runs if isinstance(runs, dict) else {r.name: r for r in runs}
    scores: Scores = {}
    for name, run in runs.items():
        if not run.ok:
            continue
        answers = run.answers
        per_q = score_records(records, answers, ccfg.number_rel_tol)
        if embedder is not None:
            add_embedding_similarity(records, answers, per_q, embedder)
        if run.logliks is not None:
            for s, v in zip(per_q, loglik_choice_correct(records, run.logliks), strict=True):
                if v == v:  # not nan
                    s["choice_loglik_acc"] = v
        if run.retrieval and (run.k or k):
            recall = retrieval_recall(records, [o.doc_ids for o in run.outputs], run.k or k)  # type: ignore[arg-type]
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


def arm_costs(run: ArmRun) -> Costs:
    """Wall time, latency percentiles, token counts and memory of one arm."""
    if not run.ok:
        return Costs(wall_s=round(run.wall_s, 2))
    latencies = [o.latency_s for o in run.outputs]
    gen = [o.generated_tokens for o in run.outputs if o.generated_tokens is not None]
    prompt = [o.prompt_tokens for o in run.outputs if o.prompt_tokens is not None]
    return Costs(
        wall_s=round(run.wall_s, 2),
        generation_s=round(run.generation_s, 2),
        latency_p50_s=_percentile(latencies, 0.5),
        latency_p95_s=_percentile(latencies, 0.95),
        generated_tokens=sum(gen) if gen else None,
        generated_tokens_per_s=sum(gen) / run.generation_s if gen and run.generation_s > 0 else None,
        mean_prompt_tokens=statistics.fmean(prompt) if prompt else None,
        mean_generated_tokens=statistics.fmean(gen) if gen else None,
        peak_rss_mb=run.peak_rss_mb,
        cuda_peak_mb=run.cuda_peak_mb,
        loglik_s=round(run.loglik_s, 2) if run.loglik_s is not None else None,
    )


def _examples(
    records: Sequence[QARecord], runs: Sequence[ArmRun], scores: Scores, n: int, seed: int
) -> list[Example]:
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
    scored = [run for run in runs if run.ok and run.name in scores]
    return [
        Example(
            id=records[i].id,
            question=records[i].question
            + ("" if not records[i].options else " [" + " / ".join(records[i].options) + "]"),
            answer_type=records[i].answer_type,
            reference=records[i].answer,
            seen_in_train=records[i].seen_in_train,
            answers={run.name: run.outputs[i].answer for run in scored},
            correct={run.name: scores[run.name][i][MAIN_METRIC] for run in scored},
        )
        for i in sorted(picked)
    ]


def spec_name(run: ArmRun) -> str:
    """The chain spec an arm runs: ``finetuned`` for ``finetuned@raft``."""
    suffix = f"@{run.run}"
    return run.name[: -len(suffix)] if run.run and run.name.endswith(suffix) else run.name


def planned_pairs(runs: Sequence[ArmRun]) -> list[tuple[str, str]] | None:
    """The comparisons tested when several fine-tuned runs (recipes) share a report; None for one run.

    With one run every pair of arms is tested (six for the four default arms). With several, all
    pairs would be many (45 for ten arms) and Holm over all of them would hide every real gain, so
    the family is the questions the recipes are for, fixed before any score is seen: the base arms
    against each other; each adapter arm against its base counterpart (``finetuned@R`` vs
    ``prompt_only``, ``finetuned_rag@R`` vs ``rag``, by whether it retrieves); retrieval on top of
    each run (``finetuned_rag@R`` vs ``finetuned@R``); and each run's arms against the same arm of
    the reference run, the first one (e.g. ``finetuned@raft`` vs ``finetuned@sft``).
    """
    adapter = [r for r in runs if r.adapter and r.run]
    run_names = list(dict.fromkeys(r.run for r in adapter))
    if len(run_names) < 2:
        return None
    base = [r for r in runs if not r.adapter]
    by_spec = {spec_name(r): r.name for r in base}
    pairs = [(a.name, b.name) for i, a in enumerate(base) for b in base[i + 1 :]]
    reference = {spec_name(r): r.name for r in adapter if r.run == run_names[0]}
    for arm in adapter:
        spec = spec_name(arm)
        counterpart = by_spec.get("rag" if arm.retrieval else "prompt_only")
        if counterpart:
            pairs.append((arm.name, counterpart))
        if arm.retrieval:
            plain = next(
                (r.name for r in adapter if r.run == arm.run and not r.retrieval and r.name != arm.name), None
            )
            if plain:
                pairs.append((arm.name, plain))
        ref = reference.get(spec)
        if ref and ref != arm.name:
            pairs.append((arm.name, ref))
    return list(dict.fromkeys(pairs))


def _pair_tests(
    correct: dict[str, list[float]],
    idx: Sequence[int] | None,
    seed: int,
    pairs: list[tuple[str, str]] | None = None,
) -> list[PairTest]:
    if len(correct) < 2:
        return []
    if idx is not None:
        correct = {k: [v[i] for i in idx] for k, v in correct.items()}
    if pairs is not None:
        pairs = [p for p in pairs if p[0] in correct and p[1] in correct]
    return [PairTest(**row) for row in pairwise_tests(correct, seed=seed, pairs=pairs)]


def assemble_results(
    results: Results,
    records: Sequence[QARecord],
    runs: Sequence[ArmRun],
    scores: Scores,
    train: Sequence[QARecord] = (),
    ccfg: CompareConfig | None = None,
) -> Results:
    """Fill ``results`` with each arm's summary and costs, paired tests (overall and per seen/unseen),
    trivial baselines and examples; returns it."""
    ccfg = ccfg or CompareConfig()
    nb, seed = ccfg.n_bootstrap, ccfg.seed
    for run in runs:
        arm = ArmResult(
            status=run.status,
            kind=run.kind,
            adapter=run.adapter,
            retrieval=run.retrieval,
            description=run.description,
            run=run.run,
            error=run.error,
            traceback=run.traceback,
            loglik_error=run.loglik_error,
            costs=arm_costs(run),
            generation_mode=run.generation_mode,
            resumed=run.name in results.resumed_arms,
        )
        if run.ok and run.name in scores:
            arm.summary = Summary.from_scores(
                summarize_scores(records, scores[run.name], run.answers, nb, seed)
            )
        results.arms[run.name] = arm
    correct = {r.name: [s[MAIN_METRIC] for s in scores[r.name]] for r in runs if r.ok and r.name in scores}
    pairs = planned_pairs(runs)
    results.pairwise = _pair_tests(correct, None, seed, pairs)
    results.pairwise_by_seen = {}
    for subset, flag in (("seen", True), ("unseen", False)):
        idx = [i for i, r in enumerate(records) if r.seen_in_train is flag]
        if idx and len(correct) > 1:
            results.pairwise_by_seen[subset] = _pair_tests(correct, idx, seed, pairs)
    results.baselines = Baselines.from_scores(
        compute_baselines(train, records, ccfg.number_rel_tol, nb, seed)
    )
    results.examples = _examples(records, runs, scores, ccfg.n_examples, seed)
    results.skipped_arms = {r.name: r.error or "" for r in runs if r.status == "skipped"}
    return results


def prediction_rows(records: Sequence[QARecord], runs: Sequence[ArmRun], scores: Scores) -> list[dict]:
    """One row per question per arm that answered (predictions.jsonl); scores empty where not scored."""
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
                    "scores": scores[run.name][i] if run.name in scores else {},
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
