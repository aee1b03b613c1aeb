"""``compare`` end to end on the tiny model and tiny domain (real training, real Chroma, real chains)."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from domainllm.benchmark.comparison import compare
from domainllm.errors import DomainLLMError, EvalError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def with_compare(cfg, **changes):
    return cfg.replace(compare=dataclasses.replace(cfg.compare, **changes))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_model_dir):
    """One full comparison on the tiny config, shared by the assertions below (training takes seconds)."""
    from conftest import write_tiny_domain

    from domainllm.config import config_from_dict

    root = tmp_path_factory.mktemp("cmp")
    domain = write_tiny_domain(root / "domain")
    cfg = config_from_dict(
        {
            "model": {"name_or_path": str(tiny_model_dir), "device": "cpu"},
            "quantization": {"mode": "none"},
            "lora": {"r": 8, "dropout": 0.0},
            "training": {
                "output_dir": str(root / "run"),
                "learning_rate": 5e-3,
                "num_epochs": 1,
                "per_device_batch_size": 8,
                "warmup_ratio": 0.0,
                "max_seq_length": 128,
                "eval_strategy": "no",
                "load_best_model_at_end": False,
                "seed": 0,
            },
            "data": {
                "name": "tiny",
                "format": "folder",
                "path": str(domain),
                "system_prompt": "You are Quillby Dental.",
            },
            "retrieval": {"k": 2, "chunk_size": 200, "chunk_overlap": 20},
            "generation": {"max_new_tokens": 6, "batch_size": 3},
            "compare": {
                "output_dir": str(root / "compare"),
                "n_bootstrap": 200,
                "oracle": True,
                "extra_arms": ["openai:gpt-4o-mini"],
                "judge": "anthropic:claude-3-5-haiku-latest",
            },
        }
    )
    out = compare(cfg)
    return cfg, out, root


def test_compare_writes_the_four_files(tiny_run) -> None:
    _, out, root = tiny_run
    assert out == (root / "compare").resolve()
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "arms",
        "chart.png",
        "predictions.jsonl",
        "report.md",
        "results.json",
    ]
    # one file per arm, written as it finished (the skipped extra arm is recorded too)
    assert len(list((out / "arms").glob("*.json"))) == 6
    results = json.loads((out / "results.json").read_text())
    assert results["status"] == "complete" and results["n_questions"] == 4
    local = ["prompt_only", "rag", "finetuned", "finetuned_rag", "oracle"]
    assert list(results["arms"]) == [*local, "openai:gpt-4o-mini"]
    for name in local:
        arm = results["arms"][name]
        assert arm["status"] == "ok", arm.get("error")
        ci = arm["summary"]["metrics"]["correct"]
        assert ci["low"] <= ci["mean"] <= ci["high"]
        costs = arm["costs"]
        assert costs["generation_s"] > 0 and costs["mean_prompt_tokens"] > 10 and costs["latency_p50_s"] > 0
        # tokens/s = tokenizer count of the answers / generation time (the random tiny model may say nothing)
        assert costs["generated_tokens_per_s"] == pytest.approx(
            costs["generated_tokens"] / costs["generation_s"]
        )
    # retrieval costs prompt tokens; recall@k is measured for the retrieval arms only
    costs = {n: results["arms"][n]["costs"] for n in local}
    assert costs["rag"]["mean_prompt_tokens"] > costs["prompt_only"]["mean_prompt_tokens"] + 20
    assert "recall_at_k" in results["arms"]["rag"]["summary"]["metrics"]
    assert "recall_at_k" not in results["arms"]["finetuned"]["summary"]["metrics"]
    assert results["arms"]["finetuned"]["costs"]["trainable_params"] > 0
    assert results["arms"]["finetuned"]["costs"]["training_wall_s"] > 0
    # the extra arm is skipped with the package named, and the others ran
    extra = results["arms"]["openai:gpt-4o-mini"]
    assert extra["status"] == "skipped" and "langchain-openai" in extra["error"]
    assert len(results["pairwise"]) == 10  # 5 local arms -> 10 pairs
    assert {
        "check: arms, data and questions",
        "prepare: train or reuse run",
        "prepare: knowledge base",
    } <= set(results["phases"])
    assert {"load model", "arm: rag", "scoring and statistics", "report"} <= set(results["phases"])
    assert results["runs"]["default"]["reused"] is False
    assert results["judge"]["status"].startswith(
        "skipped: its LangChain integration package langchain-anthropic"
    )
    lines = (out / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == 4 * 5
    row = json.loads(lines[4])
    assert row["arm"] == "rag" and len(row["retrieved_doc_ids"]) == 2 and row["retrieved_chunk_ids"][0]
    assert row["prompt"].startswith("<|im_start|>system")
    md = (out / "report.md").read_text()
    assert "| arm | n | correct [95% CI]" in md and "## Verdict" in md and results["verdict"][0] in md
    assert "langchain-openai" in md
    assert (out / "chart.png").read_bytes()[:8] == PNG_MAGIC


def test_compare_reuses_a_matching_run(tiny_run) -> None:
    cfg, _, root = tiny_run
    cfg = with_compare(
        cfg, arms=["finetuned"], oracle=False, extra_arms=[], output_dir=str(root / "again"), limit=2
    )
    out = compare(cfg)
    results = json.loads((out / "results.json").read_text())
    run = results["runs"]["default"]
    assert run["reused"] is True and run["note"].startswith("reusing run")
    assert (
        "prepare: train or reuse run" in results["phases"]
        and results["phases"]["prepare: train or reuse run"] < 5
    )
    assert results["n_questions"] == 2 and results["n_total"] == 4
    assert len((out / "predictions.jsonl").read_text().splitlines()) == 2


def test_one_crashing_arm_is_marked_failed_and_the_others_are_written(tiny_run) -> None:
    cfg, _, root = tiny_run
    chains = root / "chains"
    shutil.copytree(
        Path(__file__).resolve().parents[2] / "chains" / "generic", chains / "generic", dirs_exist_ok=True
    )
    # A real failure: a prompt far beyond the tiny model's 1024-token context.
    (chains / "generic" / "longwinded.yaml").write_text(
        "model: base\nsystem_prompt: null\nretrieval: none\nuser_template: '"
        + "lorem ipsum " * 1200
        + "{question}'\n"
    )
    cfg = with_compare(
        cfg,
        arms=["prompt_only", "longwinded"],
        oracle=False,
        extra_arms=[],
        chains_dir=str(chains),
        output_dir=str(root / "crash"),
    )
    out = compare(cfg, run_dir=root / "run")
    results = json.loads((out / "results.json").read_text())
    assert results["status"] == "complete"
    assert results["arms"]["longwinded"]["status"] == "failed"
    assert "PromptTooLongError" in results["arms"]["longwinded"]["error"]
    assert results["arms"]["prompt_only"]["status"] == "ok"
    assert len((out / "predictions.jsonl").read_text().splitlines()) == 4
    assert "**failed**" in (out / "report.md").read_text()


def test_unknown_arm_fails_before_any_work(tiny_config) -> None:
    cfg = with_compare(tiny_config, arms=["prompt_only", "fine_tuned"])
    with pytest.raises(EvalError, match=r"Unknown arm 'fine_tuned'.*Available arms: .*finetuned"):
        compare(cfg)
    assert not Path(cfg.training.output_dir).exists() and not Path(cfg.compare.output_dir).exists()


def test_empty_test_split_names_the_file(tiny_config, tiny_domain) -> None:
    (tiny_domain / "qa" / "test.jsonl").unlink()  # train and val only: the test split is empty
    with pytest.raises(EvalError, match=r"qa/test\.jsonl' has no questions"):
        compare(tiny_config)
    assert not Path(tiny_config.training.output_dir).exists()


def test_unknown_answer_type_fails_before_training(tiny_config, tiny_domain) -> None:
    path = tiny_domain / "qa" / "test.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[2]["answer_type"] = "essay"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DomainLLMError, match=r"'essay'") as info:
        compare(tiny_config)
    assert "test.jsonl" in str(info.value) and (
        "line 3" in str(info.value) or rows[2]["id"] in str(info.value)
    )
    assert not Path(tiny_config.training.output_dir).exists()
