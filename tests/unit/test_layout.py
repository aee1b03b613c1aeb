"""The house as DESIGN.md draws it: readable module sizes, pure eval/report, one home per policy."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import domainllm

PACKAGE = Path(domainllm.__file__).parent
REPO = PACKAGE.parent
MAX_LINES = 450
HEAVY = (
    "torch",
    "transformers",
    "peft",
    "trl",
    "langchain",
    "langchain_core",
    "chromadb",
    "sentence_transformers",
)


def test_no_module_is_over_450_lines() -> None:
    sizes = {
        str(p.relative_to(REPO)): len(p.read_text(encoding="utf-8").splitlines())
        for p in PACKAGE.rglob("*.py")
    }
    assert len(sizes) > 40  # the scan sees the package
    too_long = {path: n for path, n in sizes.items() if n > MAX_LINES}
    assert not too_long, f"split these modules by job: {too_long}"


def _imported_after(statement: str) -> list[str]:
    code = f"import sys, json\n{statement}\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return [m for m in json.loads(out.stdout.splitlines()[-1]) if m in HEAVY]


def test_eval_and_report_load_no_model_stack() -> None:
    """eval/ (metrics, scoring, stats, results) and report/ are pure: a report re-renders without a model."""
    statement = (
        "import domainllm.eval, domainllm.eval.assemble, domainllm.eval.baselines, domainllm.eval.results\n"
        "import domainllm.report.write, domainllm.report.console, domainllm.report.claims"
    )
    assert _imported_after(statement) == []


def test_the_cli_and_the_package_import_nothing_heavy() -> None:
    """`domainllm --help` stays instant: heavy imports live inside the functions that need them."""
    assert _imported_after("import domainllm, domainllm.cli, domainllm.benchmark, domainllm.serve") == []


def test_one_atomic_writer() -> None:
    """Only domainllm/fsio.py renames temporary files into place (one policy for every output)."""
    writers = [
        str(p.relative_to(REPO))
        for p in PACKAGE.rglob("*.py")
        if re.search(r"tempfile\.mkstemp|os\.replace\(", p.read_text(encoding="utf-8"))
    ]
    assert writers == ["domainllm/fsio.py"]


def test_no_module_shadows_a_lazily_exported_function() -> None:
    """``import pkg.name`` binds the submodule over a lazily exported ``pkg.name`` (the bug that once hid
    ``domainllm.train``): no package exports a name that is also one of its submodules."""
    clashes = []
    for init in PACKAGE.rglob("__init__.py"):
        text = init.read_text(encoding="utf-8")
        match = re.search(r"__all__ = \[(.*?)\]", text, re.S)
        if not match:
            continue
        exported = set(re.findall(r'"(\w+)"', match.group(1)))
        submodules = {p.stem for p in init.parent.glob("*.py")} | {
            p.name for p in init.parent.iterdir() if p.is_dir()
        }
        clashes += [f"{init.parent.name}.{name}" for name in exported & submodules]
    assert not clashes, clashes
