"""Console rendering with rich: the library returns data, the CLI shows it here."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from domainllm.info import InfoReport

__all__ = ["console", "print_info"]


def console():
    from rich.console import Console

    return Console(stderr=False, highlight=False)


def print_info(report: InfoReport) -> None:
    from rich.table import Table

    out = console()
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
