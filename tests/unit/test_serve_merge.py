"""``domainllm merge``: the merged model is written, reloads, answers like the adapter, or is refused."""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import pytest
from _runs import make_tiny_run, one_torch_thread
from conftest import write_tiny_domain

from domainllm.errors import ConfigError, ModelError

__all__ = ["one_torch_thread"]


@pytest.fixture(scope="module")
def domain(tmp_path_factory):
    return write_tiny_domain(tmp_path_factory.mktemp("domain"))


def _saved_dtypes(folder: Path) -> set[str]:
    """The tensor dtypes written in a folder's safetensors files, read from the files' own headers."""
    dtypes = set()
    for file in folder.glob("*.safetensors"):
        with open(file, "rb") as fh:
            (size,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(size))
        dtypes |= {v["dtype"] for k, v in header.items() if k != "__metadata__"}
    return dtypes


def test_merge_writes_a_model_that_answers_like_the_adapter(tiny_model_dir, domain, tmp_path):
    from domainllm.data.formatting import render_prompt
    from domainllm.rundir import RunDir
    from domainllm.serve import load_expert, merge_adapter

    run = make_tiny_run(tmp_path, tiny_model_dir, domain, lora_std=1.0)
    out = merge_adapter(run)
    assert out == run / "merged"
    assert (out / "model.safetensors").is_file() and (out / "tokenizer_config.json").is_file()
    assert not (out / "adapter_config.json").exists()  # a plain model, no PEFT needed
    assert not [p for p in run.iterdir() if p.name.startswith(".merged")]  # no temporary folders left
    record = RunDir(run).read_manifest()["merge"]
    assert record["passed"] is True and record["prompts_from"] == "val"
    assert record["dtype"] == "float32" and record["merged_in"] == "float32"
    assert _saved_dtypes(out) == {"F32"}  # float32 by default
    assert record["prompts"] == 4 and record["identical"] == 4 and record["identical_share"] == 1.0
    assert 0 <= record["max_abs_logit_diff"] < 1e-3
    assert json.loads((out / "domainllm-merge.json").read_text())["identical"] == 4
    assert RunDir(run).is_complete  # merging does not change the run's status

    merged = load_expert(run, merged=True)
    unmerged = load_expert(run)
    assert merged.merged and not merged.has_adapter and merged.is_finetuned
    prompts = [render_prompt(merged.tokenizer, q, merged.system_prompt) for q in ("Closed when?", "Prices?")]
    assert merged.llm().batch(prompts) == unmerged.llm().batch(prompts)
    with pytest.raises(ModelError, match="merged model"):
        merged.llm(adapter=False)
    # A finished merged model is never replaced without being asked; --overwrite replaces it.
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(ModelError, match=r"already holds a merged model.*--overwrite"):
        merge_adapter(run)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert merge_adapter(run, overwrite=True) == out and (out / "model.safetensors").is_file()
    assert not [p for p in run.iterdir() if p.name.startswith(".merged")]
    # a folder domainllm did not write is refused even with --overwrite
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(ModelError, match="not a merged model domainllm wrote"):
        merge_adapter(run, output_dir=other, overwrite=True)
    assert (other / "notes.txt").read_text() == "keep me"


def test_a_bfloat16_run_merges_in_float32_and_saves_the_chosen_dtype(tiny_model_dir, domain, tmp_path):
    """The run serves in bfloat16, but the merge sums W + BA in float32: saved so, nothing is lost."""
    from domainllm.rundir import RunDir
    from domainllm.serve import merge_adapter

    run = make_tiny_run(tmp_path, tiny_model_dir, domain, lora_std=1.0, model={"dtype": "bfloat16"})
    out = merge_adapter(run, parity_threshold=1.0)
    record = RunDir(run).read_manifest()["merge"]
    assert record["passed"] is True and record["identical"] == 4 and record["max_abs_logit_diff"] < 1e-3
    assert record["dtype"] == "float32" and _saved_dtypes(out) == {"F32"}
    # Saved in bfloat16 on request: half the bytes, and the manifest says which dtype was checked.
    half = merge_adapter(run, output_dir=tmp_path / "merged-bf16", dtype="bfloat16", parity_threshold=0.0)
    record = RunDir(run).read_manifest()["merge"]
    assert record["dtype"] == "bfloat16" and record["merged_in"] == "float32"
    assert record["max_abs_logit_diff"] > 1e-3  # rounding to bfloat16 is visible in the logits
    assert _saved_dtypes(half) == {"BF16"}
    assert json.loads((half / "domainllm-merge.json").read_text())["dtype"] == "bfloat16"
    size = (half / "model.safetensors").stat().st_size
    assert size < 0.6 * (out / "model.safetensors").stat().st_size


def test_merge_below_the_parity_threshold_is_refused_and_leaves_nothing(tiny_model_dir, domain, tmp_path):
    """Saved in bfloat16 (auto = the run's dtype): W + BA rounded loses the small update, answers change."""
    from domainllm.rundir import RunDir
    from domainllm.serve import merge_adapter

    run = make_tiny_run(tmp_path, tiny_model_dir, domain, lora_std=1.0, model={"dtype": "bfloat16"})
    manifest = RunDir(run).read_manifest()
    with pytest.raises(ModelError) as info:
        merge_adapter(run, parity_threshold=1.0, dtype="auto")
    assert RunDir(run).read_manifest() == manifest  # "Nothing was written": the manifest included
    msg = str(info.value)
    identical = int(re.search(r"only (\d) of 4 val prompts", msg).group(1))
    assert identical < 4 and "threshold 100%" in msg and "this merge saved bfloat16" in msg
    assert "--dtype float32" in msg
    assert not (run / "merged").exists()
    assert not [p for p in run.iterdir() if p.name.startswith(".merged")]


def test_parity_threshold_must_be_a_share(tiny_model_dir, domain, tmp_path):
    from domainllm.serve import merge_adapter

    with pytest.raises(ConfigError, match="parity-threshold"):
        merge_adapter(tmp_path, parity_threshold=1.5)
    with pytest.raises(ConfigError, match="float32, bfloat16, float16, auto"):
        merge_adapter(tmp_path, dtype="int8")
