"""The generation engine on its own: plain transformers models, no DomainExpert, no LangChain.

What the LangChain wrappers and ``DomainExpert`` add is tested in test_serve.py; here the engine
functions are called directly, as the merge check and the benchmark call them.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading

import pytest
from _runs import make_tiny_run, one_torch_thread
from conftest import write_tiny_domain

__all__ = ["one_torch_thread"]  # the autouse fixture, imported to apply to this module

QUESTIONS = ["How much does a check-up cost?", "Who is the orthodontist at Quillby Dental?", "Hi"]


@pytest.fixture(scope="module")
def expert(tiny_model_dir, tmp_path_factory):
    from domainllm.serve import load_expert

    root = tmp_path_factory.mktemp("engine")
    return load_expert(make_tiny_run(root, tiny_model_dir, write_tiny_domain(root / "domain")))


@pytest.fixture(scope="module")
def plain(tiny_model_dir):
    """The tiny base model and tokenizer loaded by transformers alone."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval(), AutoTokenizer.from_pretrained(
        tiny_model_dir
    )


@pytest.fixture(scope="module")
def prompts(expert):
    from domainllm.data.formatting import render_prompt

    return [render_prompt(expert.tokenizer, q, expert.system_prompt) for q in QUESTIONS]


def test_the_engine_imports_no_langchain():
    code = (
        "import sys, json\n"
        "from domainllm.serve.generate import check_prompt_lengths, generate_texts, option_loglikelihoods\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('langchain'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.splitlines()[-1]) == []


def test_option_loglikelihoods_on_a_plain_model_equal_the_expert_with_its_adapter_off(expert, plain, prompts):
    from domainllm.serve.generate import option_loglikelihoods

    model, tokenizer = plain
    options = [["€85", "Wednesday"], ["Dr. Ines Marlow", "nobody"], ["Hello"]]
    engine = option_loglikelihoods(model, tokenizer, prompts, options, batch_size=2)
    off = expert.option_loglikelihoods(prompts, options, adapter=False)
    on = expert.option_loglikelihoods(prompts, options, adapter=True)
    flat = [x for row in engine for x in row]
    assert flat == pytest.approx([x for row in off for x in row], abs=1e-4)
    assert flat != pytest.approx([x for row in on for x in row], abs=1e-2)  # the adapter matters
    with pytest.raises(ValueError, match="one list per prompt"):
        option_loglikelihoods(model, tokenizer, prompts, options[:2])
    with pytest.raises(ValueError, match="Option 1 of prompt 1 is empty"):
        option_loglikelihoods(model, tokenizer, prompts[:1], [[""]])


def test_stream_text_joins_to_the_batched_answer_and_holds_the_context_in_the_generating_thread(
    expert, prompts
):
    from domainllm.serve.generate import generate_texts, generation_kwargs, stream_text

    kw = generation_kwargs(expert.config.generation, {"repetition_penalty": 2.0})
    with expert.adapter_enabled(True):
        [whole] = generate_texts(expert.model, expert.tokenizer, prompts[:1], gen_kwargs=kw)
    assert whole.text
    held: list[tuple[str, int]] = []

    @contextlib.contextmanager
    def hold():
        held.append(("enter", threading.get_ident()))
        with expert.adapter_enabled(True):
            yield
        held.append(("exit", threading.get_ident()))

    pieces = list(stream_text(expert.model, expert.tokenizer, prompts[0], gen_kwargs=kw, hold=hold))
    assert len(pieces) > 1 and "".join(pieces) == whole.text
    assert [h[0] for h in held] == ["enter", "exit"]
    assert held[0][1] == held[1][1] != threading.get_ident()  # entered and left in the generating thread
    # Closing the iterator after the first piece cancels generation and waits for the thread.
    before = threading.active_count()
    stream = stream_text(expert.model, expert.tokenizer, prompts[0], gen_kwargs=kw)
    first = next(stream)
    stream.close()
    assert first and whole.text.startswith(first)
    assert threading.active_count() == before
