"""Bad input stops training in seconds with an actionable DomainLLMError, and writes nothing."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest


def _with(cfg, **sections):
    """A copy of ``cfg`` with fields replaced per section: _with(cfg, training={"max_steps": 2})."""
    return cfg.replace(
        **{name: dataclasses.replace(getattr(cfg, name), **kw) for name, kw in sections.items()}
    )


def _train_fails(cfg, error, *fragments):
    from domainllm.training import train

    out = Path(cfg.training.output_dir)
    with pytest.raises(error) as info:
        train(cfg)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)
    assert not out.exists(), "a failed setup must not leave a run directory behind"
    return str(info.value)


def test_empty_train_split_names_the_file(tiny_config, tiny_domain):
    from domainllm.errors import DataError

    (tiny_domain / "qa" / "train.jsonl").write_text("")
    _train_fails(tiny_config, DataError, "train.jsonl")


def test_missing_val_split_with_early_stopping_names_the_fixes(tiny_config, tiny_domain):
    from domainllm.errors import TrainingError

    (tiny_domain / "qa" / "val.jsonl").unlink()
    cfg = _with(tiny_config, training={"early_stopping_patience": 2})
    text = _train_fails(cfg, TrainingError, "val", "training.eval_strategy", "data.val_fraction")
    assert "early stopping" in text


def test_too_many_overlong_examples_refuse_with_numbers_and_fix(tiny_config):
    from domainllm.errors import TrainingError

    cfg = _with(tiny_config, training={"max_seq_length": 40})
    text = _train_fails(cfg, TrainingError, "of 24 training examples", "training.max_seq_length=40")
    assert "--set training.max_seq_length=64" in text  # the longest tiny example has ~50 tokens


def test_a_few_overlong_examples_within_budget_train(tiny_config, caplog):
    """Under the share, truncation is logged and counted in the manifest instead of refused."""
    from domainllm.rundir import RunDir
    from domainllm.training import train

    cfg = _with(
        tiny_config,
        training={"max_seq_length": 40, "max_truncated_share": 1.0, "max_steps": 1, "eval_strategy": "no"},
    )
    with caplog.at_level("WARNING", logger="domainllm"):
        run = train(cfg)
    assert "were truncated to training.max_seq_length=40" in caplog.text
    assert RunDir(run).read_manifest()["examples"]["truncated"] > 0


def test_unknown_target_module_lists_the_models_linear_layers(tiny_config):
    from domainllm.errors import ConfigError

    cfg = _with(tiny_config, lora={"target_modules": ["q_proj", "qkv"]})
    _train_fails(cfg, ConfigError, "'qkv'", "lora.target_modules", "down_proj, gate_proj, k_proj")


def test_8bit_on_cpu_is_a_config_error(tiny_config):
    from domainllm.errors import ConfigError

    cfg = _with(tiny_config, quantization={"mode": "8bit"})
    _train_fails(cfg, ConfigError, "quantization.mode", "4bit")


def test_resume_without_a_checkpoint_is_refused(tiny_config):
    from domainllm.errors import RunDirError
    from domainllm.rundir import RunDir
    from domainllm.training import train

    run = RunDir(tiny_config.training.output_dir)
    run.mark_running()  # a run that died before its first checkpoint
    with pytest.raises(RunDirError, match="no complete checkpoint"):
        train(tiny_config, resume=True)
    with pytest.raises(RunDirError, match="--overwrite"):
        train(tiny_config)


def test_cli_maps_training_errors_to_exit_code_2(tiny_config, tmp_path, capsys):
    from domainllm.cli import main
    from domainllm.config import save_config

    path = save_config(tiny_config, tmp_path / "tiny.yaml")
    code = main(["train", "--config", str(path), "--set", "lora.target_modules=[nope_proj]"])
    assert code == 2
    err = capsys.readouterr().err
    assert (
        "error: Config key 'lora.target_modules'" in err and "'nope_proj'" in err and "Traceback" not in err
    )
    assert not Path(tiny_config.training.output_dir).exists()


def test_run_dir_decisions_without_training(tmp_path):
    """check_run_dir decides from what is on disk alone; nothing is changed by asking."""
    from domainllm.errors import RunDirError
    from domainllm.rundir import RunDir
    from domainllm.training import check_run_dir, last_checkpoint

    run = RunDir(tmp_path / "run")
    assert check_run_dir(run, resume=False, overwrite=False) is None  # new directory: fine
    with pytest.raises(RunDirError, match="only one"):
        check_run_dir(run, resume=True, overwrite=True)
    (run.checkpoints_dir / "checkpoint-4").mkdir(parents=True)  # leftovers without a manifest
    with pytest.raises(RunDirError, match="without a manifest"):
        check_run_dir(run, resume=False, overwrite=False)
    assert check_run_dir(run, resume=False, overwrite=True) is None
    run.mark_failed("boom")
    (run.checkpoints_dir / "checkpoint-4" / "trainer_state.json").write_text("{}")
    (run.checkpoints_dir / "checkpoint-8").mkdir()  # torn: no trainer_state.json
    assert last_checkpoint(run.checkpoints_dir).name == "checkpoint-4"
    with pytest.raises(RunDirError, match="--resume to continue from checkpoint-4"):
        check_run_dir(run, resume=False, overwrite=False)
    assert check_run_dir(run, resume=True, overwrite=False).name == "checkpoint-4"
    assert (run.checkpoints_dir / "checkpoint-8").is_dir() and run.status == "failed"


def test_ctrl_c_during_training_marks_the_run_interrupted_and_propagates(tiny_config, ctrl_c_enabled):
    """A real SIGINT (as from Ctrl-C) once the first step is logged: manifest interrupted (not failed),
    Interrupted (a KeyboardInterrupt) raised; before the first checkpoint there is nothing to resume."""
    import os
    import signal
    import threading
    import time

    from domainllm.rundir import RunDir
    from domainllm.training import train

    cfg = _with(tiny_config, training={"max_steps": 200, "eval_strategy": "no"})
    run = RunDir(cfg.training.output_dir)

    def interrupt_after_first_step():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if run.metrics_path.is_file() and '"kind": "train"' in run.metrics_path.read_text():
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.01)

    threading.Thread(target=interrupt_after_first_step, daemon=True).start()
    from domainllm.errors import Interrupted

    with pytest.raises(Interrupted, match="before its first checkpoint"):
        train(cfg)
    manifest = run.read_manifest()
    assert manifest["status"] == "interrupted" and manifest["error"] is None
    assert manifest["resume_command"] is None  # no checkpoint yet: --overwrite, not --resume
    assert manifest.get("global_step") is None  # it never reached the end
