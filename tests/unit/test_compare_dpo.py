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
