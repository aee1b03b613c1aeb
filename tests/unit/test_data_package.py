"""The data package's own house: no import cycles, no imports from eval, modules of a readable size."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import domainllm.data

DATA_DIR = Path(domainllm.data.__file__).parent
MAX_LINES = 450


def _data_imports(path: Path) -> set[str]:
    """The domainllm.data modules a module imports, at top level or inside functions.

    Imports under ``if TYPE_CHECKING:`` never run, so they cannot form a cycle and are left out.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            node.body = []
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "domainllm.data":
                found |= {
                    f"domainllm.data.{a.name}" for a in node.names if (DATA_DIR / f"{a.name}.py").is_file()
                }
            elif node.module.startswith("domainllm.data."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("domainllm.data.")}
    return found


def test_no_import_cycles_inside_the_data_package() -> None:
    graph = {
        f"domainllm.data.{p.stem}": _data_imports(p) - {f"domainllm.data.{p.stem}"}
        for p in DATA_DIR.glob("*.py")
        if p.stem != "__init__"
    }
    assert graph["domainllm.data.formats"], "the scan found no imports: the test is not looking"

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, ()):
            if nxt == target or (nxt not in seen and reaches(nxt, target, seen | {nxt})):
                return True
        return False

    cycles = sorted(m for m in graph if reaches(m, m, {m}))
    assert not cycles, f"modules on an import cycle: {cycles}"


def test_importing_every_data_name_does_not_import_eval_or_the_model_stack() -> None:
    code = (
        "import sys, domainllm.data as d\n"
        "[getattr(d, name) for name in d.__all__]\n"
        "import domainllm.data.formats, domainllm.data.hf, domainllm.data.splits, domainllm.data.leakage\n"
        "print(sorted(m for m in ('domainllm.eval', 'torch', 'transformers') if m in sys.modules))\n"
        "print('domainllm.data.loaders' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert out[0] == "[]" and out[1] == "True"  # the loaders did import (the check is not vacuous)


def test_no_data_module_is_over_the_size_limit() -> None:
    sizes = {p.name: len(p.read_text(encoding="utf-8").splitlines()) for p in DATA_DIR.glob("*.py")}
    assert len(sizes) >= 10
    assert not {name: n for name, n in sizes.items() if n > MAX_LINES}
