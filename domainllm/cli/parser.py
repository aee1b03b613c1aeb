"""The CLI's argument parser: one subparser per command, each pointing at its handler in
:mod:`domainllm.cli.commands`. No heavy import here, so ``--help`` is instant."""

from __future__ import annotations

import argparse

from domainllm.cli.commands import (
    _cmd_augment,
    _cmd_bench,
    _cmd_chat,
    _cmd_compare,
    _cmd_index,
    _cmd_info,
    _cmd_merge,
    _cmd_preferences,
    _cmd_report,
    _cmd_train,
)

__all__ = ["build_parser"]


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
    p.add_argument(
        "--method",
        choices=("sft", "dpo"),
        help="training objective (default: training.method): sft on QA pairs, dpo on data.preferences",
    )
    p.add_argument(
        "--from",
        dest="from_run",
        metavar="RUN",
        help="DPO starts from this SFT run (its adapter, frozen, is the reference); implies --method dpo",
    )
    p.set_defaults(handler=_cmd_train)

    p = sub.add_parser(
        "preferences",
        parents=[common],
        help="build DPO pairs from a run's own wrong answers on its training split",
    )
    p.description = (
        "Answer the run's training questions greedily; each answer the scorer marks wrong becomes 'rejected' and "
        "the reference answer 'chosen'. Writes JSONL and <name>.counts.json (default RUN/preferences/train.jsonl)."
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a finished training run directory")
    p.add_argument(
        "--output", "-o", metavar="FILE", help="JSONL file to write (default RUN/preferences/train.jsonl)"
    )
    p.add_argument("--limit", type=int, default=0, help="only the first N training questions (0 = all)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing file")
    p.set_defaults(handler=_cmd_preferences)

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

    p = sub.add_parser(
        "augment",
        parents=[common],
        help="write an augmented domain: paraphrased and document-generated QA pairs, checked",
    )
    p.description = (
        "From the configured domain's training rows and documents, write a new domain folder with paraphrases "
        "of each training question and QA pairs generated from document chunks (grounded in their chunk, "
        "deduplicated, no near-duplicate of a val/test question), with provenance and a datasheet."
    )
    _add_config_args(p)
    p.add_argument("--output-dir", "-o", required=True, metavar="DIR", help="the new domain folder")
    p.add_argument(
        "--generator",
        required=True,
        metavar="SPEC",
        help="files:DIR (pre-written output), hf:PATH or hf:default (a local model), or provider:model",
    )
    p.add_argument(
        "--paraphrases", type=int, default=3, metavar="N", help="rewordings per training question (3)"
    )
    p.add_argument(
        "--questions-per-chunk",
        type=int,
        default=5,
        metavar="M",
        help="QA pairs asked per document chunk (5)",
    )
    p.add_argument("--overwrite", action="store_true", help="rebuild an earlier augment output in DIR")
    p.set_defaults(handler=_cmd_augment)

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
