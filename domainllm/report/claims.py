"""The verdict: plain-language conclusions generated from the numbers only.

No claim without numbers behind it: a difference is called a difference only when its Holm-adjusted
paired test gives p < 0.05 (:data:`ALPHA`); otherwise the sentence says it is within noise, with the
p-value. Intervals are 95% bootstrap CIs of the main metric.
"""

from __future__ import annotations

from domainllm.eval.results import ArmResult, Results
from domainllm.report.format import ALPHA, arm_label, ci_pct, finite, p_text, pct

__all__ = ["compare_sentence", "verdict"]

# The dentist comparison's questions, in the order the verdict answers them.
_QUESTIONS = (
    ("finetuned", "prompt_only", "Fine-tuning alone"),
    ("rag", "prompt_only", "Retrieval alone"),
    ("finetuned_rag", "rag", "Fine-tuning on top of retrieval"),
    ("finetuned_rag", "finetuned", "Retrieval on top of fine-tuning"),
)


def _capital(text: str) -> str:
    return text[0].upper() + text[1:] if text else text


def compare_sentence(results: Results, a: str, b: str, what: str, subset: str | None = None) -> str | None:
    """One sentence comparing arm ``a`` with arm ``b``, claiming a difference only when the test supports it."""
    arms = results.ok_arms
    if a not in arms or b not in arms:
        return None
    row = results.pair(a, b, subset)
    ci_a, ci_b = arms[a].summary.main_of(subset), arms[b].summary.main_of(subset)  # type: ignore[union-attr]
    if row is None or ci_a is None or ci_b is None or not finite(row.p_holm):
        return None
    scores = f"{ci_pct(ci_a)} vs {ci_pct(ci_b)}"
    lead = f"{what}: {arm_label(a)} answered {scores} for {arm_label(b)} ({p_text(row.p_holm)})"
    if row.p_holm < ALPHA and row.diff > 0:
        return f"{lead}, a real improvement."
    if row.p_holm < ALPHA and row.diff < 0:
        return f"{lead}, significantly worse."
    return f"{lead}: not a significant difference at this sample size."


def _mean(arm: ArmResult) -> float:
    main = arm.main
    return main.mean if main is not None and finite(main.mean) else -1.0


def _headline(results: Results, arms: dict[str, ArmResult], ref: str, best: str) -> str:
    n = results.n_questions
    if len(arms) == 1:
        return f"Only {arm_label(best)} produced answers: {ci_pct(arms[best].main)} correct on {n} questions."
    if best == ref or _mean(arms[best]) == _mean(arms[ref]):
        return f"No arm scored above {arm_label(ref)}, which answered {ci_pct(arms[ref].main)} correctly on {n} questions."
    row = results.pair(best, ref)
    best_ci, ref_ci = ci_pct(arms[best].main), ci_pct(arms[ref].main)
    if row and finite(row.p_holm) and row.p_holm < ALPHA and row.diff > 0:
        return f"{_capital(arm_label(best))} answered {best_ci} correctly vs {ref_ci} for {arm_label(ref)} ({p_text(row.p_holm)}, n = {n})."
    if row is None or not finite(row.p_holm):
        # With several fine-tuned runs the tested family is fixed in advance (eval.assemble.planned_pairs)
        # and may not hold this pair: say so rather than call an untested gap chance.
        return (
            f"The best arm, {arm_label(best)}, answered {best_ci} vs {ref_ci} for {arm_label(ref)} on {n} questions; "
            "that pair is not one of this report's planned tests, so no claim is made about it (the planned "
            "comparisons follow)."
        )
    return (
        f"No arm was significantly better than {arm_label(ref)}: the best, {arm_label(best)}, answered "
        f"{best_ci} vs {ref_ci} ({p_text(row.p_holm)}); on {n} questions that gap is within chance."
    )


def verdict(results: Results) -> list[str]:
    """Plain-language conclusions, one sentence per finding."""
    arms = results.ok_arms
    if not arms:
        return ["No arm produced results, so there is nothing to compare (see the failures below)."]
    ref = "prompt_only" if "prompt_only" in arms else next(iter(arms))
    best = max(arms, key=lambda name: _mean(arms[name]))  # first of equals, in config order
    out = [_headline(results, arms, ref, best)]
    for a, b, what in _QUESTIONS:
        if {a, b} == {best, ref}:
            continue
        sentence = compare_sentence(results, a, b, what)
        if sentence:
            out.append(sentence)
    out.extend(_seen_sentences(results))
    out.extend(_recipe_sentences(results))
    out.extend(_baseline_sentences(results, arms, best))
    out.extend(_constant_label_sentences(arms))
    for name, arm in results.arms.items():
        if arm.status == "failed":
            out.append(f"The {name} arm failed ({arm.error}); it has no scores.")
        if arm.loglik_error:
            out.append(f"Option log-likelihoods of the {name} arm failed ({arm.loglik_error}).")
    for spec, reason in results.skipped_arms.items():
        out.append(f"The arm {spec} was not run: {reason}")
    return out


def _seen_sentences(results: Results) -> list[str]:
    arms = results.ok_arms
    if "finetuned" not in arms or "prompt_only" not in arms:
        return []
    out = []
    for subset, what in (("unseen", "On facts not seen in training"), ("seen", "On facts seen in training")):
        sentence = compare_sentence(results, "finetuned", "prompt_only", what, subset)
        part = arms["finetuned"].summary.by_seen.get(subset)  # type: ignore[union-attr]
        if sentence is None or part is None or part.n == results.n_questions:
            continue  # no such subset, or it is every question: the overall sentence already says it
        out.append(sentence.replace(what, f"{what} (n = {part.n})", 1))
    # The dentist's question: what carries facts the model never saw?
    ft = results.pair("finetuned", "prompt_only", "unseen")
    rag = results.pair("rag", "prompt_only", "unseen") if "rag" in arms else None
    if ft and rag and finite(ft.p_holm) and finite(rag.p_holm):
        ft_sig = ft.p_holm < ALPHA and ft.diff > 0
        rag_sig = rag.p_holm < ALPHA and rag.diff > 0
        if rag_sig and not ft_sig:
            out.append(
                "On unseen facts retrieval beat the persona prompt and fine-tuning did not: retrieval is what "
                "carries facts the model was never trained on."
            )
        elif ft_sig and not rag_sig:
            out.append("On unseen facts fine-tuning beat the persona prompt and retrieval did not.")
    return out


def _adapter_arm(spec: str, run: str) -> str:
    return spec if run == "default" else f"{spec}@{run}"


def _recipe_sentences(results: Results) -> list[str]:
    """With several fine-tuned runs: each against the persona prompt (overall and on the seen facts),
    each with retrieval against RAG, each against the reference (first) run; then the best on seen."""
    runs = list(results.runs)
    arms = results.ok_arms
    if len(runs) < 2:
        return []
    out = []
    ref = runs[0]
    for run in runs:
        ft, ft_rag = _adapter_arm("finetuned", run), _adapter_arm("finetuned_rag", run)
        for a, b, what, subset in (
            (ft, "prompt_only", f"Recipe {run}, fine-tuned", None),
            (ft, "prompt_only", f"Recipe {run}, fine-tuned, on facts seen in training", "seen"),
            (ft_rag, "rag", f"Recipe {run}, fine-tuned + RAG", None),
        ):
            sentence = compare_sentence(results, a, b, what, subset)
            if sentence:
                out.append(sentence)
        if run != ref:
            for spec in ("finetuned", "finetuned_rag"):
                sentence = compare_sentence(
                    results,
                    _adapter_arm(spec, run),
                    _adapter_arm(spec, ref),
                    f"Recipe {run} against recipe {ref} ({arm_label(_adapter_arm(spec, run))})",
                )
                if sentence:
                    out.append(sentence)
    seen = {
        run: arms[_adapter_arm("finetuned", run)].summary.main_of("seen")  # type: ignore[union-attr]
        for run in runs
        if _adapter_arm("finetuned", run) in arms
    }
    seen = {run: ci for run, ci in seen.items() if ci is not None and finite(ci.mean)}
    if seen:
        best = max(seen, key=lambda run: seen[run].mean)  # type: ignore[union-attr]
        row = results.pair(_adapter_arm("finetuned", best), "prompt_only", "seen")
        verdict = (
            "beats the persona prompt there"
            if row and finite(row.p_holm) and row.p_holm < ALPHA and row.diff > 0
            else "does not significantly beat the persona prompt there"
        )
        out.append(
            f"On the facts seen in training the best recipe is {best} (fine-tuned alone "
            f"{ci_pct(seen[best])}) and it {verdict}"
            + (f" ({p_text(row.p_holm)})." if row and finite(row.p_holm) else ".")
        )
    return out


def _constant_label_sentences(arms: dict[str, ArmResult], share: float = 0.95) -> list[str]:
    """Flag arms that give (almost) the same label to every label question: a prior, not an answer."""
    groups: dict[str, list[str]] = {}
    for name, arm in arms.items():
        label_summary = arm.summary.label if arm.summary else None
        predicted = label_summary.predicted if label_summary else {}
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
            f"{_capital(who)} answered '{label}' to (nearly) every label question: that is the class "
            "prior, not an answer to the question, so accuracy there says little beyond the majority baseline."
        )
    return out


def _baseline_sentences(results: Results, arms: dict[str, ArmResult], best: str) -> list[str]:
    overall = results.baselines.overall
    if overall is None or not finite(overall.mean):
        return []
    ci = arms[best].main
    base, desc, name = overall.mean, overall.description, arm_label(best)
    out = []
    if ci is not None and finite(ci.low) and ci.low > base:
        out.append(
            f"The best arm ({name}, 95% CI {ci_pct(ci)}) lies above the trivial baseline ({pct(base)}; {desc}): "
            "the model adds more than a constant answer."
        )
    elif ci is not None and finite(ci.high) and ci.high < base:
        out.append(
            f"Every arm is below the trivial baseline ({pct(base)}; {desc}): even the best, {name}, has a 95% CI "
            f"of {ci_pct(ci)}, so a constant answer would score higher."
        )
    else:
        out.append(
            f"No arm is clearly above the trivial baseline ({pct(base)}; {desc}): the best arm's 95% CI "
            f"{ci_pct(ci)} includes it, so these scores may be no better than a constant answer."
        )
    label = results.baselines.by_type.get("label")
    summary = arms[best].summary
    if label and summary and summary.label and "label" in summary.by_type:
        f1, base_f1 = summary.label.macro_f1, label.macro_f1
        if f1 and base_f1 and finite(f1.mean) and finite(base_f1.mean) and finite(f1.low):
            out.append(
                f"Macro-F1 of {arm_label(best)} is {f1.mean:.2f} [{f1.low:.2f}, {f1.high:.2f}] vs "
                f"{base_f1.mean:.2f} for always answering '{label.answer}'."
            )
    return out
