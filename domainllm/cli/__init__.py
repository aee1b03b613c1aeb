"""The ``domainllm`` command line: it parses arguments and dispatches to the library, nothing more.

Heavy imports (torch, transformers, chromadb) happen inside the handlers, so ``--help`` is instant.

Exit codes, one rule for every command:

* **0**: done. ``compare`` also exits 0 when an arm was skipped or failed (the summary line names
  them) unless ``--strict`` / ``compare.strict`` asks for 2.
* **2**: bad input or a fault the user can fix (:class:`~domainllm.errors.DomainLLMError`: a config
  key, a missing or damaged file, a model that is not cached, a run that would be overwritten, a
  ``--strict`` comparison with a skipped arm). One paragraph on stderr names the key, file or
  path and the fix; nothing that existed before was changed.
* **1**: an unexpected error, one domainllm has no explanation for (a bug, or a library failing in
  a way it does not recognise): one paragraph naming the exception, the command and ``--debug``.
  Kept apart from 2 so that a script can tell "fix your input" from "report a bug". (``info``
  also exits 1 when the default model or embedder fails to load.)
* **130 / 143** (128 + the signal): interrupted by Ctrl-C (SIGINT) or SIGTERM, which are handled
  alike. A stopped ``train`` or ``compare`` is recorded as ``interrupted`` (not ``failed``) with
  the exact command that continues it, which is also printed.

``--debug`` re-raises instead, so the traceback is shown.

stdout is for results only: while a command runs, stdout (``sys.stdout`` and descriptor 1) points at
stderr, next to the logs, warnings and progress bars, and the handlers write their results through
:mod:`domainllm.ui` (``print_result``, ``results_console``, ``results_stream``) to the real stdout.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence

from domainllm.cli.parser import build_parser
from domainllm.errors import DomainLLMError, Interrupted
from domainllm.ui import results_only_on_stdout

__all__ = ["build_parser", "main"]

log = logging.getLogger("domainllm")


def _setup_logging(verbose: bool) -> None:
    """Logs, and Python warnings through them, on stderr (rich's console defaults to stdout)."""
    level = logging.INFO if verbose else logging.WARNING
    try:
        from rich.console import Console
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(
            console=Console(stderr=True), show_path=False, rich_tracebacks=False
        )
        fmt = "%(message)s"
    except ImportError:  # pragma: no cover
        handler, fmt = logging.StreamHandler(sys.stderr), "%(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=logging.WARNING, format=fmt, handlers=[handler], force=True)
    logging.captureWarnings(True)  # warnings.warn() from a library: a "py.warnings" log record
    logging.getLogger("domainllm").setLevel(level)
    if not verbose:
        # transformers and friends are chatty at WARNING about things a user cannot act on (bitsandbytes:
        # "Failed to load CPU gemm_4bit_forward from kernels-community", an optional CPU kernel).
        for name in (
            "bitsandbytes",
            "transformers",
            "peft",
            "trl",
            "accelerate",
            "chromadb",
            "sentence_transformers",
            "httpx",
        ):
            logging.getLogger(name).setLevel(logging.ERROR)
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def main(argv: Sequence[str] | None = None) -> int:
    from domainllm.invocation import running_cli_command, stop_signals

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    # chat is a conversation, not a job with state to record: SIGTERM ends it as it ends any program
    # (its Ctrl-C already stops the answer being streamed).
    stops = (signal.SIGINT,) if args.command == "chat" else (signal.SIGINT, signal.SIGTERM)
    with results_only_on_stdout(), running_cli_command(args.command, argv), stop_signals(stops) as stopped:
        _setup_logging(args.verbose)
        try:
            return _run(handler, args, stopped)
        finally:
            logging.captureWarnings(False)  # main() also runs in-process (tests, notebooks)


def _run(handler: Callable[[argparse.Namespace], int], args: argparse.Namespace, stopped: list[int]) -> int:
    try:
        return handler(args)
    except DomainLLMError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        signum = stopped[0] if stopped else signal.SIGINT
        name = signal.Signals(signum).name
        detail = f": {exc}" if isinstance(exc, Interrupted) and str(exc) else ""
        print(f"interrupted ({name}){detail}", file=sys.stderr)
        return 128 + signum
    except NotImplementedError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # the last resort: one paragraph, not a traceback
        if args.debug:
            raise
        from domainllm.invocation import unexpected_error

        print(unexpected_error(exc, args.command), file=sys.stderr)
        return 1
