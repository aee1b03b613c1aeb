"""The README tells the truth: its commands exist, its config reference matches the code."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from domainllm.cli import build_parser
from domainllm.configref import config_reference_markdown

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text(encoding="utf-8")


def _bash_lines() -> list[str]:
    """Commands in bash blocks, plus inline `domainllm ...` commands in the prose."""
    blocks = re.findall(r"```bash\n(.*?)```", README, re.S)
    lines = []
    for block in blocks:
        for line in block.splitlines():
            line = line.split("  #")[0].strip()
            if line:
                lines.append(line)
    prose = re.sub(r"```.*?```", "", README, flags=re.S)
    lines += [f"python -m {cmd}" for cmd in re.findall(r"`(domainllm [a-z]+ [^`]*)`", prose)]
    return lines


def test_the_two_setup_commands_are_what_ci_runs():
    setup = re.search(r"## Set-up: two commands.*?```bash\n(.*?)```", README, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in setup.splitlines() if line.strip()]
    assert commands == ["make compare", "make test"]
    ci = (REPO / ".ci" / "run").read_text()
    assert "make compare" in ci and "make test" in ci
    makefile = (REPO / "Makefile").read_text()
    assert "-m domainllm compare" in makefile and "-m pytest" in makefile


def test_every_make_target_the_readme_names_exists():
    targets = set(re.findall(r"^([a-z][\w-]*):", (REPO / "Makefile").read_text(), re.M))
    named = set(re.findall(r"`make ([a-z]+)", README))
    named |= {line.split()[1] for line in _bash_lines() if line.startswith("make ")}
    assert {"compare", "test", "lint", "upgrade"} <= named
    assert named <= targets, f"README names make targets the Makefile lacks: {sorted(named - targets)}"


def test_every_cli_command_in_the_readme_parses():
    parser = build_parser()
    cli_lines = [line for line in _bash_lines() if "-m domainllm " in line]
    assert len(cli_lines) >= 9
    assert any("configs/pubmedqa.yaml" in line for line in cli_lines)  # inline commands are included
    for line in cli_lines:
        argv = shlex.split(line.split("-m domainllm ", 1)[1])
        parser.parse_args(argv)  # exits (fails the test) on an unknown subcommand or option
    for line in cli_lines:
        for rel in re.findall(r"--config(?:_file)? (\S+)", line):
            assert (REPO / rel).is_file(), f"README names a missing config: {line}"


def _readme_cli_line(prefix: str) -> list[str]:
    (line,) = [line for line in _bash_lines() if line.startswith(f"python -m domainllm {prefix}")]
    return shlex.split(line.split("-m domainllm ", 1)[1])


def test_the_readme_merge_and_compare_run_commands_run(tiny_model_dir, tmp_path, monkeypatch):
    """`merge runs/dental` and `compare --run runs/dental`, executed as the README writes them, on a
    tiny run placed at runs/dental (plus --config for the tiny domain: the shipped dental config would
    evaluate 116 questions)."""
    import torch
    from _runs import make_tiny_run
    from conftest import write_tiny_domain

    from domainllm.cli import main

    torch.set_num_threads(1)
    domain = write_tiny_domain(tmp_path / "domain")
    run = make_tiny_run(tmp_path / "made", tiny_model_dir, domain)
    (tmp_path / "runs").mkdir()
    run = run.rename(tmp_path / "runs" / "dental")
    config_path = run / "config.yaml"  # the run's resolved config: its paths are absolute
    monkeypatch.chdir(tmp_path)

    assert main(_readme_cli_line("merge")) == 0
    assert (tmp_path / "runs" / "dental" / "merged" / "model.safetensors").is_file()

    argv = _readme_cli_line("compare --run")
    assert main([*argv, "--config", str(config_path)]) == 0
    out = tmp_path / argv[argv.index("-o") + 1]  # the README's -o folder, relative to the working directory
    for name in ("report.md", "results.json", "predictions.jsonl", "chart.png"):
        assert (out / name).is_file()
    recorded = json.loads((out / "results.json").read_text())["runs"]["default"]
    assert recorded["reused"] is True and recorded["run_dir"] == str(run.resolve())  # not trained again


def test_every_config_key_in_the_readme_exists():
    reference = config_reference_markdown()
    for key in set(re.findall(r"--set ([a-z_]+\.[a-z_]+)=", README)) - {"section.key"}:
        assert f"`{key}`" in reference, key


def test_config_reference_is_in_step_with_the_code():
    match = re.search(r"<!-- config-reference:start -->\n(.*?)<!-- config-reference:end -->", README, re.S)
    assert match, "README lost its config-reference markers"
    if match.group(1).strip() != config_reference_markdown().strip():
        pytest.fail("README config reference is stale: run `python -m domainllm.configref` and paste it in")


def test_files_the_readme_names_exist():
    for rel in re.findall(r"`((?:configs|examples|docs|chains|data|domainllm)/[\w./-]+)`", README):
        assert (REPO / rel).exists(), rel
    layout = re.search(r"Layout: (.*?)See `CHANGELOG.md`", README, re.S).group(1)
    for name in re.findall(r"`(\w+)/`", layout.split("`chains/`")[0]):
        if name != "domainllm":
            assert (REPO / "domainllm" / name).is_dir(), f"README's layout names domainllm/{name}/"


def test_the_python_api_block_runs(tiny_config, tmp_path, monkeypatch):
    """The README's ten lines, executed as written on the tiny model and domain."""
    import torch

    from domainllm.config import save_config

    torch.set_num_threads(1)
    block = re.search(r"## The Python API in ten lines.*?```python\n(.*?)```", README, re.S).group(1)
    assert len([line for line in block.splitlines() if line.strip()]) <= 11
    config_path = save_config(tiny_config, tmp_path / "tiny.yaml")
    code = block.replace('"configs/dental.yaml"', repr(str(config_path)))
    assert code != block, "the README block no longer loads configs/dental.yaml"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    report_dir = Path(namespace["report_dir"])
    for name in ("report.md", "results.json", "predictions.jsonl", "chart.png"):
        assert (report_dir / name).is_file()
