"""The product's main job, for real: ``python -m domainllm compare`` on the embedded default.

SmolLM2-135M, the dental domain, training included, on the machine at hand. Slow (minutes): run with
``pytest -m slow tests/integration/test_compare_default.py``. The budget on a 2-core CPU is 10 minutes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUDGET_S = float(os.environ.get("DOMAINLLM_COMPARE_BUDGET_S", "600"))


@pytest.mark.slow
def test_default_compare_end_to_end(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    cmd = [
        sys.executable,
        "-m",
        "domainllm",
        "compare",
        "--set",
        f"training.output_dir={tmp_path / 'runs' / 'dental'}",
        "--set",
        f"compare.output_dir={tmp_path / 'compare'}",
    ]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=3 * BUDGET_S)
    wall = time.perf_counter() - start
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "compare"
    results = json.loads((out / "results.json").read_text())
    assert results["status"] == "complete"
    assert results["n_questions"] == results["n_total"]  # the full split, never a silent subset
    assert set(results["arms"]) == {"prompt_only", "rag", "finetuned", "finetuned_rag"}
    assert all(arm["status"] == "ok" for arm in results["arms"].values())
    assert results["run"]["reused"] is False and (tmp_path / "runs" / "stores" / "dental").is_dir()
    lines = (out / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == 4 * results["n_questions"]
    assert (out / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (out / "report.md").read_text()
    assert "## Verdict" in md and "## Phase timings" in md
    assert "correct [95% CI]" in proc.stdout  # the CLI's console table
    phases = ", ".join(f"{k} {v:.0f}s" for k, v in results["phases"].items())
    assert wall <= BUDGET_S, f"compare took {wall:.0f} s > {BUDGET_S:.0f} s: {phases}"


PUBMEDQA = REPO.parent / "shared" / "datasets" / "pubmedqa"


@pytest.mark.slow
@pytest.mark.skipif(not PUBMEDQA.is_dir(), reason="needs ../shared/datasets/pubmedqa beside the checkout")
def test_the_readme_pubmedqa_command_runs_on_a_sample(tmp_path: Path) -> None:
    """The README's `domainllm compare --config configs/pubmedqa.yaml`, shortened (2 training steps, 24
    questions) so it takes minutes, not the 27 the full run takes on a 2-core CPU."""
    cmd = [
        *(sys.executable, "-m", "domainllm", "compare", "--config", "configs/pubmedqa.yaml"),
        *("--set", "training.max_steps=2", "--set", "compare.limit=24", "--set", "compare.n_bootstrap=200"),
        *("--set", f"training.output_dir={tmp_path / 'runs' / 'pubmedqa'}"),
        *("--set", f"compare.output_dir={tmp_path / 'compare'}"),
    ]
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "compare" / "results.json").read_text())
    assert results["status"] == "complete" and results["n_questions"] == 24 and results["n_total"] == 500
    assert all(arm["status"] == "ok" for arm in results["arms"].values())
    labels = {
        row["reference"] for row in map(json.loads, (tmp_path / "compare" / "predictions.jsonl").open())
    }
    assert labels <= {"yes", "no", "maybe"}
