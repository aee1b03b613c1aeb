"""Faults around serving and the knowledge base that are not refusals, and the CLI's last resort.

* a merge writes readable files (the umask's modes; safetensors and mkdtemp alone give 0600/0700);
* a document with one 25,000-character line is indexed, with a warning that names it;
* an exception domainllm does not anticipate is one paragraph, exit 1, naming the exception, the
  command and --debug (which shows the traceback).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from _cli import ENV, REPO, cli, error_line, temp_leftovers
from _workspace import LONG_LINE_CHARS, Workspace, workspace


@pytest.fixture(scope="module")
def ws(tmp_path_factory, tiny_model_dir) -> Workspace:
    return workspace(tmp_path_factory, tiny_model_dir)


def test_merge_writes_files_anyone_can_read(ws) -> None:
    """#12 item 8: merged/ and its weights get the umask's modes, like every other output."""
    run = ws.path("run-merge")
    shutil.copytree(ws.run, run)
    result = cli("merge", run)
    assert result.returncode == 0, str(result)
    assert result.stdout.strip() == f"Merged model written to {run / 'merged'}"
    mask = os.umask(0)
    os.umask(mask)
    for path in [run / "merged", *(run / "merged").rglob("*")]:
        want = (0o777 if path.is_dir() else 0o666) & ~mask
        assert path.stat().st_mode & 0o777 == want, f"{path} is {oct(path.stat().st_mode & 0o777)}"
    assert json.loads((run / "manifest.json").read_text())["merge"]["passed"] is True
    assert temp_leftovers(run) == []


def test_a_document_with_a_very_long_line_is_indexed_with_a_warning(ws) -> None:
    """#12 item 8: a single-line export is named (its line length and chunk count) instead of indexing
    silently for minutes; big jobs also get a progress bar (measured in the report of issue #12)."""
    store = ws.path("store-long")
    result = cli(
        "index", ws.path("longdocs"), "--store", store, "-c", ws.config,
        "--set", "retrieval.chunk_size=5000", "--set", "retrieval.chunk_overlap=0",
    )  # fmt: skip
    assert result.returncode == 0, str(result)
    assert result.stdout.startswith("Indexed 2 documents into ")
    flat = " ".join(result.stderr.split())  # rich wraps log lines
    assert f"Document 'export.txt' has a line of {LONG_LINE_CHARS:,} characters" in flat
    assert "faq.md" not in flat  # the ordinary document is not warned about


_FAILING_LIBRARY = """
import sys

def _fail(event, args):
    if event == "import" and args[0] == "domainllm.report.write":
        raise RuntimeError("simulated failure inside a library\\n(second line of its message)")

sys.addaudithook(_fail)
"""


@pytest.mark.parametrize("debug", [False, True], ids=["plain", "debug"])
def test_an_unexpected_exception_is_one_paragraph_exit_1_naming_debug(debug, ws, tmp_path) -> None:
    """The last resort. A bug cannot be had on demand, so a sitecustomize (test instrumentation, not
    library code) makes an import inside the command raise, as a broken library would."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(_FAILING_LIBRARY, encoding="utf-8")
    env = {**os.environ, **ENV, "PYTHONPATH": os.pathsep.join([str(site), ENV["PYTHONPATH"]])}
    args = ["--debug"] if debug else []
    proc = subprocess.run(
        [sys.executable, "-m", "domainllm", *args, "report", str(ws.path("cmp-anything"))],
        capture_output=True, text=True, timeout=120, cwd=REPO, env=env,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    if debug:
        assert "Traceback" in proc.stderr and "RuntimeError: simulated failure" in proc.stderr
        return
    from _cli import Result

    message = error_line(Result(["report"], proc.returncode, proc.stdout, proc.stderr, 0.0))
    assert message == (
        "error: unexpected RuntimeError in 'domainllm report': simulated failure inside a library (second line of "
        "its message). domainllm has no explanation for this error: it may be a bug, or a library or file failing "
        "in a way it does not recognise. Run the same command with --debug for the traceback, and report it if the "
        "cause is not in your input."
    )
