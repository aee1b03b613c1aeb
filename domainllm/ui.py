"""Console output: results on stdout, everything else on stderr; the library returns data, the CLI shows it here.

stdout carries results only (``info --json`` must parse, ``domainllm index ... > summary.txt`` must hold
the summary), so while a CLI command runs :func:`results_only_on_stdout` points stdout at stderr, both
``sys.stdout`` and file descriptor 1: a library's ``print()``, a C extension's ``printf`` and a
subprocess's output land on stderr with the logs, warnings and progress bars. Results reach the real
stdout through :func:`results_stream` / :func:`results_console` / :func:`print_result`, which write to
the stdout saved when the command started (and to ``sys.stdout`` outside a command, for library use).
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from rich.console import Console

    from domainllm.info import InfoReport

__all__ = [
    "print_info",
    "print_result",
    "results_console",
    "results_only_on_stdout",
    "results_stream",
]

# Where results go while results_only_on_stdout() is active; None: sys.stdout.
_results: TextIO | None = None


def results_stream() -> TextIO:
    """The stream results are written to: the real stdout during a CLI command, else ``sys.stdout``."""
    return _results if _results is not None else sys.stdout


def print_result(text: str) -> None:
    """One result line (``Run written to ...``) on stdout."""
    out = results_stream()
    out.write(f"{text}\n")
    out.flush()


def results_console() -> Console:
    """A rich console over :func:`results_stream`. Piped output (logs, CI) gets 120 columns instead of
    rich's 80, so tables do not wrap."""
    from rich.console import Console

    out = results_stream()
    return Console(file=out, highlight=False, width=None if _isatty(out) else 120)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (ValueError, OSError):  # a closed stream
        return False


def _fileno(stream: TextIO | None) -> int | None:
    try:
        return stream.fileno() if stream is not None else None
    except (AttributeError, ValueError, OSError, io.UnsupportedOperation):  # StringIO, pytest's capsys
        return None


@contextlib.contextmanager
def results_only_on_stdout() -> Iterator[TextIO]:
    """Point ``sys.stdout`` and file descriptor 1 at stderr until the block ends; yield the results stream.

    When ``sys.stdout`` is descriptor 1 (a terminal, a pipe, a file), results go to a duplicate of the
    original descriptor. When it is something else (a ``StringIO``, a test's capture), results go to that
    object; descriptor 1 still points at stderr meanwhile, so nothing a library writes there reaches it.
    Everything is put back on exit, also after an exception.
    """
    global _results
    real = sys.stdout
    previous = _results
    for stream in (real, sys.stderr):
        with contextlib.suppress(AttributeError, ValueError, OSError):
            stream.flush()
    saved: int | None = None
    with contextlib.suppress(OSError):  # no descriptor 1 or 2 (a daemon): nothing to redirect
        saved = os.dup(1)
        os.dup2(2, 1)
    results: TextIO = real
    try:
        if saved is not None and _fileno(real) == 1:
            results = os.fdopen(
                os.dup(saved),
                "w",
                buffering=1,  # line-buffered, as a terminal's stdout
                encoding=getattr(real, "encoding", None) or "utf-8",
                errors=getattr(real, "errors", None) or "strict",
            )
        _results, sys.stdout = results, sys.stderr
        yield results
    finally:
        for stream in (results, sys.stderr):
            with contextlib.suppress(ValueError, OSError):
                stream.flush()
        sys.stdout, _results = real, previous
        if saved is not None:
            os.dup2(saved, 1)
            os.close(saved)
        if results is not real:
            results.close()


def print_info(report: InfoReport) -> None:
    from rich.table import Table

    out = results_console()
    out.print(f"[bold]Device[/bold]: {report.device} ({report.device_detail})")
    table = Table(title="Libraries", show_header=True, header_style="bold")
    table.add_column("package")
    table.add_column("version")
    for name, version in report.versions.items():
        table.add_row(name, version or "[red]not installed[/red]")
    out.print(table)

    def status(ok: bool | None) -> str:
        return {True: "[green]loads[/green]", False: "[red]FAILED[/red]", None: "not loaded (--no-load)"}[ok]

    out.print(f"[bold]Default model[/bold]: SmolLM2-135M-Instruct, {status(report.model_ok)}")
    out.print(f"  GGUF file : {report.model_gguf or '[red]not found[/red]'}")
    out.print(f"  cached at : {report.model_dir or '-'}")
    if report.model_answer is not None:
        what = "incl. the one-time conversion" if report.model_converted else "load and answer"
        out.print(f"  answer    : {report.model_answer!r} ({report.model_seconds} s, {what})")
    out.print(f"[bold]Default embedder[/bold]: all-MiniLM-L6-v2, {status(report.embedder_ok)}")
    out.print(f"  folder    : {report.embedder_dir or '[red]not found[/red]'}")
    if report.embedder_dim:
        out.print(f"  dimension : {report.embedder_dim}")
    for problem in report.problems:
        out.print(f"[red]problem[/red]: {problem}")
