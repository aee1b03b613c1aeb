"""Does ``chain.batch()`` really batch? 16 dental questions, batched vs one at a time, one table.

    python -m domainllm.bench.generation_speed                  # base model, prompt_only chain
    python -m domainllm.bench.generation_speed --run runs/dental  # the finetuned chain of a run
    python -m domainllm.bench.generation_speed --memory         # also: what one shared base saves

The same chain answers the same questions twice: 16 single ``.invoke()`` calls, then one
``.batch()`` (left-padded batches of ``generation.batch_size``, greedy). Greedy decoding makes both
answers identical (mismatches are listed: left padding can shift float sums by an ulp and flip a
near-tie). Throughput is generated tokens over wall time. Exits 1 when batching is less than
``--min-speedup`` (2x) faster, or when any batched answer differs from its single one: a speedup
that changes answers is not a speedup of the same computation.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

__all__ = ["main", "measure_memory", "run_benchmark", "speed_failures"]

# Used when the configured domain has fewer test questions than asked for.
FALLBACK_QUESTIONS = (
    "What time does the practice close on Saturdays?",
    "How much notice do I need to give to cancel an appointment?",
    "Who is the specialist orthodontist?",
    "How much does a check-up cost?",
)


def _questions(cfg: Any, n: int) -> list[str]:
    from domainllm.data.loaders import load_domain

    try:
        records = load_domain(cfg.data, cfg.base_dir).test
        questions = [r.question for r in records[:n]]
    except Exception:  # the benchmark measures speed; any questions will do
        questions = []
    while len(questions) < n:
        questions.append(FALLBACK_QUESTIONS[len(questions) % len(FALLBACK_QUESTIONS)])
    return questions


def run_benchmark(
    run_dir: str | None = None, n: int = 16, max_new_tokens: int | None = None
) -> dict[str, Any]:
    """Answer ``n`` questions with single invokes and with one batch; return timings and outputs."""
    import dataclasses

    from domainllm.chains import build_chain, load_chain_spec
    from domainllm.serve.load import load_expert

    expert = load_expert(run_dir=run_dir) if run_dir else load_expert()
    cfg = expert.config
    if max_new_tokens:
        gen = dataclasses.replace(cfg.generation, max_new_tokens=max_new_tokens)
        expert.config = cfg = cfg.replace(generation=gen)
    arm = "finetuned" if expert.is_finetuned else "prompt_only"
    chain = build_chain(load_chain_spec(arm, domain=cfg.data.name), expert)
    questions = _questions(cfg, n)
    chain.invoke(questions[0])  # warm-up: first-call allocations are not what we measure

    start = time.perf_counter()
    singles = [chain.invoke(q) for q in questions]
    single_s = time.perf_counter() - start
    start = time.perf_counter()
    batched = chain.batch(questions)
    batch_s = time.perf_counter() - start

    tokens = sum(expert.count_tokens(a) for a in batched)
    single_tokens = sum(expert.count_tokens(a) for a in singles)
    mismatches = [(q, s, b) for q, s, b in zip(questions, singles, batched, strict=True) if s != b]
    return {
        "model": expert.base_path,
        "arm": arm,
        "device": expert.device,
        "questions": len(questions),
        "batch_size": cfg.generation.batch_size,
        "max_new_tokens": cfg.generation.max_new_tokens,
        "single_s": single_s,
        "batch_s": batch_s,
        "single_tokens": single_tokens,
        "batch_tokens": tokens,
        "single_tps": single_tokens / single_s,
        "batch_tps": tokens / batch_s,
        "speedup": (tokens / batch_s) / (single_tokens / single_s) if single_tokens else float("nan"),
        "mismatches": mismatches,
        "threads": _threads(),
        "load": os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan"),
        "cpus": os.cpu_count(),
    }


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def _rss_mb() -> float:
    import psutil

    return psutil.Process(os.getpid()).memory_info().rss / 2**20


def _touch(model: Any) -> None:
    """Read every weight once: memory-mapped safetensors only become resident when read."""
    import torch

    with torch.no_grad():
        for tensor in list(model.parameters()) + list(model.buffers()):
            tensor.float().sum()


def measure_memory(run_dir: str | None = None) -> dict[str, float]:
    """Resident memory of one loaded expert, and what a second base copy (for the base arms) would add."""
    import gc

    from domainllm.modeling import load_base_model
    from domainllm.serve.load import load_expert

    before = _rss_mb()
    expert = load_expert(run_dir=run_dir) if run_dir else load_expert()
    _touch(expert.model)
    one = _rss_mb()
    second = load_base_model(expert.config.model, expert.config.quantization)
    _touch(second.model)
    two = _rss_mb()
    del second
    gc.collect()
    return {
        "param_mb": expert.param_bytes() / 2**20,
        "rss_before_mb": before,
        "rss_one_copy_mb": one,
        "rss_two_copies_mb": two,
        "second_copy_mb": two - one,
    }


def _table(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def format_speed(r: dict[str, Any]) -> str:
    """The speed result as a Markdown table plus the mismatch list."""
    rows = [
        ["16 x .invoke()" if r["questions"] == 16 else f"{r['questions']} x .invoke()", f"{r['single_s']:.1f}",
         str(r["single_tokens"]), f"{r['single_tps']:.1f}", "1.00x"],
        [f"1 x .batch() (batch size {r['batch_size']})", f"{r['batch_s']:.1f}", str(r["batch_tokens"]),
         f"{r['batch_tps']:.1f}", f"{r['speedup']:.2f}x"],
    ]  # fmt: skip
    title = (
        f"Generation speed: {r['arm']} chain, {os.path.basename(r['model'])} on {r['device']} "
        f"({r['threads']} torch threads; load average {r['load']:.1f} on {r['cpus']} CPUs), greedy, "
        f"max_new_tokens={r['max_new_tokens']}"
    )
    text = _table(title, ["mode", "wall s", "generated tokens", "tokens/s", "speedup"], rows)
    same = r["questions"] - len(r["mismatches"])
    text += f"\n\nIdentical answers, batched vs single: {same}/{r['questions']}"
    for q, s, b in r["mismatches"][:5]:
        text += f"\n- {q!r}\n  single : {s!r}\n  batched: {b!r}"
    return text


def format_memory(m: dict[str, float]) -> str:
    rows = [
        ["model parameters and buffers", f"{m['param_mb']:.0f}"],
        ["process RSS with one expert (base + adapter)", f"{m['rss_one_copy_mb']:.0f}"],
        ["process RSS with a second base copy loaded", f"{m['rss_two_copies_mb']:.0f}"],
        ["saved by disable_adapter() instead of a second copy", f"{m['second_copy_mb']:.0f}"],
    ]
    return _table("Memory: one shared base vs two copies", ["", "MiB"], rows)


def speed_failures(result: dict[str, Any], min_speedup: float) -> list[str]:
    """Why the speed result fails (empty when it passes): too little speedup, or changed answers."""
    failures = []
    if not result["speedup"] >= min_speedup:  # NaN (nothing generated) fails too
        failures.append(f"batched generation is {result['speedup']:.2f}x, below {min_speedup}x")
    if result["mismatches"]:
        which = ", ".join(repr(q) for q, _, _ in result["mismatches"])
        failures.append(
            f"{len(result['mismatches'])} of {result['questions']} batched answers differ from the "
            f"single ones: {which}"
        )
    return failures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", metavar="RUN_DIR", help="benchmark the finetuned chain of this run")
    parser.add_argument("-n", type=int, default=16, help="questions (default 16)")
    parser.add_argument("--max-new-tokens", type=int, help="override generation.max_new_tokens")
    parser.add_argument(
        "--min-speedup", type=float, default=2.0, help="exit 1 below this speedup (default 2)"
    )
    parser.add_argument("--memory", action="store_true", help="also measure one vs two base copies")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=logging.ERROR)
    memory = measure_memory(args.run) if args.memory else None  # first: freed memory would be reused
    result = run_benchmark(args.run, args.n, args.max_new_tokens)
    out = [format_speed(result)]
    if memory is not None:
        out.append(format_memory(memory))
    sys.stdout.write("\n\n".join(out) + "\n")
    failures = speed_failures(result, args.min_speedup)
    for failure in failures:
        sys.stdout.write(f"FAIL: {failure}\n")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
