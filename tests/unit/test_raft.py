"""RAFT training (training.train_on: raft): prompts built from the arms' own store and chain spec, byte
for byte what the finetuned_rag arm serves; the gold chunk kept in the configured share; a real run."""

from __future__ import annotations

import dataclasses
import json

import pytest


def _raft_cfg(cfg, **training):
    return dataclasses.replace(
        cfg,
        training=dataclasses.replace(cfg.training, train_on="raft", max_seq_length=384, **training),
    )


@pytest.fixture
def loaded_tok(tiny_model_dir):
    from domainllm.modeling import load_tokenizer

    return load_tokenizer(str(tiny_model_dir))


def test_raft_prompt_is_byte_for_byte_the_finetuned_rag_arms_prompt(tiny_config, loaded_tok):
    from domainllm.chains import build_prompt_chain, load_chain_spec
    from domainllm.data import load_domain
    from domainllm.rag import default_store_dir, get_retriever, open_store
    from domainllm.training.raft import build_raft_examples

    cfg = _raft_cfg(tiny_config, raft_gold_share=1.0)
    data = load_domain(cfg.data, cfg.base_dir)
    examples, stats = build_raft_examples(cfg, data, loaded_tok, "train")
    assert stats.examples == len(data.train) == len(examples) and stats.with_gold == len(data.train)

    # the arm, exactly as compare builds it: its chain spec, a real retriever over the same store
    spec = load_chain_spec("finetuned_rag", domain=cfg.data.name)

    class Expert:  # what build_prompt_chain reads of a DomainExpert
        tokenizer = loaded_tok
        system_prompt = cfg.data.system_prompt

    retriever = get_retriever(open_store(default_store_dir(cfg), cfg.retrieval), cfg.retrieval, spec.k)
    chain = build_prompt_chain(spec, Expert(), retriever)
    compared = 0
    for record, example in zip(data.train, examples, strict=True):
        served = chain.invoke(record.question)
        top = [d.metadata["doc_id"] for d in served["sources"]]
        if top[0] == record.doc_id and top.count(record.doc_id) == 1:
            # the retriever ranked the gold chunk first: RAFT's prompt is the arm's prompt, byte for byte
            assert example["prompt"] == served["prompt"]
            compared += 1
        assert f"[{record.doc_id}]" in example["prompt"]  # gold share 1.0: every prompt holds its gold chunk
        assert example["completion"].startswith(record.answer)
        assert example["prompt"].count("] ") >= cfg.retrieval.k  # k chunks, as the arm retrieves
    assert compared >= len(data.train) // 2


def test_gold_chunk_is_left_out_in_the_configured_share(tiny_config, loaded_tok, tmp_path):
    from conftest import write_tiny_domain

    from domainllm.data import load_domain
    from domainllm.training.raft import build_raft_examples

    domain = write_tiny_domain(tmp_path / "many", repeats=25)  # 100 training rows
    cfg = _raft_cfg(tiny_config, raft_gold_share=0.5)
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, path=str(domain)))
    data = load_domain(cfg.data, cfg.base_dir)
    examples, stats = build_raft_examples(cfg, data, loaded_tok, "train")
    with_gold = [f"[{r.doc_id}]" in e["prompt"] for r, e in zip(data.train, examples, strict=True)]
    assert sum(with_gold) == stats.with_gold
    assert 30 <= stats.with_gold <= 70  # ~half of 100, seeded
    assert stats.without_gold == 100 - stats.with_gold
    again, _ = build_raft_examples(cfg, data, loaded_tok, "train")
    assert again == examples  # seeded: the same run builds the same prompts
    none_cfg = _raft_cfg(cfg, raft_gold_share=0.0)
    no_gold, stats0 = build_raft_examples(none_cfg, data, loaded_tok, "train")
    assert stats0.with_gold == 0
    assert not any(f"[{r.doc_id}]" in e["prompt"] for r, e in zip(data.train, no_gold, strict=True))


def test_a_raft_run_trains_and_records_what_its_prompts_held(tiny_config):
    from domainllm.training import train

    cfg = _raft_cfg(tiny_config, num_epochs=1, eval_strategy="no", load_best_model_at_end=False)
    run = train(cfg)
    manifest = json.loads((run / "manifest.json").read_text())
    raft = manifest["examples"]["raft"]
    assert raft["examples"] == 24 and raft["with_gold"] + raft["without_gold"] == 24
    assert raft["chunks_per_prompt"] == 2
    losses = [
        m["loss"] for m in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if "loss" in m
    ]
    assert losses and all(loss == loss and loss < 50 for loss in losses)  # finite
    assert (run / "config.yaml").read_text().count("train_on: raft") == 1


def test_raft_refuses_an_arm_that_does_not_retrieve_and_a_bad_share(tiny_config, loaded_tok):
    from domainllm.config import config_from_dict, config_to_dict
    from domainllm.data import load_domain
    from domainllm.errors import ConfigError, DataError
    from domainllm.training.raft import build_raft_examples

    cfg = _raft_cfg(tiny_config, raft_arm="finetuned")
    with pytest.raises(DataError, match=r"training\.raft_arm is 'finetuned'"):
        build_raft_examples(cfg, load_domain(cfg.data, cfg.base_dir), loaded_tok)
    data = config_to_dict(tiny_config)
    data["training"]["raft_gold_share"] = 1.5
    with pytest.raises(ConfigError, match="raft_gold_share"):
        config_from_dict(data, base_dir=tiny_config.base_dir)
