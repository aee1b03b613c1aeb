"""Models of named shapes with random weights, and token data of chosen lengths: benchmarks without downloads.

Weight values change neither throughput nor memory, so ``domainllm bench`` builds a Llama of the
shape asked for from its config alone (``llama-1b``/``llama-8b`` as in the peers' scripts under
``../shared/bench``: Llama-3.2-1B and Llama-3-8B), saves it with a word-level tokenizer whose
tokens are ``t0 t1 ...`` (so any token ids can be written as text), and feeds it random token ids.

Example lengths (``--lengths``): ``fixed`` (every example ``seq`` tokens, as the peers measure),
``qa`` (lognormal with mean 163 and 95th percentile 317 tokens, the question/answer mix of the
issue's table, cut at ``seq``), or a file: one length per line, or JSONL rows with ``input_ids``.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

from domainllm.errors import ConfigError

__all__ = [
    "SHAPES",
    "build_random_model",
    "example_lengths",
    "parameter_count",
    "random_rows",
    "word_tokenizer",
]

SHAPES: dict[str, dict[str, Any]] = {
    "tiny": dict(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=8192,
        tie_word_embeddings=True,
    ),
    "llama-1b": dict(
        hidden_size=2048,
        intermediate_size=8192,
        num_hidden_layers=16,
        num_attention_heads=32,
        num_key_value_heads=8,
        vocab_size=128256,
        tie_word_embeddings=True,
    ),
    "llama-8b": dict(
        hidden_size=4096,
        intermediate_size=14336,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=8,
        vocab_size=128256,
        tie_word_embeddings=False,
    ),
}
# The QA length mix: lognormal with mean 163 tokens and 95th percentile 317.
QA_SIGMA = 1.645 - math.sqrt(1.645**2 - 2 * math.log(317 / 163))
QA_MU = math.log(163) - QA_SIGMA**2 / 2
CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }} {% endfor %}"
    "{% if add_generation_prompt %}assistant: {% endif %}"
)


def parameter_count(shape: str) -> int:
    """Parameters of a named shape (from its config, nothing allocated)."""
    s = SHAPES[shape]
    h, i, layers, v = s["hidden_size"], s["intermediate_size"], s["num_hidden_layers"], s["vocab_size"]
    kv = h // s["num_attention_heads"] * s["num_key_value_heads"]
    per_layer = 2 * h * h + 2 * h * kv + 3 * h * i + 2 * h
    return layers * per_layer + v * h * (1 if s["tie_word_embeddings"] else 2) + h


def word_tokenizer(vocab_size: int) -> Any:
    """A tokenizer whose token ``k`` is the word ``t<k>``: ids 0 and 1 are pad and eos."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "<eos>": 1, **{f"t{k}": k for k in range(2, vocab_size)}}
    inner = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    inner.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=inner, pad_token="<pad>", eos_token="<eos>")
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_random_model(shape: str, path: Path, dtype: str = "float32", device: str = "cpu") -> Path:
    """Save a randomly initialised Llama of ``shape`` and its word tokenizer under ``path``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    if shape not in SHAPES:
        msg = f"Unknown shape {shape!r}; use one of {', '.join(SHAPES)}."
        raise ConfigError(msg)
    config = LlamaConfig(
        **SHAPES[shape], max_position_embeddings=8192, rope_theta=500000.0, bos_token_id=1, eos_token_id=1
    )
    config.pad_token_id = 0
    torch.manual_seed(0)
    with torch.device(device):
        model = LlamaForCausalLM(config).to(getattr(torch, dtype))
    model.save_pretrained(path)
    word_tokenizer(config.vocab_size).save_pretrained(path)
    del model
    if device == "cuda":
        torch.cuda.empty_cache()
    return path


def example_lengths(kind: str, count: int, seq: int, seed: int = 0) -> list[int]:
    """``count`` example lengths (tokens) for ``--lengths`` (fixed, qa or a file), each at most ``seq``."""
    if kind == "fixed":
        return [seq] * count
    rng = random.Random(seed)
    if kind == "qa":
        return [max(8, min(seq, round(rng.lognormvariate(QA_MU, QA_SIGMA)))) for _ in range(count)]
    path = Path(kind)
    if not path.is_file():
        msg = f"--lengths {kind!r} is neither 'fixed', 'qa' nor a file. Pass a file with one length per line."
        raise ConfigError(msg)
    found: list[int] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        text = line.strip()
        if not text:
            continue
        try:
            found.append(len(json.loads(text)["input_ids"]) if text.startswith("{") else int(text))
        except (ValueError, KeyError, TypeError) as exc:
            msg = f"{path}, line {number}: expected a token count or a JSON row with 'input_ids' ({exc})."
            raise ConfigError(msg) from exc
    if not found:
        msg = f"{path} holds no lengths."
        raise ConfigError(msg)
    rng.shuffle(found)
    return [max(2, min(seq, found[k % len(found)])) for k in range(count)]


def random_rows(lengths: list[int], vocab_size: int, seed: int = 0) -> list[dict[str, list[int]]]:
    """One row of random token ids (never pad or eos) per length."""
    rng = random.Random(seed)
    return [{"input_ids": [rng.randrange(2, vocab_size) for _ in range(n)]} for n in lengths]
