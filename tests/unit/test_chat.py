"""The terminal bot: in-process with text streams, and for real through a pseudo-terminal."""

from __future__ import annotations

import io
import os
import shutil
import sys

import pytest
from _noise import NOISE, noisy_env
from _runs import make_tiny_run, one_torch_thread
from conftest import REPO_ROOT, write_tiny_domain

from domainllm.errors import StoreError

__all__ = ["one_torch_thread"]


@pytest.fixture(scope="module")
def run(tiny_model_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("chat")
    domain = write_tiny_domain(root / "domain")
    return make_tiny_run(root, tiny_model_dir, domain, generation={"max_new_tokens": 6})


def _chat(run_dir, text, **kwargs):
    out = io.StringIO()
    code = __import__("domainllm.chat", fromlist=["run_chat"]).run_chat(
        run_dir, input_stream=io.StringIO(text), output_stream=out, **kwargs
    )
    return code, out.getvalue()


def test_chat_answers_shows_sources_and_survives_bad_questions(run):
    long_question = "tooth " * 1100
    code, text = _chat(
        run, f"Who is the orthodontist?\n\n{long_question}\nWhen are you closed?\n/quit\n", rag=True
    )
    assert code == 0
    assert "arm 'finetuned_rag'" in text
    turns = text.split("you> ")
    assert turns[1].startswith("bot> ") and turns[1].split("\n")[0] != "bot> "
    assert "sources: [staff] staff.md" in turns[1]
    assert turns[2].startswith("error: the question is empty")
    assert turns[3].startswith("error: The prompt is") and "1024" in turns[3]
    assert turns[4].startswith("bot> ") and "sources: [hours] hours.md" in turns[4]
    # The run's documents, indexed where compare and `domainllm index` put them: <compare.output_dir>/../stores/<name>
    assert (run.parent / "stores" / "tiny" / "domainllm-store.json").is_file()


def test_chat_ends_at_end_of_input_and_serves_the_base_arm(run):
    code, text = _chat(run, "Who is the orthodontist?\n", adapter=False)
    assert code == 0 and "arm 'prompt_only'" in text and text.endswith("you> \n")
    assert "sources:" not in text


def test_chat_survives_an_unexpected_error_in_an_answer(run, tmp_path):
    """Not only DomainLLMError: any failure is one line naming its type, and the next question answers."""
    broken = tmp_path / "run"
    shutil.copytree(run, broken, ignore=shutil.ignore_patterns("store"))
    template = broken / "adapter" / "chat_template.jinja"
    refuse = "{% if 'molar' in messages[-1]['content'] %}{{ raise_exception('no molars here') }}{% endif %}"
    template.write_text(refuse + template.read_text(encoding="utf-8"), encoding="utf-8")
    code, text = _chat(broken, "Tell me about a molar\nWhen are you closed?\n/quit\n")
    assert code == 0
    turns = text.split("you> ")
    assert turns[1] == "error: TemplateError: no molars here\n"
    assert turns[2].startswith("bot> ") and turns[2].split("\n")[0] != "bot> "


def test_chat_with_a_missing_store_is_refused(run, tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        _chat(run, "hi\n", rag=True, store_dir=tmp_path / "no-store")


def test_chat_through_pipes_talks_on_stdout_and_logs_on_stderr(run, tmp_path):
    """`domainllm chat RUN < questions > answers`: the conversation is the result, library noise is not."""
    import subprocess

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    env.update(noisy_env(tmp_path / "site", "domainllm.chat"))
    proc = subprocess.run(
        [sys.executable, "-m", "domainllm", "chat", str(run), "--config", str(run / "config.yaml")],
        input="Who is the orthodontist?\n/quit\n",
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO_ROOT,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("domainllm chat with run ")
    turns = proc.stdout.split("you> ")
    assert turns[1].startswith("bot> ") and turns[1].split("\n")[0] != "bot> "
    assert all(marker in proc.stderr and marker not in proc.stdout for marker in NOISE)


def test_chat_in_a_real_terminal(run, ctrl_c_enabled):
    """Bad questions and Ctrl-C in the middle of an answer end that answer, not the session.

    Answers are made long (700 new tokens, about 2 s on the tiny model) so that Ctrl-C, sent as soon
    as the answer starts, lands while it streams. A terminal hands a program at most 4095 characters
    of a line, so the too-long question arrives cut to about 680 tokens: still far over the 324 that
    the 1024-token context leaves next to the 700 reserved for the answer.
    """
    pexpect = pytest.importorskip("pexpect")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}
    args = ["-m", "domainllm", "chat", str(run), "--rag", "--config", str(run / "config.yaml")]
    args += ["--set", "generation.max_new_tokens=700"]
    child = pexpect.spawn(sys.executable, args, env=env, encoding="utf-8", timeout=120)
    try:
        child.expect_exact("you> ")
        child.sendline("")
        child.expect_exact("error: the question is empty")
        child.expect_exact("you> ")
        child.sendline("tooth " * 1100)
        child.expect_exact("error: The prompt is")
        child.expect_exact("the model's context is 1024 tokens")
        child.expect_exact("you> ")
        child.sendline("Which day is Quillby Dental closed?")
        child.expect_exact("bot> ")
        child.expect(r"sources: \[hours\] hours\.md")
        child.expect_exact("you> ")
        child.sendline("Who is the orthodontist?")
        child.expect_exact("bot> ")
        child.sendintr()
        index = child.expect_exact(["(interrupted)", "sources: "])
        assert index == 0, "the answer finished before Ctrl-C arrived"
        child.expect_exact("you> ")
        child.sendline("How much does a check-up cost?")  # the model still answers after an interruption
        child.expect_exact("bot> ")
        child.expect(r"sources: \[prices\] prices\.md")
        child.expect_exact("you> ")
        child.sendline("/quit")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
