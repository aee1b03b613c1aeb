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

from domainllm.errors import DomainLLMError, Interrupted
from domainllm.ui import print_result, results_console, results_only_on_stdout, results_stream

__all__ = ["build_parser", "main"]

log = logging.getLogger("domainllm")


def _add_config_args(p: argparse.ArgumentParser, default_help: str = "the shipped dental default") -> None:
    p.add_argument("--config", "-c", metavar="FILE", help=f"YAML config (default: {default_help})")
    p.add_argument(
        "--set",
        dest="overrides",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="override a config key, e.g. --set training.learning_rate=1e-4 (repeatable)",
    )


def _load_config(args: argparse.Namespace):
    from domainllm.config import load_config

    return load_config(args.config, args.overrides)


# --------------------------------------------------------------------------------------------------
# Handlers: each turns parsed arguments into one library call and prints where the result is, through
# domainllm.ui: a bare print() would land on stderr.


def _cmd_info(args: argparse.Namespace) -> int:
    from domainllm.info import collect_info
    from domainllm.ui import print_info

    report = collect_info(load=not args.no_load)
    if args.json:
        import json

        from domainllm.info import report_as_dict

        print_result(json.dumps(report_as_dict(report), indent=2))
    else:
        print_info(report)
    failed = report.model_ok is False or report.embedder_ok is False
    return 1 if failed else 0


def _resume_config_path(args: argparse.Namespace) -> str | None:
    """``train --resume`` without ``--config`` continues with the run's own config.yaml, not the default."""
    if not args.resume or args.config:
        return args.config
    from pathlib import Path

    from domainllm.config import load_config

    run = Path(args.output_dir or load_config(None, args.overrides).training.output_dir)
    saved = run / "config.yaml"
    if saved.is_file():
        log.info("Resuming %s with its own config (%s)", run, saved)
        return str(saved)
    return None


def _cmd_train(args: argparse.Namespace) -> int:
    from domainllm.config import load_config

    # before the heavy import: a config typo fails in well under a second
    cfg = load_config(_resume_config_path(args), args.overrides)
    from domainllm.training import train

    run_dir = train(cfg, output_dir=args.output_dir, resume=args.resume, overwrite=args.overwrite)
    if int(os.environ.get("RANK", "0")) == 0:  # under `accelerate launch`, say it once, not once per process
        print_result(f"Run written to {run_dir}")
    return 0


def _cmd_merge(args: argparse.Namespace) -> int:
    from domainllm.serve import merge_adapter

    out = merge_adapter(
        args.run_dir,
        output_dir=args.output_dir,
        parity_threshold=args.parity_threshold,
        dtype=args.dtype,
        overwrite=args.overwrite,
    )
    print_result(f"Merged model written to {out}")
    return 0


def _cmd_index(args: argparse.Namespace) -> int:
    cfg = _load_config(args)
    from domainllm.rag import build_index

    stats = build_index(args.docs_dir, args.store, cfg.retrieval, docs_key="DOCS_DIR")
    print_result(stats.summary())
    return 0


def _cmd_chat(args: argparse.Namespace) -> int:
    from domainllm.chat import run_chat

    cfg = _load_config(args) if (args.config or args.overrides) else None
    # The conversation is the result: it goes to the real stdout (the terminal), the logs to stderr.
    return run_chat(
        args.run_dir,
        rag=args.rag,
        store_dir=args.store,
        config=cfg,
        adapter=not args.no_adapter,
        output_stream=results_stream(),
    )


def _run_args(values: Sequence[str]) -> tuple[str | None, dict[str, str]]:
    """``--run PATH`` (the default run) and ``--run NAME=PATH`` (named runs) -> (default, {name: path})."""
    from domainllm.config.compare import RUN_NAME

    default: str | None = None
    named: dict[str, str] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if sep and RUN_NAME.fullmatch(name) and path:
            named[name] = path
        elif default is None:
            default = value
        else:
            from domainllm.errors import ConfigError

            msg = f"--run is given two unnamed runs ('{default}' and '{value}'). Name them: --run NAME=PATH."
            raise ConfigError(msg)
    return default, named


def _cmd_compare(args: argparse.Namespace) -> int:
    if args.strict:
        args.overrides = [*args.overrides, "compare.strict=true"]
    cfg = _load_config(args)
    from domainllm.benchmark.comparison import compare

    run_dir, runs = _run_args(args.run)
    out = compare(
        cfg,
        run_dir=run_dir,
        output_dir=args.output_dir,
        runs=runs,
        resume=args.resume,
        overwrite=args.overwrite,
    )
    from domainllm.eval.results import Results
    from domainllm.report.console import arms_summary, print_results

    results = Results.from_json(out)
    print_results(results, console=results_console())
    print_result(f"Report written to {out / 'report.md'}; {arms_summary(results)}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from domainllm.report.console import arms_summary, print_results
    from domainllm.report.write import rerender

    results = rerender(args.output_dir)
    print_results(results, console=results_console())
    out = Path(args.output_dir)
    print_result(
        f"Report re-rendered in {out / 'report.md'} and {out / 'chart.png'}; {arms_summary(results)}"
    )
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    if args.bench_command == "train":
        from domainllm.bench.train import main as bench_main
    else:
        from domainllm.bench.generate import main as bench_main
    return bench_main(args=args)


# --------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="domainllm",
        description="Turn a base LLM into a domain expert with QLoRA, and prove with numbers whether it was worth it.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    # The same flags after the subcommand (`domainllm train --debug`), where users type them. SUPPRESS
    # keeps a subparser from resetting a value given before the subcommand.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    common.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log progress details"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "info",
        parents=[common],
        help="show the device, library versions and whether the offline defaults load",
    )
    p.description = "Show the device, library versions, and load the offline default model and embedder."
    p.add_argument("--no-load", action="store_true", help="only locate the defaults, do not load them")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(handler=_cmd_info)

    p = sub.add_parser(
        "train", parents=[common], help="fine-tune the base model with (Q)LoRA on the domain's QA pairs"
    )
    p.description = "Fine-tune the base model with (Q)LoRA using TRL's SFTTrainer; writes a self-describing run directory."
    _add_config_args(p)
    p.add_argument("--output-dir", "-o", metavar="DIR", help="run directory (default: training.output_dir)")
    p.add_argument(
        "--resume", action="store_true", help="continue from the last checkpoint in the run directory"
    )
    p.add_argument("--overwrite", action="store_true", help="replace a finished run in the output directory")
    p.set_defaults(handler=_cmd_train)

    p = sub.add_parser(
        "merge", parents=[common], help="merge a run's adapter into a full-precision base and check parity"
    )
    p.description = (
        "Merge RUN_DIR/adapter into the base model in full precision, write RUN_DIR/merged/, check parity."
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a finished training run directory")
    p.add_argument(
        "--output-dir", "-o", metavar="DIR", help="where to write the merged model (default: RUN_DIR/merged)"
    )
    p.add_argument(
        "--parity-threshold",
        type=float,
        default=0.9,
        metavar="SHARE",
        help="least share of val prompts whose greedy outputs must agree between merged and unmerged (default 0.9)",
    )
    p.add_argument(
        "--dtype",
        choices=("float32", "bfloat16", "float16", "auto"),
        default="float32",
        help="dtype the merged weights are saved in; the merge itself always runs in float32 "
        "(auto = the config's model.dtype on this device; default float32)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing merged model (after the new one passes parity)",
    )
    p.set_defaults(handler=_cmd_merge)

    p = sub.add_parser(
        "index",
        parents=[common],
        help="build or update a persistent Chroma knowledge base from a folder of documents",
    )
    p.description = (
        "Build or update a persistent Chroma store (cosine space) from Markdown, text, HTML and PDF files."
    )
    p.add_argument("docs_dir", metavar="DOCS_DIR", help="folder of documents")
    p.add_argument("--store", required=True, metavar="DIR", help="Chroma persistence folder")
    _add_config_args(p)
    p.set_defaults(handler=_cmd_index)

    p = sub.add_parser(
        "chat", parents=[common], help="talk to a fine-tuned model in the terminal, optionally with retrieval"
    )
    p.description = (
        "A terminal Q&A bot over a run directory: streams tokens, shows the sources used with --rag."
    )
    p.add_argument(
        "run_dir", metavar="RUN_DIR", help="a training run directory (or 'base' for the base model)"
    )
    p.add_argument("--rag", action="store_true", help="retrieve from the knowledge base and cite sources")
    p.add_argument(
        "--store", metavar="DIR", help="Chroma store (default: built from the run's domain documents)"
    )
    p.add_argument("--no-adapter", action="store_true", help="answer with the base model (adapter disabled)")
    _add_config_args(p, "the run's resolved config")
    p.set_defaults(handler=_cmd_chat)

    p = sub.add_parser(
        "compare",
        parents=[common],
        help="run the dentist comparison: prompt-only vs RAG vs fine-tuned vs both",
    )
    p.description = (
        "Run the same test questions through prompt-only, RAG, fine-tuned and fine-tuned+RAG chains and write "
        "report.md, results.json, predictions.jsonl and chart.png."
    )
    _add_config_args(p)
    p.add_argument("--output-dir", "-o", metavar="DIR", help="report folder (default: compare.output_dir)")
    p.add_argument(
        "--run",
        metavar="[NAME=]RUN_DIR",
        action="append",
        default=[],
        help="reuse this training run instead of training; NAME=RUN_DIR (repeatable) compares several "
        "runs on one base, as arms finetuned@NAME and finetuned_rag@NAME",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the comparison in the output folder: finished arms are read back, the rest run",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace a previous comparison in the output folder"
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="exit 2 when any arm is skipped or fails, or --run is given but no arm uses it "
        "(same as --set compare.strict=true; for CI)",
    )
    p.set_defaults(handler=_cmd_compare)

    p = sub.add_parser(
        "report",
        parents=[common],
        help="re-render report.md and chart.png of a comparison from its results.json",
    )
    p.description = (
        "Re-render OUTPUT_DIR/report.md and chart.png from OUTPUT_DIR/results.json (no model is loaded), "
        "e.g. after a report change or a resumed comparison."
    )
    p.add_argument("output_dir", metavar="OUTPUT_DIR", help="a folder written by `domainllm compare`")
    p.set_defaults(handler=_cmd_report)

    _add_bench_parser(sub, common)
    return parser


def _add_bench_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    from domainllm.bench.generate import add_arguments as generate_arguments
    from domainllm.bench.train import add_arguments as train_arguments

    p = sub.add_parser(
        "bench",
        parents=[common],
        help="speed benchmarks: domainllm's training and generation against their peers",
    )
    p.description = (
        "Speed benchmarks on randomly initialised models of named shapes (no download): `bench train` runs "
        "domainllm's training path beside TRL's defaults, `bench generate` eager against static-cache and "
        "compiled decoding. One table on stdout, with the device, versions and date."
    )
    kinds = p.add_subparsers(dest="bench_command", metavar="BENCHMARK", required=True)
    t = kinds.add_parser(
        "train", parents=[common], help="tokens/s, real tokens/s and peak memory vs TRL defaults"
    )
    train_arguments(t)
    g = kinds.add_parser("generate", parents=[common], help="generated tokens/s per decoding mode")
    generate_arguments(g)
    p.set_defaults(handler=_cmd_bench)


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
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # the last resort: one paragraph, not a traceback
        if args.debug:
            raise
        from domainllm.invocation import unexpected_error

        print(unexpected_error(exc, args.command), file=sys.stderr)
        return 1
