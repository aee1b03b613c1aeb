"""After the arms: scoring, statistics, judge, verdict and the report, each step contained.

A failure here never costs the arms' work: every answer is on disk before scoring starts
(``arms/`` and a first ``predictions.jsonl``), each later step runs on its own, and whatever could be
computed is written. A step that failed is named in ``results.errors``, the status is ``failed``, and
:class:`EvalError` is raised after the files are written (the CLI exits non-zero).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from domainllm.benchmark.phases import PhaseTimer
from domainllm.benchmark.prepare import RunInfo
from domainllm.config import DomainConfig
from domainllm.data.records import QADataset, QARecord
from domainllm.errors import EvalError
from domainllm.eval.assemble import assemble_results, prediction_rows, score_runs
from domainllm.eval.predictions import ArmRun
from domainllm.eval.results import ArmResult, Results
from domainllm.fsio import atomic_write_json, atomic_write_text

__all__ = ["finish", "write_stopped"]

log = logging.getLogger(__name__)


def _step(results: Results, name: str, fn: Callable[[], Any]) -> Any:
    """Run one finishing step; a failure is recorded (and logged), not raised."""
    try:
        return fn()
    except Exception as exc:
        message = f"{name}: {exc.__class__.__name__}: {exc}"
        log.error("Step '%s' failed: %s. The other results are still written.", name, message)
        results.errors.append(message)
        return None


def _run_train_records(path: Path, cfg: DomainConfig, data: QADataset) -> Sequence[QARecord]:
    """The training questions a run was trained on: the comparison's own, or the run's recorded data.

    A DPO run has seen its starting run's questions (``training.from_run``, none from the base) plus
    its preference prompts (source ``preference``), so leakage and coverage look at both."""
    from domainllm.config import config_to_dict
    from domainllm.rundir import RunDir

    run_cfg = RunDir(path).load_config()
    if run_cfg.training.method == "dpo":
        return _dpo_train_records(run_cfg, cfg, data)
    if config_to_dict(run_cfg)["data"] == config_to_dict(cfg)["data"]:
        return data.train
    from domainllm.data import load_domain

    return load_domain(run_cfg.data, run_cfg.base_dir).train


def _dpo_train_records(run_cfg: DomainConfig, cfg: DomainConfig, data: QADataset) -> list[QARecord]:
    from domainllm.data.preferences import load_preferences

    start = run_cfg.training.from_run
    records = list(_run_train_records(Path(start), cfg, data)) if start else []
    if run_cfg.data.preferences:
        for p in load_preferences(run_cfg.data.preferences, run_cfg.base_dir).train:
            answer = p.chosen if isinstance(p.chosen, str) else p.chosen[-1]["content"]
            records.append(
                QARecord(id=p.id, question=p.question, answer=answer, meta={"source": "preference"})
            )
    return records


def _check_run_data(
    results: Results,
    name: str,
    info: RunInfo,
    cfg: DomainConfig,
    data: QADataset,
    records: Sequence[QARecord],
) -> None:
    """A run's training set against the evaluated questions: leakage, facts covered, rows by source."""
    from collections import Counter

    from domainllm.data import leakage_report
    from domainllm.eval.coverage import fact_coverage

    train = _run_train_records(info.path, cfg, data)
    results.leakage[name] = leakage_report(train, {cfg.compare.split: records}).to_dict()
    results.coverage[name] = fact_coverage(train, records)
    sources = Counter(str(r.meta.get("source") or "original") for r in train)
    if name in results.runs:
        results.runs[name]["train_rows"] = {"n": len(train), "by_source": dict(sorted(sources.items()))}


def _model_info(expert: Any, cfg: DomainConfig, results: Results) -> None:
    name = cfg.model.name_or_path
    if name == "default":
        from domainllm.defaults import DEFAULT_MODEL_NAME

        name = DEFAULT_MODEL_NAME
    if expert is None:
        results.model = {"name": name, **{k: v for k, v in results.model.items() if k != "name"}}
        return
    results.model = {"name": name}
    for attr in ("device", "dtype", "quant_mode"):
        value = getattr(expert, attr, None)
        if value is not None:
            results.model[attr] = str(value)
    results.device = _hardware(str(getattr(expert, "device", "cpu")))


def _hardware(device: str) -> str:
    """The machine in words, for the report header (timings mean little without it)."""
    import os
    import platform

    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return f"cuda ({torch.cuda.get_device_name(0)})"
    cpu = platform.processor() or platform.machine()
    return f"{device} ({cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads)"


def _add_training_costs(results: Results, runs: dict[str, RunInfo]) -> None:
    for arm in results.arms.values():
        info = runs.get(arm.run or "") if arm.adapter else None
        if info is None:
            continue
        params = info.manifest.get("parameters") or {}
        arm.costs.training_wall_s = info.manifest.get("wall_time_s")
        arm.costs.trainable_params = params.get("trainable")
        arm.costs.total_params = params.get("total")


def finish(
    results: Results,
    cfg: DomainConfig,
    records: list[QARecord],
    data: QADataset,
    arm_runs: list[ArmRun],
    expert: Any,
    runs: dict[str, RunInfo],
    out: Path,
    timer: PhaseTimer,
    started: float,
) -> Path:
    """Score, test, judge, conclude and write; see the module docstring for what a failure does."""
    from domainllm.report.claims import verdict
    from domainllm.report.write import write_artifacts, write_predictions, write_summary

    ccfg = cfg.compare
    by_name = {r.name: r for r in arm_runs}
    _model_info(expert, cfg, results)
    # Every answer on disk before anything that could fail: predictions.jsonl without scores.
    write_predictions(prediction_rows(records, arm_runs, {}), out)
    scores: dict[str, list[dict[str, float]]] = {}
    with timer("scoring and statistics"):
        embedder = _step(results, "embedding scorer", lambda: _embedder(cfg, expert))
        scored = _step(
            results, "scoring", lambda: score_runs(records, by_name, ccfg, cfg.retrieval.k, embedder)
        )
        if scored is None and embedder is not None:  # retry without the semantic score
            scored = _step(
                results,
                "scoring without embeddings",
                lambda: score_runs(records, by_name, ccfg, cfg.retrieval.k),
            )
        scores = scored or {}
        if ccfg.judge and scores:
            from domainllm.benchmark.judge import run_judge

            results.judge = _step(results, "judge", lambda: run_judge(cfg, records, by_name, scores))
        assembled = _step(
            results,
            "statistics",
            lambda: assemble_results(results, records, arm_runs, scores, data.train, ccfg),
        )
        if assembled is None:  # at least every arm's status and costs
            for run in arm_runs:
                results.arms.setdefault(
                    run.name, ArmResult(status=run.status, kind=run.kind, error=run.error)
                )
        _step(results, "training costs", lambda: _add_training_costs(results, runs))
        for name, info in runs.items():
            results.leakage[name], results.coverage[name] = {}, {}
            _step(
                results,
                f"leakage check ({name})",
                lambda name=name, info=info: _check_run_data(results, name, info, cfg, data, records),
            )
        if ccfg.referral_file:
            _step(results, "referral score", lambda: _referral(results, cfg, records, arm_runs))
    with timer("report"):
        results.verdict = _step(results, "verdict", lambda: verdict(results)) or []
        write_artifacts(results, out, prediction_rows(records, arm_runs, scores))
    # report.md and results.json (the success marker) last, with every phase's time known.
    results.status = "failed" if results.errors else "complete"
    results.error = f"{len(results.errors)} step(s) after the arms failed" if results.errors else None
    results.phases = timer.phases
    results.wall_s = round(time.perf_counter() - started, 2)
    write_summary(results, out)
    if results.errors:
        msg = (
            f"The comparison's arms finished, but {', '.join(e.split(':')[0] for e in results.errors)} failed: "
            f"{results.errors[0]}. Every answer and every number that could be computed is in {out} "
            "(arms/, predictions.jsonl, results.json); fix the cause and run again with --resume to reuse the arms."
        )
        raise EvalError(msg)
    log.info("Comparison written to %s (%.0f s)", out, time.perf_counter() - started)
    return out


def _referral(results: Results, cfg: DomainConfig, records: list[QARecord], arm_runs: list[ArmRun]) -> None:
    from domainllm.eval.referral import load_referral_ids, referral_scores
    from domainllm.resources import resolve_path

    ids, _rule = load_referral_ids(
        resolve_path(cfg.compare.referral_file, cfg.base_dir, "compare.referral_file")
    )
    answers = {r.name: [o.answer for o in r.outputs] for r in arm_runs if r.status == "ok"}
    results.referral = referral_scores([r.id for r in records], answers, ids)


def _embedder(cfg: DomainConfig, expert: Any) -> Any:
    from domainllm.benchmark.embedding import embedding_scorer

    device = str(getattr(expert, "device", "cpu") or "cpu")
    return embedding_scorer(
        cfg.retrieval.embedding_model, device="cuda" if device.startswith("cuda") else "cpu"
    )


def write_stopped(
    results: Results, out: Path, timer: PhaseTimer, exc: BaseException, remaining: list[str], command: str
) -> None:
    """results.json and report.md of a comparison stopped before its arms finished (finished arms are kept)."""
    interrupted = isinstance(exc, KeyboardInterrupt)
    results.status = "interrupted" if interrupted else "failed"
    what = "interrupted" if interrupted else f"stopped by {exc.__class__.__name__}: {exc}"
    results.error = (
        f"{what} with {len(remaining)} arm(s) left ({', '.join(remaining)}); continue with: {command}"
    )
    results.phases = timer.phases
    try:
        atomic_write_json(out / "results.json", results.to_dict())
        from domainllm.report.markdown import render_markdown

        atomic_write_text(out / "report.md", render_markdown(results))
    except Exception as write_exc:  # never mask the original exception
        log.error("Could not record the stop in %s: %s", out, write_exc)
