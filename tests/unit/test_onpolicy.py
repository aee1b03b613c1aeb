"""``domainllm preferences RUN``: the run's own wrong answers on its training split become rejected answers."""

from __future__ import annotations

import json

import pytest
from _runs import make_tiny_run, one_torch_thread
from conftest import write_tiny_domain

__all__ = ["one_torch_thread"]


def test_preferences_from_a_run(tiny_model_dir, tmp_path):
    from domainllm.cli import main
    from domainllm.data.onpolicy import build_preferences
    from domainllm.data.preferences import load_preferences
    from domainllm.errors import RunDirError

    domain = write_tiny_domain(tmp_path / "domain")
    run = make_tiny_run(tmp_path / "r", tiny_model_dir, domain)
    out = build_preferences(run, limit=4)
    assert out == run / "preferences" / "train.jsonl"
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    counts = json.loads((out.parent / "train.counts.json").read_text())
    assert (
        counts["questions"] == 4
        and counts["pairs"]
        == len(rows)
        == 4 - counts["answered_correctly"] - counts["skipped_empty_or_identical"]
    )
    train = [json.loads(line) for line in (domain / "qa" / "train.jsonl").read_text().splitlines()][:4]
    assert rows, "the random tiny model answers every question wrongly"
    for row in rows:
        source = next(t for t in train if t["id"] == row["source_id"])
        assert row["prompt"] == source["question"] and row["chosen"] == source["answer"]
        assert row["rejected"] != row["chosen"] and row["kind"] == "on_policy"
    assert len(load_preferences(str(out)).train) == len(rows)  # readable as DPO data
    before = out.read_bytes()
    with pytest.raises(RunDirError, match="--overwrite"):
        build_preferences(run, limit=2)
    assert out.read_bytes() == before
    assert main(["preferences", str(run), "--limit", "2"]) == 2
    assert main(["preferences", str(run), "--limit", "2", "--overwrite"]) == 0
    assert json.loads((out.parent / "train.counts.json").read_text())["questions"] == 2
