"""The CLI's handlers: each turns parsed arguments into one library call and prints where the result is,
through :mod:`domainllm.ui` (a bare ``print()`` would land on stderr while a command runs)."""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence

from domainllm.ui import print_result, results_console, results_stream

log = logging.getLogger("domainllm")


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
    overrides = list(args.overrides or [])
    if getattr(args, "method", None) or getattr(args, "from_run", None):
        overrides.append(f"training.method={args.method or 'dpo'}")
    if getattr(args, "from_run", None):
        overrides.append(f"training.from_run={args.from_run}")
    cfg = load_config(_resume_config_path(args), overrides)
    from domainllm.training import train

    run_dir = train(cfg, output_dir=args.output_dir, resume=args.resume, overwrite=args.overwrite)
    if int(os.environ.get("RANK", "0")) == 0:  # under `accelerate launch`, say it once, not once per process
        print_result(f"Run written to {run_dir}")
    return 0


def _cmd_preferences(args: argparse.Namespace) -> int:
    from domainllm.data.onpolicy import build_preferences

    out = build_preferences(args.run_dir, args.output, overwrite=args.overwrite, limit=args.limit)
    print_result(f"Preference pairs written to {out} (counts beside it)")
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


def _cmd_augment(args: argparse.Namespace) -> int:
    cfg = _load_config(args)
    from domainllm.augment import AugmentConfig, augment

    options = AugmentConfig(
        config=cfg,
        output_dir=args.output_dir,
        generator=args.generator,
        paraphrases=args.paraphrases,
        questions_per_chunk=args.questions_per_chunk,
        overwrite=args.overwrite,
    )
    out = augment(options)
    print_result(f"Augmented domain written to {out} (datasheet: {out / 'README.md'})")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    if args.bench_command == "train":
        from domainllm.bench.train import main as bench_main
    else:
        from domainllm.bench.generate import main as bench_main
    return bench_main(args=args)


# --------------------------------------------------------------------------------------------------
