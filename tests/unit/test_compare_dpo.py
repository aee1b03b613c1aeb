"""A DPO run is one more recipe: ``training.from_run: recipe:sft`` trains after sft and gives @dpo arms."""

from __future__ import annotations

import json

import pytest
from _runs import one_torch_thread, tiny_run_config
from conftest import write_tiny_domain
from test_dpo import write_preferences

from domainllm.errors import ConfigError

__all__ = ["one_torch_thread"]


def test_dpo_recipe_trains_from_the_sft_recipe(tiny_model_dir, tmp_path) -> None:
    from domainllm.benchmark.comparison import compare

    domain = write_tiny_domain(tmp_path / "domain")
    prefs = write_preferences(tmp_path / "prefs", repeats=1)
    referral = tmp_path / "referral.json"
    referral.write_text(json.dumps({"ids": ["test-0", "test-2"], "rule": "tiny"}))
    cfg = tiny_run_config(
        tiny_model_dir,
        domain,
        tmp_path,
        training={
            "output_dir": str(tmp_path / "run"),
            "max_steps": 1,
            "eval_strategy": "no",
            "load_best_model_at_end": False,
        },
        compare={
            "output_dir": str(tmp_path / "cmp"),
            "n_bootstrap": 100,
            "arms": ["finetuned", "finetuned_rag"],
            "referral_file": str(referral),
            # dpo is listed first: it still trains second, from sft's run
            "recipes": {
                "dpo": {
                    "training.method": "dpo",
                    "training.from_run": "recipe:sft",
                    "data.preferences": str(prefs),
                },
                "sft": {},
            },
        },
    )
    out = compare(cfg)
    results = json.loads((out / "results.json").read_text())
    assert set(results["arms"]) == {
        "finetuned@sft",
        "finetuned@dpo",
        "finetuned_rag@sft",
        "finetuned_rag@dpo",
    }
    assert set(results["referral"]["arms"]) == set(results["arms"])
    assert all(r["n"] == 2 for r in results["referral"]["arms"].values())
    assert "## Referral to a dentist" in (out / "report.md").read_text()
    manifest = json.loads((tmp_path / "run-dpo" / "manifest.json").read_text())
    assert manifest["method"] == "dpo" and manifest["dpo"]["from_run"] == str(tmp_path / "run-sft")
    assert manifest["preferences"]["before"]["pairs"] == 4
    # the DPO run has seen sft's questions and its own preference prompts: both are leakage-checked
    sft_rows = results["runs"]["sft"]["train_rows"]
    dpo_rows = results["runs"]["dpo"]["train_rows"]
    assert dpo_rows["by_source"] == {**sft_rows["by_source"], "preference": 4}
    assert dpo_rows["n"] == sft_rows["n"] + 4
    assert results["leakage"]["dpo"]["train_size"] == dpo_rows["n"]


def test_recipe_from_run_must_name_another_recipe() -> None:
    from domainllm.config import config_from_dict

    with pytest.raises(ConfigError, match=r"compare.recipes.dpo.*no recipe 'sfd'"):
        config_from_dict(
            {
                "compare": {
                    "recipes": {
                        "sft": {},
                        "dpo": {"training.method": "dpo", "training.from_run": "recipe:sfd"},
                    }
                }
            }
        )


def test_a_finished_dpo_run_on_the_shipped_set_is_reused_by_the_comparison(tmp_path, monkeypatch) -> None:
    """Training fills in data.preferences (the shipped dental pairs) before it fingerprints the run; the
    comparison must fill it in the same way, or a finished DPO recipe looks stale and trains again."""
    import domainllm.training as training
    from domainllm.benchmark.prepare import prepare_run
    from domainllm.config import config_fingerprint, config_from_dict
    from domainllm.data import load_domain
    from domainllm.data.preferences import with_default_preferences
    from domainllm.data.records import records_sha256

    run = tmp_path / "run-dpo"
    cfg = config_from_dict(
        {"data": {"path": "builtin:dental"}, "training": {"method": "dpo", "output_dir": str(run)}}
    )
    assert cfg.data.preferences is None
    data = load_domain(cfg.data, cfg.base_dir)
    (run / "adapter").mkdir(parents=True)
    (run / "adapter" / "adapter_config.json").write_text("{}")
    manifest = {  # what a finished DPO run records: the fingerprint of the config as training resolved it
        "status": "complete",
        "fingerprint": config_fingerprint(with_default_preferences(cfg)),
        "data": {s: {"sha256": records_sha256(data.split(s))} for s in ("train", "val")},
    }
    (run / "manifest.json").write_text(json.dumps(manifest))

    def must_not_train(*_a, **_k):
        raise AssertionError("the finished DPO run was not recognised: the comparison trained again")

    monkeypatch.setattr(training, "train", must_not_train)
    info = prepare_run(cfg, data, None, "dpo")
    assert info.path == run.resolve() and info.reused and "reusing run" in info.note
