"""Loading a base model and tokenizer the same way for training, serving and merging.

One function decides dtype, device and quantization from the config, so a fine-tuned arm is always
served on exactly the base it was trained on (same dtype, same 4-bit or 8-bit storage).
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from domainllm.config import ModelConfig, QuantizationConfig
from domainllm.defaults import resolve_model, select_device
from domainllm.errors import ConfigError, MissingDependencyError

if TYPE_CHECKING:
    import torch

__all__ = [
    "LoadedModel",
    "bnb_config",
    "load_base_model",
    "load_tokenizer",
    "resolve_dtype",
    "resolve_quant_mode",
]

log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    """A base model with the facts later stages need about how it was loaded."""

    model: Any
    tokenizer: Any
    path: str
    device: str
    dtype: str
    quant_mode: str


def resolve_dtype(preference: str, device: str) -> torch.dtype:
    """ "auto" = bfloat16 on a GPU that supports it, float16 on older GPUs and MPS, float32 on CPU."""
    import torch

    if preference != "auto":
        return getattr(torch, preference)
    if device == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device == "mps":
        return torch.float16
    return torch.float32


def resolve_quant_mode(qcfg: QuantizationConfig, device: str) -> str:
    """ "auto" quantizes to 4-bit NF4 on CUDA only: on CPU it saves memory but costs speed."""
    if qcfg.mode == "auto":
        return "4bit" if device == "cuda" else "none"
    if qcfg.mode == "8bit" and device != "cuda":
        msg = (
            f"Config key 'quantization.mode' is '8bit' but the device is '{device}': bitsandbytes serves "
            "8-bit (LLM.int8) matmuls on CUDA only. Use quantization.mode=4bit (runs on CPU) or none."
        )
        raise ConfigError(msg)
    if qcfg.mode == "4bit" and device == "mps":
        msg = "Config key 'quantization.mode' is '4bit' but bitsandbytes does not run on MPS. Use none."
        raise ConfigError(msg)
    return qcfg.mode


def bnb_config(qcfg: QuantizationConfig, mode: str, device: str) -> Any:
    """The BitsAndBytesConfig for ``mode`` ("4bit"/"8bit"), or None for "none"."""
    if mode == "none":
        return None
    if importlib.util.find_spec("bitsandbytes") is None:
        msg = (
            f"Config key 'quantization.mode' is '{mode}', which needs bitsandbytes, and it is not installed. "
            "Install it with 'pip install bitsandbytes', or set quantization.mode=none."
        )
        raise MissingDependencyError(msg)
    from transformers import BitsAndBytesConfig

    if mode == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    compute = resolve_dtype(qcfg.compute_dtype, device)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=qcfg.quant_type,
        bnb_4bit_use_double_quant=qcfg.double_quant,
        bnb_4bit_compute_dtype=compute,
        bnb_4bit_quant_storage=compute,  # lets FSDP shard the 4-bit weights like any other tensor
    )


def load_tokenizer(path: str, trust_remote_code: bool = False) -> Any:
    """The tokenizer with a pad token (generation and batching need one)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not getattr(tokenizer, "chat_template", None):
        msg = (
            f"The tokenizer at '{path}' has no chat template, which domainllm needs to format training "
            "examples and prompts identically. Use an instruct/chat model, or add a chat_template to its "
            "tokenizer_config.json."
        )
        raise ConfigError(msg)
    return tokenizer


def load_base_model(
    mcfg: ModelConfig,
    qcfg: QuantizationConfig,
    quantize: bool = True,
    device_map: Any = None,
    tokenizer_path: str | None = None,
) -> LoadedModel:
    """Load the configured base model (quantized when asked and ``quantize``) and its tokenizer.

    ``quantize=False`` loads full precision whatever the config says: merging must happen on
    full-precision weights, never on a 4-bit base.
    """
    from transformers import AutoModelForCausalLM

    path = resolve_model(mcfg.name_or_path, mcfg.revision)
    device = select_device(mcfg.device)
    dtype = resolve_dtype(mcfg.dtype, device)
    mode = resolve_quant_mode(qcfg, device) if quantize else "none"
    kwargs: dict[str, Any] = {"dtype": dtype, "trust_remote_code": mcfg.trust_remote_code}
    if mcfg.revision and path == mcfg.name_or_path:
        kwargs["revision"] = mcfg.revision
    if mcfg.attn_implementation:
        kwargs["attn_implementation"] = mcfg.attn_implementation
    quant = bnb_config(qcfg, mode, device)
    if quant is not None:
        kwargs["quantization_config"] = quant
        kwargs["dtype"] = resolve_dtype(qcfg.compute_dtype, device)
    if device_map is not None:
        kwargs["device_map"] = device_map
    elif device != "cpu" or quant is not None:
        kwargs["device_map"] = {"": 0} if device == "cuda" else {"": device}
    log.info("Loading %s (%s, %s, quantization=%s)", path, device, kwargs["dtype"], mode)
    model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    tokenizer = load_tokenizer(tokenizer_path or path, mcfg.trust_remote_code)
    return LoadedModel(
        model=model,
        tokenizer=tokenizer,
        path=path,
        device=device,
        dtype=str(kwargs["dtype"]).replace("torch.", ""),
        quant_mode=mode,
    )
