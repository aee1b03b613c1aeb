"""Unit tests for domainllm.eval.stats: hand-computed p-values and bootstrap behaviour."""

from __future__ import annotations

import math

import numpy as np
import pytest

from domainllm.errors import EvalError
from domainllm.eval.metrics import macro_f1
from domainllm.eval.stats import (
    bootstrap_ci,
    bootstrap_statistic,
    holm_bonferroni,
    mcnemar,
    paired_bootstrap,
    pairwise_tests,
)

# --- bootstrap_ci ---------------------------------------------------------------------------------


def test_bootstrap_ci_constant_vector_is_degenerate() -> None:
    result = bootstrap_ci([0.7] * 37)
    assert result["n"] == 37
    assert result["low"] == result["high"] == result["mean"] == pytest.approx(0.7)


def test_bootstrap_ci_hand_mean_and_bounds() -> None:
    values = [0.0, 1.0, 1.0, 0.0, 1.0]
    result = bootstrap_ci(values, n_resamples=500)
    assert result["mean"] == pytest.approx(0.6)
    assert 0.0 <= result["low"] < 0.6 < result["high"] <= 1.0


def test_bootstrap_ci_drops_nan_and_handles_empty() -> None:
    result = bootstrap_ci([1.0, float("nan"), 0.0, 1.0])
    assert result["n"] == 3
    assert result["mean"] == pytest.approx(2 / 3)
    empty = bootstrap_ci([float("nan")])
    assert empty["n"] == 0
    assert all(math.isnan(empty[k]) for k in ("mean", "low", "high"))
    assert bootstrap_ci([])["n"] == 0


def test_bootstrap_ci_covers_true_mean_and_shrinks_like_sqrt_n() -> None:
    rng = np.random.default_rng(123)
    p = 0.3
    small = bootstrap_ci(rng.random(400) < p, n_resamples=1000)
    large = bootstrap_ci(rng.random(6400) < p, n_resamples=1000)
    for result in (small, large):
        assert result["low"] < p < result["high"]
    # 16x the data -> intervals ~4x narrower.
    ratio = (small["high"] - small["low"]) / (large["high"] - large["low"])
    assert 3.2 < ratio < 4.8
    # and the width agrees with the normal approximation 2 * 1.96 * sqrt(p (1 - p) / n) within 15 %
    expected_width = 2 * 1.96 * math.sqrt(p * (1 - p) / 6400)
    assert (large["high"] - large["low"]) == pytest.approx(expected_width, rel=0.15)


def test_bootstrap_ci_is_seeded() -> None:
    values = np.random.default_rng(7).normal(size=60)
    assert bootstrap_ci(values, seed=3) == bootstrap_ci(values, seed=3)
    first, second = bootstrap_ci(values, seed=3), bootstrap_ci(values, seed=4)
    assert (first["low"], first["high"]) != (second["low"], second["high"])
    assert first["mean"] == second["mean"]


def test_bootstrap_ci_argument_errors() -> None:
    with pytest.raises(EvalError, match="confidence"):
        bootstrap_ci([1.0, 0.0], confidence=1.5)
    with pytest.raises(EvalError, match="n_resamples"):
        bootstrap_ci([1.0, 0.0], n_resamples=0)


# --- bootstrap_statistic --------------------------------------------------------------------------


def test_bootstrap_statistic_of_the_mean_equals_bootstrap_ci() -> None:
    values = np.random.default_rng(1).normal(size=50)
    via_stat = bootstrap_statistic(
        len(values), lambda idx: float(values[idx].mean()), n_resamples=300, seed=5
    )
    via_ci = bootstrap_ci(values, n_resamples=300, seed=5)
    assert via_stat["value"] == pytest.approx(via_ci["mean"])
    assert via_stat["low"] == pytest.approx(via_ci["low"])
    assert via_stat["high"] == pytest.approx(via_ci["high"])
    assert via_stat["n"] == 50


def test_bootstrap_statistic_macro_f1_and_empty() -> None:
    golds = ["yes", "no", "maybe"] * 20
    preds = ["yes", "no", "no"] * 20
    stat = lambda idx: macro_f1([golds[i] for i in idx], [preds[i] for i in idx])  # noqa: E731
    result = bootstrap_statistic(len(golds), stat, n_resamples=200)
    # yes: 1.0; no: tp 20, fp 20 -> 40/60 = 2/3; maybe: 0 -> value = (1 + 2/3 + 0) / 3 = 5/9
    assert result["value"] == pytest.approx(5 / 9)
    assert result["low"] <= result["value"] <= result["high"]
    empty = bootstrap_statistic(0, stat)
    assert empty["n"] == 0
    assert math.isnan(empty["value"])


# --- paired_bootstrap -----------------------------------------------------------------------------


def test_paired_bootstrap_clear_winner_has_small_p() -> None:
    rng = np.random.default_rng(0)
    a = (rng.random(200) < 0.8).astype(float)
    b = (rng.random(200) < 0.5).astype(float)
    result = paired_bootstrap(a, b, n_resamples=2000)
    assert result["diff"] == pytest.approx(a.mean() - b.mean())
    assert result["diff"] > 0.2
    assert result["p_value"] < 0.01
    assert result["low"] > 0
    assert result["n"] == 200


def test_paired_bootstrap_identical_arms_have_p_one() -> None:
    a = (np.random.default_rng(2).random(200) < 0.6).astype(float)
    result = paired_bootstrap(a, a.copy(), n_resamples=2000)
    assert result["diff"] == 0.0
    assert result["p_value"] == 1.0
    assert result["low"] == result["high"] == 0.0


def test_paired_bootstrap_same_distribution_is_not_significant() -> None:
    rng = np.random.default_rng(11)
    a = (rng.random(200) < 0.6).astype(float)
    b = (rng.random(200) < 0.6).astype(float)
    assert paired_bootstrap(a, b, n_resamples=2000)["p_value"] > 0.2


def test_paired_bootstrap_sign_and_symmetry() -> None:
    a = [1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0]
    b = [0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0]
    ab = paired_bootstrap(a, b, n_resamples=500)
    ba = paired_bootstrap(b, a, n_resamples=500)
    assert ab["diff"] == pytest.approx(3 / 8)
    assert ba["diff"] == pytest.approx(-3 / 8)
    assert ab["p_value"] == pytest.approx(ba["p_value"])


def test_paired_bootstrap_drops_nan_pairs_and_checks_length() -> None:
    result = paired_bootstrap([1.0, float("nan"), 0.5], [0.0, 1.0, float("nan")], n_resamples=100)
    assert result["n"] == 1
    assert result["diff"] == 1.0
    with pytest.raises(EvalError, match="got 3 and 2"):
        paired_bootstrap([1.0, 0.0, 1.0], [1.0, 0.0])


# --- mcnemar --------------------------------------------------------------------------------------


def test_mcnemar_exact_hand_value() -> None:
    # b = 1 (a right, b wrong), c = 9; concordant pairs do not matter.
    a = [1] + [0] * 9 + [1] * 5 + [0] * 3
    b = [0] + [1] * 9 + [1] * 5 + [0] * 3
    result = mcnemar(a, b)
    assert (result["b"], result["c"]) == (1, 9)
    # two-sided exact binomial: 2 * (C(10,0) + C(10,1)) / 2^10 = 2 * 11 / 1024 = 0.021484375
    assert result["p_value"] == pytest.approx(0.021484375, abs=1e-12)
    assert result["method"] == "exact"
    assert result["n"] == 18


def test_mcnemar_exact_is_symmetric_and_capped() -> None:
    assert mcnemar([True, False], [False, True])["p_value"] == 1.0  # b = c = 1 -> 2 * 3/4 capped at 1
    assert mcnemar([0, 1] * 3, [1, 0] * 3)["p_value"] == 1.0
    assert mcnemar([1] * 3, [0] * 3)["p_value"] == pytest.approx(2 / 8)  # b=3,c=0: 2 * 1/8


def test_mcnemar_chi2_hand_value() -> None:
    # b = 10, c = 25 (35 >= 25 -> chi-square with continuity correction):
    # stat = (|10 - 25| - 1)^2 / 35 = 196 / 35 = 5.6; p = P(chi2_1 > 5.6) = 0.0179604775...
    a = [1] * 10 + [0] * 25
    b = [0] * 10 + [1] * 25
    result = mcnemar(a, b)
    assert (result["b"], result["c"]) == (10, 25)
    assert result["method"] == "chi2"
    assert result["p_value"] == pytest.approx(0.01796047752607879, rel=1e-9)


def test_mcnemar_no_discordant_pairs_and_errors() -> None:
    assert mcnemar([1, 0, 1], [1, 0, 1])["p_value"] == 1.0
    assert mcnemar([], [])["p_value"] == 1.0
    with pytest.raises(EvalError, match="only 0/1"):
        mcnemar([0.5, 1.0], [1.0, 0.0])
    with pytest.raises(EvalError, match="got 2 and 1"):
        mcnemar([1, 0], [1])


# --- holm -----------------------------------------------------------------------------------------


def test_holm_bonferroni_known_vector() -> None:
    # sorted: 0.005*4 = 0.02; 0.01*3 = 0.03; 0.03*2 = 0.06; 0.04*1 = 0.04 -> running max 0.06
    adjusted = holm_bonferroni([0.01, 0.04, 0.03, 0.005])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_bonferroni_caps_and_nan() -> None:
    assert holm_bonferroni([0.5, 0.6]) == pytest.approx([1.0, 1.0])
    adjusted = holm_bonferroni([0.01, float("nan"), 0.02])
    assert adjusted[0] == pytest.approx(0.02)  # m = 2: 0.01 * 2
    assert math.isnan(adjusted[1])
    assert adjusted[2] == pytest.approx(0.02)
    assert holm_bonferroni([]) == []
    with pytest.raises(EvalError, match=r"\[0, 1\]"):
        holm_bonferroni([1.5])


# --- pairwise_tests -------------------------------------------------------------------------------


def test_pairwise_tests_rows_order_and_holm() -> None:
    arms = {
        "persona": [1, 0, 0, 1, 0, 0, 1, 0, 0, 0],
        "rag": [1, 1, 1, 1, 1, 0, 1, 1, 1, 0],
        "finetuned": [1, 0, 1, 1, 0, 0, 1, 0, 1, 0],
    }
    rows = pairwise_tests(arms)
    assert [(r["arm_a"], r["arm_b"]) for r in rows] == [
        ("persona", "rag"),
        ("persona", "finetuned"),
        ("rag", "finetuned"),
    ]
    assert list(rows[0]) == ["arm_a", "arm_b", "diff", "p_value", "p_holm", "test", "n"]
    assert rows[0]["diff"] == pytest.approx(0.3 - 0.8)
    assert rows[0]["test"] == "mcnemar-exact"
    # persona vs rag: b = 0, c = 5 -> 2 / 32 = 0.0625
    assert rows[0]["p_value"] == pytest.approx(0.0625)
    expected_holm = holm_bonferroni([r["p_value"] for r in rows])
    assert [r["p_holm"] for r in rows] == pytest.approx(expected_holm)
    assert all(r["n"] == 10 for r in rows)


def test_pairwise_tests_graded_scores_use_bootstrap() -> None:
    rows = pairwise_tests({"a": [0.5, 0.9, 0.7, 1.0], "b": [0.4, 0.8, 0.7, 0.2]}, n_resamples=200)
    assert len(rows) == 1
    assert rows[0]["test"] == "paired-bootstrap"
    assert rows[0]["diff"] == pytest.approx((0.1 + 0.1 + 0.0 + 0.8) / 4)
    assert 0.0 < rows[0]["p_value"] <= 1.0


def test_pairwise_tests_errors_and_single_arm() -> None:
    assert pairwise_tests({"only": [1, 0]}) == []
    with pytest.raises(EvalError, match="different numbers of questions"):
        pairwise_tests({"a": [1, 0], "b": [1]})
