"""A memory budget on CPU: the plan the chooser makes is the one the run trains with, and is recorded.

One real tiny training run with ``training.memory_budget_gib`` set between two of the memory
model's estimates, so the chooser must trade micro-batch for accumulation and checkpoint a layer;
the test recomputes the plan with the same pure function and finds it in the manifest, in the
TrainingArguments saved with the checkpoint and in the model's layer flags. The same run shows the
other speed choices recorded: padding-free batches (sdpa, probed) and the kept-logits loss head.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="module")
def budget_run(tiny_model_dir, tmp_path_factory):
    from conftest import tiny_config_data, write_tiny_domain

    import domainllm.modeling as modeling
    from domainllm.config import config_from_dict
    from domainllm.training import build_datasets, build_peft_config, train
    from domainllm.training.layers import model_shape
    from domainllm.training.memory import GIB, choose_plan, estimate_memory
    from domainllm.training.speed import _scored_share, train_setup

    root = tmp_path_factory.mktemp("budget")
    domain = write_tiny_domain(root / "domain")
    training = {
        "per_device_batch_size": 4,
        "gradient_accumulation_steps": 1,
        "max_steps": 4,
        "eval_strategy": "no",
    }
    cfg = config_from_dict(tiny_config_data(tiny_model_dir, domain, root, training=training))

    # What the chooser sees for this run, to place the budget where it forces a real trade-off.
    loaded = modeling.load_base_model(cfg.model, cfg.quantization)
    from domainllm.data import load_domain

    train_ds, _, _ = build_datasets(load_domain(cfg.data, cfg.base_dir), loaded.tokenizer, cfg)
    peft = build_peft_config(cfg.lora, loaded.model)
    shape = model_shape(loaded.model, peft.target_modules, cfg.lora.r)
    setup = train_setup(
        cfg,
        loaded,
        loss_head="kept-logits",
        scored_share=_scored_share(train_ds),
        attention="sdpa",
        flat_batches=True,
    )
    tokens = max(len(ids) for ids in train_ds["input_ids"])
    budget = estimate_memory(shape, setup, 2, tokens, 1)["total"] / GIB + 1e-9
    expected = choose_plan(shape, setup, effective_batch=4, tokens_per_example=tokens, budget_gib=budget)

    seen = {}
    real_load = modeling.load_base_model

    def spy(*args, **kwargs):
        seen["loaded"] = real_load(*args, **kwargs)
        return seen["loaded"]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(modeling, "load_base_model", spy)
        run = train(cfg.replace(training=dataclasses.replace(cfg.training, memory_budget_gib=budget)))
    return run, expected, seen["loaded"]


def test_the_budget_plan_is_a_real_trade_off_and_is_recorded(budget_run):
    from domainllm.rundir import RunDir

    run, expected, _ = budget_run
    plan = RunDir(run).read_manifest()["speed"]["memory_plan"]
    assert plan["per_device_batch_size"] == expected.per_device_batch_size
    assert plan["gradient_accumulation_steps"] == expected.gradient_accumulation_steps
    assert plan["checkpointed_layers"] == expected.checkpointed_layers
    assert plan["per_device_batch_size"] * plan["gradient_accumulation_steps"] == 4  # effective batch kept
    assert plan["per_device_batch_size"] < 4 or plan["checkpointed_layers"]  # the budget changed something
    assert plan["estimate_gib"] <= plan["budget_gib"]


def test_the_plan_is_what_the_trainer_ran_with(budget_run):
    from domainllm.training.layers import checkpointed_layers

    run, expected, loaded = budget_run
    (saved,) = run.glob("checkpoints/checkpoint-*/training_args.bin")
    args = torch.load(saved, weights_only=False)
    assert args.per_device_train_batch_size == expected.per_device_batch_size
    assert args.gradient_accumulation_steps == expected.gradient_accumulation_steps
    assert not args.gradient_checkpointing  # domainllm checkpoints the chosen layers itself
    assert checkpointed_layers(loaded.model) == expected.checkpointed_layers


def test_the_other_speed_choices_are_recorded(budget_run):
    from domainllm.rundir import RunDir

    speed = RunDir(budget_run[0]).read_manifest()["speed"]
    assert speed["padding_free"]["enabled"] is True and speed["padding_free"]["attention"] == "sdpa"
    assert speed["padding_free"]["layout"] == "per batch, flattened when that computes less"
    assert "keeps examples apart" in speed["padding_free"]["reason"]
    assert (
        speed["loss_head"] == "kept-logits" and speed["liger_kernel"] is False and speed["compile"] is False
    )


def test_a_budget_larger_than_the_machine_is_refused_before_anything_is_written(tiny_config):
    import psutil

    from domainllm.errors import ConfigError
    from domainllm.training import train

    too_much = psutil.virtual_memory().total / 2**30 * 2
    cfg = tiny_config.replace(training=dataclasses.replace(tiny_config.training, memory_budget_gib=too_much))
    with pytest.raises(ConfigError, match="memory_budget_gib"):
        train(cfg)
    assert not Path(tiny_config.training.output_dir).exists()


def test_the_speed_keys_leave_the_fingerprint_alone(tiny_config):
    from domainllm.config import config_fingerprint

    faster = dataclasses.replace(
        tiny_config.training, padding_free="off", memory_budget_gib=3.0, liger_kernel="off", compile=True
    )
    assert config_fingerprint(tiny_config.replace(training=faster)) == config_fingerprint(tiny_config)
    other = dataclasses.replace(tiny_config.training, learning_rate=1e-4)
    assert config_fingerprint(tiny_config.replace(training=other)) != config_fingerprint(tiny_config)
