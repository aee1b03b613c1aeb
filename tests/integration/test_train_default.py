"""The shipped default: SmolLM2-135M-Instruct on the dental data, trained on CPU as a user would.

Slow (about 3-4 minutes on an idle 2-core CPU, far longer on a busy one); run it with
``pytest -m slow tests/integration/test_train_default.py``.
"""

from __future__ import annotations

import json

import pytest


@pytest.mark.slow
def test_default_dental_training_lowers_eval_loss(tmp_path):
    from domainllm.config import load_config
    from domainllm.rundir import RunDir
    from domainllm.training import train

    cfg = load_config()  # configs/dental.yaml
    assert cfg.model.name_or_path == "default" and cfg.data.path == "builtin:dental"
    run = RunDir.open(train(cfg, output_dir=tmp_path / "dental"))
    m = run.read_manifest()
    assert m["base_model"]["name"] == "SmolLM2-135M-Instruct"
    assert m["examples"]["truncated"] == 0 and m["examples"]["train"] >= 250
    assert m["eval_loss_before"] - m["eval_loss_after"] > 1.0, (m["eval_loss_before"], m["eval_loss_after"])
    rows = [json.loads(line) for line in run.metrics_path.read_text().splitlines()]
    losses = [r["loss"] for r in rows if r["kind"] == "train"]
    assert sum(losses[:3]) / 3 > sum(losses[-3:]) / 3 + 0.5
    # Speed is reported (python -m domainllm.bench.train_speed), not asserted: a shared CPU varies 5x.
    assert m["trained_tokens"] > 15_000 and m["tokens_per_second"] > 0
    for name in ("loss.png", "lr.png"):
        assert (run.plots_dir / name).stat().st_size > 15_000
