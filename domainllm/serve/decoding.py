"""How batched generation decodes: eager, a static KV cache, or a static cache with compiled steps.

``generation.decoding`` picks the strategy; :func:`decoding_mode` resolves ``auto`` for the model at
hand and refuses what the model cannot do, and :func:`domainllm.serve.generate.generate_texts` (the
one place a strategy is applied) passes :func:`decoding_kwargs` to ``model.generate``. The mode is
recorded per arm in a comparison's results (``DomainExpert.generation_mode``).

A static cache is allocated once per batch shape and lets ``torch.compile`` capture a decoding step
as one graph (on CUDA, transformers compiles it with CUDA graphs, "reduce-overhead"); greedy tokens
are those of eager decoding (``tests/unit/test_decoding.py``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["DECODING_MODES", "STATIC_WIDTH", "decoding_kwargs", "decoding_mode", "describe_decoding"]

DECODING_MODES = ("eager", "static", "compiled")
STATIC_WIDTH = 32  # static/compiled prompt widths are rounded up to a multiple of this
_DESCRIPTIONS = {
    "eager": "batched greedy, eager generate (dynamic KV cache)",
    "static": "batched greedy, static KV cache",
    "compiled": "batched greedy, static KV cache + torch.compile",
}


def _base_model(model: Any) -> Any:
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def decoding_mode(model: Any, setting: str = "auto") -> str:
    """``generation.decoding`` resolved for ``model``: "eager", "static" or "compiled".

    "auto" is "compiled" on CUDA when the model's code supports a static cache and full-graph
    compilation (transformers' ``_can_compile_fullgraph``) and its quantization can be compiled, and
    "eager" elsewhere: compiling on a CPU costs more than it saves for short answers.
    """
    from domainllm.errors import ConfigError

    base = _base_model(model)
    static_ok = bool(getattr(base, "_can_compile_fullgraph", False))
    quantizer = getattr(base, "hf_quantizer", None)
    compile_ok = static_ok and (quantizer is None or bool(getattr(quantizer, "is_compileable", False)))
    device = next(model.parameters()).device.type
    if setting == "auto":
        return "compiled" if device == "cuda" and compile_ok else "eager"
    if setting in ("static", "compiled") and not static_ok:
        msg = (
            f"Config key 'generation.decoding' is '{setting}', but {type(base).__name__} does not support a static "
            "KV cache. Use generation.decoding=auto or eager."
        )
        raise ConfigError(msg)
    if setting == "compiled" and not compile_ok:
        msg = (
            f"Config key 'generation.decoding' is 'compiled', but this model's quantization "
            f"({type(quantizer).__name__}) cannot be compiled. Use generation.decoding=static or eager."
        )
        raise ConfigError(msg)
    if setting not in DECODING_MODES:
        msg = f"Config key 'generation.decoding' is {setting!r}; use auto, eager, static or compiled."
        raise ConfigError(msg)
    return setting


def describe_decoding(mode: str) -> str:
    """The words the report prints for a decoding mode."""
    return _DESCRIPTIONS[mode]


def decoding_kwargs(mode: str, device: str) -> dict[str, Any]:
    """``model.generate`` keyword arguments for a resolved mode on ``device`` ("cuda", "cpu", ...)."""
    if mode == "eager":
        return {}
    kwargs: dict[str, Any] = {"cache_implementation": "static"}
    if mode == "static":
        kwargs["disable_compile"] = True
    elif device != "cuda":  # transformers compiles decoding on its own on CUDA; elsewhere it must be asked
        from transformers import CompileConfig

        config = CompileConfig(fullgraph=False, dynamic=False, mode="default")
        config._compile_all_devices = True
        kwargs["compile_config"] = config
    return kwargs
