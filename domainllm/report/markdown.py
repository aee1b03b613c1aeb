"""report.md: the comparison for a human reader (everything in it is also in results.json)."""

from __future__ import annotations

from domainllm.eval.results import ArmResult, Interval, Results
from domainllm.report.claims import verdict
from domainllm.report.format import (
    ALPHA,
    ci_num,
    ci_pct,
    finite,
    fmt_metric,
    md_table,
    num,
    p_text,
    pct,
)

__all__ = ["render_markdown"]

# What "correct" means per answer type, for the report's legend.
_CORRECT_MEANS = {
    "text": "the reference (or an alias) is stated in the answer",
    "number": "the first number in the answer is within the relative tolerance",
    "choice": "the option the answer names is the gold option",
    "label": "the first label in the answer is the gold label",
}
# Per-type columns of the main table: (answer type, metric, header).
_TYPE_COLUMNS = (
    ("text", "contains", "text: contains"),
    ("text", "token_f1", "text: token F1"),
    ("text", "embed_sim", "text: embed sim"),
    ("number", "within_tol", "number: within tol"),
    ("number", "abs_error", "number: MAE"),
    ("choice", "choice_acc", "choice: generated"),
    ("choice", "choice_loglik_acc", "choice: loglik"),
    ("label", "label_acc", "label: acc"),
)


def _type_metric(arm: ArmResult, answer_type: str, metric: str) -> Interval | None:
    part = arm.summary.by_type.get(answer_type) if arm.summary else None
    return part.metrics.get(metric) if part else None


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items())


def _header(results: Results) -> list[str]:
    n = results.n_questions
    lines = [f"# Comparison: {results.domain or '?'} ({results.split} split, n = {n})", ""]
    if results.status != "complete":
        lines += [f"**Status: {results.status.upper()}.** {results.error or ''}".rstrip(), ""]
        lines += [f"- step failed: `{e}`" for e in results.errors]
        if results.errors:
            lines.append("")
    limit_note = (
        f" (a seeded random sample of {n} of {results.n_total} questions, compare.limit = {results.limit})"
        if results.limit
        else ""
    )
    run_notes = "; ".join(f"{name}: {info.get('note', '')}" for name, info in results.runs.items())
    resumed = f"; {len(results.resumed_arms)} arm(s) read back from an earlier run of this comparison (--resume; same answer keys): {', '.join(results.resumed_arms)}"
    return [
        *lines,
        f"- Model: {results.model.get('name', '?')} on {results.device or '?'}; questions: {results.split_source or '?'}{limit_note}",
        f"- Answer types: {_counts(results.answer_types)}; seen in training: {_counts(results.seen_counts) or 'not recorded'}",
        f"- Fine-tuned runs: {run_notes or 'no fine-tuned arm'}",
        f"- Created {results.created_at or '?'}, seed {results.seed}, {results.n_bootstrap} bootstrap resamples, "
        f"git {results.git_commit or 'n/a'}" + (resumed if results.resumed_arms else ""),
        "",
    ]


def _main_table(results: Results) -> list[str]:
    ok = results.ok_arms
    types = set(results.answer_types)
    columns = [
        c for c in _TYPE_COLUMNS if c[0] in types and any(_type_metric(a, c[0], c[1]) for a in ok.values())
    ]
    has_f1 = any(a.summary.label for a in ok.values() if a.summary)
    has_recall = any(a.summary.metrics.get("recall_at_k") for a in ok.values() if a.summary)
    has_judge = any(a.summary.metrics.get("judge_correct") for a in ok.values() if a.summary)
    header = ["arm", "n", "correct [95% CI]", *[c[2] for c in columns]]
    header += ["label: macro-F1"] if has_f1 else []
    header += ["recall@k"] if has_recall else []
    header += ["judge"] if has_judge else []
    rows = []
    for name, arm in results.arms.items():
        if not arm.ok or arm.summary is None:
            rows.append([name, "-", f"**{arm.status}**: {arm.error or ''}", *["-"] * (len(header) - 3)])
            continue
        s = arm.summary
        row = [name, s.n, ci_pct(s.main)]
        row += [fmt_metric(metric, _type_metric(arm, t, metric)) for t, metric, _ in columns]
        if has_f1:
            row.append(ci_num(s.label.macro_f1 if s.label else None))
        if has_recall:
            row.append(ci_pct(s.metrics.get("recall_at_k")))
        if has_judge:
            row.append(ci_pct(s.metrics.get("judge_correct")))
        rows.append(row)
    legend = "; ".join(f"{t}: {_CORRECT_MEANS[t]}" for t in results.answer_types if t in _CORRECT_MEANS)
    return [
        "## Main results",
        "",
        f"`correct` (the main metric) means: {legend}. Brackets are 95% bootstrap confidence intervals.",
        "",
        md_table(header, rows),
        "",
    ]


def _p_cell(p: float) -> str:
    return p_text(p).removeprefix("p ").removeprefix("= ")


def _pairwise_section(results: Results) -> list[str]:
    rows = results.pairwise
    if not rows:
        return []
    table = [
        [
            r.arm_a,
            r.arm_b,
            f"{100 * r.diff:+.1f} pts" if finite(r.diff) else "n/a",
            _p_cell(r.p_value),
            _p_cell(r.p_holm),
            "yes" if finite(r.p_holm) and r.p_holm < ALPHA else "no",
            r.test,
            r.n,
        ]
        for r in rows
    ]
    plural = "s" if len(rows) > 1 else ""
    family = (
        f"p-values Holm-adjusted over these {len(rows)} planned comparisons (with several fine-tuned runs: "
        "the base arms against each other, each run's arms against their base counterpart and with "
        "retrieval added, and against the same arm of the first run)"
        if len(results.runs) > 1
        else f"p-values Holm-adjusted over all {len(rows)} pair{plural}"
    )
    return [
        "## Pairwise tests (paired, on `correct`)",
        "",
        "McNemar's test on the questions both arms answered (exact binomial below 25 discordant pairs), "
        f"{family}. diff = arm A - arm B.",
        "",
        md_table(["arm A", "arm B", "diff", "p", "p (Holm)", f"significant at {ALPHA}", "test", "n"], table),
        "",
    ]


def _seen_section(results: Results) -> list[str]:
    if not results.seen_counts:
        return []
    subsets = [s for s in ("seen", "unseen") if s in results.seen_counts]
    rows = [
        [name, *[ci_pct(arm.summary.main_of(s)) for s in subsets]]
        for name, arm in results.ok_arms.items()
        if arm.summary
    ]
    header = ["arm", *[f"{s} in training (n = {results.seen_counts[s]})" for s in subsets]]
    lines = [
        "## Seen vs unseen in training",
        "",
        "`seen_in_train` marks test questions whose fact also appears (reworded) in the training QA pairs. "
        "Fine-tuning can only have learned the seen ones; retrieval can serve both.",
        "",
        md_table(header, rows),
        "",
    ]
    for subset in subsets:
        tests = results.pairwise_by_seen.get(subset) or []
        if tests:
            plural = "s" if len(tests) > 1 else ""
            pairs = "; ".join(
                f"{r.arm_a} vs {r.arm_b} {100 * r.diff:+.0f} pts ({p_text(r.p_holm)})"
                for r in tests
                if finite(r.diff)
            )
            lines += [
                f"Paired tests on the {subset} questions (Holm over {len(tests)} pair{plural}): {pairs}.",
                "",
            ]
    return lines


def _type_section(results: Results) -> list[str]:
    lines = ["## By answer type", ""]
    any_rows = False
    for answer_type in ("text", "number", "choice", "label"):
        per_arm = {n: a.summary.by_type.get(answer_type) for n, a in results.ok_arms.items() if a.summary}
        per_arm = {n: v for n, v in per_arm.items() if v}
        if not per_arm:
            continue
        metrics = list(dict.fromkeys(m for v in per_arm.values() for m in v.metrics))
        rows = [[n, v.n, *[fmt_metric(m, v.metrics.get(m)) for m in metrics]] for n, v in per_arm.items()]
        lines += [f"### {answer_type}", "", md_table(["arm", "n", *metrics], rows), ""]
        any_rows = True
    return lines if any_rows else []


def _baseline_section(results: Results) -> list[str]:
    b = results.baselines
    if not b.by_type:
        return []
    rows = [
        [t, e.name, f"`{e.answer}`", e.n, ci_pct(e.correct), ci_num(e.macro_f1) if e.macro_f1 else "-"]
        for t, e in b.by_type.items()
    ]
    if b.overall is not None:
        overall = Interval(b.overall.mean, b.overall.low, b.overall.high, b.overall.n)
        rows.append(["all", "per-type baselines together", "", results.n_questions, ci_pct(overall), "-"])
    return [
        "## Trivial baselines",
        "",
        "Answers that need no model, learned from the train split (the dashed line in chart.png).",
        "",
        md_table(["type", "baseline", "answer", "n", "correct [95% CI]", "macro-F1"], rows),
        "",
    ]


def _cost_section(results: Results) -> list[str]:
    rows = []
    for name, arm in results.arms.items():
        c = arm.costs
        rows.append(
            [
                name,
                num(c.wall_s),
                num(c.latency_p50_s, 2),
                num(c.latency_p95_s, 2),
                num(c.generated_tokens_per_s),
                num(c.mean_prompt_tokens),
                num(c.mean_generated_tokens),
                num(c.loglik_s),
                num(c.peak_rss_mb, 0),
                num(c.cuda_peak_mb, 0),
                num(c.training_wall_s),
                num(c.trainable_params),
            ]
        )
    if not rows:
        return []
    header = [
        "arm",
        "wall s",
        "latency p50 s",
        "latency p95 s",
        "gen tok/s",
        "prompt tokens",
        "answer tokens",
        "loglik s",
        "peak RSS MiB",
        "CUDA peak MiB",
        "training s",
        "trainable params",
    ]
    modes = sorted({a.generation_mode for a in results.arms.values() if a.generation_mode})
    return [
        "## Costs",
        "",
        "Latency per question = its batch's wall time / batch size; wall s is the arm's generation, loglik s "
        "the extra time spent scoring choice options by log-likelihood. Tokens are counted with the local "
        "tokenizer; prompt tokens show what retrieval adds to every call. Peak RSS is the process's "
        "high-water mark when the arm finished (it includes everything loaded before)."
        + (f" Generation: {'; '.join(modes)}." if modes else ""),
        "",
        md_table(header, rows),
        "",
    ]


def _example_section(results: Results) -> list[str]:
    if not results.examples:
        return []
    lines = ["## Examples", "", "A seeded pick across answer types; ✓ = counted correct.", ""]
    for ex in results.examples:
        seen = ex.seen_in_train
        seen_text = "" if seen is None else (", seen in training" if seen else ", not seen in training")
        lines += [
            f"**{ex.id}** ({ex.answer_type}{seen_text}): {ex.question}",
            "",
            f"- reference: {ex.reference}",
        ]
        for arm, answer in ex.answers.items():
            mark = "✓" if ex.correct.get(arm) == 1.0 else "✗"
            lines.append(f"- {arm} {mark}: {answer!s}".rstrip())
        lines.append("")
    return lines


def _recipe_text(recipe: dict | None) -> str:
    if recipe is None:
        return "given"
    return ", ".join(f"`{k}={v}`" for k, v in recipe.items()) or "the config as it is"


def _runs_section(results: Results) -> list[str]:
    """Per fine-tuned run: how it was made, what it trained on, which test facts its data covered."""
    if len(results.runs) < 2 and not any(results.coverage.values()):
        return []
    rows = []
    for name, info in results.runs.items():
        train = info.get("train_rows") or {}
        by_source = ", ".join(f"{k} {v}" for k, v in (train.get("by_source") or {}).items())
        cov = results.coverage.get(name) or {}
        agree = cov.get("agreement") or {}
        rows.append(
            [
                name,
                _recipe_text(info.get("recipe")),
                f"{train.get('n', '-')} ({by_source})" if train else "-",
                f"{pct(cov.get('share'))} ({cov.get('covered', '-')} of {cov.get('n', '-')})" if cov else "-",
                f"{pct(agree.get('share'))} ({agree.get('covered_only', 0)} covered but unseen, "
                f"{agree.get('seen_only', 0)} seen but uncovered)"
                if agree.get("n")
                else "-",
                num((info.get("training") or {}).get("wall_time_s")),
            ]
        )
    return [
        "## Fine-tuned runs",
        "",
        "What each run trained on. A test fact is *covered* by a run when one of its training rows has the "
        "same `doc_id` and the same normalised answer (a fact taught only by a generated question counts for "
        "that run); the agreement column compares that rule with the domain's `seen_in_train` flag, which "
        "the seen/unseen split above uses for every run alike.",
        "",
        md_table(
            [
                "run",
                "recipe",
                "training rows (by source)",
                "test facts covered",
                "agreement with seen_in_train",
                "training wall s",
            ],
            rows,
        ),
        "",
    ]


def _leakage_section(results: Results) -> list[str]:
    if not results.leakage:
        return []
    rows = []
    for run, report in results.leakage.items():
        if not report:
            rows.append([run, "-", "-", "not checked (see the errors above)"])
            continue
        found = sum((report.get("questions") or {}).values())
        pairs = report.get("pairs") or []
        first = "; ".join(f"{p['train_id']} ~ {p['other_id']} ({p['score']:.2f})" for p in pairs[:3])
        rows.append([run, report.get("train_size", "-"), found, first or "-"])
    threshold = next((r.get("threshold") for r in results.leakage.values() if r), 0.8)
    return [
        "## Leakage check",
        "",
        "Each fine-tuned run's training questions against the evaluated questions: a question whose token "
        f"Jaccard similarity with a training question is >= {threshold} is a near-duplicate (a score on it "
        "measures memorisation, not generalisation).",
        "",
        md_table(["run", "training questions", "evaluated questions near-duplicated", "first pairs"], rows),
        "",
    ]


def _phase_section(results: Results) -> list[str]:
    if not results.phases:
        return []
    rows = [[name, num(seconds)] for name, seconds in results.phases.items()]
    rows.append(["**total**", num(sum(v for v in results.phases.values() if finite(v)))])
    return ["## Phase timings", "", md_table(["phase", "wall s"], rows), ""]


def _referral_section(results: Results) -> list[str]:
    """Per arm: answers that send the user to a dentist, on the questions that should (compare.referral_file)."""
    ref = results.referral or {}
    if not ref.get("arms"):
        return []
    rows = [[arm, f"{r['referred']} of {r['n']}", pct(r["rate"])] for arm, r in ref["arms"].items()]
    return [
        "## Referral to a dentist",
        "",
        f"On the {len(ref.get('question_ids', []))} evaluated question(s) listed as needing a dentist; {ref.get('rule', '')}.",
        "",
        md_table(["arm", "referred", "rate"], rows),
        "",
    ]


def render_markdown(results: Results) -> str:
    """The human-readable report of a complete, failed or interrupted comparison."""
    lines = _header(results)
    if results.arms or results.status == "complete":
        lines += ["## Verdict", "", *[f"- {s}" for s in (results.verdict or verdict(results))], ""]
        lines += _main_table(results)
        lines += _pairwise_section(results)
        lines += _seen_section(results)
        lines += _type_section(results)
        lines += _baseline_section(results)
        lines += _runs_section(results)
        lines += _leakage_section(results)
        lines += _referral_section(results)
        lines += _cost_section(results)
        lines += _example_section(results)
    lines += _phase_section(results)
    failed = {k: v for k, v in results.arms.items() if v.status == "failed"}
    skipped = {k: v for k, v in results.skipped_arms.items() if k not in failed}
    if skipped or failed:
        lines += ["## Failed and skipped arms", ""]
        lines += [f"- **{k}** failed: `{v.error}`" for k, v in failed.items()]
        lines += [f"- **{k}** skipped: {v}" for k, v in skipped.items()]
        lines.append("")
    if results.judge:
        lines += ["## LLM judge", "", f"- {results.judge.get('model')}: {results.judge.get('status')}", ""]
    lines += [
        "## Reproduce",
        "",
        f"```\n{results.command or 'domainllm compare'}\n```",
        "",
        "The resolved config, library versions and every per-question score are in results.json and "
        "predictions.jsonl beside this file; `domainllm report DIR` re-renders this file and chart.png.",
        "",
    ]
    return "\n".join(lines)
