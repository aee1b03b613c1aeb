"""Comparison faults that involve a comparison: a failing compare never touches the previous one, skipped
and failed arms are named (and fail with --strict), and SIGTERM stops a comparison the way Ctrl-C does.

Real ``domainllm compare`` processes on the tiny model (two questions, four new tokens), against a
finished comparison made once for the module.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import time

import pytest
from _cli import changes, cli, error_line, snapshot, temp_leftovers
from _workspace import Workspace, workspace


@pytest.fixture(scope="module")
def ws(tmp_path_factory, tiny_model_dir) -> Workspace:
    return workspace(tmp_path_factory, tiny_model_dir)


@pytest.fixture(scope="module")
def done(ws):
    """A finished comparison (prompt_only and finetuned on the workspace's run)."""
    out = ws.path("cmp-done")
    result = cli("compare", "-c", ws.config, "--run", ws.run, "-o", out)
    assert result.returncode == 0, str(result)
    assert result.stdout.splitlines()[-1] == f"Report written to {out / 'report.md'}; 2 of 2 arms answered"
    return out


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--run", "{ws}/trunc"], ["adapter_model.safetensors' cannot be read"]),
        (["--run", "{ws}/no-run"], ["no-run' does not exist"]),
        (["--run", "{run}"], ["already holds a finished comparison", "--resume", "--overwrite"]),
        (["--run", "{run}", "--set", "compare.arms=[prompt_only, nosuch]"], ["Unknown arm 'nosuch'"]),
        (["--run", "{ws}/trunc", "--overwrite"], ["adapter_model.safetensors' cannot be read"]),
        (["--run", "{run}", "--resume", "--set", "compare.split=nosuch"], ["'compare.split' is 'nosuch'"]),
    ],
    ids=[
        "truncated-run",
        "missing-run",
        "finished-comparison",
        "unknown-arm",
        "overwrite-broken-run",
        "bad-key",
    ],
)
def test_a_failing_compare_leaves_the_previous_comparison_byte_for_byte(args, words, ws, done) -> None:
    """#12 item 1: nothing is cleared before everything is checked, --overwrite included."""
    before = snapshot(done)
    argv = [a.replace("{ws}", str(ws.root)).replace("{run}", str(ws.run)) for a in args]
    result = cli("compare", "-c", ws.config, "-o", done, *argv)
    assert result.returncode == 2, str(result)
    message = error_line(result)
    assert all(w in message for w in words), message
    assert changes(before, snapshot(done)) == {"added": [], "removed": [], "changed": []}
    assert temp_leftovers(done) == []


def test_comparison_outputs_are_readable_files(done) -> None:
    """#12 item 8: reports are meant to be read: the umask's modes (0644 under 022), not mkstemp's 0600."""
    mask = os.umask(0)
    os.umask(mask)
    for path in [done, *done.rglob("*")]:
        want = (0o777 if path.is_dir() else 0o666) & ~mask
        assert path.stat().st_mode & 0o777 == want, f"{path} is {oct(path.stat().st_mode & 0o777)}"


def test_without_strict_a_skipped_arm_and_an_unused_run_are_named_and_exit_0(ws) -> None:
    """#12 item 7: the summary line names the skipped arm; the unused --run is warned about."""
    out = ws.path("cmp-skip")
    result = cli(
        "compare", "-c", ws.config, "--run", ws.run, "-o", out,
        "--set", "compare.arms=[prompt_only]", "--set", "compare.extra_arms=[openai:gpt-4o-mini]",
    )  # fmt: skip
    assert result.returncode == 0, str(result)
    assert result.stdout.splitlines()[-1] == (
        f"Report written to {out / 'report.md'}; 1 of 2 arms answered; skipped: openai:gpt-4o-mini"
    )
    assert "no arm uses a fine-tuned run" in result.stderr and "it is not used" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("strict", [False, True], ids=["default", "strict"])
def test_an_arm_that_fails_while_running_is_named_and_fails_with_strict(strict, ws) -> None:
    """#12 item 7: an arm whose prompts exceed the model's context fails; --strict turns that into exit 2
    after the report of the other arms is written (their answers are not lost)."""
    out = ws.path(f"cmp-failed-{'strict' if strict else 'default'}")
    result = cli(
        "compare", "-c", ws.config, "-o", out, "--set", f"compare.chains_dir={ws.path('chains')}",
        "--set", "compare.arms=[prompt_only, long]", *(["--strict"] if strict else []),
    )  # fmt: skip
    results = json.loads((out / "results.json").read_text())
    assert results["arms"]["prompt_only"]["status"] == "ok"
    assert results["arms"]["long"]["status"] == "failed" and "context" in results["arms"]["long"]["error"]
    assert (out / "report.md").is_file()
    if strict:
        assert result.returncode == 2, str(result)
        message = error_line(result)
        assert "compare.strict is on" in message and "failed long (" in message
        assert str(out / "report.md") in message
    else:
        assert result.returncode == 0, str(result)
        assert result.stdout.splitlines()[-1].endswith("; 1 of 2 arms answered; failed: long")


def test_sigterm_stops_a_comparison_as_interrupted_and_its_command_resumes_it(ws) -> None:
    """#12 item 6: SIGTERM (as from a scheduler) is handled like Ctrl-C: status interrupted, the exact
    command printed, and that command continues from the finished arm."""
    out = ws.path("cmp-sigterm")
    first_arm = out / "arms" / "prompt_only.json"

    def stop_after_first_arm(pid: int) -> None:
        deadline = time.monotonic() + 180
        while not first_arm.is_file():
            assert time.monotonic() < deadline, "the first arm did not finish within 180 s"
            time.sleep(0.01)
        os.kill(pid, signal.SIGTERM)

    # Long answers and one question per batch: the second arm runs for seconds, so SIGTERM lands in it.
    result = cli(
        "compare", "-c", ws.config, "--run", ws.run, "-o", out, "--set", "compare.limit=0",
        "--set", "generation.max_new_tokens=400", "--set", "generation.batch_size=1",
        while_running=stop_after_first_arm,
    )  # fmt: skip
    assert result.returncode == 128 + signal.SIGTERM, str(result)
    line = error_line(result, prefix="interrupted (SIGTERM): ")
    assert "1 arm(s) left (finetuned)" in line
    command = line.split("Continue with: ", 1)[1]
    assert command.startswith("domainllm compare ") and command.endswith(" --resume")
    stopped = json.loads((out / "results.json").read_text())
    assert stopped["status"] == "interrupted" and command in stopped["error"]
    assert temp_leftovers(out) == []

    resumed = cli(*shlex.split(command)[1:])
    assert resumed.returncode == 0, str(resumed)
    results = json.loads((out / "results.json").read_text())
    assert results["status"] == "complete" and results["resumed_arms"] == ["prompt_only"]
    assert {name: arm["status"] for name, arm in results["arms"].items()} == {
        "prompt_only": "ok",
        "finetuned": "ok",
    }
