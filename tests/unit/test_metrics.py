"""Unit tests for domainllm.eval.metrics: hand-computed values, one behaviour per test."""

from __future__ import annotations

import math

import pytest

from domainllm.errors import DomainLLMError, EvalError
from domainllm.eval.metrics import (
    ANSWER_TYPES,
    MAIN_METRIC,
    accuracy,
    contains_match,
    cosine_similarities,
    exact_match,
    macro_f1,
    normalize_text,
    number_scores,
    parse_choice,
    parse_label,
    parse_number,
    recall_at_k,
    rouge_l,
    score_answer,
    token_f1,
)

# --- normalize_text ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("The Cat, sat!", "cat sat"),
        ("  An   apple\tand a pear. ", "apple and pear"),
        ("€1,250.50", "1250.50"),
        ("$1,250,000", "1250000"),
        ("It costs 3.14.", "it costs 3.14"),
        ("don’t", "dont"),
        ("don't", "dont"),
        ("“Quoted” — dash", "quoted dash"),
        ("well-known", "well known"),
        ("Answer:Paris", "answer paris"),
        ("**Bold**", "bold"),
        ("1,2", "1 2"),  # not a thousands group: two tokens
        ("theatre", "theatre"),  # articles are removed as whole words only
        ("", ""),
    ],
)
def test_normalize_text(raw: str, expected: str) -> None:
    assert normalize_text(raw) == expected


# --- exact / contains -----------------------------------------------------------------------------


def test_exact_match_uses_normalisation_and_aliases() -> None:
    assert exact_match("The Eiffel Tower.", ["eiffel tower"]) == 1.0
    assert exact_match("Tour Eiffel", ["Eiffel Tower", "Tour Eiffel"]) == 1.0
    assert exact_match("Eiffel Tower in Paris", ["Eiffel Tower"]) == 0.0


def test_exact_match_ignores_references_that_normalise_to_nothing() -> None:
    assert exact_match("", [""]) == 0.0
    assert exact_match("the", ["The"]) == 0.0
    assert exact_match("anything", []) == 0.0


def test_single_string_reference_is_one_reference_not_characters() -> None:
    assert contains_match("x", "xyz") == 0.0
    assert contains_match("answer is xyz", "xyz") == 1.0


def test_contains_match_whole_tokens() -> None:
    assert contains_match("The recommended dose is 500 mg twice daily.", ["500 mg"]) == 1.0
    assert contains_match("I know the answer", ["no"]) == 0.0  # "no" inside "know" does not count
    assert contains_match("about 50 patients", ["5"]) == 0.0
    assert contains_match("fee is €1,250.", ["1250"]) == 1.0


def test_contains_match_needs_contiguous_tokens() -> None:
    assert contains_match("new and old york", ["new york"]) == 0.0
    assert contains_match("in New York today", ["new york"]) == 1.0


def test_contains_match_empty_reference_never_matches() -> None:
    assert contains_match("whatever", [""]) == 0.0
    assert contains_match("whatever", ["a"]) == 0.0  # "a" is an article -> empty after normalisation


# --- token F1 / ROUGE-L --------------------------------------------------------------------------


def test_token_f1_hand_value() -> None:
    # pred "the cat sat" -> [cat, sat]; ref "a cat sat down" -> [cat, sat, down]
    # overlap 2; P = 2/2 = 1; R = 2/3; F1 = 2 * 1 * 2/3 / (1 + 2/3) = (4/3) / (5/3) = 0.8
    assert token_f1("the cat sat", ["a cat sat down"]) == pytest.approx(0.8)


def test_token_f1_counts_repeats_once_per_occurrence_and_takes_max() -> None:
    # pred [cat, cat] vs ref [cat]: overlap min(2,1) = 1; P = 1/2, R = 1; F1 = 2/3
    assert token_f1("cat cat", ["cat"]) == pytest.approx(2 / 3)
    assert token_f1("cat cat", ["dog", "cat"]) == pytest.approx(2 / 3)
    assert token_f1("dog", ["cat"]) == 0.0
    assert token_f1("", ["cat"]) == 0.0


def test_rouge_l_hand_values() -> None:
    # pred [w, x, y, z], ref [w, y, q, z]: LCS = w y z = 3; P = 3/4, R = 3/4; F = 0.75
    assert rouge_l("w x y z", ["w y q z"]) == pytest.approx(0.75)
    # pred [cat, sat, on, mat], ref [cat, on, mat]: LCS 3; P = 3/4, R = 1; F = 2*0.75/1.75 = 6/7
    assert rouge_l("the cat sat on the mat", ["cat on mat"]) == pytest.approx(6 / 7)


def test_rouge_l_respects_order_unlike_token_f1() -> None:
    # Same bag of words, reversed order: token F1 is 1, LCS is 1 of 3 tokens -> F = 1/3.
    assert token_f1("x y z", ["z y x"]) == pytest.approx(1.0)
    assert rouge_l("x y z", ["z y x"]) == pytest.approx(1 / 3)
    assert rouge_l("x y z", ["q", "x y z"]) == pytest.approx(1.0)


# --- cosine --------------------------------------------------------------------------------------


def test_cosine_similarities_rowwise_and_zero_vector() -> None:
    sims = cosine_similarities([[1, 0], [0, 0], [1, 1], [1, 0]], [[2, 0], [1, 1], [1, 0], [-1, 0]])
    assert sims == pytest.approx([1.0, 0.0, 1 / math.sqrt(2), -1.0])
    assert all(isinstance(s, float) for s in sims)


def test_cosine_similarities_empty_and_shape_mismatch() -> None:
    assert cosine_similarities([], []) == []
    with pytest.raises(EvalError, match="same number of rows"):
        cosine_similarities([[1, 0]], [[1, 0], [0, 1]])


# --- numbers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("€1,250", 1250.0),
        ("The fee is $1,250,000.75 per year", 1250000.75),
        ("1.5", 1.5),
        ("-3", -3.0),
        ("it fell to \u22124.5 degrees", -4.5),
        ("take .5 ml", 0.5),
        ("about 5%", 5.0),
        ("500mg twice", 500.0),
        ("vitamin B12 dose is 7", 7.0),  # digits glued to letters are a name
        ("two tablets", 2.0),
        ("half a tablet", 0.5),
        ("one of the 3 options", 3.0),  # digits win over number words
        ("no number here", None),
        ("", None),
    ],
)
def test_parse_number(text: str, expected: float | None) -> None:
    assert parse_number(text) == expected


def test_number_scores_relative_tolerance_to_reference() -> None:
    # |1300 - 1250| = 50 <= 0.05 * 1250 = 62.5 -> within
    assert number_scores("About €1,300", "1250") == {"abs_error": 50.0, "within_tol": 1.0, "parsed": 1.0}
    # |1320 - 1250| = 70 > 62.5 -> not within
    assert number_scores("1320", "1250")["within_tol"] == 0.0
    assert number_scores("0.001", "0", rel_tol=0.05)["within_tol"] == 0.0
    assert number_scores("0.001", "0", abs_tol=0.01)["within_tol"] == 1.0


def test_number_scores_unparsed_prediction() -> None:
    scores = number_scores("I am not sure", "42")
    assert math.isnan(scores["abs_error"])
    assert scores["within_tol"] == 0.0
    assert scores["parsed"] == 0.0


def test_number_scores_reference_without_number_is_an_eval_error() -> None:
    with pytest.raises(EvalError, match=r"'answer'.*holds no number"):
        number_scores("3", "unknown")


# --- choice / label ------------------------------------------------------------------------------

OPTIONS = ["Paris", "London", "New York", "York"]


@pytest.mark.parametrize(
    "prediction",
    [
        "B",
        "(B)",
        "B.",
        "B)",
        "B: London",
        "[B]",
        "**B**",
        "b",
        "Answer: B",
        "the answer is b",
        "The answer is (B).",
    ],
)
def test_parse_choice_letter_formats(prediction: str) -> None:
    assert parse_choice(prediction, OPTIONS) == 1


def test_parse_choice_letter_out_of_range_or_article_is_not_a_letter() -> None:
    assert parse_choice("E", OPTIONS) is None
    assert parse_choice("the answer is a tablet", OPTIONS) is None
    # A capital "A" followed by a word is an article; the option text decides.
    assert parse_choice("A patient from New York", OPTIONS) == 2


def test_parse_choice_option_text_longest_nested_wins() -> None:
    assert parse_choice("I think it is London.", OPTIONS) == 1
    assert parse_choice("It is New York.", OPTIONS) == 2  # "York" is nested in "New York"
    assert parse_choice("York", OPTIONS) == 3


def test_parse_choice_ambiguous_or_missing_is_none() -> None:
    assert parse_choice("Paris or London?", OPTIONS) is None
    assert parse_choice("Berlin", OPTIONS) is None
    assert parse_choice("paris", ["Paris", "paris!"]) is None  # duplicate options after normalisation


def test_parse_label() -> None:
    assert parse_label("Yes, because the trial showed it.") == "yes"
    assert parse_label("I don't know; maybe.") == "maybe"  # "no" inside "know" is not a label
    assert parse_label("No. It is not.") == "no"
    assert parse_label("Unclear") is None
    assert parse_label("Likely benign", labels=("benign", "malignant")) == "benign"
    # first in the text wins
    assert parse_label("no, wait, yes") == "no"


# --- accuracy / macro-F1 / recall ----------------------------------------------------------------

GOLDS = ["yes", "yes", "yes", "no", "no", "maybe"]
PREDS = ["yes", "yes", "no", "no", "maybe", None]


def test_accuracy() -> None:
    assert accuracy(GOLDS, PREDS) == pytest.approx(3 / 6)
    assert accuracy([None], [None]) == 0.0
    assert math.isnan(accuracy([], []))
    with pytest.raises(EvalError, match="golds has 2 items but preds has 1"):
        accuracy(["yes", "no"], ["yes"])


def test_macro_f1_hand_value() -> None:
    # yes:   tp 2, fp 0, fn 1 -> F1 = 2*2 / (4 + 0 + 1) = 0.8
    # no:    tp 1, fp 1 (gold yes), fn 1 (pred maybe) -> 2 / (2 + 1 + 1) = 0.5
    # maybe: tp 0, fp 1, fn 1 (pred None) -> 0
    # macro = (0.8 + 0.5 + 0) / 3
    assert macro_f1(GOLDS, PREDS) == pytest.approx(1.3 / 3)


def test_macro_f1_label_with_no_gold_and_no_pred_counts_zero_only_when_listed() -> None:
    assert macro_f1(GOLDS, PREDS, labels=["yes", "no", "maybe", "unsure"]) == pytest.approx(1.3 / 4)
    # labels=None averages over gold labels only: a predicted-only label is not a class.
    assert macro_f1(["yes", "yes"], ["yes", "unsure"]) == pytest.approx(2 / 3)


def test_macro_f1_errors_and_empty() -> None:
    assert math.isnan(macro_f1([], []))
    with pytest.raises(EvalError, match="labels is empty"):
        macro_f1(["yes"], ["yes"], labels=[])


def test_macro_f1_matches_sklearn() -> None:
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    preds = ["__none__" if p is None else p for p in PREDS]
    for labels in (["yes", "no", "maybe"], ["yes", "no", "maybe", "unsure"], ["no", "maybe"]):
        expected = sklearn_metrics.f1_score(GOLDS, preds, average="macro", labels=labels, zero_division=0)
        assert macro_f1(GOLDS, PREDS, labels=labels) == pytest.approx(expected)


def test_recall_at_k() -> None:
    assert recall_at_k(["d3", "d1", "d7"], "d1", k=2) == 1.0
    assert recall_at_k(["d3", "d1", "d7"], "d1", k=1) == 0.0
    assert recall_at_k([], "d1", k=5) == 0.0
    with pytest.raises(EvalError, match="k must be a positive integer"):
        recall_at_k(["d1"], "d1", k=0)


# --- score_answer --------------------------------------------------------------------------------


def test_constants() -> None:
    assert ANSWER_TYPES == ("text", "number", "choice", "label")
    assert MAIN_METRIC == "correct"


def test_score_answer_text() -> None:
    scores = score_answer("text", "The capital is Paris.", "Paris", aliases=["City of Light"])
    assert set(scores) == {"exact_match", "contains", "token_f1", "rouge_l", "correct"}
    assert scores["exact_match"] == 0.0
    assert scores["contains"] == 1.0
    assert scores["correct"] == 1.0
    # pred [capital, is, paris] vs [paris]: P = 1/3, R = 1 -> F1 = 0.5 (same for ROUGE-L)
    assert scores["token_f1"] == pytest.approx(0.5)
    assert scores["rouge_l"] == pytest.approx(0.5)
    assert (
        score_answer("text", "It is the City of Light", "Paris", aliases=["City of Light"])["correct"] == 1.0
    )
    assert score_answer("text", "London", "Paris")["correct"] == 0.0


def test_score_answer_number() -> None:
    scores = score_answer("number", "It costs €1,260.", "1250")
    assert scores == {"abs_error": 10.0, "within_tol": 1.0, "parsed": 1.0, "correct": 1.0}
    assert score_answer("number", "1300", "1250", number_rel_tol=0.01)["correct"] == 0.0
    # an alias that holds a number also counts; the best reference is kept
    assert score_answer("number", "2", "0.5", aliases=["2 tablets"])["correct"] == 1.0
    unparsed = score_answer("number", "no idea", "1250")
    assert unparsed["parsed"] == 0.0
    assert unparsed["correct"] == 0.0


def test_score_answer_choice() -> None:
    assert score_answer("choice", "B", "London", options=OPTIONS) == {
        "choice_acc": 1.0,
        "parsed": 1.0,
        "correct": 1.0,
    }
    assert score_answer("choice", "It is Paris", "London", options=OPTIONS)["correct"] == 0.0
    assert score_answer("choice", "No idea", "London", options=OPTIONS) == {
        "choice_acc": 0.0,
        "parsed": 0.0,
        "correct": 0.0,
    }


def test_score_answer_label() -> None:
    assert score_answer("label", "Yes, it does.", "yes") == {"label_acc": 1.0, "parsed": 1.0, "correct": 1.0}
    assert score_answer("label", "Maybe.", "Yes")["correct"] == 0.0
    assert score_answer("label", "Unclear", "no")["parsed"] == 0.0
    assert score_answer("label", "benign", "Benign", labels=["benign", "malignant"])["correct"] == 1.0


def test_score_answer_unknown_type_names_type_and_allowed_values() -> None:
    with pytest.raises(EvalError, match=r"'essay'.*text, number, choice, label") as info:
        score_answer("essay", "x", "y")
    assert isinstance(info.value, DomainLLMError)
    assert info.value.exit_code == 2


def test_score_answer_choice_errors() -> None:
    with pytest.raises(EvalError, match="no 'options'"):
        score_answer("choice", "B", "London")
    with pytest.raises(EvalError, match="not one of its options"):
        score_answer("choice", "B", "Berlin", options=OPTIONS)


def test_score_answer_label_and_empty_answer_errors() -> None:
    with pytest.raises(EvalError, match="not one of the labels"):
        score_answer("label", "yes", "probably")
    with pytest.raises(EvalError, match="'answer' field is empty"):
        score_answer("text", "x", "  ")


@pytest.mark.parametrize(
    ("answer_type", "kwargs"),
    [("text", {}), ("number", {}), ("choice", {"options": OPTIONS}), ("label", {})],
)
def test_every_type_returns_binary_correct(answer_type: str, kwargs: dict) -> None:
    answer = {"text": "Paris", "number": "3", "choice": "Paris", "label": "yes"}[answer_type]
    for prediction in ("Paris, yes, 3", "nothing useful"):
        scores = score_answer(answer_type, prediction, answer, **kwargs)
        assert scores[MAIN_METRIC] in (0.0, 1.0)
        assert all(isinstance(v, float) for v in scores.values())
