"""Training: ``train(cfg)`` fine-tunes the base model with (Q)LoRA and writes a run directory.

``sft`` is the recipe (setup, then the shared skeleton in ``run``: directory, train, save, publish);
``args`` maps the config onto TRL's trainer config, ``tokens`` builds the examples, ``lora`` the
adapter config, ``outdir`` decides what may happen to an existing directory, ``manifest``, ``plots``
and ``card`` write what the run records about itself, and ``hub`` pushes the adapter and card.

Names are loaded on first use, so importing this package (as the CLI does) costs nothing until a
function is called; ``train`` itself imports torch, transformers, peft and trl when it runs.
"""

from __future__ import annotations

from domainllm._lazy import lazy_exports

__all__ = [
    "DataStats",
    "build_datasets",
    "build_peft_config",
    "build_sft_config",
    "check_run_dir",
    "last_checkpoint",
    "linear_layer_names",
    "portable_config",
    "prepare_run_dir",
    "push_run",
    "read_metrics",
    "render_model_card",
    "resolve_target_modules",
    "resolve_trackers",
    "tokenize_examples",
    "train",
    "write_model_card",
    "write_plots",
]

_WHERE = {
    "build_sft_config": "sft",
    "train": "sft",
    "portable_config": "manifest",
    "resolve_trackers": "args",
    "push_run": "hub",
    "DataStats": "tokens",
    "build_datasets": "tokens",
    "tokenize_examples": "tokens",
    "check_run_dir": "outdir",
    "last_checkpoint": "outdir",
    "prepare_run_dir": "outdir",
    "build_peft_config": "lora",
    "linear_layer_names": "lora",
    "resolve_target_modules": "lora",
    "read_metrics": "plots",
    "write_plots": "plots",
    "render_model_card": "card",
    "write_model_card": "card",
}


__getattr__, __dir__ = lazy_exports(__name__, {k: f".{v}" for k, v in _WHERE.items()}, __all__)
