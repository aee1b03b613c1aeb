"""How fast does ``domainllm train`` run here, and does it learn? One real training run, one table.

    python -m domainllm.bench.train_speed                       # the shipped dental default
    python -m domainllm.bench.train_speed --config my.yaml --set training.max_steps=50

Trains into a temporary directory (or ``--output-dir``, replaced if it holds a run) and prints wall
time, trained tokens per second (non-padding tokens of every batch over the training time), peak
memory, eval loss before and after, and steps: the numbers a user needs to size a real run.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["format_table", "main", "run_benchmark"]


def run_benchmark(config: str | None, overrides: Sequence[str], output_dir: str | None) -> dict[str, Any]:
    """Train once and return the finished run's manifest (plus the run path under ``run_dir``)."""
    from domainllm.config import load_config
    from domainllm.rundir import RunDir
    from domainllm.training import train

    cfg = load_config(config, overrides)
    with tempfile.TemporaryDirectory(prefix="domainllm-bench-") as tmp:
        out = Path(output_dir) if output_dir else Path(tmp) / "run"
        run = train(cfg, output_dir=out, overwrite=True)
        manifest = RunDir(run).read_manifest()
    manifest["run_dir"] = str(run) if output_dir else "(temporary, removed)"
    return manifest


def _num(value: Any, fmt: str) -> str:
    return "n/a" if value is None else format(value, fmt)


def format_table(m: dict[str, Any]) -> str:
    """The manifest's speed and learning numbers as a Markdown table."""
    base = m.get("base_model", {})
    rows = [
        (
            "base model",
            f"{base.get('name')} ({base.get('quant_mode')}, {base.get('dtype')}, {base.get('device')})",
        ),
        (
            "train / val examples",
            f"{m.get('examples', {}).get('train')} / {m.get('examples', {}).get('val')}",
        ),
        ("optimizer steps (epochs)", f"{m.get('global_step')} ({_num(m.get('epochs'), '.2f')})"),
        ("wall time, incl. loading (s)", _num(m.get("wall_time_s"), ".1f")),
        ("training time (s)", _num(m.get("train_runtime_s"), ".1f")),
        ("trained tokens", _num(m.get("trained_tokens"), ",")),
        ("trained tokens/s", _num(m.get("tokens_per_second"), ".1f")),
        ("peak RSS (MiB)", _num(m.get("peak_rss_mib"), ".0f")),
        ("peak CUDA memory (MiB)", _num(m.get("peak_cuda_mib"), ".0f")),
        ("eval loss before", _num(m.get("eval_loss_before"), ".4f")),
        ("eval loss after (best)", _num(m.get("eval_loss_after"), ".4f")),
        ("best step", str(m.get("best_step"))),
        ("stopped early", str(m.get("stopped_early"))),
    ]
    width = max(len(k) for k, _ in rows)
    lines = [f"| {'metric':<{width}} | value |", f"| {'-' * width} | ----- |"]
    lines += [f"| {k:<{width}} | {v} |" for k, v in rows]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m domainllm.bench.train_speed", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--config", "-c", metavar="FILE", help="YAML config (default: the shipped dental default)"
    )
    parser.add_argument("--set", dest="overrides", metavar="KEY=VALUE", action="append", default=[])
    parser.add_argument(
        "--output-dir", "-o", metavar="DIR", help="keep the run here (default: a temporary dir)"
    )
    parser.add_argument("--json", action="store_true", help="also print the manifest as JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from domainllm.errors import DomainLLMError

    try:
        manifest = run_benchmark(args.config, args.overrides, args.output_dir)
    except DomainLLMError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(format_table(manifest))
    print(f"run directory: {manifest['run_dir']}")
    if args.json:
        print(json.dumps(manifest, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
