"""Serving a run: the adapter switch, real batched generation, stopping, streaming, and bad runs.

Everything runs on the tiny real Llama with a real PEFT adapter (tests/unit/_runs.py). The random
tiny base model, greedy, answers a chat prompt with newlines only (its tied embeddings copy the last
prompt token), so tests that need visible base-model text use a repetition penalty.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
from _runs import SYSTEM_PROMPT, make_tiny_run, one_torch_thread, tiny_run_config
from conftest import write_tiny_domain

from domainllm.errors import DomainLLMError, ModelError, RunDirError

__all__ = ["one_torch_thread"]  # the autouse fixture, imported to apply to this module

QUESTIONS = [
    "How much does a check-up cost at Quillby Dental?",
    "Who is the orthodontist at Quillby Dental, and on which days does the orthodontist see patients?",
    "Closed when?",
    "How much notice does Quillby Dental need to cancel an appointment that I booked online last week?",
    "Hi",
]


@pytest.fixture(scope="module")
def domain(tmp_path_factory):
    return write_tiny_domain(tmp_path_factory.mktemp("domain"))


@pytest.fixture(scope="module")
def run(tiny_model_dir, domain, tmp_path_factory):
    return make_tiny_run(tmp_path_factory.mktemp("serve"), tiny_model_dir, domain)


@pytest.fixture(scope="module")
def expert(run):
    from domainllm.serve import load_expert

    return load_expert(run)


@pytest.fixture(scope="module")
def prompts(expert):
    from domainllm.data.formatting import render_prompt

    return [render_prompt(expert.tokenizer, q, expert.system_prompt) for q in QUESTIONS]


def _flat(rows):
    return [x for row in rows for x in row]


def _penalized(expert):
    return dataclasses.replace(expert.config.generation, repetition_penalty=2.0)


def test_load_expert_reads_the_run(expert, run, tiny_model_dir):
    from langchain_huggingface import ChatHuggingFace, HuggingFacePipeline

    assert expert.has_adapter and expert.is_finetuned and not expert.merged
    assert expert.system_prompt == SYSTEM_PROMPT
    assert expert.run_dir == Path(run)
    assert expert.base_path == str(tiny_model_dir)
    assert expert.device == "cpu"
    assert expert.context_length == 1024
    assert expert.eos_ids[0] == expert.tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert isinstance(expert.llm(), HuggingFacePipeline)
    assert isinstance(expert.chat_model(), ChatHuggingFace)
    assert expert.count_tokens("<|im_end|>") == 1


def test_adapter_switch_changes_answers_and_off_equals_a_plain_base_load(expert, prompts, tiny_model_dir):
    from domainllm.config import config_from_dict
    from domainllm.serve import load_expert

    gen = _penalized(expert)
    tuned = expert.llm(adapter=True, generation=gen).batch(prompts)
    base = expert.llm(adapter=False, generation=gen).batch(prompts)
    assert all(t.strip() for t in tuned) and all(b.strip() for b in base)
    assert all(t != b for t, b in zip(tuned, base, strict=True))
    # The same answers as a base model loaded on its own, without PEFT.
    plain_cfg = config_from_dict(
        {"model": {"name_or_path": str(tiny_model_dir), "device": "cpu"}, "quantization": {"mode": "none"}}
    )
    plain = load_expert(config=plain_cfg)
    assert not plain.has_adapter
    assert plain.llm(generation=gen).batch(prompts) == base
    # ...and the same log-likelihoods, to float precision.
    opts = [["€85", "Wednesday"]] * 2
    off = expert.option_loglikelihoods(prompts[:2], opts, adapter=False)
    ref = plain.option_loglikelihoods(prompts[:2], opts)
    on = expert.option_loglikelihoods(prompts[:2], opts, adapter=True)
    assert _flat(off) == pytest.approx(_flat(ref), abs=1e-4)
    assert _flat(on) != pytest.approx(_flat(ref), abs=1e-2)
    # After all that switching, the adapter is still active.
    assert expert.llm(adapter=True, generation=gen).batch(prompts) == tuned


def test_batch_equals_single_invokes_token_for_token(expert, prompts):
    from domainllm.serve.generate import generate_texts, generation_kwargs

    llm = expert.llm(generation=_penalized(expert))
    assert llm.batch(prompts) == [llm.invoke(p) for p in prompts]
    # Token ids, not just text: left padding must not change what is generated.
    kw = generation_kwargs(_penalized(expert))
    with expert.adapter_enabled(True):
        batched = generate_texts(expert.model, expert.tokenizer, prompts, gen_kwargs=kw, batch_size=5)
        single = generate_texts(expert.model, expert.tokenizer, prompts, gen_kwargs=kw, batch_size=1)
    assert [b.token_ids for b in batched] == [s.token_ids for s in single]
    assert all(len(b.token_ids) == expert.config.generation.max_new_tokens for b in batched)


def test_batch_is_one_generate_call_in_batches_of_batch_size(expert, prompts, monkeypatch):
    import domainllm.serve.langchain as wrappers

    calls, generate_calls = [], []
    original, original_generate = wrappers.ExpertLLM._generate, expert.model.generate

    def spy(self, prompts, *args, **kwargs):
        calls.append(len(prompts))
        return original(self, prompts, *args, **kwargs)

    def spy_generate(*args, **kwargs):
        generate_calls.append(kwargs["input_ids"].shape[0])
        return original_generate(*args, **kwargs)

    monkeypatch.setattr(wrappers.ExpertLLM, "_generate", spy)
    monkeypatch.setattr(expert.model, "generate", spy_generate)
    gen = dataclasses.replace(expert.config.generation, batch_size=2)
    out = expert.llm(generation=gen).batch(prompts)
    assert len(out) == 5
    assert calls == [5]  # LangChain hands all prompts to one _generate call...
    assert generate_calls == [2, 2, 1]  # ...which runs model.generate per generation.batch_size
    chat_out = expert.chat_model().batch(QUESTIONS[:3])
    assert calls == [5, 3]
    assert all(m.content == m.content.strip() for m in chat_out)


def test_chat_model_async_answers_like_sync_with_one_batched_call(expert, monkeypatch):
    """ainvoke/abatch/astream work (the stock ChatHuggingFace refuses them for a local pipeline)."""
    import asyncio

    import domainllm.serve.langchain as wrappers

    chat = expert.chat_model()
    single = chat.invoke(QUESTIONS[0])
    batched = chat.batch(QUESTIONS[:3])
    calls = []
    original = wrappers.ExpertLLM._generate

    def spy(self, prompts, *args, **kwargs):
        calls.append(len(prompts))
        return original(self, prompts, *args, **kwargs)

    monkeypatch.setattr(wrappers.ExpertLLM, "_generate", spy)

    async def talk():
        streamed = [chunk.content async for chunk in chat.astream(QUESTIONS[1])]
        return await chat.ainvoke(QUESTIONS[0]), await chat.abatch(QUESTIONS[:3]), streamed

    one, many, streamed = asyncio.run(talk())
    assert calls == [1, 3]  # ainvoke, then ONE batched call for abatch (astream streams instead)
    assert one.content and one.content == single.content
    assert [m.content for m in many] == [m.content for m in batched]
    assert len(streamed) > 1 and "".join(streamed) == batched[1].content
    # Token counts: every message, batched or not, async or not, carries its own.
    prompt_tokens = expert.count_tokens(chat._to_chat_prompt(chat._convert_input(QUESTIONS[0]).to_messages()))
    usage = {"input_tokens": prompt_tokens, "output_tokens": 8, "total_tokens": prompt_tokens + 8}
    assert single.usage_metadata == one.usage_metadata == batched[0].usage_metadata == usage
    assert many[0].usage_metadata == usage
    assert batched[1].usage_metadata["input_tokens"] != prompt_tokens  # per message, not the batch's sum
    for message in (single, batched[0], many[0]):
        meta = message.response_metadata
        assert meta["token_usage"] == {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": 8,
            "total_tokens": usage["total_tokens"],
        }
        assert meta["finish_reason"] == "length" and meta["model_name"] == "run (adapter)"


def test_stop_strings_truncate_and_stop_early(expert, prompts):
    llm = expert.llm(generation=_penalized(expert))
    full = llm.invoke(prompts[0])
    words = full.split()
    assert len(words) >= 3, full
    stop = words[2]
    cut = llm.invoke(prompts[0], stop=[stop])
    assert cut == full[: full.index(stop)].strip()
    result = llm.generate([prompts[0]], stop=[stop]).generations[0][0]
    assert result.generation_info["finish_reason"] == "stop"
    assert result.generation_info["completion_tokens"] < expert.config.generation.max_new_tokens
    # Streaming honours the same stop string.
    assert "".join(llm.stream(prompts[0], stop=[stop])) == cut


def test_end_of_turn_ids_come_from_the_chat_template(expert):
    from transformers import AutoTokenizer

    from domainllm.serve.generate import end_of_turn_ids

    assert end_of_turn_ids(expert.tokenizer, expert.model) == [2]  # <|im_end|> is SmolLM2's eos too
    # A template whose turns end with another special token: that token ends a turn as well.
    tok = AutoTokenizer.from_pretrained(expert.run_dir / "adapter")
    tok.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|endoftext|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    assert end_of_turn_ids(tok) == [tok.convert_tokens_to_ids("<|endoftext|>"), 2]


def test_generation_stops_at_end_of_turn_ids(expert, prompts):
    from domainllm.serve.generate import generate_texts, generation_kwargs

    kw = generation_kwargs(_penalized(expert))
    with expert.adapter_enabled(True):
        free = generate_texts(expert.model, expert.tokenizer, prompts[:2], gen_kwargs=kw)
        third = free[0].token_ids[2]
        assert third not in free[0].token_ids[:2]
        stopped = generate_texts(expert.model, expert.tokenizer, prompts[:2], gen_kwargs=kw, eos_ids=[third])
    assert stopped[0].token_ids == free[0].token_ids[:2]
    assert stopped[0].finish_reason == "stop" and free[0].finish_reason == "length"
    assert stopped[0].text == expert.tokenizer.decode(free[0].token_ids[:2]).strip()
    # The other row of the batch is unaffected by the first row stopping.
    cut = free[1].token_ids.index(third) if third in free[1].token_ids else len(free[1].token_ids)
    assert stopped[1].token_ids == free[1].token_ids[:cut]


def test_streaming_yields_tokens_that_join_to_the_answer(expert, prompts):
    llm = expert.llm()
    chunks = list(llm.stream(prompts[1]))
    assert len(chunks) > 1
    assert "".join(chunks) == llm.invoke(prompts[1])


def test_streaming_an_empty_answer_yields_one_empty_chunk(expert, prompts):
    base = expert.llm(adapter=False)  # the tiny base model answers with whitespace only
    assert base.invoke(prompts[0]) == ""
    assert list(base.stream(prompts[0])) == [""]


def test_pipeline_kwargs_are_honoured_at_call_time(expert, prompts):
    llm = expert.llm(max_new_tokens=2)  # on the instance
    info = llm.generate([prompts[0]]).generations[0][0].generation_info
    assert info["completion_tokens"] == 2
    call = expert.llm().generate([prompts[0]], pipeline_kwargs={"max_new_tokens": 3})
    assert call.generations[0][0].generation_info["completion_tokens"] == 3
    assert (
        expert.llm()
        .generate([prompts[0]], max_new_tokens=1)
        .generations[0][0]
        .generation_info["completion_tokens"]
        == 1
    )
    full = expert.llm().invoke(prompts[0], return_full_text=True)
    assert full.startswith(prompts[0])


def test_prompt_longer_than_the_context_is_refused(expert, prompts):
    from domainllm.data.formatting import render_prompt
    from domainllm.serve import PromptTooLongError

    long_prompt = render_prompt(expert.tokenizer, "tooth " * 1100, expert.system_prompt)
    with pytest.raises(PromptTooLongError) as info:
        expert.llm().batch([prompts[0], long_prompt])
    msg = str(info.value)
    assert "Prompt 2 of 2" in msg and "1024" in msg and "1016" in msg
    assert isinstance(info.value, DomainLLMError)
    with pytest.raises(PromptTooLongError):
        list(expert.llm().stream(long_prompt))
    with pytest.raises(PromptTooLongError):
        expert.option_loglikelihoods([long_prompt], [["yes"]])


def test_option_loglikelihoods_match_a_manual_forward_pass(expert, prompts):
    import torch

    options = [["€85", "Wednesday", "Dr. Ines Marlow"], ["48 hours"]]
    scores = expert.option_loglikelihoods(prompts[:2], options, batch_size=2)
    assert [len(s) for s in scores] == [3, 1]
    assert all(s < 0 for row in scores for s in row)
    tok = expert.tokenizer
    # Every option, one unpadded forward pass each: the shared, padded prompt cache must not change a score.
    for i, opts in enumerate(options):
        ctx = tok(prompts[i], add_special_tokens=False)["input_ids"]
        for j, option in enumerate(opts):
            cont = tok(option, add_special_tokens=False)["input_ids"]
            with torch.no_grad():
                logits = expert.model(input_ids=torch.tensor([ctx + cont])).logits[0]
            logprobs = torch.log_softmax(logits.float(), -1)
            manual = sum(float(logprobs[len(ctx) - 1 + k, t]) for k, t in enumerate(cont))
            assert scores[i][j] == pytest.approx(manual, abs=1e-3), (i, j, option)
    assert len(tok(prompts[0])["input_ids"]) != len(tok(prompts[1])["input_ids"])  # padding was exercised
    one_by_one = expert.option_loglikelihoods(prompts[:2], options, batch_size=1)
    assert _flat(one_by_one) == pytest.approx(_flat(scores), abs=1e-3)


def test_run_without_adapter_is_refused(run, tmp_path):
    from domainllm.serve import load_expert

    broken = tmp_path / "run"
    shutil.copytree(run, broken)
    shutil.rmtree(broken / "adapter")
    with pytest.raises(RunDirError, match="has no adapter"):
        load_expert(broken)
    with pytest.raises(RunDirError, match="has no merged model"):
        load_expert(run, merged=True)


def test_adapter_on_another_base_model_is_refused(run, domain, tmp_path, tiny_model_dir):
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from domainllm.serve import load_expert

    other_dir = tmp_path / "other-llama"
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=512,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(other_dir)
    tok.save_pretrained(other_dir)
    other_cfg = tiny_run_config(other_dir, domain, tmp_path)
    with pytest.raises(ModelError) as info:
        load_expert(run, config=other_cfg)
    assert str(tiny_model_dir) in str(info.value) and "other-llama" in str(info.value)
    # An adapter whose recorded base matches but whose shapes do not: PEFT's error, wrapped.
    lying = tmp_path / "lying-run"
    shutil.copytree(run, lying)
    adapter_cfg = lying / "adapter" / "adapter_config.json"
    data = json.loads(adapter_cfg.read_text())
    data["base_model_name_or_path"] = str(other_dir)
    adapter_cfg.write_text(json.dumps(data))
    manifest = json.loads((lying / "manifest.json").read_text())
    manifest["base_model"] = {"name_or_path": str(other_dir)}
    (lying / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="does not fit the base model"):
        load_expert(lying, config=other_cfg)


def test_adapter_id_loads_a_local_adapter_and_refuses_an_uncached_hub_id(run, monkeypatch, tmp_path):
    from domainllm.config import load_config
    from domainllm.serve import load_expert

    cfg = load_config(Path(run) / "config.yaml")
    expert = load_expert(config=cfg, adapter_id=str(Path(run) / "adapter"))
    assert expert.has_adapter and expert.run_dir is None
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="HF_HUB_OFFLINE"):
        load_expert(config=cfg, adapter_id="nobody-here/no-such-adapter")
    # A folder that is not an adapter: the advice names the Python argument (no CLI takes an adapter).
    with pytest.raises(ModelError, match=r"load_expert\(adapter_id=\.\.\.\)") as info:
        load_expert(config=cfg, adapter_id=str(tmp_path))
    assert "--adapter" not in str(info.value)


def test_adapter_id_loads_a_hub_adapter_from_the_offline_cache(run, expert, prompts, monkeypatch, tmp_path):
    """A hub id resolves through huggingface_hub's cache layout, offline, to the same adapter."""
    import huggingface_hub.constants

    from domainllm.config import load_config
    from domainllm.serve import load_expert

    commit = "0123456789abcdef0123456789abcdef01234567"
    cache = tmp_path / "hub"
    repo = cache / "models--quillby--dental-adapter"
    shutil.copytree(Path(run) / "adapter", repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # huggingface_hub reads HF_HUB_CACHE once, at import; this process imported it long ago.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))

    cfg = load_config(Path(run) / "config.yaml")
    hub = load_expert(config=cfg, adapter_id="quillby/dental-adapter")
    assert hub.adapter_path == str(repo / "snapshots" / commit) and hub.run_dir is None
    gen = _penalized(expert)
    assert hub.llm(generation=gen).batch(prompts) == expert.llm(generation=gen).batch(prompts)
    with pytest.raises(ModelError, match="not in the local cache"):
        load_expert(config=cfg, adapter_id="quillby/other-adapter")


def test_same_model_tells_hub_ids_of_different_organisations_apart(tmp_path):
    from domainllm.serve.bases import check_base_matches, same_model

    assert not same_model("orgA/SmolLM2-135M", "orgB/SmolLM2-135M")
    assert same_model("orgA/SmolLM2-135M", "orga/SmolLM2-135M")  # hub ids are case-insensitive
    # A local copy (or another machine's path) is matched by name: it records no other origin...
    local = tmp_path / "SmolLM2-135M"
    local.mkdir()
    assert same_model(str(local), "HuggingFaceTB/SmolLM2-135M")
    assert same_model("/elsewhere/cache/models/SmolLM2-135M", str(local))
    assert same_model("gpt2", "/models/gpt2") and same_model("gpt2", "openai-community/gpt2")
    # ...unless it does: a hub cache snapshot names its repository, config.json its _name_or_path.
    snapshot = "/home/x/.cache/huggingface/hub/models--orgA--SmolLM2-135M/snapshots/" + "0" * 40
    assert same_model(snapshot, "orgA/SmolLM2-135M") and not same_model(snapshot, "orgB/SmolLM2-135M")
    (local / "config.json").write_text(json.dumps({"_name_or_path": "orgA/SmolLM2-135M"}))
    assert not same_model(str(local), "orgB/SmolLM2-135M") and same_model(str(local), "orgA/SmolLM2-135M")
    # The run's own record (adapter config path + manifest hub id) decides for its local path too.
    trained = ["/their/machine/SmolLM2-135M", "orgA/SmolLM2-135M"]
    check_base_matches(trained, "orgA/SmolLM2-135M", "orgA/SmolLM2-135M", "run")
    with pytest.raises(ModelError, match="trained on base model '/their/machine/SmolLM2-135M'"):
        check_base_matches(trained, "orgB/SmolLM2-135M", "orgB/SmolLM2-135M", "run")
    # A run trained on the embedded default elsewhere (its converted folder's path recorded) is served
    # with "default", which resolves to this machine's converted folder.
    here = tmp_path / "cache" / "models" / "SmolLM2-135M-Instruct"
    here.mkdir(parents=True)
    check_base_matches(
        ["/home/other/.cache/domainllm/models/SmolLM2-135M-Instruct"], "default", str(here), "run"
    )


def test_four_bit_run_is_served_on_a_four_bit_base(tiny_model_dir, domain, tmp_path):
    pytest.importorskip("bitsandbytes")
    from domainllm.data.formatting import render_prompt
    from domainllm.serve import load_expert

    run = make_tiny_run(tmp_path, tiny_model_dir, domain, quantization={"mode": "4bit"})
    expert = load_expert(run)
    assert expert.quant_mode == "4bit"
    assert "4bit" in type(expert.model.get_base_model().model.layers[0].self_attn.q_proj.base_layer).__name__
    prompt = render_prompt(expert.tokenizer, QUESTIONS[0], expert.system_prompt)
    gen = _penalized(expert)
    on, off = (
        expert.llm(generation=gen).invoke(prompt),
        expert.llm(adapter=False, generation=gen).invoke(prompt),
    )
    assert on and off and on != off


def test_generation_speed_benchmark_fails_on_changed_answers_not_only_on_speed():
    from domainllm.bench.generation_speed import speed_failures

    fast_and_same = {"speedup": 3.0, "mismatches": [], "questions": 16}
    assert speed_failures(fast_and_same, 2.0) == []
    assert speed_failures({**fast_and_same, "speedup": 1.5}, 2.0) == [
        "batched generation is 1.50x, below 2.0x"
    ]
    assert speed_failures({**fast_and_same, "speedup": float("nan")}, 2.0)
    changed = {**fast_and_same, "mismatches": [("Closed when?", "Wednesday.", "Wednesdays.")]}
    [failure] = speed_failures(changed, 2.0)
    assert failure == "1 of 16 batched answers differ from the single ones: 'Closed when?'"
