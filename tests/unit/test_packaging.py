"""A plain `pip install` of the project ships the user-editable chains/, configs/ and data/ folders."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    (path,) = out.glob("domainllm-*.whl")
    return path


def test_wheel_contains_chains_configs_and_data(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "domainllm/_resources/configs/dental.yaml" in names
    assert any(n.startswith("domainllm/_resources/chains/") and n.endswith(".yaml") for n in names)
    assert any(n.startswith("domainllm/_resources/data/dental/docs/") for n in names)
    assert "domainllm/_resources/data/dental/qa/test.jsonl" in names
    assert "domainllm/cli/__init__.py" in names


def test_a_plain_install_of_the_wheel_finds_its_configs_chains_and_data(wheel, tmp_path):
    """Not the editable install CI uses: the wheel unpacked into a bare folder, run from elsewhere, must
    resolve the shipped default config, the dental chain specs and the embedded dataset inside itself."""
    site = tmp_path / "site"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            "--target",
            str(site),
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    code = """
import json, domainllm
from domainllm.chains import list_arms, load_chain_spec
from domainllm.config import load_config
from domainllm.data import load_domain
from domainllm.resources import resource_path
cfg = load_config(None)
data = load_domain(cfg.data)
print(json.dumps({
    "package": domainllm.__file__,
    "chains": str(resource_path("chains")),
    "arms": list_arms(domain=cfg.data.name),
    "persona": load_chain_spec("prompt_only", domain=cfg.data.name).system_prompt,
    "test": len(data.split("test")),
    "documents": len(data.documents),
}))
"""
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(site)},
    )
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    assert found["package"].startswith(str(site))
    assert found["chains"].startswith(str(site / "domainllm" / "_resources"))
    assert {"prompt_only", "rag", "finetuned", "finetuned_rag"} <= set(found["arms"])
    assert "Larkspur" in found["persona"]
    assert found["test"] == 116 and found["documents"] >= 40


def test_resource_path_falls_back_to_the_checkout():
    from domainllm.resources import resolve_path, resource_path

    assert (resource_path("configs") / "dental.yaml").is_file()
    assert resolve_path("builtin:dental").name == "dental"


def test_public_names_stay_callable_after_every_submodule_is_imported():
    """A subpackage named like an export (``domainllm.train``) is bound over the lazy function by
    the import system as soon as anything imports it: the README's ``domainllm.train(cfg)`` then
    fails with "'module' object is not callable". Import every submodule first, then check."""
    import importlib
    import pkgutil
    import types

    import domainllm

    for info in pkgutil.walk_packages(domainllm.__path__, "domainllm."):
        if ".bench." in info.name:
            continue
        importlib.import_module(info.name)
    for name in domainllm.__all__:
        value = getattr(domainllm, name)
        assert not isinstance(value, types.ModuleType), (
            f"domainllm.{name} resolves to a module, not the API object"
        )
