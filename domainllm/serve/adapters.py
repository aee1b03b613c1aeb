"""Several fine-tuned runs on one base in memory: each run's adapter loaded as a named PEFT adapter.

A comparison of recipes (plain SFT, augmented data, RAFT, ...) asks the same base model questions
through several adapters. Loading the base once per run would multiply the memory by the number of
runs; instead :func:`load_runs` loads the base once and attaches every run's adapter under the run's
name (``PeftModel.load_adapter``), and :meth:`DomainExpert.set_adapter` switches between them. An
adapter only works on the base it was trained on, so every run is checked against the one base
first (:func:`check_same_base`), by the same rule :func:`~domainllm.serve.load.load_expert` applies
to one run: what the adapter config and the manifest say the base was must name the configured one.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from domainllm.errors import ConfigError

if TYPE_CHECKING:
    from domainllm.config import DomainConfig
    from domainllm.serve.load import DomainExpert

__all__ = ["check_same_base", "load_runs"]


def _open(runs: Mapping[str, str | Path]) -> dict:
    from domainllm.rundir import RunDir

    if not runs:
        msg = "load_runs needs at least one run: pass {name: run_dir}."
        raise ConfigError(msg)
    return {name: RunDir.open(path) for name, path in runs.items()}


def check_same_base(runs: Mapping[str, str | Path], config: DomainConfig) -> None:
    """Raise :class:`~domainllm.errors.ModelError` unless every run was trained on ``config.model``.

    Reads only the runs' adapter configs and manifests (no model is loaded), so a comparison can
    refuse a mismatched run before it trains or loads anything.
    """
    from domainllm.defaults import resolve_model
    from domainllm.serve.bases import check_base_matches, trained_base_names

    opened = _open(runs)
    resolved = resolve_model(config.model.name_or_path, config.model.revision)
    for run in opened.values():
        trained = trained_base_names(run, run.adapter_dir)
        check_base_matches(trained, config.model.name_or_path, resolved, str(run.path))


def load_runs(runs: Mapping[str, str | Path], config: DomainConfig | None = None) -> DomainExpert:
    """One base model with every run's adapter attached under the run's name; the first is active.

    ``runs`` maps a name to a finished run directory (in order); ``config`` decides the base model
    and quantization (default: the first run's config). Each adapter keeps its own run's system
    prompt: ``expert.set_adapter(name)`` activates both. Raises ModelError when a run was trained on
    another base.
    """
    from domainllm.defaults import resolve_model
    from domainllm.modeling import load_base_model
    from domainllm.serve.bases import check_base_matches, trained_base_names
    from domainllm.serve.load import DomainExpert, _attach_adapter

    opened = _open(runs)
    first = next(iter(opened.values()))
    cfg = config or first.load_config()
    resolved = resolve_model(cfg.model.name_or_path, cfg.model.revision)
    trained = {}
    for name, run in opened.items():
        trained[name] = trained_base_names(run, run.adapter_dir)
        check_base_matches(trained[name], cfg.model.name_or_path, resolved, str(run.path))
    has_tokenizer = (first.adapter_dir / "tokenizer_config.json").is_file()
    loaded = load_base_model(
        cfg.model, cfg.quantization, tokenizer_path=str(first.adapter_dir) if has_tokenizer else None
    )
    model = loaded.model
    for name, run in opened.items():
        base_name = trained[name][0] if trained[name] else "?"
        model = _attach_adapter(model, str(run.adapter_dir), base_name, cfg.model.name_or_path, name)
    first_name = next(iter(opened))
    model.set_adapter(first_name)
    model.eval()
    prompts = {name: run.load_config().data.system_prompt for name, run in opened.items()}
    expert = DomainExpert(
        model,
        loaded.tokenizer,
        cfg,
        system_prompt=prompts[first_name],
        device=loaded.device,
        quant_mode=loaded.quant_mode,
        base_path=loaded.path,
        run_dir=first.path,
        adapter_path=str(first.adapter_dir),
    )
    expert.adapters = {name: (run.path, str(run.adapter_dir), prompts[name]) for name, run in opened.items()}
    return expert
