"""``domainllm bench train``: domainllm's training path beside TRL's defaults, on one model, in one run.

    python -m domainllm bench train                                   # tiny shape on CPU, or llama-8b on a GPU
    python -m domainllm bench train --shape llama-8b --seq 1024 --batch 4 --memory-budget 7.5
    python -m domainllm bench train --shape llama-8b --lengths qa --seq 512 --batch 8

A randomly initialised Llama of the named shape (:mod:`.shapes`; no download) and random token rows
of the chosen lengths are written once; then every variant (:mod:`.train_variants`: TRL's defaults,
TRL with packing for a length mix, domainllm's own path) trains ``--steps`` optimizer steps in a
process of its own, so no variant's memory or compiled kernels leak into another's numbers. The
table gives tokens/s (padding included), real (non-padding) tokens/s, peak memory (CUDA
``max_memory_allocated``, or on CPU the peak resident memory above the worker's start), and the
ratio to TRL's defaults, with the device, library versions and date it was measured on.

``--upcast-report`` counts, for every shape, what PEFT's ``prepare_model_for_kbit_training`` (which
domainllm no longer calls) would cast to fp32 on a 4-bit base.

The large shapes need a GPU: on a CPU they are refused (an 8B model in fp32 is 32 GB and a step takes
hours) unless ``--allow-slow``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from domainllm.errors import ConfigError, DomainLLMError

__all__ = ["add_arguments", "format_table", "main", "run"]

log_name = "domainllm.bench"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``bench train`` flags (shared by ``python -m domainllm bench train`` and this module)."""
    p.add_argument(
        "--shape",
        choices=("tiny", "llama-1b", "llama-8b"),
        help="model shape (default: llama-8b on a GPU, tiny on CPU)",
    )
    p.add_argument("--seq", type=int, help="tokens per example, at most (default: 1024 on a GPU, 128 on CPU)")
    p.add_argument("--batch", type=int, help="effective batch per step (default: 4; 8 for --lengths qa)")
    p.add_argument(
        "--memory-budget", type=float, metavar="GIB", help="training.memory_budget_gib for domainllm's path"
    )
    p.add_argument(
        "--lengths", default="fixed", metavar="fixed|qa|FILE", help="example lengths (default fixed)"
    )
    p.add_argument("--steps", type=int, default=12, help="optimizer steps per variant (default 12)")
    p.add_argument("--warmup", type=int, default=3, help="steps left out of the timing (default 3)")
    p.add_argument("--device", choices=("auto", "cpu"), default="auto", help="cpu = ignore a GPU")
    p.add_argument(
        "--variants", default=None, help="comma-separated subset of trl-defaults,trl-packing,domainllm"
    )
    p.add_argument("--allow-slow", action="store_true", help="run a 1B/8B shape on CPU anyway")
    p.add_argument("--json", action="store_true", help="also print the measurements as JSON")
    p.add_argument(
        "--upcast-report",
        action="store_true",
        help="only count what PEFT's prepare_model_for_kbit_training casts to fp32, per shape (no training)",
    )


def upcast_report() -> str:
    """What ``prepare_model_for_kbit_training`` adds to a 4-bit base, per shape: counted, not estimated.

    Each shape is built on the meta device (no memory), in bf16, and PEFT's real function is applied;
    the bytes of the parameters bitsandbytes leaves unquantized (embeddings, norms, the output head)
    are summed before and after.
    """
    import torch
    from peft import prepare_model_for_kbit_training
    from transformers import LlamaConfig, LlamaForCausalLM

    from domainllm.bench.shapes import SHAPES

    def unquantized_bytes(model: Any) -> int:
        head, seen, total = model.get_output_embeddings(), set(), 0
        for module in model.modules():
            for p in module.parameters(recurse=False):
                if id(p) in seen or (isinstance(module, torch.nn.Linear) and module is not head):
                    continue
                seen.add(id(p))
                total += p.numel() * p.element_size()
        return total

    rows = [
        "| shape | unquantized parameters, bf16 | after prepare_model_for_kbit_training | added |",
        "|---|---|---|---|",
    ]
    for name, shape in SHAPES.items():
        with torch.device("meta"):
            model = LlamaForCausalLM(LlamaConfig(**shape)).to(torch.bfloat16)
        before = unquantized_bytes(model)
        prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
        after = unquantized_bytes(model)
        rows.append(
            f"| {name} | {before / 2**30:.3f} GiB | {after / 2**30:.3f} GiB | +{(after - before) / 2**30:.3f} GiB |"
        )
    return "\n".join(rows)


def _options(args: argparse.Namespace, cuda: bool) -> dict[str, Any]:
    shape = args.shape or ("llama-8b" if cuda else "tiny")
    if not cuda and shape != "tiny" and not args.allow_slow:
        from domainllm.bench.shapes import parameter_count

        gib = parameter_count(shape) * 4 / 2**30
        msg = (
            f"The {shape} shape needs a GPU: on this CPU its fp32 weights alone are {gib:.0f} GiB and one training step "
            "would take hours. Run it on a CUDA machine, use --shape tiny (the CPU mode), or pass --allow-slow."
        )
        raise ConfigError(msg)
    if args.steps <= args.warmup:
        msg = f"--steps {args.steps} must be larger than --warmup {args.warmup} (the warm-up steps are not timed)."
        raise ConfigError(msg)
    batch = args.batch or (8 if args.lengths != "fixed" else 4)
    variants = args.variants.split(",") if args.variants else None
    if variants is None:
        variants = ["trl-defaults"] + (["trl-packing"] if args.lengths != "fixed" else []) + ["domainllm"]
    from domainllm.bench.train_variants import VARIANTS

    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        msg = f"--variants names {', '.join(unknown)}; use some of {', '.join(VARIANTS)}."
        raise ConfigError(msg)
    return {
        "shape": shape,
        "seq": args.seq or (1024 if cuda else 128),
        "batch": batch,
        "budget_gib": args.memory_budget,
        "lengths": args.lengths,
        "steps": args.steps,
        "warmup": args.warmup,
        "device": args.device,
        "variants": variants,
    }


def _worker(variant: str, model_dir: Path, rows: Path, opts: dict[str, Any]) -> dict[str, Any]:
    cmd = [
        sys.executable,
        "-m",
        "domainllm.bench.train_variants",
        variant,
        str(model_dir),
        str(rows),
        json.dumps(opts),
    ]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    if opts["device"] == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        msg = f"The {variant} variant failed (exit {done.returncode}):\n{tail}"
        raise DomainLLMError(msg)
    return json.loads(lines[-1])


def run(opts: dict[str, Any]) -> dict[str, Any]:
    """Build the model and rows once, run every variant in its own process, return all measurements."""
    import torch

    from domainllm.bench.measure import environment
    from domainllm.bench.shapes import SHAPES, build_random_model, example_lengths, random_rows

    cuda = torch.cuda.is_available() and opts["device"] != "cpu"
    with tempfile.TemporaryDirectory(prefix="domainllm-bench-") as tmp:
        root = Path(tmp)
        model_dir = build_random_model(
            opts["shape"],
            root / "model",
            dtype="bfloat16" if cuda else "float32",
            device="cuda" if cuda else "cpu",
        )
        count = opts["batch"] * opts["steps"]
        lengths = example_lengths(opts["lengths"], count, opts["seq"])
        rows = root / "rows.jsonl"
        rows.write_text(
            "".join(json.dumps(r) + "\n" for r in random_rows(lengths, SHAPES[opts["shape"]]["vocab_size"])),
            encoding="utf-8",
        )
        results = []
        for variant in opts["variants"]:
            print(f"bench train: {variant} ...", file=sys.stderr, flush=True)
            results.append(_worker(variant, model_dir, rows, opts))
    return {"options": opts, "environment": environment("cuda" if cuda else "cpu"), "results": results}


def format_table(report: dict[str, Any]) -> str:
    """The measurements as one Markdown table, with what they were measured on."""
    opts, env, results = report["options"], report["environment"], report["results"]
    base = next((r for r in results if r["variant"] == "trl-defaults"), None)
    key = "tokens_per_s" if opts["lengths"] == "fixed" else "real_tokens_per_s"
    lines = [
        f"### bench train: {opts['shape']}, seq {opts['seq']}, batch {opts['batch']}, lengths {opts['lengths']}"
        + (f", memory budget {opts['budget_gib']:g} GiB" if opts.get("budget_gib") else ""),
        "",
        f"{env['device']}; "
        + ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v)
        + f"; {env['date']}"
        + (f"; load average {env['load']:.1f}" if env.get("load") is not None else ""),
        "",
        "| variant | plan | tokens/s | real tokens/s | peak GiB | ratio to TRL defaults |",
        "|---|---|---|---|---|---|",
    ]
    peak = "peak GiB (CUDA allocated)" if "GiB)" in env["device"] else "peak GiB (RSS above start)"
    lines[-2] = lines[-2].replace("peak GiB", peak)
    for r in results:
        ratio = f"{r[key] / base[key]:.2f}x" if base else "n/a"
        lines.append(
            f"| {r['variant']} | {r['plan']} | {r['tokens_per_s']:,.0f} | {r['real_tokens_per_s']:,.0f} | "
            f"{r['peak_gib']:.2f} | {ratio} |"
        )
    lines.append("")
    lines.append(
        f"{results[0]['steps_timed'] if results else 0} timed steps per variant after {opts['warmup']} warm-up steps; "
        f"ratio on {'tokens/s' if key == 'tokens_per_s' else 'real tokens/s'}."
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None, args: argparse.Namespace | None = None) -> int:
    """Run the benchmark and print the table (results on stdout, progress on stderr)."""
    from domainllm.ui import print_result

    if args is None:
        parser = argparse.ArgumentParser(
            prog="python -m domainllm.bench.train", description=__doc__.splitlines()[0]
        )
        add_arguments(parser)
        args = parser.parse_args(argv)
    if args.upcast_report:
        print_result(upcast_report())
        return 0
    import torch

    opts = _options(args, torch.cuda.is_available() and args.device != "cpu")
    report = run(opts)
    print_result(format_table(report))
    if args.json:
        print_result(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
