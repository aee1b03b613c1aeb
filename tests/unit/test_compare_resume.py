"""A comparison never loses work: arms on disk as they end, --resume after SIGKILL, finished runs and
reports kept, failures after the arms keep every prediction (tiny model, real chains, real Chroma)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from _runs import make_tiny_run, one_torch_thread
from conftest import REPO_ROOT, tiny_config_data, write_tiny_domain

from domainllm.errors import EvalError

__all__ = ["one_torch_thread"]

ARMS = ["prompt_only", "rag", "finetuned", "finetuned_rag", "oracle"]
# What legitimately differs between two runs of the same comparison: when and how fast it ran.
_TIMING_KEYS = {"created_at", "command", "phases", "wall_s", "resumed_arms", "store"}


def tree_digest(root: Path) -> dict[str, str]:
    """Every file under ``root`` with its SHA-256: a finished run must survive byte for byte."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def comparable(results: dict) -> dict:
    """results.json without timings (costs, phases, dates), for comparing two runs of one comparison."""
    out = {k: v for k, v in results.items() if k not in _TIMING_KEYS}
    out["arms"] = {
        name: {k: v for k, v in arm.items() if k not in ("costs", "resumed")}
        for name, arm in results["arms"].items()
    }
    return out


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_model_dir):
    """A tiny domain, a finished tiny run and a config file for the CLI."""
    import yaml

    root = tmp_path_factory.mktemp("resume")
    domain = write_tiny_domain(root / "domain")
    run = make_tiny_run(root, tiny_model_dir, domain, generation={"max_new_tokens": 6})
    data = tiny_config_data(
        tiny_model_dir,
        domain,
        root,
        generation={"max_new_tokens": 6, "batch_size": 2},
        compare={"arms": ARMS},
    )
    config = root / "tiny.yaml"
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    return root, run, config


def _cli(config: Path, run: Path, out: Path, *extra: str, env: dict | None = None, **kwargs):
    cmd = [
        sys.executable,
        "-m",
        "domainllm",
        "compare",
        "-c",
        str(config),
        "--run",
        str(run),
        "-o",
        str(out),
        *extra,
    ]
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.Popen(
        cmd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs
    )


def test_sigkill_in_the_third_arm_then_resume_equals_an_uninterrupted_run(setup, tmp_path) -> None:
    _, run, config = setup
    # A real compare process; a sitecustomize (test instrumentation, not library code) makes the
    # third arm hang after announcing itself, so the kill lands inside it every time.
    hook = tmp_path / "hook"
    hook.mkdir()
    marker = tmp_path / "third-arm-started"
    (hook / "sitecustomize.py").write_text(
        textwrap.dedent(
            f"""
            import os, time
            import domainllm.benchmark.arms as arms
            _real = arms.run_arm
            def run_arm(arm, *args, **kwargs):
                if arm.name == "finetuned":
                    open({str(marker)!r}, "w").close()
                    time.sleep(600)
                return _real(arm, *args, **kwargs)
            arms.run_arm = run_arm
            """
        )
    )
    out = tmp_path / "killed"
    env = {"PYTHONPATH": os.pathsep.join([str(hook), str(REPO_ROOT)])}
    proc = _cli(config, run, out, env=env)
    deadline = time.time() + 240
    while not marker.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert marker.exists(), proc.communicate()[1][-3000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    saved = sorted(p.name for p in (out / "arms").glob("*.json"))
    assert saved == ["prompt_only.json", "rag.json"]  # the two finished arms are on disk
    assert json.loads((out / "results.json").read_text())["status"] == "running"
    before = {name: (out / "arms" / name).stat().st_mtime_ns for name in saved}

    # A plain compare refuses the unfinished folder and names the resume command; nothing changes.
    refused = _cli(config, run, out)
    _, err = refused.communicate(timeout=240)
    assert refused.returncode == 2 and "--resume" in err and "unfinished comparison" in err
    assert sorted(p.name for p in (out / "arms").glob("*.json")) == saved

    resumed = _cli(config, run, out, "--resume")
    stdout, err = resumed.communicate(timeout=300)
    assert "read back" not in stdout  # logs are not results: stderr only
    assert resumed.returncode == 0, err[-3000:]
    assert "2 finished arm(s) read back" in " ".join(err.split()), err[-3000:]
    # the finished arms were not run again: their files are untouched and they have no arm phase
    assert {name: (out / "arms" / name).stat().st_mtime_ns for name in saved} == before
    results = json.loads((out / "results.json").read_text())
    assert results["status"] == "complete" and results["resumed_arms"] == ["prompt_only", "rag"]
    assert "arm: prompt_only" not in results["phases"] and "arm: finetuned" in results["phases"]
    assert results["arms"]["rag"]["resumed"] is True and results["arms"]["finetuned"]["resumed"] is False

    whole = _cli(config, run, tmp_path / "whole")
    _, err = whole.communicate(timeout=300)
    assert whole.returncode == 0, err[-3000:]
    reference = json.loads((tmp_path / "whole" / "results.json").read_text())
    assert comparable(results) == comparable(reference)
    assert prediction_rows(out) == prediction_rows(tmp_path / "whole")


def prediction_rows(out: Path) -> list[dict]:
    """predictions.jsonl without the per-question latency (a timing)."""
    return [
        {k: v for k, v in json.loads(line).items() if k != "latency_s"}
        for line in (out / "predictions.jsonl").read_text().splitlines()
    ]


def test_a_finished_run_with_another_config_survives_compare_byte_for_byte(tiny_model_dir, tmp_path) -> None:
    from domainllm.benchmark.comparison import compare
    from domainllm.config import config_fingerprint, config_from_dict

    domain = write_tiny_domain(tmp_path / "domain")
    # A finished run at training.output_dir, trained with another config (a user's `train --set ...`).
    other = make_tiny_run(tmp_path, tiny_model_dir, domain, lora_std=0.2)
    (other / "merged").mkdir()
    (other / "merged" / "model.safetensors").write_bytes(b"weights the user merged")
    before = tree_digest(other)
    data = tiny_config_data(
        tiny_model_dir,
        domain,
        tmp_path,
        training={"num_epochs": 1, "eval_strategy": "no", "load_best_model_at_end": False},
        compare={"arms": ["finetuned"]},
    )
    cfg = config_from_dict(data)
    out = compare(cfg)
    assert tree_digest(other) == before  # not one byte of the user's run changed
    results = json.loads((out / "results.json").read_text())
    run = results["runs"]["default"]
    expected = tmp_path / f"run-{config_fingerprint(cfg)[:8]}"
    assert run["run_dir"] == str(expected) and run["reused"] is False
    assert "left as it is" in run["note"] and str(other) in run["note"]
    # the next comparison with this config reuses the fingerprinted run instead of training again
    again = compare(cfg, output_dir=tmp_path / "again")
    run_again = json.loads((again / "results.json").read_text())["runs"]["default"]
    assert run_again["reused"] is True and run_again["run_dir"] == str(expected)
    assert tree_digest(other) == before


def test_a_finished_comparison_is_refused_then_resumed_without_a_model_or_overwritten(
    setup, tmp_path
) -> None:
    from domainllm.benchmark.comparison import compare
    from domainllm.config import load_config

    _, run, config = setup
    cfg = load_config(config, ["compare.arms=[prompt_only, finetuned]"])
    out = compare(cfg, run_dir=run, output_dir=tmp_path / "cmp")
    before = tree_digest(out)
    original = json.loads((out / "results.json").read_text())
    with pytest.raises(EvalError, match=r"already holds a finished comparison.*--resume.*--overwrite"):
        compare(cfg, run_dir=run, output_dir=out)
    assert tree_digest(out) == before
    again = json.loads((compare(cfg, run_dir=run, output_dir=out, resume=True) / "results.json").read_text())
    assert again["resumed_arms"] == ["prompt_only", "finetuned"]
    assert "load model" not in again["phases"]  # every arm was read back: no model was loaded
    assert comparable(again) == comparable(original)  # re-scored from the saved answers: same numbers
    # a changed decoding setting changes every arm's key: --resume runs them again
    changed = load_config(config, ["compare.arms=[prompt_only, finetuned]", "generation.max_new_tokens=3"])
    rerun = json.loads(
        (compare(changed, run_dir=run, output_dir=out, resume=True) / "results.json").read_text()
    )
    assert rerun["resumed_arms"] == [] and "arm: finetuned" in rerun["phases"]
    fresh = json.loads(
        (compare(cfg, run_dir=run, output_dir=out, overwrite=True) / "results.json").read_text()
    )
    assert fresh["resumed_arms"] == [] and fresh["created_at"] >= again["created_at"]


def test_a_failure_after_the_arms_keeps_every_prediction(setup, tmp_path, monkeypatch) -> None:
    import domainllm.benchmark.finish as finish
    from domainllm.benchmark.comparison import compare
    from domainllm.config import load_config

    _, run, config = setup
    cfg = load_config(config, ["compare.arms=[prompt_only, finetuned]"])

    def broken(*args, **kwargs):  # fault injection: the statistics step raises
        raise ValueError("statistics exploded")

    monkeypatch.setattr(finish, "assemble_results", broken)
    out = tmp_path / "cmp"
    with pytest.raises(EvalError, match=r"statistics.*statistics exploded.*--resume"):
        compare(cfg, run_dir=run, output_dir=out)
    results = json.loads((out / "results.json").read_text())
    assert results["status"] == "failed" and results["errors"] == [
        "statistics: ValueError: statistics exploded"
    ]
    assert set(results["arms"]) == {"prompt_only", "finetuned"}  # statuses kept even without summaries
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * 4 and all("correct" in r["scores"] for r in rows)  # scored before the failure
    assert sorted(p.name for p in (out / "arms").iterdir()) == ["finetuned.json", "prompt_only.json"]
    assert "**Status: FAILED.**" in (out / "report.md").read_text()
    monkeypatch.undo()
    fixed = json.loads((compare(cfg, run_dir=run, output_dir=out, resume=True) / "results.json").read_text())
    assert fixed["status"] == "complete" and fixed["resumed_arms"] == ["prompt_only", "finetuned"]
    assert fixed["arms"]["finetuned"]["summary"]["metrics"]["correct"]["n"] == 4


def test_report_command_rerenders_without_loading_a_model(setup, tmp_path) -> None:
    from domainllm.benchmark.comparison import compare
    from domainllm.config import load_config

    _, run, config = setup
    out = compare(
        load_config(config, ["compare.arms=[prompt_only]"]), run_dir=run, output_dir=tmp_path / "cmp"
    )
    report = (out / "report.md").read_text()
    (out / "report.md").write_text("an older rendering")
    (out / "chart.png").unlink()
    code = textwrap.dedent(
        f"""
        import json, sys
        from domainllm.cli import main
        rc = main(["report", {str(out)!r}])
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "transformers", "peft", "chromadb", "langchain_core"))
        print(json.dumps({{"rc": rc, "heavy": heavy}}), file=sys.stderr)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    status = json.loads(proc.stderr.strip().splitlines()[-1])
    assert status == {"rc": 0, "heavy": []}, proc.stderr[-2000:]
    assert (out / "report.md").read_text() == report
    assert (out / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "prompt_only" in proc.stdout and "re-rendered" in proc.stdout


def test_output_folder_that_is_a_file_is_refused_and_left_alone(setup, tmp_path) -> None:
    from domainllm.benchmark.comparison import compare
    from domainllm.config import load_config

    _, run, config = setup
    target = tmp_path / "notes.txt"
    target.write_text("my notes")
    with pytest.raises(EvalError, match=r"is a file"):
        compare(load_config(config), run_dir=run, output_dir=target)
    assert target.read_text() == "my notes"
