"""One real tiny training run (TRL + PEFT on CPU), then everything it must have produced.

The run is shared by the module: it trains once (~15 s) with spies on the real model loader and on
PEFT's ``get_peft_model`` (the real functions run; the spies only keep references and snapshots),
so the tests can compare weights before and after training.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path

import pytest
from conftest import write_tiny_domain

SYSTEM = "You are the assistant of Quillby Dental."


def tiny_train_config(model_dir: Path, domain: Path, out: Path, **training):
    from domainllm.config import config_from_dict

    return config_from_dict(
        {
            "model": {"name_or_path": str(model_dir), "device": "cpu"},
            "quantization": {"mode": "none"},
            "lora": {"r": 8, "target_modules": "all-linear", "dropout": 0.0},
            "training": {
                "output_dir": str(out),
                "learning_rate": 5e-3,
                "num_epochs": 3,
                "per_device_batch_size": 4,
                "logging_steps": 1,
                "warmup_ratio": 0.0,
                "max_seq_length": 128,
                "seed": 0,
                **training,
            },
            "data": {"name": "tiny", "format": "folder", "path": str(domain), "system_prompt": SYSTEM},
        }
    )


@pytest.fixture(scope="module")
def trained(tiny_model_dir, tmp_path_factory):
    """Train the tiny model once; keep the loaded model and snapshots of its weights."""
    import torch
    import trl.trainer.sft_trainer as trl_sft

    import domainllm.modeling as modeling
    from domainllm.training import train

    root = tmp_path_factory.mktemp("train-run")
    domain = write_tiny_domain(root / "domain")
    cfg = tiny_train_config(tiny_model_dir, domain, root / "run")
    seen: dict = {}
    real_load, real_get_peft = modeling.load_base_model, trl_sft.get_peft_model

    def spy_load(*args, **kwargs):
        loaded = real_load(*args, **kwargs)
        seen["loaded"] = loaded
        seen["base_before"] = {k: v.detach().clone() for k, v in loaded.model.state_dict().items()}
        return loaded

    def spy_get_peft(model, config, **kwargs):
        peft_model = real_get_peft(model, config, **kwargs)
        seen["lora_before"] = {
            k: v.detach().clone() for k, v in peft_model.state_dict().items() if "lora_" in k
        }
        return peft_model

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(modeling, "load_base_model", spy_load)
        mp.setattr(trl_sft, "get_peft_model", spy_get_peft)
        started = time.perf_counter()
        run_path = train(cfg)
        seen["seconds"] = time.perf_counter() - started
    torch.set_grad_enabled(True)
    seen.update(cfg=cfg, run=run_path, domain=domain, root=root)
    return seen


def _rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_train_loss_falls_clearly(trained):
    losses = [r["loss"] for r in _rows(trained["run"]) if r["kind"] == "train"]
    assert len(losses) == 18  # 24 examples / batch 4 = 6 steps x 3 epochs, logged every step
    assert losses[0] - losses[-1] > 0.3, losses
    manifest = json.loads((trained["run"] / "manifest.json").read_text())
    assert manifest["eval_loss_after"] < manifest["eval_loss_before"] - 0.3


def test_base_weights_unchanged_and_adapter_weights_changed(trained):
    import torch

    model = trained["loaded"].model  # the object training used (PEFT injects adapters in place)
    after = {k.replace(".base_layer", ""): v for k, v in model.state_dict().items() if "lora_" not in k}
    before = trained["base_before"]
    assert set(before) == set(after)
    for name, tensor in before.items():
        assert torch.equal(tensor, after[name]), f"base weight {name} changed"
    lora_after = {k: v for k, v in model.state_dict().items() if "lora_" in k}
    lora_before = {k.replace("base_model.model.", ""): v for k, v in trained["lora_before"].items()}
    # The same LoRA weights before and after training: none appeared, none went missing.
    assert {k.replace("base_model.model.", "") for k in lora_after} == set(lora_before)
    changed = {"lora_A": 0, "lora_B": 0}
    for name, tensor in lora_after.items():
        init = lora_before[name.replace("base_model.model.", "")]
        if not torch.allclose(init, tensor):
            changed["lora_A" if "lora_A" in name else "lora_B"] += 1
    n_modules = sum(1 for k in lora_after if "lora_A" in k)
    assert n_modules == 14  # 7 linear layers x 2 layers
    assert changed == {"lora_A": n_modules, "lora_B": n_modules}
    # The saved adapter holds exactly these weights, and nothing of the base.
    from safetensors.torch import load_file

    saved = load_file(trained["run"] / "adapter" / "adapter_model.safetensors")
    assert saved and all("lora_A" in k or "lora_B" in k for k in saved)
    assert len(saved) == 2 * n_modules
    some = next(k for k in saved if "lora_B" in k)
    assert saved[some].abs().sum() > 0


def test_run_directory_holds_every_file(trained):
    run = trained["run"]
    for rel in (
        "manifest.json",
        "config.yaml",
        "metrics.jsonl",
        "README.md",
        "adapter/adapter_config.json",
        "adapter/adapter_model.safetensors",
        "adapter/tokenizer_config.json",
        "adapter/tokenizer.json",
        "plots/loss.png",
        "plots/lr.png",
    ):
        assert (run / rel).is_file(), rel
    _assert_tensorboard_has_the_losses_of_metrics_jsonl(run)
    checkpoints = sorted(p.name for p in (run / "checkpoints").glob("checkpoint-*"))
    assert checkpoints == ["checkpoint-12", "checkpoint-18"]  # save_total_limit=2, best is the last
    adapter_cfg = json.loads((run / "adapter" / "adapter_config.json").read_text())
    assert (
        adapter_cfg["r"] == 8 and adapter_cfg["lora_alpha"] == 16 and adapter_cfg["task_type"] == "CAUSAL_LM"
    )


def _assert_tensorboard_has_the_losses_of_metrics_jsonl(run: Path) -> None:
    """The event file under RUN/tensorboard/ (not under checkpoints/) holds the train loss of every
    logged step, equal to what metrics.jsonl records (TensorBoard stores float32)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = sorted((run / "tensorboard").rglob("events.out.tfevents.*"))
    assert events, f"no TensorBoard event file under {run / 'tensorboard'}"
    scalars: dict[int, float] = {}
    for path in events:
        acc = EventAccumulator(str(path), size_guidance={"scalars": 0})  # 0: keep every event
        acc.Reload()
        if "train/loss" in acc.Tags()["scalars"]:
            scalars.update({e.step: e.value for e in acc.Scalars("train/loss")})
    logged = {r["step"]: r["loss"] for r in _rows(run) if r["kind"] == "train"}
    assert sorted(scalars) == sorted(logged) == list(range(1, 19))
    for step, loss in logged.items():
        assert scalars[step] == pytest.approx(loss, rel=1e-6), step


def test_manifest_records_what_serving_and_reports_need(trained):
    from domainllm.config import config_fingerprint
    from domainllm.rundir import RunDir

    run = RunDir.open(trained["run"])  # the serving side's check: complete, with an adapter
    m = run.read_manifest()
    assert m["status"] == "complete" and m["error"] is None
    assert m["fingerprint"] == config_fingerprint(run.load_config())
    assert m["versions"]["trl"] and m["versions"]["peft"] and m["versions"]["torch"]
    assert m["device"] == "cpu" and m["num_processes"] == 1
    assert m["base_model"]["path"] == str(trained["loaded"].path)
    assert m["base_model"]["quant_mode"] == "none"
    assert m["data"]["train"]["n"] == 24 and m["data"]["val"]["n"] == 4
    assert len(m["data"]["train"]["sha256"]) == 64
    assert m["examples"]["train"] == 24 and m["examples"]["truncated"] == 0
    assert 0 < m["parameters"]["trainable"] < m["parameters"]["total"]
    assert sorted(m["target_modules"]) == [
        "down_proj",
        "gate_proj",
        "k_proj",
        "o_proj",
        "q_proj",
        "up_proj",
        "v_proj",
    ]
    assert m["global_step"] == 18 and m["best_step"] == 18
    assert m["best_checkpoint"].endswith("checkpoint-18")
    assert m["best_eval_loss"] == pytest.approx(m["eval_loss_after"])
    assert m["trained_tokens"] > 18 * 4 * 20  # every batch's non-padding tokens
    assert m["tokens_per_second"] == pytest.approx(m["trained_tokens"] / m["train_runtime_s"], rel=0.02)
    assert m["peak_rss_mib"] > 100
    assert 0 < m["train_runtime_s"] < m["wall_time_s"] <= trained["seconds"] + 1


def test_metrics_jsonl_is_well_formed(trained):
    rows = _rows(trained["run"])
    train_rows = [r for r in rows if r["kind"] == "train"]
    eval_rows = [r for r in rows if r["kind"] == "eval"]
    assert [r["step"] for r in train_rows] == list(range(1, 19))
    assert [r["step"] for r in eval_rows] == [0, 6, 12, 18]  # before training, then each epoch
    for r in train_rows:
        assert {"step", "epoch", "loss", "lr", "grad_norm"} <= set(r)
        assert r["loss"] > 0 and r["grad_norm"] >= 0 and r["lr"] >= 0
    # The cosine schedule (no warmup, 18 steps, peak 5e-3), not merely a falling one: the lr logged at
    # step s is the one that step used, 5e-3 * (1 + cos(pi * (s - 1) / 18)) / 2. A linear decay agrees
    # at the first step and the middle only, and is more than 10% of the peak off at step 5.
    peak, total = 5e-3, 18
    for r in train_rows:
        cosine = peak * (1 + math.cos(math.pi * (r["step"] - 1) / total)) / 2
        assert r["lr"] == pytest.approx(cosine, rel=1e-6, abs=1e-12), (r["step"], r["lr"], cosine)
    manifest = json.loads((trained["run"] / "manifest.json").read_text())
    assert eval_rows[0]["eval_loss"] == pytest.approx(manifest["eval_loss_before"])


def test_plots_are_real_pngs(trained):
    from PIL import Image

    for name in ("loss.png", "lr.png"):
        path = trained["run"] / "plots" / name
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert path.stat().st_size > 15_000  # axes, curves and labels, not an empty canvas
        with Image.open(path) as image:
            colours = image.convert("RGB").getcolors(maxcolors=1_000_000)
        assert image.size[0] > 500 and len(colours) > 50


def test_model_card_and_portable_config(trained):
    from domainllm.config import load_config

    card = (trained["run"] / "README.md").read_text()
    manifest = json.loads((trained["run"] / "manifest.json").read_text())
    assert "base_model: tiny" in card.splitlines()[2]
    assert "| train | 24 |" in card and "| val | 4 |" in card
    assert f"{manifest['eval_loss_before']:.4f}" in card
    assert "PeftModel.from_pretrained" in card and "domainllm chat" in card
    assert "| learning rate | 0.005 |" in card
    cfg = load_config(trained["run"] / "config.yaml")
    assert Path(cfg.data.path).is_absolute() and Path(cfg.data.path) == trained["domain"].resolve()
    assert cfg.training.output_dir == str(trained["run"])


def test_a_finished_run_is_not_overwritten_without_the_flag(trained):
    from domainllm.errors import RunDirError
    from domainllm.training import train

    manifest = trained["run"] / "manifest.json"
    before = manifest.stat().st_mtime_ns
    with pytest.raises(RunDirError, match="--overwrite"):
        train(trained["cfg"])
    with pytest.raises(RunDirError, match="nothing to resume"):
        train(trained["cfg"], resume=True)
    assert manifest.stat().st_mtime_ns == before


def test_failed_run_is_refused_until_resume_or_overwrite_and_overwrite_starts_clean(trained, tmp_path):
    import shutil

    from domainllm.errors import RunDirError
    from domainllm.rundir import RunDir
    from domainllm.training import train

    copy = tmp_path / "failed-run"
    shutil.copytree(trained["run"], copy)
    RunDir(copy).mark_failed(RuntimeError("out of memory"))
    cfg = trained["cfg"]
    with pytest.raises(RunDirError) as info:
        train(cfg, output_dir=copy)
    assert (
        "--resume" in str(info.value)
        and "--overwrite" in str(info.value)
        and "out of memory" in str(info.value)
    )
    (copy / "checkpoints" / "checkpoint-999").mkdir()  # stale content that must not survive
    short = cfg.replace(training=dataclasses.replace(cfg.training, max_steps=2, eval_strategy="no"))
    train(short, output_dir=copy, overwrite=True)
    m = RunDir(copy).read_manifest()
    assert m["status"] == "complete" and m["global_step"] == 2
    assert not (copy / "checkpoints" / "checkpoint-999").exists()
    assert [r["step"] for r in _rows(copy) if r["kind"] == "train"] == [1, 2]


def test_a_foreign_directory_is_never_deleted(trained, tmp_path):
    from domainllm.errors import RunDirError
    from domainllm.training import train

    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(RunDirError, match="not a domainllm run directory"):
        train(trained["cfg"], output_dir=tmp_path, overwrite=True)
    assert (tmp_path / "notes.txt").read_text() == "mine"
