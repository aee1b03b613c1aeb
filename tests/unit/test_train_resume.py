"""The CLI end to end, and resume after SIGKILL: a killed-and-resumed run ends where an uninterrupted one does.

Three real ``python -m domainllm train`` processes on the tiny model: an uninterrupted reference run
(which is also the CLI end-to-end test), a run killed with SIGKILL right after its step-10 checkpoint,
and its ``--resume``. With a fixed seed, LoRA dropout on, and the Trainer restoring optimizer,
scheduler, RNG and data position from the checkpoint, the final train loss must match within 1e-3,
and metrics.jsonl must hold every step exactly once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import write_tiny_domain

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "domainllm", *args]


def _rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def config_file(tiny_model_dir, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("resume")
    domain = write_tiny_domain(root / "domain")
    data = {
        "model": {"name_or_path": str(tiny_model_dir), "device": "cpu"},
        "quantization": {"mode": "none"},
        "lora": {
            "r": 8,
            "target_modules": "all-linear",
            "dropout": 0.1,
        },  # dropout: RNG state must resume too
        "training": {
            "output_dir": str(root / "unused"),
            "learning_rate": 5e-3,
            "max_steps": 20,
            "per_device_batch_size": 4,
            "logging_steps": 1,
            "warmup_ratio": 0.1,
            "max_seq_length": 128,
            "eval_strategy": "steps",
            "eval_steps": 5,
            "save_total_limit": 5,
            "seed": 3,
        },
        "data": {"name": "tiny", "format": "folder", "path": str(domain), "system_prompt": "Be brief."},
    }
    path = root / "tiny.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def reference(config_file) -> Path:
    """The uninterrupted run, through the CLI with a --set override."""
    out = config_file.parent / "reference"
    proc = subprocess.run(
        _cli("train", "--config", str(config_file), "--set", f"training.output_dir={out}"),
        capture_output=True,
        text=True,
        timeout=240,
        cwd=REPO,
        env=ENV,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"Run written to {out}" in proc.stdout
    return out


def test_cli_train_end_to_end(reference):
    from domainllm.rundir import RunDir

    run = RunDir.open(reference)
    manifest = run.read_manifest()
    assert manifest["global_step"] == 20 and manifest["eval_loss_after"] < manifest["eval_loss_before"]
    assert run.load_config().training.output_dir == str(reference)  # the --set override took effect
    assert (run.adapter_dir / "adapter_model.safetensors").is_file()


def test_resume_after_sigkill_matches_uninterrupted_run(config_file, reference):
    out = config_file.parent / "killed"
    marker = out / "checkpoints" / "checkpoint-10" / "trainer_state.json"  # written last in a checkpoint
    proc = subprocess.Popen(
        _cli("train", "--config", str(config_file), "--output-dir", str(out)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=REPO,
        env=ENV,
    )
    try:
        deadline = time.monotonic() + 180
        while not marker.is_file():
            assert proc.poll() is None, (
                f"training ended before it could be killed: {proc.stderr.read()[-2000:]!r}"
            )
            assert time.monotonic() < deadline, "no checkpoint-10 within 180 s"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "running"  # SIGKILL leaves no chance to mark it failed
    steps_before = [r["step"] for r in _rows(out) if r["kind"] == "train"]
    assert max(steps_before) < 20

    resumed = subprocess.run(
        _cli("train", "--config", str(config_file), "--output-dir", str(out), "--resume"),
        capture_output=True,
        text=True,
        timeout=240,
        cwd=REPO,
        env=ENV,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["global_step"] == 20
    assert Path(manifest["resumed_from"]).name in {"checkpoint-10", "checkpoint-15"}
    assert manifest["eval_loss_before"] is not None  # kept from the first attempt

    rows, ref_rows = _rows(out), _rows(reference)
    train_steps = [r["step"] for r in rows if r["kind"] == "train"]
    eval_steps = [r["step"] for r in rows if r["kind"] == "eval"]
    assert train_steps == list(range(1, 21))  # every step once: the killed tail was rewound, not duplicated
    assert eval_steps == [0, 5, 10, 15, 20]
    final, ref_final = rows[-1], ref_rows[-1]
    last_loss = [r["loss"] for r in rows if r["kind"] == "train"][-1]
    ref_last_loss = [r["loss"] for r in ref_rows if r["kind"] == "train"][-1]
    assert abs(last_loss - ref_last_loss) < 1e-3, (last_loss, ref_last_loss)
    assert abs(final["eval_loss"] - ref_final["eval_loss"]) < 1e-3
