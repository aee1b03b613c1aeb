"""Several fine-tuned runs in one comparison: named adapters on one base, per-run arms, planned tests.

Real runs (tests/unit/_runs.py: a real PEFT adapter on the tiny Llama), real chains, real Chroma;
the recipes test trains with TRL for real.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from _runs import make_tiny_run, one_torch_thread, tiny_run_config
from conftest import write_tiny_domain

from domainllm.errors import ConfigError, ModelError

__all__ = ["one_torch_thread"]

QUESTIONS = [
    "How much does a check-up cost at Quillby Dental?",
    "Who is the orthodontist at Quillby Dental?",
    "On which day is Quillby Dental closed?",
]
PROMPT_A = "You are the assistant of Quillby Dental."
PROMPT_B = "You answer for Quillby Dental, briefly."


@pytest.fixture(scope="module")
def domain(tmp_path_factory):
    return write_tiny_domain(tmp_path_factory.mktemp("domain"))


@pytest.fixture(scope="module")
def two_runs(tiny_model_dir, domain, tmp_path_factory):
    """Two runs on the tiny base with different adapter weights and different system prompts."""
    root = tmp_path_factory.mktemp("runs")
    a = make_tiny_run(root / "a", tiny_model_dir, domain, seed=0, data={"system_prompt": PROMPT_A})
    b = make_tiny_run(root / "b", tiny_model_dir, domain, seed=1, data={"system_prompt": PROMPT_B})
    return a, b


def _answers(expert, spec_name: str = "finetuned") -> list[str]:
    from domainllm.chains import build_chain, load_chain_spec

    spec = load_chain_spec(spec_name, domain="tiny")
    chain = build_chain(spec, expert)
    return chain.batch(QUESTIONS)


def _base_params(model) -> list:
    return [p for n, p in model.named_parameters() if "lora_" not in n]


def _lora_params(model) -> list:
    return [p for n, p in model.named_parameters() if "lora_" in n]


def test_runs_share_one_base_and_answer_like_single_loads(two_runs) -> None:
    from domainllm.serve import load_expert, load_runs

    a, b = two_runs
    multi = load_runs({"a": a, "b": b})
    single_a = load_expert(a)
    single_b = load_expert(b)
    # One copy of the base weights: the same base tensors as one single-run load, twice the LoRA ones.
    base = _base_params(multi.model)
    assert len({p.data_ptr() for p in base}) == len(_base_params(single_a.model))
    assert sum(p.numel() for p in base) == sum(p.numel() for p in _base_params(single_a.model))
    assert len(_lora_params(multi.model)) == 2 * len(_lora_params(single_a.model))
    assert list(multi.adapters) == ["a", "b"]
    # Each adapter's answers (and its run's system prompt) as its own single-adapter load gives them.
    multi.set_adapter("a")
    assert multi.system_prompt == PROMPT_A and multi.run_dir == Path(a)
    answers_a = _answers(multi)
    multi.set_adapter("b")
    assert multi.system_prompt == PROMPT_B
    answers_b = _answers(multi)
    assert answers_a == _answers(single_a)
    assert answers_b == _answers(single_b)
    assert answers_a != answers_b  # the switch really changed the adapter
    # The base arms run with every adapter off: the same answers whichever adapter is active.
    assert _answers(multi, "prompt_only") == _answers(single_a, "prompt_only")
    multi.set_adapter("a")
    assert _answers(multi) == answers_a
    with pytest.raises(ModelError, match="No adapter named 'c'"):
        multi.set_adapter("c")


def test_a_run_on_another_base_is_refused_before_loading(two_runs, tiny_model_dir, domain, tmp_path) -> None:
    from domainllm.serve.adapters import check_same_base

    a, _ = two_runs
    other_model = tmp_path / "other-llama"
    shutil.copytree(tiny_model_dir, other_model)
    other = make_tiny_run(tmp_path / "other", other_model, domain)
    cfg = tiny_run_config(tiny_model_dir, domain, tmp_path)
    check_same_base({"a": a}, cfg)  # the right base passes
    with pytest.raises(ModelError) as info:
        check_same_base({"a": a, "other": other}, cfg)
    assert "other-llama" in str(info.value) and str(other) in str(info.value)


def test_compare_with_named_runs_gives_arms_per_run_and_planned_tests(
    two_runs, tiny_model_dir, domain, tmp_path
):
    from domainllm.benchmark.comparison import compare

    a, b = two_runs
    cfg = tiny_run_config(
        tiny_model_dir,
        domain,
        tmp_path,
        compare={"output_dir": str(tmp_path / "cmp"), "n_bootstrap": 200, "loglik_choices": False},
    )
    out = compare(cfg, runs={"a": a, "b": b})
    results = json.loads((out / "results.json").read_text())
    assert results["status"] == "complete", results["errors"]
    assert list(results["arms"]) == [
        "prompt_only",
        "rag",
        "finetuned@a",
        "finetuned@b",
        "finetuned_rag@a",
        "finetuned_rag@b",
    ]
    assert all(arm["status"] == "ok" for arm in results["arms"].values())
    assert results["arms"]["finetuned@b"]["run"] == "b"
    pairs = {(p["arm_a"], p["arm_b"]) for p in results["pairwise"]}
    assert pairs == {
        ("prompt_only", "rag"),
        ("finetuned@a", "prompt_only"),
        ("finetuned@b", "prompt_only"),
        ("finetuned@b", "finetuned@a"),
        ("finetuned_rag@a", "rag"),
        ("finetuned_rag@a", "finetuned@a"),
        ("finetuned_rag@b", "rag"),
        ("finetuned_rag@b", "finetuned@b"),
        ("finetuned_rag@b", "finetuned_rag@a"),
    }
    assert {(p["arm_a"], p["arm_b"]) for p in results["pairwise_by_seen"]["seen"]} == pairs
    # Each run's answers are those a comparison of that run alone gives.
    alone = compare(cfg, run_dir=b, output_dir=tmp_path / "alone")
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    alone_rows = [json.loads(line) for line in (alone / "predictions.jsonl").read_text().splitlines()]
    assert [r["answer"] for r in rows if r["arm"] == "finetuned_rag@b"] == [
        r["answer"] for r in alone_rows if r["arm"] == "finetuned_rag"
    ]
    # Per run: leakage, facts covered (the tiny test facts are all taught), rows by source.
    assert set(results["leakage"]) == {"a", "b"} and set(results["coverage"]) == {"a", "b"}
    assert results["coverage"]["a"]["covered"] == 4 and results["coverage"]["a"]["agreement"]["share"] == 1.0
    assert results["runs"]["a"]["train_rows"] == {"n": 24, "by_source": {"original": 24}}
    assert any(s.startswith("Recipe b against recipe a") for s in results["verdict"])
    md = (out / "report.md").read_text()
    assert "## Fine-tuned runs" in md and "planned comparisons" in md


def test_run_arguments_and_recipe_keys_are_checked() -> None:
    from domainllm.cli.commands import _run_args
    from domainllm.config import config_from_dict

    assert _run_args(["runs/x", "raft=runs/y"]) == ("runs/x", {"raft": "runs/y"})
    assert _run_args(["./odd=name"]) == ("./odd=name", {})
    with pytest.raises(ConfigError, match="two unnamed runs"):
        _run_args(["runs/x", "runs/y"])
    cfg = config_from_dict({"compare": {"recipes": {"sft": None, "raft": {"training": {"num_epochs": 2}}}}})
    assert cfg.compare.recipes == {"sft": {}, "raft": {"training.num_epochs": 2}}
    with pytest.raises(ConfigError, match=r"compare\.recipes\.raft.*training\.num_epochs"):
        config_from_dict({"compare": {"recipes": {"raft": {"training.num_epochs": "many"}}}})
    with pytest.raises(ConfigError, match=r"compare\.recipes\.big.*model\.name_or_path"):
        config_from_dict({"compare": {"recipes": {"big": {"model.name_or_path": "x"}}}})
    with pytest.raises(ConfigError, match=r"not a key of the\s+training section"):
        config_from_dict({"compare": {"recipes": {"raft": {"training.epochs": 2}}}})
    with pytest.raises(ConfigError, match=r"compare\.runs also names"):
        config_from_dict({"compare": {"runs": {"a": "x"}, "recipes": {"a": {}}}})
    with pytest.raises(ConfigError, match="usable run name"):
        config_from_dict({"compare": {"recipes": {"no spaces": {}}}})


def test_recipes_train_into_their_own_folders_and_are_reused(tiny_model_dir, domain, tmp_path) -> None:
    from domainllm.benchmark.comparison import compare

    cfg = tiny_run_config(
        tiny_model_dir,
        domain,
        tmp_path,
        training={
            "output_dir": str(tmp_path / "run"),
            "max_seq_length": 128,
            "num_epochs": 1,
            "eval_strategy": "no",
            "load_best_model_at_end": False,
        },
        compare={
            "output_dir": str(tmp_path / "cmp"),
            "n_bootstrap": 200,
            "arms": ["prompt_only", "finetuned"],
            "recipes": {"one": {}, "lr": {"training.learning_rate": 1e-2}},
        },
    )
    out = compare(cfg)
    results = json.loads((out / "results.json").read_text())
    assert list(results["arms"]) == ["prompt_only", "finetuned@one", "finetuned@lr"]
    runs = results["runs"]
    assert runs["one"]["run_dir"] == str(tmp_path / "run-one") and runs["one"]["reused"] is False
    assert runs["lr"]["recipe"] == {"training.learning_rate": 0.01}
    lr_cfg = (tmp_path / "run-lr" / "config.yaml").read_text()
    assert "learning_rate: 0.01" in lr_cfg and "recipes: {}" in lr_cfg
    again = compare(cfg, output_dir=tmp_path / "again")
    reran = json.loads((again / "results.json").read_text())
    assert reran["runs"]["one"]["reused"] and reran["runs"]["lr"]["reused"]
