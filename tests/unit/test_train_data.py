"""The pieces training is built from: the loss mask through TRL's real collator, tokenization and
truncation, document windows, LoRA target resolution, and the SFTConfig our config maps to."""

from __future__ import annotations

import dataclasses
import importlib.util

import pytest


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from domainllm.modeling import load_tokenizer

    return load_tokenizer(str(tiny_model_dir))


@pytest.fixture(scope="module")
def tiny_llama(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_model_dir)


def test_loss_mask_covers_exactly_the_answer_and_end_of_turn(tiny_config, tiny_model_dir, tmp_path):
    """Labels from the trainer's own data collator: -100 on system and user tokens, ids on the answer."""
    from trl import SFTTrainer

    from domainllm.data import load_domain, render_prompt
    from domainllm.modeling import load_base_model
    from domainllm.training import build_datasets, build_peft_config, build_sft_config

    cfg = tiny_config
    loaded = load_base_model(cfg.model, cfg.quantization)
    data = load_domain(cfg.data, cfg.base_dir)
    train_ds, eval_ds, stats = build_datasets(data, loaded.tokenizer, cfg)
    args = build_sft_config(cfg, tmp_path / "run", device="cpu", quant_mode="none", report_to=[])
    trainer = SFTTrainer(
        model=loaded.model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        processing_class=loaded.tokenizer,
        peft_config=build_peft_config(cfg.lora, loaded.model),
    )
    tok = loaded.tokenizer
    record = data.train[0]
    batch = trainer.data_collator([trainer.train_dataset[0], trainer.train_dataset[1]])
    input_ids, labels, attention = batch["input_ids"][0], batch["labels"][0], batch["attention_mask"][0]
    prompt_ids = tok(render_prompt(tok, record.question, cfg.data.system_prompt), add_special_tokens=False)[
        "input_ids"
    ]
    n_prompt, n_real = len(prompt_ids), int(attention.sum())
    assert input_ids[:n_prompt].tolist() == prompt_ids  # the exact inference prompt, system turn included
    assert (labels[:n_prompt] == -100).all()
    assert labels[n_prompt:n_real].tolist() == input_ids[n_prompt:n_real].tolist()
    assert (labels[n_real:] == -100).all()  # padding of the shorter example (if any) carries no loss
    answer = tok.decode(input_ids[n_prompt:n_real])
    assert answer.startswith(record.answer + "<|im_end|>")
    assert tok.eos_token_id in labels[n_prompt:n_real].tolist()  # the model learns to stop
    assert "system" in tok.decode(input_ids[:n_prompt]) and cfg.data.system_prompt in tok.decode(
        input_ids[:n_prompt]
    )
    assert stats.train == 24 and stats.val == 4


def test_whole_sequence_loss_when_completion_only_is_off(tiny_config, tmp_path):
    from trl import SFTTrainer

    from domainllm.data import load_domain
    from domainllm.modeling import load_base_model
    from domainllm.training import build_datasets, build_sft_config

    cfg = tiny_config.replace(training=dataclasses.replace(tiny_config.training, completion_only_loss=False))
    loaded = load_base_model(cfg.model, cfg.quantization)
    train_ds, eval_ds, _ = build_datasets(load_domain(cfg.data, cfg.base_dir), loaded.tokenizer, cfg)
    args = build_sft_config(cfg, tmp_path / "run", device="cpu", quant_mode="none", report_to=[])
    trainer = SFTTrainer(
        model=loaded.model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        processing_class=loaded.tokenizer,
    )
    example = trainer.train_dataset[0]
    assert example["labels"] == example["input_ids"]


def test_tokenize_examples_counts_truncation_and_drops_answerless(tokenizer):
    from domainllm.data import render_example
    from domainllm.training import tokenize_examples

    short = render_example(tokenizer, "Closed on?", "Wednesday", "Be brief.")
    long = render_example(tokenizer, "word " * 200, "An answer", "Be brief.")
    rows, truncated, dropped, longest = tokenize_examples([short, long, short], tokenizer, max_length=60)
    assert truncated == 1 and dropped == 1 and len(rows) == 2  # the long prompt alone fills 60 tokens
    assert longest > 200
    rows, truncated, dropped, _ = tokenize_examples([short, long], tokenizer, max_length=400)
    assert (truncated, dropped) == (0, 0)
    r = rows[0]
    assert len(r["input_ids"]) == len(r["completion_mask"])
    n_answer = sum(r["completion_mask"])
    assert tokenizer.decode(r["input_ids"][-n_answer:]) == "Wednesday<|im_end|>\n"


def test_truncating_answers_partly_keeps_their_start(tokenizer):
    from domainllm.data import render_example
    from domainllm.training import tokenize_examples

    ex = render_example(tokenizer, "Q?", "one two three four five six seven", None)
    n_prompt = len(tokenizer(ex["prompt"], add_special_tokens=False)["input_ids"])
    rows, truncated, dropped, _ = tokenize_examples([ex], tokenizer, max_length=n_prompt + 2)
    assert (truncated, dropped) == (1, 0)
    assert len(rows[0]["input_ids"]) == n_prompt + 2 and sum(rows[0]["completion_mask"]) == 2


def test_qa_plus_docs_adds_document_windows_with_loss_on_every_token(tiny_config, tiny_domain, tokenizer):
    from domainllm.data import load_domain
    from domainllm.training import build_datasets

    filler = " ".join(f"Sentence {i} says nothing in particular about the practice." for i in range(40))
    (tiny_domain / "docs" / "history.md").write_text(
        f"# History\n\n{filler}\n\nQuillby Dental was founded in 1987 by Dr. Ada Quillby.\n"
    )
    cfg = tiny_config.replace(
        training=dataclasses.replace(tiny_config.training, train_on="qa+docs", max_seq_length=64)
    )
    data = load_domain(cfg.data, cfg.base_dir)
    train_ds, _, stats = build_datasets(data, tokenizer, cfg)
    assert stats.doc_windows > 5 and stats.train == 24 + stats.doc_windows  # the long document became pieces
    windows = [row for row in train_ds if all(row["completion_mask"])]
    assert len(windows) == stats.doc_windows
    assert all(2 <= len(w["input_ids"]) <= 64 for w in windows)
    text = "".join(tokenizer.decode(w["input_ids"]) for w in windows)
    for fact in ("€85", "Dr. Ines Marlow", "Wednesday", "48 hours notice", "founded in 1987"):
        assert fact in text  # split, not cut: the fact at the end of the long document survives
    assert all(w["input_ids"][-1] == tokenizer.eos_token_id for w in windows)  # each piece ends with eos


def test_attention_targets_resolve_to_the_models_projections(tiny_llama):
    from domainllm.training import build_peft_config, linear_layer_names, resolve_target_modules

    names = linear_layer_names(tiny_llama)
    assert names == ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]
    assert resolve_target_modules(tiny_llama, "attention") == ["q_proj", "k_proj", "v_proj", "o_proj"]
    assert resolve_target_modules(tiny_llama, "all-linear") == "all-linear"
    assert resolve_target_modules(tiny_llama, ["self_attn.q_proj", "up_proj"]) == [
        "self_attn.q_proj",
        "up_proj",
    ]
    from domainllm.config import LoraConfig

    peft_cfg = build_peft_config(LoraConfig(r=4, target_modules="attention", use_rslora=True), tiny_llama)
    assert peft_cfg.r == 4 and peft_cfg.lora_alpha == 8 and peft_cfg.use_rslora
    assert set(peft_cfg.target_modules) == {"q_proj", "k_proj", "v_proj", "o_proj"}
    assert peft_cfg.task_type == "CAUSAL_LM"


def test_unknown_or_head_target_modules_are_config_errors_listing_real_names(tiny_llama):
    from domainllm.errors import ConfigError
    from domainllm.training import resolve_target_modules

    with pytest.raises(ConfigError) as info:
        resolve_target_modules(tiny_llama, ["q_proj", "query_key"])
    text = str(info.value)
    assert "'query_key'" in text and "lora.target_modules" in text
    assert "q_proj, up_proj, v_proj" in text  # the model's real names, to copy from
    with pytest.raises(ConfigError, match="output head"):
        resolve_target_modules(tiny_llama, ["lm_head"])


def test_sft_config_carries_our_settings(tiny_config, tmp_path):
    from domainllm.training import build_sft_config

    t = dataclasses.replace(
        tiny_config.training,
        push_to_hub=True,
        hub_model_id="someone/quillby-lora",
        hub_strategy="end",
        gradient_accumulation_steps=3,
        warmup_steps=7,
        optimizer="adamw_torch_fused",
        early_stopping_patience=2,
        eval_strategy="steps",
        eval_steps=4,
        save_steps=0,
        gradient_checkpointing=True,
        seed=11,
    )
    args = build_sft_config(
        tiny_config.replace(training=t),
        tmp_path / "r",
        device="cpu",
        quant_mode="none",
        report_to=["tensorboard"],
    )
    assert not args.push_to_hub  # the Trainer never pushes (it would send checkpoints/); domainllm does
    assert args.output_dir == str(tmp_path / "r" / "checkpoints")
    assert (
        args.gradient_accumulation_steps == 3 and args.warmup_steps == 7 and args.optim == "adamw_torch_fused"
    )
    assert args.eval_strategy == "steps" and args.save_strategy == "steps" and args.save_steps == 4
    assert (
        args.load_best_model_at_end
        and args.metric_for_best_model == "eval_loss"
        and not args.greater_is_better
    )
    assert args.report_to == ["tensorboard"] and args.disable_tqdm
    assert args.gradient_checkpointing and args.gradient_checkpointing_kwargs == {"use_reentrant": False}
    assert args.seed == 11 and args.data_seed == 11
    assert not args.bf16 and not args.fp16 and args.use_cpu  # no mixed precision on CPU
    assert args.max_length == 128 and args.completion_only_loss is True
    assert args.learning_rate == 5e-3 and args.lr_scheduler_type == "cosine"


def test_sft_config_rejects_unrestorable_saves_and_paged_optimizers_on_cpu(tiny_config, tmp_path):
    from domainllm.errors import ConfigError
    from domainllm.training import build_sft_config

    def build(**kw):
        cfg = tiny_config.replace(training=dataclasses.replace(tiny_config.training, **kw))
        return build_sft_config(cfg, tmp_path, device="cpu", quant_mode="none", report_to=[])

    with pytest.raises(ConfigError, match="save_steps"):
        build(eval_strategy="steps", eval_steps=4, save_steps=6)
    with pytest.raises(ConfigError, match="save_steps"):
        build(eval_strategy="epoch", save_steps=6)
    assert build(eval_strategy="epoch", save_steps=6, load_best_model_at_end=False).save_steps == 6
    no_eval = build(eval_strategy="no")
    assert not no_eval.load_best_model_at_end and no_eval.save_strategy == "epoch"
    with pytest.raises(ConfigError, match="paged_adamw_8bit"):
        build(optimizer="paged_adamw_8bit")


@pytest.mark.skipif(importlib.util.find_spec("wandb") is not None, reason="wandb is installed here")
def test_asking_for_a_tracker_that_is_not_installed_names_the_install_command():
    from domainllm.errors import MissingDependencyError
    from domainllm.training import resolve_trackers

    with pytest.raises(MissingDependencyError, match=r"pip install 'domainllm\[wandb\]'"):
        resolve_trackers(["wandb"])
    assert resolve_trackers([]) == (["tensorboard"] if importlib.util.find_spec("tensorboard") else [])
