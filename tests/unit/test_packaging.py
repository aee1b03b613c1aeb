"""A plain `pip install` of the project ships the user-editable chains/, configs/ and data/ folders."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_wheel_contains_chains_configs_and_data(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    (wheel,) = tmp_path.glob("domainllm-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "domainllm/_resources/configs/dental.yaml" in names
    assert any(n.startswith("domainllm/_resources/chains/") and n.endswith(".yaml") for n in names)
    assert any(n.startswith("domainllm/_resources/data/dental/docs/") for n in names)
    assert "domainllm/_resources/data/dental/qa/test.jsonl" in names
    assert "domainllm/cli.py" in names


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
