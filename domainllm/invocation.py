"""How a CLI command runs: its command line, the signals that stop it, the command that continues it.

A stopped ``train`` or ``compare`` tells the user how to continue: the same command with ``--resume``.
The library cannot read that from ``sys.argv`` (under pytest, a notebook or another program it holds
something else), so :func:`domainllm.cli.main` records the arguments it parsed here for the length of
the command, and library code asks :func:`resume_command`, which falls back to the Python call when
no CLI command is running. :func:`stop_signals` makes SIGTERM stop a command as Ctrl-C does, and
:func:`unexpected_error` is the CLI's last-resort paragraph (the exit codes are in :mod:`domainllm.cli`).
"""

from __future__ import annotations

import contextlib
import shlex
import signal
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

__all__ = [
    "cli_command",
    "command_line",
    "resume_command",
    "running_cli_command",
    "stop_signals",
    "unexpected_error",
]

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


@contextlib.contextmanager
def stop_signals(signals: Sequence[int]) -> Iterator[list[int]]:
    """SIGTERM stops a command as Ctrl-C does: both raise ``KeyboardInterrupt`` in the main thread, once.

    A scheduler, ``kill`` or a container stop sends SIGTERM, whose default ends Python without running
    any cleanup, so a run would be left marked ``running`` with no word on how to continue. Here the
    first SIGINT or SIGTERM raises ``KeyboardInterrupt`` (training and compare record ``interrupted``
    and the resume command); a second SIGTERM ends the process at once, a second Ctrl-C interrupts
    again, as in plain Python. A signal the parent set to be ignored (``nohup``, a background job)
    stays ignored. ``signals``: the signals handled so. Yields a list that receives the number of the
    signal that stopped the command.
    """
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():  # signal handlers: main thread only
        yield received
        return
    previous = {sig: signal.getsignal(sig) for sig in signals}

    def stop(signum: int, frame: object) -> None:
        received.append(signum)
        signal.signal(signum, signal.SIG_DFL if signum == signal.SIGTERM else signal.default_int_handler)
        raise KeyboardInterrupt

    for sig, before in previous.items():
        if before not in (signal.SIG_IGN, None):
            signal.signal(sig, stop)
    try:
        yield received
    finally:
        for sig, before in previous.items():
            if before is not None:
                signal.signal(sig, before)


def unexpected_error(exc: Exception, command: str) -> str:
    """One paragraph for an exception domainllm did not anticipate (exit 1; --debug shows the traceback)."""
    text = " ".join(str(exc).split())
    text = (text[:400] + " ...") if len(text) > 400 else text
    kind = type(exc).__qualname__
    if type(exc).__module__ not in ("builtins", "__main__"):
        kind = f"{type(exc).__module__}.{kind}"
    return (
        f"error: unexpected {kind} in 'domainllm {command}'"
        f"{': ' + text if text else ''}. domainllm has no explanation for this error: it may be a bug, or a "
        f"library or file failing in a way it does not recognise. Run the same command with --debug for the "
        "traceback, and report it if the cause is not in your input."
    )
