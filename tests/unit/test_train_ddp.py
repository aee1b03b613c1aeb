"""The same ``domainllm train`` under ``accelerate launch`` with two processes (DDP over gloo on CPU).

Both ranks train; only rank 0 writes the run directory's files, so there is exactly one adapter, one
manifest (saying two processes took part) and one line per logged step.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import write_tiny_domain

REPO = Path(__file__).resolve().parents[2]
ACCELERATE_CONFIG = REPO / "configs" / "accelerate_ddp_cpu.yaml"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_ddp_run_writes_one_adapter_from_rank_zero(tiny_model_dir, tmp_path):
    domain = write_tiny_domain(tmp_path / "domain")
    out = tmp_path / "run"
    config = {
        "model": {"name_or_path": str(tiny_model_dir), "device": "cpu"},
        "quantization": {"mode": "none"},
        "lora": {"r": 8, "target_modules": "all-linear", "dropout": 0.0},
        "training": {
            "output_dir": str(out),
            "learning_rate": 5e-3,
            "max_steps": 6,
            "per_device_batch_size": 4,
            "logging_steps": 1,
            "warmup_ratio": 0.0,
            "max_seq_length": 128,
            "seed": 0,
        },
        "data": {"name": "tiny", "format": "folder", "path": str(domain), "system_prompt": "Be brief."},
    }
    config_path = tmp_path / "ddp.yaml"
    config_path.write_text(yaml.safe_dump(config))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(ACCELERATE_CONFIG),
        "--num_processes",
        "2",
        "--main_process_port",
        str(_free_port()),
        "-m",
        "domainllm",
        "train",
        "--config",
        str(config_path),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd=REPO, env=env)
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-4000:])
    # accelerate exits 0 only when both ranks did; the result is announced once, by rank 0
    assert proc.stdout.count(f"Run written to {out}") == 1

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["num_processes"] == 2
    assert manifest["global_step"] == 6
    # 24 examples over 2 ranks x batch 4 = 3 steps per epoch; TRL counts the tokens of both ranks.
    assert manifest["epochs"] == pytest.approx(2.0)
    assert manifest["trained_tokens"] > 6 * 2 * 4 * 20
    adapters = sorted(p.relative_to(out) for p in out.rglob("adapter_model.safetensors"))
    assert [str(p) for p in adapters if not str(p).startswith("checkpoints")] == [
        "adapter/adapter_model.safetensors"
    ]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    keys = [(r["kind"], r["step"]) for r in rows]
    assert len(keys) == len(set(keys))  # one writer: no step logged twice
    assert [s for kind, s in keys if kind == "train"] == list(range(1, 7))
    assert (out / "plots" / "loss.png").is_file() and (out / "README.md").is_file()
    assert not list(out.glob("*rank*"))
