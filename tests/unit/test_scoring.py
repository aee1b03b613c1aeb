"""Scoring wiring for the comparison: hand-made records and predictions, hand-computed expected values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from domainllm.benchmark.embedding import embedding_scorer
from domainllm.data.records import QARecord
from domainllm.errors import EvalError
from domainllm.eval.baselines import compute_baselines
from domainllm.eval.metrics import macro_f1
from domainllm.eval.scoring import (
    add_embedding_similarity,
    check_records,
    judge_verdicts,
    loglik_choice_correct,
    macro_f1_interval,
    retrieval_recall,
    score_records,
    summarize_scores,
)


def text(i: str, answer: str, aliases=(), seen=None, doc_id=None) -> QARecord:
    return QARecord(
        id=i, question=f"q{i}?", answer=answer, aliases=tuple(aliases), seen_in_train=seen, doc_id=doc_id
    )


def number(i: str, answer: str, aliases=()) -> QARecord:
    return QARecord(id=i, question=f"q{i}?", answer=answer, answer_type="number", aliases=tuple(aliases))


def choice(i: str, answer: str, options) -> QARecord:
    return QARecord(id=i, question=f"q{i}?", answer=answer, answer_type="choice", options=tuple(options))


def label(i: str, answer: str) -> QARecord:
    return QARecord(
        id=i, question=f"q{i}?", answer=answer, answer_type="label", labels=("yes", "no", "maybe")
    )


# --- per-question wiring -------------------------------------------------------------------------


def test_text_scores_with_aliases_hand_computed() -> None:
    rec = text("1", "Dr. Ines Marlow", aliases=["Ines Marlow"])
    (s,) = score_records([rec], ["It is Ines Marlow."])
    assert s["contains"] == 1.0 and s["correct"] == 1.0
    assert s["exact_match"] == 0.0
    # best reference is the alias "ines marlow": P = 2/4, R = 2/2 -> F1 = 2/3 (same for ROUGE-L)
    assert s["token_f1"] == pytest.approx(2 / 3)
    assert s["rouge_l"] == pytest.approx(2 / 3)
    (exact,) = score_records([rec], ["ines marlow"])
    assert exact["exact_match"] == 1.0
    (wrong,) = score_records([rec], ["Dr. Tomas Reyes"])
    assert wrong["correct"] == 0.0 and wrong["token_f1"] == pytest.approx(2 * (1 / 3) * (1 / 3) / (2 / 3))


def test_number_scores_mae_and_tolerance() -> None:
    recs = [number("1", "85"), number("2", "85"), number("3", "48", aliases=["2 days"])]
    scores = score_records(recs, ["It costs €85.", "about 90", "no idea"], number_rel_tol=0.05)
    assert [s["within_tol"] for s in scores] == [1.0, 0.0, 0.0]  # |90-85| = 5 > 0.05 * 85 = 4.25
    assert scores[1]["abs_error"] == 5.0
    assert math.isnan(scores[2]["abs_error"]) and scores[2]["parsed"] == 0.0
    summary = summarize_scores(recs, scores, ["", "", ""], n_bootstrap=200)
    assert summary["metrics"]["abs_error"]["mean"] == pytest.approx(2.5)  # MAE over the parsed answers
    assert summary["metrics"]["abs_error"]["n"] == 2
    assert summary["metrics"]["correct"]["mean"] == pytest.approx(1 / 3)
    # a looser tolerance accepts 90 for 85
    loose = score_records(recs[1:2], ["about 90"], number_rel_tol=0.1)
    assert loose[0]["correct"] == 1.0


def test_choice_generated_and_loglik() -> None:
    recs = [
        choice("1", "Local anaesthetic", ["General", "Local anaesthetic", "None"]),
        choice("2", "Norwegian", ["Norwegian", "Danish"]),
        text("3", "x"),
    ]
    scores = score_records(recs, ["B. Local anaesthetic", "Danish, I think", "x"])
    assert [s["correct"] for s in scores] == [1.0, 0.0, 1.0]
    assert scores[0]["choice_acc"] == 1.0 and scores[1]["choice_acc"] == 0.0
    ll = loglik_choice_correct(recs, [[-3.0, -1.0, -2.0], [-1.0, -2.0], None])
    assert ll[:2] == [1.0, 1.0]  # loglik knows question 2 although the generated answer was wrong
    assert math.isnan(ll[2])
    assert loglik_choice_correct(recs[:1], [[-1.0, -2.0, -3.0]]) == [0.0]
    with pytest.raises(EvalError, match="3 options but 2"):
        loglik_choice_correct(recs[:1], [[-1.0, -2.0]])


def test_label_accuracy_and_macro_f1_hand_computed() -> None:
    recs = [label("1", "yes"), label("2", "yes"), label("3", "no"), label("4", "maybe")]
    answers = ["Yes, it does.", "No.", "no", "I cannot say"]
    scores = score_records(recs, answers)
    assert [s["label_acc"] for s in scores] == [1.0, 0.0, 1.0, 0.0]
    summary = summarize_scores(recs, scores, answers, n_bootstrap=300, seed=1)
    # yes: TP1 FN1 -> 2/3; no: TP1 FP1 -> 2/3; maybe: FN1 -> 0  => macro-F1 = 4/9
    f1 = summary["label"]["macro_f1"]
    assert f1["value"] == pytest.approx(4 / 9)
    assert 0.0 <= f1["low"] <= f1["value"] <= f1["high"] <= 1.0
    assert summary["label"]["predicted"] == {"yes": 1, "no": 2, "(none)": 1}


def test_fast_macro_f1_statistic_equals_reference_on_resamples() -> None:
    rng = np.random.default_rng(0)
    labels = ["yes", "no", "maybe"]
    golds = list(rng.choice(labels, 60))
    preds = [None if x == "none" else x for x in rng.choice([*labels, "none"], 60)]
    out = macro_f1_interval(golds, preds, labels, n_bootstrap=500, seed=3)
    assert out["value"] == pytest.approx(macro_f1(golds, preds, labels=labels))
    # the interval is a percentile interval of reference macro-F1 values on the same resamples
    ref = []
    for idx in np.random.default_rng(3).integers(0, 60, size=(500, 60)):
        ref.append(macro_f1([golds[i] for i in idx], [preds[i] for i in idx], labels=labels))
    low, high = np.quantile(ref, [0.025, 0.975])
    assert out["low"] == pytest.approx(low) and out["high"] == pytest.approx(high)


def test_retrieval_recall_uses_gold_doc_id() -> None:
    recs = [text("1", "a", doc_id="prices"), text("2", "b", doc_id="staff"), text("3", "c")]
    got = retrieval_recall(recs, [["hours", "prices"], ["prices", "hours"], ["x"]], k=2)
    assert got[:2] == [1.0, 0.0] and math.isnan(got[2])
    assert retrieval_recall(recs[:1], [["hours", "prices"]], k=1) == [0.0]


def test_embedding_similarity_with_the_real_embedder() -> None:
    recs = [text("1", "Wednesday"), text("2", "48 hours notice"), number("3", "5")]
    answers = ["The practice is closed on Wednesday.", "Bananas are yellow.", "5"]
    scores = score_records(recs, answers)
    scorer = embedding_scorer("default")  # the real all-MiniLM-L6-v2 through sentence-transformers
    add_embedding_similarity(recs, answers, scores, scorer)
    assert scores[0]["embed_sim"] > scores[1]["embed_sim"] + 0.2
    assert "embed_sim" not in scores[2]  # text questions only
    assert scorer.similarities(["", "Wednesday"], [["Wednesday"], ["Wednesday"]]) == [0.0, pytest.approx(1.0)]


# --- checks before generation --------------------------------------------------------------------


def test_check_records_rejects_empty_split_naming_the_file() -> None:
    with pytest.raises(EvalError, match=r"qa/test\.jsonl.*has no questions"):
        check_records([], "the test split 'x/qa/test.jsonl'")


def test_check_records_rejects_unknown_answer_type_naming_the_record() -> None:
    bad = QARecord(id="q-17", question="?", answer="a", answer_type="essay")
    with pytest.raises(EvalError, match=r"'q-17'.*'essay'.*text, number, choice, label"):
        check_records([text("1", "a"), bad], "the test split")


def test_check_records_rejects_unscorable_questions() -> None:
    with pytest.raises(EvalError, match=r"'c1'.*not one of its options"):
        check_records([choice("c1", "Swedish", ["Norwegian", "Danish"])], "the test split")
    with pytest.raises(EvalError, match=r"'n1'.*holds no number"):
        check_records([number("n1", "several")], "the test split")
    with pytest.raises(EvalError, match="occurs twice"):
        check_records([text("1", "a"), text("1", "b")], "the test split")


# --- summaries and baselines ---------------------------------------------------------------------


def test_summary_breaks_down_by_type_and_seen() -> None:
    recs = [
        text("1", "apple", seen=True),
        text("2", "pear", seen=False),
        number("3", "7"),
        text("4", "dog", seen=True),
    ]
    answers = ["apple", "wrong", "7", "dog"]
    summary = summarize_scores(recs, score_records(recs, answers), answers, n_bootstrap=200)
    assert summary["n"] == 4
    assert summary["metrics"]["correct"]["mean"] == pytest.approx(0.75)
    assert summary["by_type"]["text"]["n"] == 3 and summary["by_type"]["number"]["n"] == 1
    assert summary["by_type"]["number"]["metrics"]["correct"]["mean"] == 1.0
    assert summary["by_seen"]["seen"]["metrics"]["correct"] == {"mean": 1.0, "low": 1.0, "high": 1.0, "n": 2}
    assert summary["by_seen"]["unseen"]["metrics"]["correct"]["mean"] == 0.0
    assert "label" not in summary


def test_baselines_hand_computed() -> None:
    train = [
        label("t1", "yes"),
        label("t2", "yes"),
        label("t3", "no"),
        text("t4", "Wednesday"),
        text("t5", "Wednesday"),
        text("t6", "€85"),
        choice("t7", "c", ["a", "b", "c"]),
        choice("t8", "z", ["x", "y", "z"]),
        choice("t9", "a", ["a", "b", "c"]),
        number("t10", "3"),
        number("t11", "3"),
        number("t12", "10"),
    ]
    test = [
        label("1", "yes"),
        label("2", "no"),
        label("3", "maybe"),
        label("4", "yes"),
        text("5", "Wednesday"),
        text("6", "Friday"),
        choice("7", "f", ["d", "e", "f"]),
        choice("8", "g", ["g", "h"]),  # only two options: the baseline position is clamped to B
        number("9", "3"),
    ]
    base = compute_baselines(train, test, n_bootstrap=200)
    by = base["by_type"]
    assert by["label"]["answer"] == "yes" and by["label"]["correct"]["mean"] == 0.5
    # always "yes": yes F1 = 2*2/(2*2+2+0) = 2/3, no and maybe 0 -> 2/9
    assert by["label"]["macro_f1"]["value"] == pytest.approx(2 / 9)
    assert by["text"]["answer"] == "Wednesday" and by["text"]["correct"]["mean"] == 0.5
    assert by["choice"]["answer"] == "C" and by["choice"]["correct"]["mean"] == 0.5
    assert by["number"]["answer"] == "3" and by["number"]["correct"]["mean"] == 1.0
    # overall: 2 + 1 + 1 + 1 correct of 9 questions
    assert base["overall"]["mean"] == pytest.approx(5 / 9)
    assert compute_baselines([], test) == {}


def test_judge_verdicts_parse_and_batch() -> None:
    recs = [text(str(i), "a") for i in range(5)]
    replies = iter(
        [["CORRECT", "incorrect: wrong fee", "Correct."], ["???", "It is incorrect, not correct."]]
    )
    seen_batches = []

    def invoke(batch):
        seen_batches.append(batch)
        return next(replies)

    got = judge_verdicts(invoke, lambda r, a: (r.question, a), recs, ["x"] * 5, batch_size=3)
    assert [len(b) for b in seen_batches] == [3, 2]
    assert seen_batches[0][0] == ("q0?", "x")
    assert got[:3] == [1.0, 0.0, 1.0] and math.isnan(got[3]) and got[4] == 0.0
