"""The comparison's outputs: report.md, results.json, predictions.jsonl, chart.png, and the verdict.

Everything here is a function of the ``results`` dict that :func:`domainllm.eval.compare.compare`
assembles (documented in that module), so a report can be re-rendered from ``results.json`` alone.

Two rules shape this module:

* **No claim without numbers behind it.** The verdict is generated from templates over the paired
  tests and intervals: a difference is called a difference only when its Holm-adjusted p-value is
  below 0.05, and otherwise the sentence says it is within noise, with the p-value.
* **No half-written success.** Each file is written to a temporary name and renamed into place, and
  ``results.json`` (the file that says ``"status": "complete"``) is written last. A failed comparison
  writes ``results.json`` with ``"status": "failed"`` and a report.md that starts with the error.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from domainllm.eval.metrics import MAIN_METRIC

__all__ = [
    "ALPHA",
    "REPORT_FILES",
    "arm_label",
    "clear_previous",
    "make_chart",
    "print_results",
    "render_markdown",
    "results_table",
    "verdict",
    "write_artifacts",
    "write_failure",
    "write_report",
    "write_summary",
]

ALPHA = 0.05
REPORT_FILES = ("report.md", "results.json", "predictions.jsonl", "chart.png")

_ARM_LABELS = {
    "prompt_only": "the persona prompt",
    "rag": "RAG",
    "finetuned": "fine-tuning",
    "finetuned_rag": "fine-tuning + RAG",
    "oracle": "the oracle (gold context)",
}
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


def arm_label(name: str) -> str:
    """A readable name for an arm in sentences ("fine-tuning + RAG")."""
    return _ARM_LABELS.get(name, name)


# --------------------------------------------------------------------------------------------------
# Formatting helpers


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _pct(x: Any) -> str:
    return f"{100 * x:.0f}%" if _finite(x) else "n/a"


def _ci_pct(ci: dict | None) -> str:
    """``"71% [62, 79]"`` from a bootstrap_ci dict."""
    if not ci or not _finite(ci.get("mean", ci.get("value"))):
        return "n/a"
    mean = ci.get("mean", ci.get("value"))
    return f"{100 * mean:.0f}% [{100 * ci['low']:.0f}, {100 * ci['high']:.0f}]"


def _ci_num(ci: dict | None, digits: int = 2) -> str:
    if not ci or not _finite(ci.get("mean", ci.get("value"))):
        return "n/a"
    mean = ci.get("mean", ci.get("value"))
    return f"{mean:.{digits}f} [{ci['low']:.{digits}f}, {ci['high']:.{digits}f}]"


def _fmt_metric(metric: str, ci: dict | None) -> str:
    if metric == "abs_error":
        return _ci_num(ci, 2)
    if metric in ("token_f1", "rouge_l", "embed_sim"):
        return _ci_num(ci, 2)
    return _ci_pct(ci)


def _p(p: Any) -> str:
    if not _finite(p):
        return "p = n/a"
    if p < 0.001:
        return "p < 0.001"
    return f"p = {p:.3f}" if p < 0.01 else f"p = {p:.2f}"


def _num(x: Any, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    if isinstance(x, int):
        return f"{x:,}"
    return f"{x:,.{digits}f}"


def _md_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _ok_arms(results: dict) -> dict[str, dict]:
    return {name: arm for name, arm in results.get("arms", {}).items() if arm.get("status") == "ok"}


def _main(arm: dict, subset: str | None = None) -> dict | None:
    summary = arm.get("summary") or {}
    if subset is not None:
        summary = summary.get("by_seen", {}).get(subset) or {}
    return summary.get("metrics", {}).get(MAIN_METRIC)


def _pair(rows: Sequence[dict], a: str, b: str) -> dict | None:
    """The test row for arms a and b, oriented so that ``diff`` is mean(a) - mean(b)."""
    for row in rows or []:
        if row["arm_a"] == a and row["arm_b"] == b:
            return row
        if row["arm_a"] == b and row["arm_b"] == a:
            return {**row, "arm_a": a, "arm_b": b, "diff": -row["diff"]}
    return None


# --------------------------------------------------------------------------------------------------
# The verdict


def _compare_sentence(results: dict, a: str, b: str, what: str, subset: str | None = None) -> str | None:
    """One sentence comparing arm a with arm b, claiming a difference only when the test supports it."""
    arms = _ok_arms(results)
    if a not in arms or b not in arms:
        return None
    rows = results.get("pairwise", []) if subset is None else results.get("pairwise_by_seen", {}).get(subset)
    row = _pair(rows or [], a, b)
    ci_a, ci_b = _main(arms[a], subset), _main(arms[b], subset)
    if row is None or not ci_a or not ci_b or not _finite(row.get("p_holm")):
        return None
    p = row["p_holm"]
    scores = f"{_ci_pct(ci_a)} vs {_ci_pct(ci_b)}"
    if p < ALPHA and row["diff"] > 0:
        return f"{what}: {arm_label(a)} answered {scores} for {arm_label(b)} ({_p(p)}), a real improvement."
    if p < ALPHA and row["diff"] < 0:
        return f"{what}: {arm_label(a)} answered {scores} for {arm_label(b)} ({_p(p)}), significantly worse."
    return (
        f"{what}: {arm_label(a)} answered {scores} for {arm_label(b)} ({_p(p)}): "
        "not a significant difference at this sample size."
    )


def verdict(results: dict) -> list[str]:
    """Plain-language conclusions generated from the numbers only (one sentence per finding).

    Differences are claimed only where the Holm-adjusted paired test gives p < 0.05; intervals are
    95% bootstrap CIs of the main metric.
    """
    arms = _ok_arms(results)
    n = results.get("n_questions", 0)
    out: list[str] = []
    if not arms:
        return ["No arm produced results, so there is nothing to compare (see the failures below)."]
    ref = "prompt_only" if "prompt_only" in arms else next(iter(arms))
    ranked = sorted(arms, key=lambda name: -(_main(arms[name]) or {}).get("mean", -1.0))
    best = ranked[0]
    rows = results.get("pairwise", [])
    best_mean = (_main(arms[best]) or {}).get("mean")
    ref_mean = (_main(arms[ref]) or {}).get("mean")
    if len(arms) == 1:
        out.append(
            f"Only {arm_label(best)} produced answers: {_ci_pct(_main(arms[best]))} correct on {n} questions."
        )
    elif best == ref or best_mean == ref_mean:
        out.append(
            f"No arm scored above {arm_label(ref)}, which answered {_ci_pct(_main(arms[ref]))} correctly "
            f"on {n} questions."
        )
    else:
        row = _pair(rows, best, ref)
        best_ci, ref_ci = _ci_pct(_main(arms[best])), _ci_pct(_main(arms[ref]))
        label = arm_label(best)[0].upper() + arm_label(best)[1:]
        if row and _finite(row.get("p_holm")) and row["p_holm"] < ALPHA and row["diff"] > 0:
            out.append(
                f"{label} answered {best_ci} correctly vs {ref_ci} for {arm_label(ref)} "
                f"({_p(row['p_holm'])}, n = {n})."
            )
        else:
            p_text = _p(row["p_holm"]) if row else "p = n/a"
            out.append(
                f"No arm was significantly better than {arm_label(ref)}: the best, {arm_label(best)}, answered "
                f"{best_ci} vs {ref_ci} ({p_text}); on {n} questions that gap is within chance."
            )
    headline = {best, ref}
    for a, b, what in (
        ("finetuned", "prompt_only", "Fine-tuning alone"),
        ("rag", "prompt_only", "Retrieval alone"),
        ("finetuned_rag", "rag", "Fine-tuning on top of retrieval"),
        ("finetuned_rag", "finetuned", "Retrieval on top of fine-tuning"),
    ):
        if {a, b} == headline:
            continue
        sentence = _compare_sentence(results, a, b, what)
        if sentence:
            out.append(sentence)
    out.extend(_seen_sentences(results))
    out.extend(_baseline_sentences(results, arms, best))
    out.extend(_constant_label_sentences(arms))
    for name, arm in results.get("arms", {}).items():
        if arm.get("status") == "failed":
            out.append(f"The {name} arm failed ({arm.get('error')}); it has no scores.")
        if arm.get("loglik_error"):
            out.append(f"Option log-likelihoods of the {name} arm failed ({arm['loglik_error']}).")
    for spec, reason in results.get("skipped_arms", {}).items():
        out.append(f"The extra arm {spec} was not run: {reason}")
    return out


def _seen_sentences(results: dict) -> list[str]:
    arms = _ok_arms(results)
    if "finetuned" not in arms or "prompt_only" not in arms:
        return []
    out = []
    for subset, what in (("unseen", "On facts not seen in training"), ("seen", "On facts seen in training")):
        sentence = _compare_sentence(results, "finetuned", "prompt_only", what, subset)
        if sentence is None:
            continue
        n_sub = ((arms["finetuned"].get("summary") or {}).get("by_seen", {}).get(subset) or {}).get("n")
        if n_sub == results.get("n_questions"):
            continue  # the subset is every question: the overall sentence already says it
        out.append(sentence.replace(what, f"{what} (n = {n_sub})", 1))
    # The dentist's question: what carries facts the model never saw?
    by_seen = results.get("pairwise_by_seen", {}).get("unseen") or []
    ft = _pair(by_seen, "finetuned", "prompt_only")
    rag = _pair(by_seen, "rag", "prompt_only") if "rag" in arms else None
    if ft and rag and _finite(ft["p_holm"]) and _finite(rag["p_holm"]):
        ft_sig = ft["p_holm"] < ALPHA and ft["diff"] > 0
        rag_sig = rag["p_holm"] < ALPHA and rag["diff"] > 0
        if rag_sig and not ft_sig:
            out.append(
                "On unseen facts retrieval beat the persona prompt and fine-tuning did not: retrieval is what carries facts the model was never trained on."
            )
        elif ft_sig and not rag_sig:
            out.append("On unseen facts fine-tuning beat the persona prompt and retrieval did not.")
    return out


def _constant_label_sentences(arms: dict, share: float = 0.95) -> list[str]:
    """Flag arms that give (almost) the same label to every label question: a prior, not an answer."""
    groups: dict[str, list[str]] = {}
    for name, arm in arms.items():
        predicted = ((arm.get("summary") or {}).get("label") or {}).get("predicted") or {}
        total = sum(predicted.values())
        if not total:
            continue
        label, count = max(predicted.items(), key=lambda kv: kv[1])
        if label != "(none)" and count / total >= share:
            groups.setdefault(label, []).append(f"{arm_label(name)} ({100 * count / total:.0f}%)")
    out = []
    for label, names in groups.items():
        who = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        out.append(
            f"{who[0].upper() + who[1:]} answered '{label}' to (nearly) every label question: that is the class "
            "prior, not an answer to the question, so accuracy there says little beyond the majority baseline."
        )
    return out


def _baseline_sentences(results: dict, arms: dict, best: str) -> list[str]:
    baselines = results.get("baselines") or {}
    overall = baselines.get("overall")
    if not overall or not _finite(overall.get("mean")):
        return []
    ci = _main(arms[best]) or {}
    base = overall["mean"]
    desc = overall.get("description", "")
    out = []
    name = arm_label(best)
    if _finite(ci.get("low")) and ci["low"] > base:
        out.append(
            f"The best arm ({name}, 95% CI {_ci_pct(ci)}) lies above the trivial baseline ({_pct(base)}; {desc}): "
            "the model adds more than a constant answer."
        )
    elif _finite(ci.get("high")) and ci["high"] < base:
        out.append(
            f"Every arm is below the trivial baseline ({_pct(base)}; {desc}): even the best, {name}, has a 95% CI "
            f"of {_ci_pct(ci)}, so a constant answer would score higher."
        )
    else:
        out.append(
            f"No arm is clearly above the trivial baseline ({_pct(base)}; {desc}): the best arm's 95% CI "
            f"{_ci_pct(ci)} includes it, so these scores may be no better than a constant answer."
        )
    label = baselines.get("by_type", {}).get("label")
    if label and "label" in ((arms[best].get("summary") or {}).get("by_type") or {}):
        f1 = (arms[best].get("summary") or {}).get("label", {}).get("macro_f1")
        base_f1 = (label.get("macro_f1") or {}).get("value")
        if f1 and _finite(f1.get("value")) and _finite(base_f1):
            out.append(
                f"Macro-F1 of {arm_label(best)} is {f1['value']:.2f} [{f1['low']:.2f}, {f1['high']:.2f}] vs "
                f"{base_f1:.2f} for always answering '{label['answer']}'."
            )
    return out


# --------------------------------------------------------------------------------------------------
# report.md


def render_markdown(results: dict) -> str:
    """The human-readable report (everything in it is also in results.json)."""
    arms = results.get("arms", {})
    ok = _ok_arms(results)
    n = results.get("n_questions", 0)
    status = results.get("status", "complete")
    lines = [
        f"# Comparison: {results.get('domain', '?')} ({results.get('split', 'test')} split, n = {n})",
        "",
    ]
    if status != "complete":
        lines += [f"**Status: {status.upper()}.** {results.get('error') or ''}", ""]
    model = results.get("model", {})
    limit_note = (
        f" (a seeded random sample of {n} of {results.get('n_total')} questions, compare.limit = {results.get('limit')})"
        if results.get("limit")
        else ""
    )
    lines += [
        f"- Model: {model.get('name', '?')} on {results.get('device', '?')}; questions: {results.get('split_source', '?')}{limit_note}",
        f"- Answer types: {_counts(results.get('answer_types', {}))}; seen in training: {_counts(results.get('seen_counts', {})) or 'not recorded'}",
        f"- Run: {(results.get('run') or {}).get('note', 'no fine-tuned arm')}",
        f"- Created {results.get('created_at', '?')}, seed {results.get('seed')}, {results.get('n_bootstrap')} bootstrap resamples, git {results.get('git_commit') or 'n/a'}",
        "",
        "## Verdict",
        "",
        *[f"- {s}" for s in results.get("verdict") or verdict(results)],
        "",
        "## Main results",
        "",
        "`correct` (the main metric) means: "
        + "; ".join(
            f"{t}: {_CORRECT_MEANS[t]}" for t in results.get("answer_types", {}) if t in _CORRECT_MEANS
        )
        + ". Brackets are 95% bootstrap confidence intervals.",
        "",
    ]
    types = set(results.get("answer_types", {}))
    columns = [
        c for c in _TYPE_COLUMNS if c[0] in types and any(_type_metric(a, c[0], c[1]) for a in ok.values())
    ]
    has_f1 = any((a.get("summary") or {}).get("label") for a in ok.values())
    has_recall = any(((a.get("summary") or {}).get("metrics") or {}).get("recall_at_k") for a in ok.values())
    has_judge = any(((a.get("summary") or {}).get("metrics") or {}).get("judge_correct") for a in ok.values())
    header = ["arm", "n", "correct [95% CI]", *[c[2] for c in columns]]
    header += ["label: macro-F1"] if has_f1 else []
    header += ["recall@k"] if has_recall else []
    header += ["judge"] if has_judge else []
    rows = []
    for name, arm in arms.items():
        if arm.get("status") != "ok":
            rows.append(
                [name, "-", f"**{arm.get('status')}**: {arm.get('error') or ''}", *["-"] * (len(header) - 3)]
            )
            continue
        summary = arm["summary"]
        row = [name, summary["n"], _ci_pct(summary["metrics"].get(MAIN_METRIC))]
        row += [_fmt_metric(metric, _type_metric(arm, t, metric)) for t, metric, _ in columns]
        if has_f1:
            row.append(_ci_num((summary.get("label") or {}).get("macro_f1")))
        if has_recall:
            row.append(_ci_pct(summary["metrics"].get("recall_at_k")))
        if has_judge:
            row.append(_ci_pct(summary["metrics"].get("judge_correct")))
        rows.append(row)
    lines += [_md_table(header, rows), ""]
    lines += _pairwise_section(results)
    lines += _seen_section(results, ok)
    lines += _type_section(ok)
    lines += _baseline_section(results)
    lines += _cost_section(arms)
    lines += _example_section(results)
    lines += _phase_section(results)
    skipped = results.get("skipped_arms") or {}
    failed = {k: v for k, v in arms.items() if v.get("status") == "failed"}
    if skipped or failed:
        lines += ["## Failed and skipped arms", ""]
        lines += [f"- **{k}** failed: `{v.get('error')}`" for k, v in failed.items()]
        lines += [
            f"- **{k}** skipped: {v}" for k, v in skipped.items() if arms.get(k, {}).get("status") != "failed"
        ]
        lines.append("")
    if results.get("judge"):
        judge = results["judge"]
        lines += ["## LLM judge", "", f"- {judge.get('model')}: {judge.get('status')}", ""]
    lines += [
        "## Reproduce",
        "",
        f"```\n{results.get('command', 'domainllm compare')}\n```",
        "",
        "The resolved config, library versions and every per-question score are in results.json and "
        "predictions.jsonl beside this file.",
        "",
    ]
    return "\n".join(lines)


def _counts(counts: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items())


def _type_metric(arm: dict, answer_type: str, metric: str) -> dict | None:
    by_type = (arm.get("summary") or {}).get("by_type", {})
    return (by_type.get(answer_type) or {}).get("metrics", {}).get(metric)


def _pairwise_section(results: dict) -> list[str]:
    rows = results.get("pairwise") or []
    if not rows:
        return []
    table = [
        [
            r["arm_a"],
            r["arm_b"],
            f"{100 * r['diff']:+.1f} pts" if _finite(r["diff"]) else "n/a",
            _p(r["p_value"]).removeprefix("p ").removeprefix("= "),
            _p(r["p_holm"]).removeprefix("p ").removeprefix("= "),
            "yes" if _finite(r["p_holm"]) and r["p_holm"] < ALPHA else "no",
            r["test"],
            r["n"],
        ]
        for r in rows
    ]
    return [
        "## Pairwise tests (paired, on `correct`)",
        "",
        "McNemar's test on the questions both arms answered (exact binomial below 25 discordant pairs), "
        f"p-values Holm-adjusted over all {len(rows)} pair{'s' if len(rows) > 1 else ''}. diff = arm A - arm B.",
        "",
        _md_table(["arm A", "arm B", "diff", "p", "p (Holm)", f"significant at {ALPHA}", "test", "n"], table),
        "",
    ]


def _seen_section(results: dict, ok: dict) -> list[str]:
    if not results.get("seen_counts"):
        return []
    subsets = [s for s in ("seen", "unseen") if s in results["seen_counts"]]
    rows = []
    for name, arm in ok.items():
        by_seen = (arm.get("summary") or {}).get("by_seen", {})
        rows.append(
            [name, *[_ci_pct((by_seen.get(s) or {}).get("metrics", {}).get(MAIN_METRIC)) for s in subsets]]
        )
    header = ["arm", *[f"{s} in training (n = {results['seen_counts'][s]})" for s in subsets]]
    lines = [
        "## Seen vs unseen in training",
        "",
        "`seen_in_train` marks test questions whose fact also appears (reworded) in the training QA pairs. "
        "Fine-tuning can only have learned the seen ones; retrieval can serve both.",
        "",
        _md_table(header, rows),
        "",
    ]
    for subset in subsets:
        tests = (results.get("pairwise_by_seen") or {}).get(subset) or []
        if tests:
            lines += [
                f"Paired tests on the {subset} questions (Holm over {len(tests)} pair{'s' if len(tests) > 1 else ''}): "
                + "; ".join(
                    f"{r['arm_a']} vs {r['arm_b']} {100 * r['diff']:+.0f} pts ({_p(r['p_holm'])})"
                    for r in tests
                    if _finite(r["diff"])
                )
                + ".",
                "",
            ]
    return lines


def _type_section(ok: dict) -> list[str]:
    lines = ["## By answer type", ""]
    any_rows = False
    for answer_type in ("text", "number", "choice", "label"):
        per_arm = {n: (a.get("summary") or {}).get("by_type", {}).get(answer_type) for n, a in ok.items()}
        per_arm = {n: v for n, v in per_arm.items() if v}
        if not per_arm:
            continue
        metrics = list(dict.fromkeys(m for v in per_arm.values() for m in v["metrics"]))
        rows = [
            [n, v["n"], *[_fmt_metric(m, v["metrics"].get(m)) for m in metrics]] for n, v in per_arm.items()
        ]
        lines += [f"### {answer_type}", "", _md_table(["arm", "n", *metrics], rows), ""]
        any_rows = True
    return lines if any_rows else []


def _baseline_section(results: dict) -> list[str]:
    baselines = results.get("baselines") or {}
    if not baselines:
        return []
    rows = []
    for answer_type, entry in baselines.get("by_type", {}).items():
        f1 = entry.get("macro_f1")
        rows.append(
            [
                answer_type,
                entry["name"],
                f"`{entry['answer']}`",
                entry["n"],
                _ci_pct(entry.get(MAIN_METRIC)),
                _ci_num(f1) if f1 else "-",
            ]
        )
    overall = baselines.get("overall", {})
    rows.append(["all", "per-type baselines together", "", results.get("n_questions"), _ci_pct(overall), "-"])
    return [
        "## Trivial baselines",
        "",
        "Answers that need no model, learned from the train split (the dashed line in chart.png).",
        "",
        _md_table(["type", "baseline", "answer", "n", "correct [95% CI]", "macro-F1"], rows),
        "",
    ]


def _cost_section(arms: dict) -> list[str]:
    rows = []
    for name, arm in arms.items():
        c = arm.get("costs") or {}
        if not c:
            continue
        rows.append(
            [
                name,
                _num(c.get("wall_s")),
                _num(c.get("latency_p50_s"), 2),
                _num(c.get("latency_p95_s"), 2),
                _num(c.get("generated_tokens_per_s")),
                _num(c.get("mean_prompt_tokens")),
                _num(c.get("mean_generated_tokens")),
                _num(c.get("loglik_s")),
                _num(c.get("peak_rss_mb"), 0),
                _num(c.get("cuda_peak_mb"), 0),
                _num(c.get("training_wall_s")),
                _num(c.get("trainable_params")),
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
    return [
        "## Costs",
        "",
        "Latency per question = its batch's wall time / batch size; wall s is the arm's generation, loglik s "
        "the extra time spent scoring choice options by log-likelihood. Tokens are counted with the local "
        "tokenizer; prompt tokens show what retrieval adds to every call. Peak RSS is the process's "
        "high-water mark when the arm finished (it includes everything loaded before).",
        "",
        _md_table(header, rows),
        "",
    ]


def _example_section(results: dict) -> list[str]:
    examples = results.get("examples") or []
    if not examples:
        return []
    lines = ["## Examples", "", "A seeded pick across answer types; ✓ = counted correct.", ""]
    for ex in examples:
        seen = ex.get("seen_in_train")
        seen_text = "" if seen is None else (", seen in training" if seen else ", not seen in training")
        lines += [
            f"**{ex['id']}** ({ex['answer_type']}{seen_text}): {ex['question']}",
            "",
            f"- reference: {ex['reference']}",
        ]
        for arm, answer in ex["answers"].items():
            mark = "✓" if ex.get("correct", {}).get(arm) == 1.0 else "✗"
            lines.append(f"- {arm} {mark}: {answer!s}".rstrip())
        lines.append("")
    return lines


def _phase_section(results: dict) -> list[str]:
    phases = results.get("phases") or {}
    if not phases:
        return []
    rows = [[name, _num(seconds)] for name, seconds in phases.items()]
    rows.append(["**total**", _num(sum(v for v in phases.values() if _finite(v)))])
    return ["## Phase timings", "", _md_table(["phase", "wall s"], rows), ""]


# --------------------------------------------------------------------------------------------------
# chart.png


def make_chart(results: dict, path: Path) -> Path:
    """Main metric per arm with 95% CI error bars and the trivial baseline as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = results.get("arms", {})
    names = list(arms)
    means, lows, highs = [], [], []
    for name in names:
        ci = _main(arms[name]) if arms[name].get("status") == "ok" else None
        mean = ci["mean"] if ci and _finite(ci.get("mean")) else 0.0
        means.append(100 * mean)
        lows.append(100 * (mean - ci["low"]) if ci else 0.0)
        highs.append(100 * (ci["high"] - mean) if ci else 0.0)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.5 * len(names) + 2), 4.5), dpi=120)
    colors = ["#4C72B0", "#55A868", "#C44E52", "#8172B2", "#CCB974", "#64B5CD", "#8C8C8C"]
    x = list(range(len(names)))
    bars = ax.bar(
        x,
        means,
        yerr=[lows, highs],
        capsize=6,
        color=[colors[i % len(colors)] for i in x],
        edgecolor="black",
        linewidth=0.6,
    )
    for i, (bar, name) in enumerate(zip(bars, names, strict=True)):
        status = arms[name].get("status")
        text = f"{means[i]:.0f}%" if status == "ok" else status
        ax.text(
            bar.get_x() + bar.get_width() / 2,
            means[i] + highs[i] + 1.5,
            text,
            ha="center",
            va="bottom",
            fontsize=10,
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1},
        )
    baselines = results.get("baselines") or {}
    overall = baselines.get("overall")
    if overall and _finite(overall.get("mean")):
        # In the legend, not on the line: a label on the line collides with the bars' own labels
        # whenever an arm scores near the baseline, which is exactly when it matters.
        ax.axhline(
            100 * overall["mean"],
            color="black",
            linestyle="--",
            linewidth=1.2,
            label=f"trivial baseline {100 * overall['mean']:.0f}%",
        )
        ax.legend(loc="best", frameon=False, fontsize=9)
    label_base = baselines.get("by_type", {}).get("label")
    if label_base and set(results.get("answer_types", {})) != {"label"}:
        ax.axhline(100 * label_base[MAIN_METRIC]["mean"], color="grey", linestyle=":", linewidth=1)
    ax.set_xticks(x, [n.replace("_", " ") for n in names], rotation=0 if len(names) <= 5 else 20)
    ax.set_ylim(0, 105)
    ax.set_ylabel("correct (%)")
    ax.set_title(
        f"{results.get('domain', '')}: correct per arm, {results.get('split', 'test')} split "
        f"(n = {results.get('n_questions', 0)}, 95% bootstrap CI)",
        fontsize=11,
    )
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    _atomic(path, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)
    return path


# --------------------------------------------------------------------------------------------------
# Writing


def _json_safe(value: Any) -> Any:
    """nan/inf -> None (strict JSON), tuples -> lists, Paths -> str."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _json_safe(value.item())
    return value


def _atomic(path: Path, write: Any) -> None:
    """Call ``write(tmp_path)`` and rename the temporary file onto ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_text(path: Path, text: str) -> None:
    _atomic(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def write_artifacts(results: dict, predictions: Sequence[dict], output_dir: Path) -> None:
    """predictions.jsonl (one line per question per arm) and chart.png."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps(_json_safe(row), ensure_ascii=False) + "\n" for row in predictions)
    _write_text(output_dir / "predictions.jsonl", lines)
    make_chart(results, output_dir / "chart.png")


def write_summary(results: dict, output_dir: Path) -> None:
    """report.md, then results.json: the file that says the comparison is complete is written last."""
    output_dir = Path(output_dir)
    _write_text(output_dir / "report.md", render_markdown(results))
    _write_text(
        output_dir / "results.json", json.dumps(_json_safe(results), indent=2, ensure_ascii=False) + "\n"
    )


def write_report(results: dict, predictions: Sequence[dict], output_dir: Path) -> Path:
    """All four files: predictions.jsonl and chart.png, then report.md, then results.json last."""
    write_artifacts(results, predictions, output_dir)
    write_summary(results, output_dir)
    return Path(output_dir)


def clear_previous(output_dir: Path) -> None:
    """Remove a previous comparison's files, so that a failed run cannot leave an old report claiming success."""
    for name in REPORT_FILES:
        (Path(output_dir) / name).unlink(missing_ok=True)


def write_failure(results: dict, output_dir: Path) -> Path:
    """A failed comparison: results.json with status failed and the error, and a report.md that says so."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    results = {**results, "status": "failed"}
    text = (
        f"# Comparison FAILED: {results.get('domain', '?')}\n\n"
        f"The comparison did not finish: `{results.get('error')}`\n\n"
        "No results are reported. Phase timings up to the failure:\n\n"
        + _md_table(["phase", "wall s"], [[k, _num(v)] for k, v in (results.get("phases") or {}).items()])
        + "\n"
    )
    _write_text(output_dir / "report.md", text)
    _write_text(
        output_dir / "results.json", json.dumps(_json_safe(results), indent=2, ensure_ascii=False) + "\n"
    )
    return output_dir


# --------------------------------------------------------------------------------------------------
# Console


def results_table(results: dict) -> Any:
    """A rich Table of the main results (the CLI prints it after ``compare``)."""
    from rich.table import Table

    table = Table(
        title=f"{results.get('domain', '')}: {results.get('split', 'test')} split, n = {results.get('n_questions', 0)}",
        header_style="bold",
    )
    has_seen = bool(results.get("seen_counts"))
    has_f1 = any((a.get("summary") or {}).get("label") for a in results.get("arms", {}).values())
    columns = [
        "arm",
        "correct [95% CI]",
        *(["macro-F1"] if has_f1 else []),
        *(["seen", "unseen"] if has_seen else []),
        "gen tok/s",
        "p50 s/q",
        "status",
    ]
    for col in columns:
        table.add_column(
            col, justify="left" if col in ("arm", "status") else "right", no_wrap=col != "status"
        )
    for name, arm in results.get("arms", {}).items():
        summary = arm.get("summary") or {}
        by_seen = summary.get("by_seen", {})
        costs = arm.get("costs") or {}
        seen_cells = [
            _ci_pct((by_seen.get(s) or {}).get("metrics", {}).get(MAIN_METRIC)) if by_seen else "-"
            for s in ("seen", "unseen")
        ]
        table.add_row(
            name,
            _ci_pct(summary.get("metrics", {}).get(MAIN_METRIC)) if summary else "-",
            *([_ci_num((summary.get("label") or {}).get("macro_f1"))] if has_f1 else []),
            *(seen_cells if has_seen else []),
            _num(costs.get("generated_tokens_per_s")),
            _num(costs.get("latency_p50_s"), 2),
            arm.get("status", "?") if arm.get("status") == "ok" else f"[red]{arm.get('status')}[/red]",
        )
    overall = (results.get("baselines") or {}).get("overall")
    if overall:
        label_f1 = ((results["baselines"].get("by_type") or {}).get("label") or {}).get("macro_f1")
        cells = [_ci_pct(overall), *([_ci_num(label_f1)] if has_f1 else [])]
        table.add_row(
            "trivial baseline", *cells, *[""] * (len(columns) - 2 - len(cells)), "[dim]no model[/dim]"
        )
    return table


def print_results(results: dict | Path | str, console: Any = None) -> None:
    """Print the results table and the verdict (``results`` may be a results.json path or its folder)."""
    from rich.console import Console

    if not isinstance(results, dict):
        path = Path(results)
        path = path / "results.json" if path.is_dir() else path
        results = json.loads(path.read_text(encoding="utf-8"))
    import sys

    # Piped output (logs, CI) gets 120 columns instead of rich's 80, so the table does not wrap.
    console = console or Console(highlight=False, width=None if sys.stdout.isatty() else 120)
    console.print(results_table(results))
    for sentence in results.get("verdict") or []:
        console.print(f"- {sentence}")
