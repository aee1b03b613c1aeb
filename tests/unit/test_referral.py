"""The referral score: the rule, the shipped sidecar (ids that exist in test.jsonl), and the per-arm rates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from domainllm.eval.referral import load_referral_ids, referral_scores, refers

DENTAL = Path(__file__).resolve().parents[2] / "data" / "dental" / "qa"


@pytest.mark.parametrize(
    "answer",
    [
        "Call us on 01632 960 418 for a same-day slot.",
        "See a dentist as soon as possible, ideally within 30 minutes.",
        "Please book an appointment with the dentist so it can be checked.",
        "Ring 01632960418.",
        "Go to the hospital emergency department.",
    ],
)
def test_refers(answer):
    assert refers(answer)


@pytest.mark.parametrize(
    "answer",
    ["€85", "Dr. Wierzbicki uses a microscope.", "Rinse with warm salt water and wait.", "Every 2 weeks"],
)
def test_does_not_refer(answer):
    assert not refers(answer)


def test_shipped_sidecar_names_test_questions_and_rates_per_arm():
    ids, rule = load_referral_ids(DENTAL / "test_referral.json")
    test_ids = {json.loads(line)["id"] for line in (DENTAL / "test.jsonl").read_text().splitlines()}
    assert ids and set(ids) <= test_ids and "asker's own" in rule
    qids = ["test-0001", ids[0], ids[1]]
    scores = referral_scores(qids, {"a": ["12", "Call us today.", "Yes"], "b": ["x", "no", "no"]}, ids)
    assert scores["question_ids"] == ids[:2]
    assert scores["arms"]["a"] == {"n": 2, "referred": 1, "rate": 0.5, "referred_ids": [ids[0]]}
    assert scores["arms"]["b"]["rate"] == 0.0


def test_bad_sidecar_names_the_key(tmp_path):
    from domainllm.errors import ConfigError

    with pytest.raises(ConfigError, match=r"compare\.referral_file"):
        load_referral_ids(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text('{"ids": "test-1"}')
    with pytest.raises(ConfigError, match="field 'ids'"):
        load_referral_ids(tmp_path / "bad.json")
