"""``domainllm compare``: the dentist comparison as a benchmark a skeptical ML engineer accepts.

The same test questions go through every arm (persona prompt, RAG, fine-tuned, fine-tuned + RAG,
optionally the oracle and chat models from other providers) with identical decoding settings and
seeds; each arm is scored identically; every number gets a 95% bootstrap interval, every pair of
arms a paired test; and the verdict says only what those numbers support.

Phases (each timed; their wall times are in the report):

1. **Check** (seconds, before anything is loaded or written): arm names against the chain specs,
   extra arms' ``provider:model`` syntax, the evaluation split non-empty and every question scorable,
   a ``--run`` directory complete, the output folder free (or ``--resume``/``--overwrite``).
2. **Prepare**: the fine-tuned run (reused, resumed or trained; a finished run is never replaced, see
   :mod:`~domainllm.benchmark.prepare`) and the Chroma store. Only what the arms need is prepared.
3. **Arms**: each arm's chain ``.batch()``; its predictions are written to ``OUT/arms/`` the moment
   it ends (:mod:`~domainllm.benchmark.resume`), so an interrupted comparison resumes there. A
   crashing arm is recorded as failed and the others still run.
4. **Finish** (:mod:`~domainllm.benchmark.finish`): scoring, statistics, judge, verdict and report,
   each step contained: a failure there still leaves every prediction and every computable number.
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from domainllm.benchmark.build import (
    ArmPlan,
    build_arm,
    check_extras,
    gold_contexts,
    load_specs,
    option_logliks,
    plan_arms,
)
from domainllm.benchmark.phases import PhaseTimer
from domainllm.benchmark.prepare import RunInfo, plan_runs, prepare_runs, prepare_store
from domainllm.benchmark.resume import ArmStore, check_output_dir, clear_output_dir
from domainllm.benchmark.strict import check_plan, check_results
from domainllm.config import DomainConfig, config_fingerprint, config_to_dict
from domainllm.data.records import QADataset, QARecord
from domainllm.errors import EvalError, Interrupted
from domainllm.eval.predictions import ArmRun
from domainllm.eval.results import Results
from domainllm.fsio import atomic_write_json

__all__ = ["compare", "resume_command", "sample_questions"]

log = logging.getLogger(__name__)


def sample_questions(records: Sequence[QARecord], limit: int, seed: int) -> list[QARecord]:
    """A seeded random subset of ``limit`` questions (0 = all), kept in file order.

    Never the first N: benchmark files are often sorted (PubMedQA's test file is ordered by label),
    and the first N would be a biased sample.
    """
    if not limit or limit >= len(records):
        return list(records)
    keep = sorted(random.Random(seed).sample(range(len(records)), limit))
    return [records[i] for i in keep]


def resume_command(run_dir: str | Path | None, output_dir: Path) -> str:
    """The exact command that continues this comparison where it stopped (see :mod:`domainllm.invocation`)."""
    from domainllm.invocation import resume_command as continuing

    run = f", run_dir={str(run_dir)!r}" if run_dir else ""
    return continuing(
        "compare", output_dir, f"domainllm.compare(cfg{run}, output_dir={str(output_dir)!r}, resume=True)"
    )


def _split_source(cfg: DomainConfig, data: QADataset) -> str:
    """Where the evaluation split comes from, in words a user can find on disk."""
    split = cfg.compare.split
    explicit = getattr(cfg.data, f"{split}_file", None)
    if explicit:
        return f"the {split} file '{explicit}'"
    source = data.source or cfg.data.path
    if cfg.data.format == "folder":
        return f"the {split} split '{Path(str(source)) / 'qa' / (split + '.jsonl')}'"
    return f"the {split} split of '{source}'"


def _header(cfg: DomainConfig, records: list[QARecord], n_total: int, where: str, run_dir: Any) -> Results:
    from domainllm.invocation import command_line
    from domainllm.versions import git_commit, library_versions

    seen = Counter("seen" if r.seen_in_train else "unseen" for r in records if r.seen_in_train is not None)
    command = command_line() or (
        "domainllm.compare(cfg" + (f", run_dir={str(run_dir)!r}" if run_dir else "") + ")"
    )
    return Results(
        status="running",
        created_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        command=command,
        domain=cfg.data.name,
        split=cfg.compare.split,
        split_source=where,
        n_questions=len(records),
        n_total=n_total,
        limit=cfg.compare.limit,
        seed=cfg.compare.seed,
        n_bootstrap=cfg.compare.n_bootstrap,
        question_ids=[r.id for r in records],
        answer_types=dict(Counter(r.answer_type for r in records)),
        seen_counts={k: seen[k] for k in ("seen", "unseen") if seen[k]},
        model={"name": cfg.model.name_or_path},
        config=config_to_dict(cfg),
        config_fingerprint=config_fingerprint(cfg),
        versions=library_versions(),
        git_commit=git_commit(Path(__file__).resolve().parent),
    )


def _check(
    cfg: DomainConfig,
    run_dir: Any,
    runs: Mapping[str, str | Path],
    out: Path,
    resume: bool,
    overwrite: bool,
) -> tuple:
    """Everything that can be refused is refused here, before any model is loaded or any file written."""
    from domainllm.data import load_domain
    from domainllm.eval.scoring import check_records

    specs = load_specs(cfg)
    extras = check_extras(cfg.compare)
    if cfg.compare.judge:
        from domainllm.benchmark.arms import parse_provider_model

        parse_provider_model(cfg.compare.judge, "compare.judge")
    data = load_domain(cfg.data, cfg.base_dir)
    where = _split_source(cfg, data)
    all_records = list(data.split(cfg.compare.split))
    check_records(all_records, where)
    records = sample_questions(all_records, cfg.compare.limit, cfg.compare.seed)
    retrieving = [n for n, s in specs.items() if s.uses_retrieval]
    if retrieving and not data.documents:
        msg = (
            f"Arms {retrieving} retrieve from the knowledge base, but the domain '{cfg.data.name}' has no "
            "documents. Set data.docs_dir to a folder of documents (or put them in <data.path>/docs), or drop "
            "those arms from compare.arms."
        )
        raise EvalError(msg)
    sources = plan_runs(cfg, data, run_dir, runs, needed=any(s.adapter for s in specs.values()))
    check_plan(
        cfg,
        specs,
        extras,
        [_run_label(n, s) for n, s in sources.items() if s.given is not None or s.recipe is not None],
    )
    check_output_dir(out, resume, overwrite, resume_command(run_dir, out))
    return specs, extras, data, records, len(all_records), where, sources


def compare(
    cfg: DomainConfig,
    run_dir: str | Path | None = None,
    output_dir: str | Path | None = None,
    *,
    runs: Mapping[str, str | Path] | None = None,
    resume: bool = False,
    overwrite: bool = False,
) -> Path:
    """Run the comparison configured by ``cfg.compare`` and return the report folder.

    ``run_dir`` reuses a finished training run instead of training; ``runs`` adds finished runs by
    name (``{"raft": "runs/dental-raft"}``, like ``compare.runs``), each giving ``<arm>@<name>``
    adapter arms; ``compare.recipes`` adds runs this comparison trains. All runs' adapters share one
    base in memory. ``output_dir`` overrides ``compare.output_dir``. ``resume`` continues an interrupted comparison in that folder (finished
    arms are read back, not run again; a finished comparison is re-scored and re-rendered);
    ``overwrite`` replaces a previous comparison there. Raises :class:`EvalError` for an unknown arm,
    an empty split, an unscorable question or an occupied output folder before anything is loaded.
    """
    from domainllm.benchmark.finish import finish, write_stopped

    started = time.perf_counter()
    out = Path(output_dir or cfg.compare.output_dir).expanduser().resolve()
    timer = PhaseTimer()
    with timer("check: arms, data and questions"):
        specs, extras, data, records, n_total, where, sources = _check(
            cfg, run_dir, runs or {}, out, resume, overwrite
        )

    prepared: dict[str, RunInfo] = {}
    if any(s.adapter for s in specs.values()) and sources:
        every_given = all(s.given is not None for s in sources.values())
        with timer("prepare: reuse run" if every_given else "prepare: train or reuse run"):
            prepared = prepare_runs(cfg, data, sources)
    store, store_info = None, None
    if any(s.uses_retrieval for s in specs.values()):
        with timer("prepare: knowledge base"):
            store, store_info = prepare_store(cfg, data)
    plans = plan_arms(cfg, specs, extras, records, data, {name: info.path for name, info in prepared.items()})

    if overwrite:
        clear_output_dir(out)
    previous = _previous_results(out) if resume else None
    results = _header(cfg, records, n_total, where, run_dir)
    results.store = store_info
    results.runs = {name: info.describe() for name, info in prepared.items()}
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "results.json", results.to_dict())
    arm_store = ArmStore(out)
    done: dict[str, ArmRun] = {}
    try:
        saved = {p.name: arm_store.load(p.name, p.key) for p in plans} if resume else {}
        for name, run in saved.items():
            if run is not None:
                done[name] = run
                results.resumed_arms.append(name)
        if results.resumed_arms:
            log.warning(
                "Resuming: %d finished arm(s) read back from %s: %s",
                len(done),
                arm_store.dir,
                ", ".join(done),
            )
        expert = _load_expert(cfg, prepared, plans, done, timer)
        for plan, run in _run_arms(cfg, plans, done, expert, store, records, data, timer):
            arm_store.save(run)
            done[plan.name] = run
    except BaseException as exc:  # Ctrl-C, SIGTERM, a model that does not load: say where it stopped
        left = [p.name for p in plans if p.name not in done]
        command = resume_command(run_dir, out)
        write_stopped(results, out, timer, exc, left, command)
        if isinstance(exc, KeyboardInterrupt) and not isinstance(exc, Interrupted):
            msg = (
                f"the comparison stopped with {len(left)} arm(s) left ({', '.join(left)}); results.json says "
                f"'interrupted' and the {len(done)} finished arm(s) are kept in {arm_store.dir}. Continue with: "
                f"{command}"
            )
            raise Interrupted(msg) from exc
        raise
    if expert is None and previous is not None:  # every arm read back: the machine they ran on
        results.model, results.device = previous.model, previous.device
    finish(results, cfg, records, data, [done[p.name] for p in plans], expert, prepared, out, timer, started)
    check_results(cfg, results, out)
    return out


def _run_label(name: str, source: Any) -> str:
    """How a planned run is named to the user: the --run path, NAME=PATH, or the recipe."""
    if source.given is not None:
        return str(source.given.path) if name == "default" else f"{name}={source.given.path}"
    return f"compare.recipes.{name}"


def _previous_results(out: Path) -> Results | None:
    """The results.json a resumed comparison continues (for what no arm records: the model and machine)."""
    try:
        return Results.from_json(out) if (out / "results.json").is_file() else None
    except (OSError, ValueError, TypeError, KeyError):
        return None


def _load_expert(
    cfg: DomainConfig,
    runs: dict[str, RunInfo],
    plans: list[ArmPlan],
    done: dict[str, ArmRun],
    timer: PhaseTimer,
) -> Any:
    """The one model every local arm shares, loaded only when some local arm still has to run."""
    if not any(p.kind == "local" and p.name not in done for p in plans):
        return None
    with timer("load model"):
        from domainllm.serve import load_expert, load_runs

        if list(runs) == ["default"]:  # one run: served with its own config, as `chat` serves it
            return load_expert(run_dir=runs["default"].path, config=None)
        if runs:  # several runs: one base (the comparison's model), each adapter under its run's name
            return load_runs({name: info.path for name, info in runs.items()}, config=cfg)
        return load_expert(config=cfg)


def _run_arms(cfg, plans, done, expert, store, records, data, timer):
    """Yield (plan, ArmRun) for every arm that was not read back, in config order, as each finishes."""
    from domainllm.benchmark.arms import Arm, arm_inputs, run_arm

    todo = [p for p in plans if p.name not in done]
    if not todo:
        return
    retriever = None
    if store is not None:
        from domainllm.rag import get_retriever

        retriever = get_retriever(store, cfg.retrieval)
    prompt_spec = next((p.spec for p in plans if p.name == "prompt_only"), None)
    if prompt_spec is None and any(p.kind == "extra" and p.skip_reason is None for p in todo):
        from domainllm.benchmark.build import chains_dir
        from domainllm.chains import load_chain_spec

        prompt_spec = load_chain_spec("prompt_only", chains_dir=chains_dir(cfg), domain=cfg.data.name)
    contexts = (
        gold_contexts(records, data) if any(p.spec and p.spec.retrieval == "gold" for p in todo) else {}
    )
    inputs = [arm_inputs(r, contexts.get(r.id)) for r in records]
    count_tokens = expert.count_tokens if expert is not None else None
    mode = getattr(expert, "generation_mode", None) if expert is not None else None
    for plan in todo:
        arm = build_arm(plan, cfg, expert, retriever, prompt_spec)
        if not isinstance(arm, Arm):  # skipped, or failed while being built
            yield plan, arm
            continue
        with timer(f"arm: {plan.name}"):
            run = run_arm(
                arm, inputs, cfg.generation.batch_size, count_tokens=count_tokens, seed=cfg.compare.seed
            )
            run.key = plan.key
            run.generation_mode = mode if plan.kind == "local" else None
            if run.ok and plan.kind == "local" and cfg.compare.loglik_choices:
                try:
                    run.logliks = option_logliks(expert, records, run)
                except Exception as exc:  # the generated answers still count; only this score is lost
                    run.loglik_error = f"{exc.__class__.__name__}: {exc}"
                    log.warning("Choice log-likelihoods of arm %s failed: %s", plan.name, run.loglik_error)
        yield plan, run
