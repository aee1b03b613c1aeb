"""The CLI end to end: help for every subcommand, info, and bad input -> exit 2 without a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _noise import NOISE, noisy_env

from domainllm.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
SUBCOMMANDS = [
    "train",
    "merge",
    "index",
    "chat",
    "compare",
    "report",
    "info",
    "bench",
    "augment",
    "preferences",
]


def run_cli(*args: str, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "domainllm", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env=full_env,
    )


def test_every_subcommand_has_one_line_help_and_options():
    parser = build_parser()
    helps = {a.dest: a for a in parser._subparsers._group_actions[0]._choices_actions}
    assert sorted(helps) == sorted(SUBCOMMANDS)
    for name in SUBCOMMANDS:
        assert helps[name].help and "\n" not in helps[name].help
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args([name, "--help"])
        assert exit_info.value.code == 0


def test_help_is_fast_and_does_not_import_torch():
    start = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, domainllm.cli as c; c.build_parser(); print('torch' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert proc.stdout.strip() == "False"
    assert time.perf_counter() - start < 10


def test_info_end_to_end_generates_offline():
    proc = run_cli("info", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["device"] in ("cpu", "cuda", "mps")
    assert report["versions"]["torch"] and report["versions"]["transformers"]
    assert report["model_ok"] is True
    assert len(report["model_answer"].split()) >= 3  # a real sentence came back
    assert report["embedder_ok"] is True and report["embedder_dim"] == 384
    assert Path(report["model_dir"], "model.safetensors").is_file()


@pytest.mark.parametrize("load", [False, True], ids=["no-load", "load"])
def test_info_json_parses_whatever_the_libraries_print(load, tmp_path):
    """A log record, a warning, a print() and a write to descriptor 1, made by a library while the
    command runs (not a mocked logger): stdout is the JSON and nothing else; the noise is on stderr."""
    args = ["info", "--json"] if load else ["info", "--json", "--no-load"]
    proc = run_cli(*args, env=noisy_env(tmp_path / "site", "domainllm.info"))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["model_ok"] is (True if load else None)
    assert report["versions"]["transformers"]
    for marker in NOISE:
        assert marker in proc.stderr, f"{marker} was not emitted (or was lost): {proc.stderr}"
        assert marker not in proc.stdout


def test_info_human_output_keeps_stdout_for_the_report(tmp_path):
    proc = run_cli("info", "--no-load", env=noisy_env(tmp_path / "site", "domainllm.info"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Device: ")
    assert all(marker in proc.stderr and marker not in proc.stdout for marker in NOISE)


def test_stdout_is_put_back_after_a_command_even_when_it_fails(capfd):
    """In-process (main() in a notebook or a test): results reach the caller's stdout, noise does not,
    and sys.stdout and descriptor 1 are the caller's again afterwards, also after an exception."""
    from domainllm.ui import print_result, results_only_on_stdout

    before = sys.stdout
    with pytest.raises(RuntimeError), results_only_on_stdout():
        print("noise from print")
        os.write(1, b"noise on fd 1\n")
        print_result("the result")
        raise RuntimeError("a failing command")
    assert sys.stdout is before
    print("after", flush=True)
    os.write(1, b"fd 1 after\n")
    out, err = capfd.readouterr()
    assert out.splitlines() == ["the result", "after", "fd 1 after"]
    assert "noise from print" in err and "noise on fd 1" in err


def test_info_human_output():
    proc = run_cli("info", "--no-load")
    assert proc.returncode == 0, proc.stderr
    assert (
        "Device" in proc.stdout and "SmolLM2-135M-Instruct" in proc.stdout and "transformers" in proc.stdout
    )


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["train", "--set", "lora.rank=8"], "Unknown config key 'lora.rank'"),
        (["train", "--set", "lora.r=eight"], "'lora.r' is 'eight'"),
        (["train", "--config", "does/not/exist.yaml"], "does/not/exist.yaml' does not exist"),
        (["compare", "--set", "quantization.mode=3bit"], "allowed values: auto, 4bit, 8bit, none"),
        (
            ["train", "--set", "model.name_or_path=someorg/some-model", "--set", "training.max_steps=1"],
            "offline default",
        ),
    ],
)
def test_bad_input_exits_2_with_one_paragraph_and_no_traceback(args, needle, tmp_path):
    proc = run_cli(*args, "--output-dir", str(tmp_path / "run")) if args[0] == "train" else run_cli(*args)
    _assert_one_paragraph_error(proc, needle)
    assert not (tmp_path / "run").exists()  # nothing half-written


def _assert_one_paragraph_error(proc: subprocess.CompletedProcess, needle: str) -> None:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert needle in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: ")
    assert "\n\n" not in proc.stderr.strip(), "the error should be one paragraph"


def test_a_hub_embedder_while_offline_names_the_offline_default(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# A\n\nSome text about teeth.\n")
    proc = run_cli(
        "index",
        str(docs),
        "--store",
        str(tmp_path / "store"),
        "--set",
        "retrieval.embedding_model=someorg/embedder",
    )
    _assert_one_paragraph_error(proc, "someorg/embedder")
    assert "offline default" in proc.stderr


def test_4bit_without_bitsandbytes_exits_2_and_names_the_fix(tmp_path):
    """bitsandbytes is a dependency here, so its absence is simulated the way Python sees a missing
    package: ``sys.modules[name] = None`` makes ``find_spec`` return None and imports fail."""
    code = (
        "import sys; sys.modules['bitsandbytes'] = None; from domainllm.cli import main; "
        "raise SystemExit(main(sys.argv[1:]))"
    )
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-c", code, "train", "--set", "quantization.mode=4bit", "--output-dir", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    _assert_one_paragraph_error(proc, "'quantization.mode' is '4bit', which needs bitsandbytes")
    assert "pip install bitsandbytes" in proc.stderr and "quantization.mode=none" in proc.stderr
    assert not out.exists() or not any(out.rglob("adapter_model.safetensors"))


def test_debug_also_works_after_the_subcommand():
    proc = run_cli("train", "--set", "lora.rank=8", "--debug")
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr and "ConfigError" in proc.stderr


def test_the_console_script_is_installed_and_runs():
    script = Path(sys.executable).with_name("domainllm")
    assert script.is_file(), "the `domainllm` console script is missing: reinstall with pip install -e ."
    proc = subprocess.run([str(script), "info", "--no-load"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "SmolLM2-135M-Instruct" in proc.stdout


def test_debug_shows_the_traceback():
    proc = run_cli("--debug", "train", "--set", "lora.rank=8")
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr and "ConfigError" in proc.stderr
