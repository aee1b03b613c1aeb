"""DPO on the tiny model: the reference costs no second model, and training moves the val preferences.

A cheap SFT run (``_runs.make_tiny_run``: a real adapter with random ``lora_B``, so the SFT model
differs from the base) is the start; DPO trains a few real TRL steps on tiny preference pairs whose
chosen answer is the fact and whose rejected answer is a wrong one.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _runs import make_tiny_run, one_torch_thread, tiny_run_config
from conftest import TINY_FACTS, write_tiny_domain

__all__ = ["one_torch_thread"]

WRONG = {"€85": "€20", "Dr. Ines Marlow": "Dr. Bob Stone", "Wednesday": "Sunday", "48 hours": "2 weeks"}


def write_preferences(root: Path, repeats: int = 4) -> Path:
    """train.jsonl (the train questions, reworded) and val.jsonl (the facts asked another way)."""
    root.mkdir(parents=True, exist_ok=True)
    train, val = [], []
    for i, (question, answer, _doc) in enumerate(TINY_FACTS):
        for r in range(repeats):
            train.append(
                {
                    "id": f"p-{i}-{r}",
                    "prompt": f"{question} (asked again {r + 1})",
                    "chosen": answer,
                    "rejected": WRONG[answer],
                }
            )
        val.append(
            {"id": f"pv-{i}", "prompt": f"Quick one: {question}", "chosen": answer, "rejected": WRONG[answer]}
        )
    for name, rows in (("train", train), ("val", val)):
        (root / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return root


def dpo_config(model_dir: Path, domain: Path, root: Path, prefs: Path, from_run: Path | None, **training):
    return tiny_run_config(
        model_dir,
        domain,
        root,
        training={
            "output_dir": str(root / "dpo"),
            "method": "dpo",
            "from_run": str(from_run) if from_run else None,
            "learning_rate": 2e-2,
            "num_epochs": 2,
            "per_device_batch_size": 4,
            "logging_steps": 1,
            "warmup_ratio": 0.0,
            "dpo_beta": 0.1,
            **training,
        },
        data={"preferences": str(prefs)},
    )


@pytest.fixture(scope="module")
def dpo_run(tmp_path_factory, tiny_model_dir):
    """One DPO run from a tiny SFT run, with the trainer kept for the reference checks."""
    from domainllm.training import dpo as dpo_module
    from domainllm.training import train

    root = tmp_path_factory.mktemp("dpo")
    domain = write_tiny_domain(root / "domain")
    sft = make_tiny_run(root / "sft", tiny_model_dir, domain, lora_std=0.05)
    prefs = write_preferences(root / "prefs")
    cfg = dpo_config(tiny_model_dir, domain, root, prefs, sft)
    seen = {}
    real = dpo_module.build_dpo_trainer

    def spy(*args, **kwargs):
        seen["trainer"] = real(*args, **kwargs)
        return seen["trainer"]

    dpo_module.build_dpo_trainer = spy
    try:
        path = train(cfg)
    finally:
        dpo_module.build_dpo_trainer = real
    return {
        "path": path,
        "trainer": seen["trainer"],
        "sft": sft,
        "cfg": cfg,
        "root": root,
        "domain": domain,
        "prefs": prefs,
    }


def _flat(pairs):
    return [v for pair in pairs for v in pair]


def _val_rows(cfg, prefs):
    from domainllm.data.preferences import load_preferences, to_trl_rows

    return to_trl_rows(load_preferences(str(prefs)).val, cfg.data.system_prompt)


def test_dpo_raises_val_preference_accuracy_and_margin(dpo_run):
    from domainllm.rundir import RunDir

    run = RunDir(dpo_run["path"])
    assert run.is_complete
    record = json.loads((run.path / "metrics_dpo.json").read_text())
    before, after = record["before"], record["after"]
    assert after["logp_margin"] > before["logp_margin"]
    # DPO's preference accuracy (TRL's rewards/accuracies: chosen's implicit reward above rejected's) rises;
    # the raw log-prob accuracy on 4 pairs moves in steps of 0.25 and must at least not fall.
    assert after["reward_accuracy"] > before["reward_accuracy"] and after["reward_accuracy"] >= 0.75
    assert after["accuracy"] >= before["accuracy"]
    assert before["reward_margin"] == 0.0 and after["reward_margin"] > 0.0
    assert (run.plots_dir / "preferences.png").stat().st_size > 1000
    manifest = run.read_manifest()
    assert manifest["method"] == "dpo" and manifest["preferences"]["after"] == after
    assert manifest["dpo"]["from_run"] == str(dpo_run["sft"].resolve())
    for name in (
        "config.yaml",
        "metrics.jsonl",
        "README.md",
        "plots/loss.png",
        "adapter/adapter_model.safetensors",
    ):
        assert (run.path / name).exists(), name
    assert not (run.adapter_dir / "ref").exists()


def test_reference_is_the_sft_model_and_base_is_one_copy(dpo_run, tiny_model_dir):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl.trainer.utils import use_adapter

    from domainllm.training.prefscore import pair_logps

    trainer = dpo_run["trainer"]
    model = trainer.model
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    rows = _val_rows(dpo_run["cfg"], dpo_run["prefs"])
    alone = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(tiny_model_dir), str(dpo_run["sft"] / "adapter")
    )
    expected = pair_logps(alone, tok, rows)
    with use_adapter(model, adapter_name="ref"):
        ref = pair_logps(model, tok, rows)
    policy = pair_logps(model, tok, rows)
    assert _flat(ref) == pytest.approx(
        _flat(expected), abs=1e-4
    )  # the reference is the SFT model, after training too
    assert _flat(policy) != pytest.approx(_flat(expected), abs=1e-3)  # while the policy moved
    # One copy of the base: every base weight is one tensor, with LoRA adapters default + ref beside it.
    base_ptrs = {p.data_ptr() for n, p in model.named_parameters() if "lora_" not in n}
    n_base = sum(1 for n, _ in AutoModelForCausalLM.from_pretrained(tiny_model_dir).named_parameters())
    assert len(base_ptrs) == n_base
    assert set(model.peft_config) == {"default", "ref"}
    assert not any(p.requires_grad for n, p in model.named_parameters() if ".ref." in n or "lora_" not in n)
    # Adapter weights changed from the SFT run's; the frozen ref still equals them.
    from safetensors.torch import load_file

    sft_w = load_file(str(dpo_run["sft"] / "adapter" / "adapter_model.safetensors"))
    dpo_w = load_file(str(Path(dpo_run["path"]) / "adapter" / "adapter_model.safetensors"))
    assert sft_w.keys() == dpo_w.keys()
    assert any(not torch.equal(sft_w[k], dpo_w[k]) for k in sft_w)
    del torch


def test_dpo_from_base_reference_is_the_base(dpo_run, tiny_model_dir, tmp_path):
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from domainllm.modeling import load_base_model
    from domainllm.training.dpo import build_dpo_config, build_dpo_trainer, load_policy
    from domainllm.training.prefscore import pair_logps

    cfg = dpo_config(tiny_model_dir, dpo_run["domain"], tmp_path, dpo_run["prefs"], None, max_steps=2)
    loaded = load_base_model(cfg.model, cfg.quantization)
    model, peft_config = load_policy(cfg, loaded, None)
    assert peft_config is not None
    rows = _val_rows(cfg, dpo_run["prefs"])
    args = build_dpo_config(cfg, tmp_path / "dpo", "cpu", "none", [])
    trainer = build_dpo_trainer(model, loaded.tokenizer, args, rows * 2, rows, peft_config, [])
    trainer.train()
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    with trainer.model.disable_adapter():
        ref = pair_logps(trainer.model, tok, rows)
    assert _flat(ref) == pytest.approx(_flat(pair_logps(base, tok, rows)), abs=1e-4)
    assert "ref" not in trainer.model.peft_config  # no second copy of anything
    assert _flat(pair_logps(trainer.model, tok, rows)) != pytest.approx(_flat(ref), abs=1e-4)
    del get_peft_model


def test_preference_file_errors_name_file_and_line(tmp_path):
    from domainllm.data.preferences import load_preferences
    from domainllm.errors import DataError

    (tmp_path / "train.jsonl").write_text(
        '{"prompt": "q", "chosen": "a", "rejected": "b"}\n{"prompt": "q", "chosen": "a"}\n', encoding="utf-8"
    )
    with pytest.raises(DataError, match=r"train.jsonl line 2, field 'rejected': is missing"):
        load_preferences(str(tmp_path))
    (tmp_path / "train.jsonl").write_text(
        '{"prompt": [{"role": "user", "content": "q"}], "chosen": [{"role": "assistant", "content": "a"}], "rejected": [{"role": "assistant", "content": "b"}]}\n'
    )
    prefs = load_preferences(str(tmp_path))
    assert prefs.train[0].question == "q" and prefs.val == []


def test_preference_leakage_against_test_is_refused(tmp_path, tiny_model_dir):
    from domainllm.errors import DataError
    from domainllm.training import train

    domain = write_tiny_domain(tmp_path / "domain")
    prefs = tmp_path / "prefs"
    prefs.mkdir()
    test_q = json.loads((domain / "qa" / "test.jsonl").read_text().splitlines()[0])["question"]
    (prefs / "train.jsonl").write_text(json.dumps({"prompt": test_q, "chosen": "a", "rejected": "b"}) + "\n")
    cfg = dpo_config(tiny_model_dir, domain, tmp_path, prefs, None, eval_strategy="no")
    with pytest.raises(DataError, match="near-duplicates of test questions"):
        train(cfg)
    assert not (tmp_path / "dpo").exists()


def test_config_keys_validated():
    from domainllm.config import config_from_dict
    from domainllm.errors import ConfigError

    with pytest.raises(ConfigError, match=r"training\.dpo_loss_type"):
        config_from_dict({"training": {"method": "dpo", "dpo_loss_type": "sigmod"}})
    with pytest.raises(ConfigError, match=r"training\.from_run"):
        config_from_dict({"training": {"from_run": "runs/x"}})
    with pytest.raises(ConfigError, match=r"training\.dpo_beta"):
        config_from_dict({"training": {"method": "dpo", "dpo_beta": 0}})
