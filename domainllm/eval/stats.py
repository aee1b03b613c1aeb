"""Uncertainty and significance for comparing arms on the same test questions.

A test split of a few hundred questions gives accuracies whose sampling error is several points, so a
comparison table without intervals invites reading noise as progress. This module provides:

* :func:`bootstrap_ci` / :func:`bootstrap_statistic`: percentile-bootstrap confidence intervals for one
  arm (a mean, or any statistic of the resampled questions such as macro-F1).
* :func:`paired_bootstrap` and :func:`mcnemar`: paired tests between two arms. All arms answer the same
  questions, so pairing removes the between-question variance (easy vs hard questions) that unpaired
  intervals include; two overlapping CIs can still be a significant paired difference.
* :func:`holm_bonferroni` and :func:`pairwise_tests`: four arms make six pairwise tests, so p-values are
  adjusted for multiplicity (Holm is uniformly more powerful than plain Bonferroni, with the same
  family-wise error guarantee and no independence assumption).

Everything is numpy-only, seeded with :func:`numpy.random.default_rng` and deterministic for a seed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from itertools import combinations

import numpy as np

from domainllm.errors import EvalError

__all__ = [
    "bootstrap_ci",
    "bootstrap_statistic",
    "holm_bonferroni",
    "mcnemar",
    "paired_bootstrap",
    "pairwise_tests",
]

# Resampled index matrices are drawn in chunks of at most this many cells (~32 MB of int64), so that
# 10,000 resamples of a 5,000-question split do not allocate 400 MB at once.
_MAX_CELLS = 4_000_000
# Below this many discordant pairs McNemar's chi-square approximation is poor; use the exact test.
_MCNEMAR_EXACT_BELOW = 25


def _check_resampling(n_resamples: int, confidence: float | None = None) -> None:
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 1:
        raise EvalError(
            f"n_resamples must be a positive integer, got {n_resamples!r}; 2000 is a good default."
        )
    if confidence is not None and not 0.0 < confidence < 1.0:
        raise EvalError(f"confidence must be strictly between 0 and 1, got {confidence!r}; use e.g. 0.95.")


def _as_float_array(values: Sequence[float], name: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise EvalError(f"{name} must be a sequence of numbers (use nan for a missing score): {exc}") from exc
    if arr.ndim != 1:
        raise EvalError(f"{name} must be a flat sequence of per-question numbers, got shape {arr.shape}.")
    return arr


def _resampled_indices(rng: np.random.Generator, n: int, n_resamples: int):
    """Yield index matrices of shape (rows, n) totalling ``n_resamples`` rows, drawn with replacement.

    The chunk size depends only on ``n``, so results are a deterministic function of the seed.
    """
    rows = max(1, _MAX_CELLS // max(n, 1))
    done = 0
    while done < n_resamples:
        size = min(rows, n_resamples - done)
        yield rng.integers(0, n, size=(size, n))
        done += size


def _bootstrap_means(values: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = len(values)
    return np.concatenate([values[idx].mean(axis=1) for idx in _resampled_indices(rng, n, n_resamples)])


def _percentile_interval(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = 1.0 - confidence
    finite = samples[~np.isnan(samples)]
    if finite.size == 0:
        return float("nan"), float("nan")
    low, high = np.quantile(finite, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def bootstrap_ci(
    values: Sequence[float], n_resamples: int = 2000, confidence: float = 0.95, seed: int = 0
) -> dict:
    """Percentile-bootstrap confidence interval of the mean: ``{"mean", "low", "high", "n"}``.

    Why the bootstrap: per-question scores are 0/1 (accuracy) or bounded and skewed (F1, ROUGE), and the
    percentile bootstrap gives an interval that respects the [0, 1] range without a normality
    assumption. NaN values (e.g. an abs_error for an unparsed number) are dropped and ``n`` counts the
    rest; with nothing left every number is nan and ``n`` is 0.
    """
    _check_resampling(n_resamples, confidence)
    arr = _as_float_array(values, "values")
    arr = arr[~np.isnan(arr)]
    n = int(arr.size)
    if n == 0:
        return {"mean": float("nan"), "low": float("nan"), "high": float("nan"), "n": 0}
    low, high = _percentile_interval(_bootstrap_means(arr, n_resamples, seed), confidence)
    return {"mean": float(arr.mean()), "low": low, "high": high, "n": n}


def bootstrap_statistic(
    n: int,
    statistic: Callable[[np.ndarray], float],
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict:
    """Percentile-bootstrap interval of any statistic of the questions: ``{"value", "low", "high", "n"}``.

    ``statistic`` receives an integer index array into the caller's per-question data (golds and
    predictions) and returns a number; ``value`` is ``statistic(np.arange(n))``. This is how macro-F1,
    which is not a mean of per-question scores, gets an interval. Resamples on which the statistic is
    nan are ignored. ``n == 0`` -> all nan.
    """
    _check_resampling(n_resamples, confidence)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise EvalError(f"bootstrap_statistic: n must be a non-negative integer, got {n!r}.")
    n = int(n)
    if n == 0:
        return {"value": float("nan"), "low": float("nan"), "high": float("nan"), "n": 0}
    rng = np.random.default_rng(seed)
    samples = np.array(
        [float(statistic(row)) for idx in _resampled_indices(rng, n, n_resamples) for row in idx],
        dtype=np.float64,
    )
    low, high = _percentile_interval(samples, confidence)
    return {"value": float(statistic(np.arange(n))), "low": low, "high": high, "n": n}


def _paired_arrays(a: Sequence[float], b: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    x = _as_float_array(a, "a")
    y = _as_float_array(b, "b")
    if x.shape != y.shape:
        raise EvalError(
            f"paired comparison needs one score per question in both arms, got {x.size} and {y.size}; "
            "score both arms on the same questions (use nan for a missing score)."
        )
    keep = ~(np.isnan(x) | np.isnan(y))
    return x[keep], y[keep]


def paired_bootstrap(
    a: Sequence[float],
    b: Sequence[float],
    n_resamples: int = 10000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict:
    """Paired bootstrap of ``mean(a) - mean(b)`` on the same questions: ``{"diff", "low", "high", "p_value", "n"}``.

    Method (Koehn 2004; Berg-Kirkpatrick et al. 2012): resample question indices with replacement,
    recompute the mean paired difference ``d*`` each time, and take the percentile interval of ``d*``.
    The two-sided p-value is the share of ``d*`` on the other side of zero from the observed difference
    (``d* <= 0`` when ``diff > 0``), doubled and capped at 1: how often the sign of the difference flips
    under resampling. For a symmetric bootstrap distribution this equals the shifted test
    ``P(d* - diff >= |diff|)`` of Berg-Kirkpatrick et al. Counts are add-one smoothed,
    ``(count + 1) / (n_resamples + 1)``, so p is never reported as exactly 0 from finitely many resamples.
    ``diff == 0`` gives p = 1. Pairs with nan in either arm are dropped; no pairs left -> nan.
    """
    _check_resampling(n_resamples, confidence)
    x, y = _paired_arrays(a, b)
    n = int(x.size)
    if n == 0:
        nan = float("nan")
        return {"diff": nan, "low": nan, "high": nan, "p_value": nan, "n": 0}
    d = x - y
    diff = float(d.mean())
    boot = _bootstrap_means(d, n_resamples, seed)
    low, high = _percentile_interval(boot, confidence)
    if diff > 0:
        flips = int(np.count_nonzero(boot <= 0))
    elif diff < 0:
        flips = int(np.count_nonzero(boot >= 0))
    else:
        flips = n_resamples
    p_value = min(1.0, 2.0 * (flips + 1) / (n_resamples + 1))
    return {"diff": diff, "low": low, "high": high, "p_value": p_value, "n": n}


def _binary_array(values: Sequence[bool | float], name: str) -> np.ndarray:
    arr = _as_float_array(values, name)
    bad = ~np.isnan(arr) & (arr != 0.0) & (arr != 1.0)
    if bad.any():
        raise EvalError(
            f"mcnemar: {name} must hold only 0/1 (or True/False) per-question correctness, found "
            f"{arr[bad][0]!r}; use paired_bootstrap for graded scores such as token F1."
        )
    return arr


def mcnemar(a_correct: Sequence[bool | float], b_correct: Sequence[bool | float]) -> dict:
    """McNemar's test for two arms' 0/1 correctness on the same questions: ``{"b", "c", "p_value", "method", "n"}``.

    ``b`` counts questions arm A got right and arm B wrong, ``c`` the reverse; only these discordant
    pairs carry information about which arm is better. Under H0 (equal accuracy) ``b ~ Binomial(b + c,
    1/2)``. When ``b + c < 25`` the chi-square approximation is poor, so the exact two-sided binomial
    test is used (``method = "exact"``): ``p = min(1, 2 * P(X <= min(b, c)))``. Otherwise the
    continuity-corrected chi-square with one degree of freedom (``method = "chi2"``):
    ``stat = max(0, |b - c| - 1)^2 / (b + c)``, ``p = erfc(sqrt(stat / 2))`` (the chi-square(1) survival
    function, so no scipy is needed). ``b + c == 0`` -> p = 1. Pairs with nan in either arm are dropped.
    """
    x = _binary_array(a_correct, "a_correct")
    y = _binary_array(b_correct, "b_correct")
    x, y = _paired_arrays(x, y)
    b = int(np.count_nonzero((x == 1) & (y == 0)))
    c = int(np.count_nonzero((x == 0) & (y == 1)))
    discordant = b + c
    if discordant == 0:
        return {"b": b, "c": c, "p_value": 1.0, "method": "exact", "n": int(x.size)}
    if discordant < _MCNEMAR_EXACT_BELOW:
        tail = sum(math.comb(discordant, k) for k in range(min(b, c) + 1))
        p_value = min(1.0, 2.0 * tail / 2**discordant)
        method = "exact"
    else:
        stat = max(0.0, abs(b - c) - 1.0) ** 2 / discordant
        p_value = math.erfc(math.sqrt(stat / 2.0))
        method = "chi2"
    return {"b": b, "c": c, "p_value": float(p_value), "method": method, "n": int(x.size)}


def holm_bonferroni(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input order.

    Sort the m p-values ascending, multiply the i-th smallest (0-based) by ``m - i``, enforce
    monotonicity with a running maximum, cap at 1. Reject H0 where the adjusted value is below alpha.
    NaN p-values (tests that could not run) stay nan and do not count towards m.
    """
    p = _as_float_array(p_values, "p_values")
    if np.any((p < 0) | (p > 1)):
        raise EvalError(f"holm_bonferroni: p-values must lie in [0, 1], got {p.tolist()!r}.")
    adjusted = np.full(p.shape, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    m = valid.size
    order = valid[np.argsort(p[valid], kind="stable")]
    running = 0.0
    for i, idx in enumerate(order):
        running = max(running, min(1.0, (m - i) * p[idx]))
        adjusted[idx] = running
    return [float(v) for v in adjusted]


def pairwise_tests(
    per_arm_correct: dict[str, Sequence[float]],
    seed: int = 0,
    n_resamples: int = 10000,
    pairs: Sequence[tuple[str, str]] | None = None,
) -> list[dict]:
    """Paired tests for every unordered pair of arms (or only ``pairs``), with Holm-adjusted p-values.

    Rows follow insertion order (arm 1 vs 2, 1 vs 3, ..., 2 vs 3, ...), each
    ``{"arm_a", "arm_b", "diff", "p_value", "p_holm", "test", "n"}`` with ``diff = mean(a) - mean(b)``
    over the ``n`` questions both arms scored. When both arms' values are all 0/1 the test is McNemar
    (``test`` is ``"mcnemar-exact"`` or ``"mcnemar-chi2"``), which is exact for paired binary outcomes;
    otherwise ``"paired-bootstrap"``. Holm's adjustment is over all rows: with four arms, six tests.
    ``pairs`` names the planned comparisons instead (a family chosen before looking at the scores,
    such as each recipe against the persona prompt): only those are tested, and Holm adjusts over them.
    """
    if not isinstance(per_arm_correct, dict):
        raise EvalError("pairwise_tests expects a dict mapping arm name -> per-question scores.")
    arrays = {
        name: _as_float_array(values, f"scores of arm {name!r}") for name, values in per_arm_correct.items()
    }
    lengths = {name: arr.size for name, arr in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise EvalError(
            f"arms were scored on different numbers of questions {lengths!r}; score every arm on the same "
            "test split (use nan for a missing score)."
        )
    if pairs is not None:
        unknown = sorted({name for pair in pairs for name in pair} - set(arrays))
        if unknown:
            raise EvalError(f"pairwise_tests: pairs name arms without scores: {unknown}.")
    results = []
    for name_a, name_b in combinations(arrays, 2) if pairs is None else pairs:
        x, y = _paired_arrays(arrays[name_a], arrays[name_b])
        n = int(x.size)
        diff = float(x.mean() - y.mean()) if n else float("nan")
        if np.all(np.isin(x, (0.0, 1.0))) and np.all(np.isin(y, (0.0, 1.0))):
            result = mcnemar(x, y)
            test = f"mcnemar-{result['method']}"
        else:
            result = paired_bootstrap(x, y, n_resamples=n_resamples, seed=seed)
            test = "paired-bootstrap"
        results.append((name_a, name_b, diff, float(result["p_value"]), test, n))
    adjusted = holm_bonferroni([r[3] for r in results])
    rows = []
    for (name_a, name_b, diff, p_value, test, n), p_holm in zip(results, adjusted, strict=True):
        rows.append(
            {
                "arm_a": name_a,
                "arm_b": name_b,
                "diff": diff,
                "p_value": p_value,
                "p_holm": p_holm,
                "test": test,
                "n": n,
            }
        )
    return rows
