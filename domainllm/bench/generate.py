"""``domainllm bench generate``: batched greedy generation, eager against static-cache and compiled decoding.

    python -m domainllm bench generate                       # llama-1b on a GPU, tiny on CPU
    python -m domainllm bench generate --shape llama-1b --prompts 64 --prompt-tokens 200 --new-tokens 64

A randomly initialised Llama of the named shape (bf16 on a GPU, fp32 on CPU) answers the same random
prompts once per decoding mode, through :func:`domainllm.serve.generate.generate_texts` (the engine
``compare`` and the chains use) with ``decoding`` set to each mode: one warm-up pass (where
compilation happens, timed on its own), then one timed pass. Every answer is exactly
``--new-tokens`` long (``min_new_tokens``), so tokens/s compare like with like, and each mode's
tokens are checked against eager decoding's.

Modes: ``eager``, ``static`` (static KV cache) and ``compiled`` (static cache + ``torch.compile``); on
CPU ``compiled`` runs only when asked for (``--modes eager,static,compiled``): compiling there takes
minutes and is not what a CPU user runs.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from domainllm.errors import ConfigError

__all__ = ["add_arguments", "format_table", "main", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``bench generate`` flags."""
    p.add_argument(
        "--shape", choices=("tiny", "llama-1b", "llama-8b"), help="default: llama-1b on a GPU, tiny on CPU"
    )
    p.add_argument("--prompts", type=int, default=64, help="prompts (default 64)")
    p.add_argument("--prompt-tokens", type=int, default=200, help="tokens per prompt (default 200)")
    p.add_argument("--new-tokens", type=int, default=64, help="generated tokens per prompt (default 64)")
    p.add_argument("--batch", type=int, default=64, help="prompts per generate() call (default 64)")
    p.add_argument(
        "--modes", help="comma-separated: eager,static,compiled (default: all on a GPU, eager,static on CPU)"
    )
    p.add_argument("--device", choices=("auto", "cpu"), default="auto", help="cpu = ignore a GPU")
    p.add_argument("--allow-slow", action="store_true", help="run a 1B/8B shape on CPU anyway")
    p.add_argument("--json", action="store_true", help="also print the measurements as JSON")


def _options(args: argparse.Namespace, cuda: bool) -> dict[str, Any]:
    from domainllm.serve.decoding import DECODING_MODES

    shape = args.shape or ("llama-1b" if cuda else "tiny")
    if not cuda and shape != "tiny" and not args.allow_slow:
        msg = f"The {shape} shape needs a GPU for this benchmark; use --shape tiny on CPU, or pass --allow-slow."
        raise ConfigError(msg)
    modes = args.modes.split(",") if args.modes else (list(DECODING_MODES) if cuda else ["eager", "static"])
    unknown = [m for m in modes if m not in DECODING_MODES]
    if unknown or "eager" not in modes:
        msg = f"--modes must include eager and may add static, compiled; got {args.modes!r}."
        raise ConfigError(msg)
    return {
        "shape": shape,
        "prompts": args.prompts,
        "prompt_tokens": args.prompt_tokens,
        "new_tokens": args.new_tokens,
        "batch": args.batch,
        "modes": ["eager"] + [m for m in modes if m != "eager"],
        "device": args.device,
    }


def _timed(fn: Any, cuda: bool) -> tuple[Any, float]:
    import torch

    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    if cuda:
        torch.cuda.synchronize()
    return out, time.perf_counter() - start


def run(opts: dict[str, Any]) -> dict[str, Any]:
    """Generate with every mode on one model; return the measurements."""
    import torch
    from transformers import AutoModelForCausalLM

    from domainllm.bench.measure import environment
    from domainllm.bench.shapes import SHAPES, build_random_model, word_tokenizer
    from domainllm.serve.generate import generate_texts

    cuda = torch.cuda.is_available() and opts["device"] != "cpu"
    dtype = torch.bfloat16 if cuda else torch.float32
    vocab = SHAPES[opts["shape"]]["vocab_size"]
    rng = random.Random(0)
    prompts = [
        " ".join(f"t{rng.randrange(2, vocab)}" for _ in range(opts["prompt_tokens"]))
        for _ in range(opts["prompts"])
    ]
    with tempfile.TemporaryDirectory(prefix="domainllm-bench-") as tmp:
        path = build_random_model(
            opts["shape"],
            Path(tmp) / "model",
            dtype=str(dtype).split(".")[1],
            device="cuda" if cuda else "cpu",
        )
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to("cuda" if cuda else "cpu").eval()
    tokenizer = word_tokenizer(vocab)
    gen = {"max_new_tokens": opts["new_tokens"], "min_new_tokens": opts["new_tokens"], "do_sample": False}
    results, reference = [], None
    for mode in opts["modes"]:

        def once(mode: str = mode) -> list[Any]:
            return generate_texts(
                model,
                tokenizer,
                prompts,
                gen_kwargs=gen,
                batch_size=opts["batch"],
                eos_ids=[1],
                decoding=mode,
            )

        _, warm = _timed(once, cuda)
        outputs, seconds = _timed(once, cuda)
        tokens = [o.token_ids for o in outputs]
        reference = reference or tokens
        generated = sum(len(t) for t in tokens)
        results.append(
            {
                "mode": mode,
                "tokens_per_s": generated / seconds,
                "seconds": seconds,
                "warmup_s": warm,
                "generated": generated,
                "same_as_eager": sum(a == b for a, b in zip(tokens, reference, strict=True)),
            }
        )
    return {"options": opts, "environment": environment("cuda" if cuda else "cpu"), "results": results}


def format_table(report: dict[str, Any]) -> str:
    """The measurements as one Markdown table, with what they were measured on."""
    opts, env, results = report["options"], report["environment"], report["results"]
    eager = results[0]["tokens_per_s"]
    lines = [
        f"### bench generate: {opts['shape']}, {opts['prompts']} prompts x {opts['prompt_tokens']} tokens, "
        f"{opts['new_tokens']} new, greedy, batch {opts['batch']}",
        "",
        f"{env['device']}; "
        + ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v)
        + f"; {env['date']}"
        + (f"; load average {env['load']:.1f}" if env.get("load") is not None else ""),
        "",
        "| decoding | tokens/s | ratio to eager | same tokens as eager | warm-up pass s |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['mode']} | {r['tokens_per_s']:,.0f} | {r['tokens_per_s'] / eager:.2f}x | "
            f"{r['same_as_eager']}/{opts['prompts']} | {r['warmup_s']:.1f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None, args: argparse.Namespace | None = None) -> int:
    """Run the benchmark and print the table."""
    from domainllm.ui import print_result

    if args is None:
        parser = argparse.ArgumentParser(
            prog="python -m domainllm.bench.generate", description=__doc__.splitlines()[0]
        )
        add_arguments(parser)
        args = parser.parse_args(argv)
    import torch

    report = run(_options(args, torch.cuda.is_available() and args.device != "cpu"))
    print_result(format_table(report))
    if args.json:
        print_result(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
