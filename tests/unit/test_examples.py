"""The example scripts run offline, as a user runs them: in a subprocess.

The fast variants serve a tiny run directory; the slow ones run on the embedded default model
(about 30 s each on a CPU) exactly as examples/README.md shows.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from _runs import make_tiny_run
from conftest import REPO_ROOT, write_tiny_domain

EXAMPLES = REPO_ROOT / "examples"


def _env() -> dict[str, str]:
    # One torch thread: the two test cores are shared, and contention makes two threads far slower.
    return {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}


def _run(args, stdin="", cwd=None, timeout=300):
    return subprocess.run(
        [sys.executable, *map(str, args)],
        input=stdin,
        capture_output=True,
        text=True,
        env=_env(),
        cwd=cwd,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def run(tiny_model_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("examples")
    domain = write_tiny_domain(root / "domain")
    return make_tiny_run(root, tiny_model_dir, domain, generation={"max_new_tokens": 6})


def test_dentist_bot_answers_with_sources(run):
    proc = _run(
        [EXAMPLES / "dentist_bot.py", run, "--rag"], stdin="Which day is Quillby Dental closed?\n/quit\n"
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "arm 'finetuned_rag'" in proc.stdout
    assert "bot> " in proc.stdout and "sources: [hours] hours.md" in proc.stdout


def test_dentist_bot_reports_a_bad_run_directory(tmp_path):
    proc = _run([EXAMPLES / "dentist_bot.py", tmp_path / "missing-run"])
    assert proc.returncode == 2
    assert "does not exist" in proc.stdout


def test_langchain_app_answers_three_questions(run, tmp_path):
    proc = _run([EXAMPLES / "langchain_app.py", run, "--store", tmp_path / "store"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("Q: ") == 3 and proc.stdout.count("\nA: ") == 3
    lines = proc.stdout.splitlines()
    questions = [line[3:] for line in lines if line.startswith("Q: ")]
    answers = [line[3:] for line in lines if line.startswith("A: ")]
    assert all(q.strip() for q in questions)
    # Real text from the model: every answer has a word in it, and it is not an echo of its question.
    assert len(answers) == 3 and all(any(c.isalnum() for c in a) for a in answers), answers
    assert all(a.strip() != q.strip() for q, a in zip(questions, answers, strict=True))
    assert (tmp_path / "store" / "domainllm-store.json").is_file()


@pytest.mark.slow
def test_dentist_bot_on_the_default_model(tmp_path):
    proc = _run(
        [EXAMPLES / "dentist_bot.py", "--rag"],
        stdin="What time does the practice close on Saturdays?\n/quit\n",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "arm 'rag'" in proc.stdout and "sources: [opening-hours]" in proc.stdout
    assert (tmp_path / "runs" / "stores" / "dental" / "domainllm-store.json").is_file()


@pytest.mark.slow
def test_langchain_app_on_the_default_model(tmp_path):
    proc = _run([EXAMPLES / "langchain_app.py", "--store", tmp_path / "store"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    answers = [line[3:] for line in proc.stdout.splitlines() if line.startswith("A: ")]
    assert len(answers) == 3 and all(len(a.split()) >= 3 for a in answers)
    assert "48" in answers[0]  # retrieval found the cancellation policy: 48 hours' notice
