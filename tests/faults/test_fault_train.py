"""Training faults that write: interrupts are recorded as such, and a resume keeps to what the checkpoints are.

Real ``domainllm train`` processes on the tiny model: one stopped with SIGINT (Ctrl-C) and one with
SIGTERM right after their step-2 checkpoint; resumes of the first with settings its checkpoints were
not trained with (refused, the run byte-for-byte unchanged); and a resume of the second, with the
exact command it printed plus an allowed change (fewer total steps), to the end.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import time
from pathlib import Path

import pytest
import yaml
from _cli import changes, cli, error_line, snapshot, temp_leftovers
from _workspace import Workspace, workspace


@pytest.fixture(scope="module")
def ws(tmp_path_factory, tiny_model_dir) -> Workspace:
    return workspace(tmp_path_factory, tiny_model_dir)


def _stop_after_checkpoint(run: Path, signum: int, step: int = 2):
    marker = run / "checkpoints" / f"checkpoint-{step}" / "trainer_state.json"  # the Trainer writes it last

    def watch(pid: int) -> None:
        deadline = time.monotonic() + 180
        while not marker.is_file():
            assert time.monotonic() < deadline, f"no checkpoint-{step} within 180 s"
            time.sleep(0.02)
        os.kill(pid, signum)

    return watch


def _interrupt(ws: Workspace, name: str, signum: int):
    run = ws.path(name)
    result = cli("train", "-c", ws.config, "-o", run, while_running=_stop_after_checkpoint(run, signum))
    return run, result


@pytest.fixture(scope="module")
def sigint_run(ws):
    return _interrupt(ws, "run-sigint", signal.SIGINT)


@pytest.fixture(scope="module")
def sigterm_run(ws):
    return _interrupt(ws, "run-sigterm", signal.SIGTERM)


@pytest.mark.parametrize("which", ["SIGINT", "SIGTERM"])
def test_an_interrupt_is_recorded_as_interrupted_with_the_resume_command(which, request) -> None:
    run, result = request.getfixturevalue("sigint_run" if which == "SIGINT" else "sigterm_run")
    signum = getattr(signal, which)
    assert result.returncode == 128 + signum, str(result)
    line = error_line(result, prefix=f"interrupted ({which}): ")
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "interrupted" and manifest["error"] is None  # not "failed"
    command = manifest["resume_command"]
    assert command.startswith("domainllm train ") and command.endswith(" --resume")
    assert line.endswith(f"with: {command}")  # printed, exactly as recorded
    assert Path(manifest["resumable_from"]).name in line
    assert temp_leftovers(run) == []


@pytest.mark.parametrize(
    ("override", "words"),
    [
        (["--set", "lora.r=4"], ["lora.r (8 -> 4)"]),
        (["--set", "training.learning_rate=1e-3"], ["training.learning_rate (0.005 -> 0.001)"]),
        (["--set", "model.name_or_path={ws}/model-copy"], ["model.name_or_path ("]),
        (["--set", "data.path={ws}/domain-more"], ["data: the train split (24 rows, sha256 ", "-> 25 rows"]),
    ],
    ids=["lora-rank", "learning-rate", "base-model", "training-data"],
)
def test_resume_with_settings_the_checkpoints_were_not_trained_with_is_refused(
    override, words, ws, sigint_run
) -> None:
    run, _ = sigint_run
    if not ws.path("model-copy").exists():
        shutil.copytree(ws.model, ws.path("model-copy"))
    if not ws.path("domain-more").exists():  # the same domain plus one training question
        shutil.copytree(ws.domain, ws.path("domain-more"))
        with (ws.path("domain-more") / "qa" / "train.jsonl").open("a", encoding="utf-8") as fh:
            row = {"id": "train-extra", "question": "Is there parking at Quillby Dental?", "answer": "Yes"}
            fh.write(json.dumps({**row, "aliases": [], "answer_type": "text", "doc_id": "hours"}) + "\n")
    before = snapshot(run)
    args = [a.replace("{ws}", str(ws.root)) for a in override]
    result = cli("train", "-c", ws.config, "-o", run, "--resume", *args)
    assert result.returncode == 2, str(result)
    message = error_line(result)
    for w in ["Cannot resume", "Nothing was changed", f"--config {run}/config.yaml", *words]:
        assert w in message, f"{w!r} not in {message}"
    assert changes(before, snapshot(run)) == {"added": [], "removed": [], "changed": []}


def test_resume_with_the_printed_command_and_an_allowed_change_finishes_and_records_it(sigterm_run) -> None:
    run, _ = sigterm_run
    stopped = json.loads((run / "manifest.json").read_text())
    argv = shlex.split(stopped["resume_command"])[1:]  # the exact command, without the program name
    result = cli(*argv, "--set", "training.max_steps=8")
    assert result.returncode == 0, str(result)
    assert result.stdout.strip() == f"Run written to {run}"
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["global_step"] == 8
    assert manifest["resume_command"] is None
    (entry,) = manifest["resumed_with_changes"]
    assert entry["checkpoint"] == Path(stopped["resumable_from"]).name
    assert entry["changes"] == {"training.max_steps": {"before": 200, "after": 8}}
    assert yaml.safe_load((run / "config.yaml").read_text())["training"]["max_steps"] == 8
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["kind"] == "train"] == list(range(1, 9))  # every step once

    # Item 8: what training wrote is readable as open()/mkdir() would make it (the umask's modes),
    # the adapter weights included (safetensors writes them 0600).
    mask = os.umask(0)
    os.umask(mask)
    for path in [run, *run.rglob("*")]:
        want = (0o777 if path.is_dir() else 0o666) & ~mask
        assert path.stat().st_mode & 0o777 == want, f"{path} is {oct(path.stat().st_mode & 0o777)}"
    assert temp_leftovers(run) == []


def test_resume_without_a_config_continues_with_the_runs_own_config(sigint_run) -> None:
    """`train -o RUN --resume` alone uses RUN/config.yaml (not the shipped dental default)."""
    run, _ = sigint_run
    saved = yaml.safe_load((run / "config.yaml").read_text())
    result = cli("train", "-o", run, "--resume", "--set", "training.max_steps=6")
    assert result.returncode == 0, str(result)
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["global_step"] == 6
    after = yaml.safe_load((run / "config.yaml").read_text())
    assert after["model"] == saved["model"] and after["data"] == saved["data"]  # the tiny run's, not dental's
