"""The command line a CLI command runs under, and the exact command that continues it after a stop.

A stopped ``train`` or ``compare`` tells the user how to continue: the same command with ``--resume``.
The library cannot read that from ``sys.argv`` (under pytest, a notebook or another program it holds
something else), so :func:`domainllm.cli.main` records the arguments it parsed here for the length of
the command, and library code asks :func:`resume_command`, which falls back to the Python call when
no CLI command is running.
"""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Iterator, Sequence
from pathlib import Path

__all__ = ["cli_command", "command_line", "resume_command", "running_cli_command"]

# (subcommand, arguments after the program name) of the CLI command now running; None outside one.
_current: tuple[str, list[str]] | None = None


@contextlib.contextmanager
def running_cli_command(command: str, args: Sequence[str]) -> Iterator[None]:
    """Record ``domainllm <args>`` (whose subcommand is ``command``) while the block runs."""
    global _current
    previous, _current = _current, (command, list(args))
    try:
        yield
    finally:
        _current = previous


def cli_command() -> tuple[str, list[str]] | None:
    """(subcommand, arguments) of the running CLI command, or None outside the CLI."""
    return _current


def command_line() -> str | None:
    """``domainllm <args>`` as typed (shell-quoted), or None outside the CLI."""
    return shlex.join(["domainllm", *_current[1]]) if _current else None


def resume_command(command: str, output_dir: str | Path, python_call: str) -> str:
    """The exact command that continues a stopped ``command`` (``train`` / ``compare``) writing ``output_dir``.

    From the CLI: the running command line without ``--resume``/``--overwrite``, plus ``--output-dir``
    when it is the stopped command itself and did not name one, plus ``--resume``. When the running
    command is another one (``compare`` training its run), that command with ``--resume`` continues
    both. Outside the CLI: ``python_call``.
    """
    if _current is None:
        return python_call
    running, args = _current
    kept = [a for a in args if a not in ("--resume", "--overwrite")]
    names_output = any(a in ("-o", "--output-dir") or a.startswith("--output-dir=") for a in kept)
    if running == command and not names_output:
        kept += ["--output-dir", str(output_dir)]
    return shlex.join(["domainllm", *kept, "--resume"])
