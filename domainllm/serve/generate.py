"""The generation engine: batched greedy generation, streaming and option scoring, in plain torch.

Every arm of a comparison, the merge parity check, the chains and ``chat`` generate through this
module, so they all decode the same way: greedy by default, left-padded batches of
``generation.batch_size`` sorted by length, stopping at the chat template's end-of-turn token and
at stop strings, refusing prompts that do not fit the context. Choice questions are scored by
:func:`option_loglikelihoods` instead of parsing free text. Nothing here imports LangChain (the
wrappers in :mod:`domainllm.serve.langchain` call into it); torch and transformers are imported
inside the functions.

:func:`generate_texts` is the one place a batched decoding strategy is chosen
(:func:`domainllm.serve.decoding.decoding_mode`, from ``generation.decoding``): eager, static KV
cache, or static cache with ``torch.compile``d decoding steps (the default on CUDA where the model
supports it). Static and compiled batches are padded to a multiple of ``STATIC_WIDTH`` tokens (and
compiled ones to the full batch), so one compiled graph serves many batches.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from domainllm.errors import DataError
from domainllm.serve.decoding import STATIC_WIDTH, decoding_kwargs, decoding_mode

__all__ = [
    "GeneratedText",
    "PromptTooLongError",
    "check_prompt_lengths",
    "end_of_turn_ids",
    "generate_texts",
    "generation_kwargs",
    "model_context_length",
    "option_loglikelihoods",
    "pad_batch",
    "stop_criteria",
    "stream_text",
    "truncate_at_stop",
]

log = logging.getLogger(__name__)


class PromptTooLongError(DataError):
    """A prompt does not fit the model's context once room for the answer is reserved."""


@dataclass
class GeneratedText:
    """One completion with the facts evaluation needs (tokens, why it stopped)."""

    text: str
    token_ids: list[int]
    prompt_tokens: int
    finish_reason: str  # "stop" (end of turn or stop string) or "length"


def end_of_turn_ids(tokenizer: Any, model: Any = None) -> list[int]:
    """Token ids that end an assistant turn: the chat template's end-of-turn token plus every eos.

    The end-of-turn token is found by rendering a one-turn conversation and reading the first special
    token after the answer, so Llama-3 (``<|eot_id|>``), Gemma and ChatML templates all stop right.
    """
    ids: list[int] = []
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    special |= set(getattr(tokenizer, "added_tokens_decoder", {}) or {})
    try:
        answer = "Fine."
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": "Hello?"}, {"role": "assistant", "content": answer}], tokenize=False
        )
        tail = text[text.rindex(answer) + len(answer) :]
        tail_ids = tokenizer(tail, add_special_tokens=False)["input_ids"]
        if tail_ids and tail_ids[0] in special:
            ids.append(int(tail_ids[0]))
    except (ValueError, TypeError, AttributeError, KeyError) as exc:  # no template or an odd one
        log.debug("Could not read the end-of-turn token from the chat template: %s", exc)
    candidates: list[Any] = [tokenizer.eos_token_id]
    if model is not None and getattr(model, "generation_config", None) is not None:
        candidates.append(model.generation_config.eos_token_id)
    for value in candidates:
        for token_id in value if isinstance(value, list | tuple) else [value]:
            if token_id is not None and int(token_id) not in ids:
                ids.append(int(token_id))
    return ids


def model_context_length(model: Any, tokenizer: Any = None) -> int | None:
    """The longest sequence the model takes (prompt plus answer), or None when it does not say."""
    config = getattr(model, "config", None)
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < 1_000_000:
        return limit
    return None


def generation_kwargs(generation: Any = None, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """``model.generate`` keyword arguments from a domainllm GenerationConfig plus overrides.

    Greedy decoding passes no temperature/top_p, so transformers does not warn about unused values.
    """
    kw: dict[str, Any] = {}
    if generation is not None:
        kw["max_new_tokens"] = generation.max_new_tokens
        kw["do_sample"] = generation.do_sample
        if generation.do_sample:
            kw["temperature"] = generation.temperature
            kw["top_p"] = generation.top_p
        if generation.repetition_penalty != 1.0:
            kw["repetition_penalty"] = generation.repetition_penalty
    kw.setdefault("max_new_tokens", 40)
    kw.setdefault("do_sample", False)
    kw.update(overrides or {})
    return kw


def stop_criteria(tokenizer: Any, stops: Sequence[str], start: int) -> Any:
    """Per-row stopping once a stop string appears in the text generated after column ``start``.

    Rows stop independently; only the last few tokens of each row are decoded at every step.
    """
    import torch
    from transformers import StoppingCriteria

    window = max(len(tokenizer(s, add_special_tokens=False)["input_ids"]) for s in stops) + 4

    class StopOnStrings(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            tails = tokenizer.batch_decode(input_ids[:, start:][:, -window:], skip_special_tokens=True)
            hits = [any(s in text for s in stops) for text in tails]
            return torch.tensor(hits, dtype=torch.bool, device=input_ids.device)

    return StopOnStrings()


def truncate_at_stop(text: str, stops: Sequence[str] | None) -> tuple[str, bool]:
    """``text`` cut before the first stop string it contains, and whether one was found."""
    cut = min((i for i in (text.find(s) for s in stops or ()) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


def pad_batch(
    sequences: Sequence[Sequence[int]], pad_id: int, side: str = "left", width: int | None = None
) -> tuple[Any, Any]:
    """Token id rows padded to the longest (or to ``width``): ``(input_ids, attention_mask)`` as long tensors.

    Prompts are padded on the left so every row's next token comes right after its last real one;
    continuations that extend a cache are padded on the right.
    """
    import torch

    width = max(width or 0, max(len(seq) for seq in sequences))
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for r, seq in enumerate(sequences):
        span = slice(width - len(seq), width) if side == "left" else slice(0, len(seq))
        ids[r, span] = torch.tensor(seq, dtype=torch.long)
        mask[r, span] = 1
    return ids, mask


def check_prompt_lengths(lengths: Sequence[int], max_new_tokens: int, context: int | None) -> None:
    """Refuse prompts that leave no room for the answer, naming the item and the lengths."""
    if context is None:
        return
    limit = context - max_new_tokens
    too_long = [(i, n) for i, n in enumerate(lengths) if n > limit]
    if not too_long:
        return
    i, n = too_long[0]
    where = f"Prompt {i + 1} of {len(lengths)}" if len(lengths) > 1 else "The prompt"
    more = f" ({len(too_long)} prompts in this batch are too long)" if len(too_long) > 1 else ""
    msg = (
        f"{where} is {n} tokens long, but the model's context is {context} tokens and "
        f"{max_new_tokens} are reserved for the answer (generation.max_new_tokens), so prompts may be at "
        f"most {limit} tokens{more}. Shorten the question or the retrieved context (retrieval.k, "
        "retrieval.chunk_size), or lower generation.max_new_tokens."
    )
    raise PromptTooLongError(msg)


def _pad_id(tokenizer: Any, eos: Sequence[int]) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos[0]


def generate_texts(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    *,
    gen_kwargs: dict[str, Any],
    batch_size: int = 16,
    eos_ids: Sequence[int] | None = None,
    stop: Sequence[str] | None = None,
    context_length: int | None = None,
    decoding: str = "eager",
) -> list[GeneratedText]:
    """Generate completions for already-rendered prompts, in left-padded batches sorted by length.

    Sorting by length keeps padding (wasted compute, and the usual source of numeric drift between a
    row's batched and single results) to a minimum; results come back in the input order. Measured on
    SmolLM2-135M in float32 (CPU): 16 of 16 greedy answers token-identical batched and one at a time.
    ``decoding`` is ``generation.decoding`` (see :mod:`domainllm.serve.decoding`).
    """
    import torch

    encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    max_new = int(gen_kwargs.get("max_new_tokens", 40))
    check_prompt_lengths([len(ids) for ids in encoded], max_new, context_length)
    eos = list(eos_ids) if eos_ids else end_of_turn_ids(tokenizer, model)
    eos_set = set(eos)
    pad_id = _pad_id(tokenizer, eos)
    device = next(model.parameters()).device
    mode = decoding_mode(model, decoding)  # the decoding strategy is chosen here and only here
    order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i]))
    results: list[GeneratedText | None] = [None] * len(prompts)
    for first in range(0, len(order), batch_size):
        rows = order[first : first + batch_size]
        sequences = [encoded[i] for i in rows]
        width = None
        if mode != "eager":  # few distinct cache shapes: one compiled graph serves many batches
            width = -(-max(len(s) for s in sequences) // STATIC_WIDTH) * STATIC_WIDTH
            if mode == "compiled" and len(order) > batch_size:
                sequences += [sequences[-1]] * (batch_size - len(sequences))  # extra rows are dropped below
        input_ids, attention = pad_batch(sequences, pad_id, width=width)
        width = input_ids.shape[1]
        kwargs = {**gen_kwargs, **decoding_kwargs(mode, device.type)}
        if stop:
            kwargs["stopping_criteria"] = [stop_criteria(tokenizer, stop, width)]
        with torch.inference_mode():
            out = model.generate(
                input_ids=input_ids.to(device),
                attention_mask=attention.to(device),
                eos_token_id=eos,
                pad_token_id=pad_id,
                **kwargs,
            )
        for r, i in enumerate(rows):
            new = out[r, width:].tolist()
            end = next((k for k, t in enumerate(new) if t in eos_set), None)
            ids = new if end is None else new[:end]
            text = tokenizer.decode(ids, skip_special_tokens=True)
            text, stopped = truncate_at_stop(text, stop)
            reason = "stop" if end is not None or stopped else "length"
            results[i] = GeneratedText(text.strip(), ids, len(encoded[i]), reason)
    return [r for r in results if r is not None]


def stream_text(
    model: Any,
    tokenizer: Any,
    prompt: str,
    *,
    gen_kwargs: dict[str, Any],
    eos_ids: Sequence[int] | None = None,
    stop: Sequence[str] | None = None,
    context_length: int | None = None,
    hold: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext,
) -> Iterator[str]:
    """One completion as text pieces while it is generated, cut at the first stop string.

    Generation runs in a thread (transformers' ``TextIteratorStreamer``); ``hold`` is entered around
    it in that thread (the expert's adapter switch and lock). Text that could be the start of a stop
    string is held back until it cannot be; leading and trailing whitespace is dropped, as
    :func:`generate_texts` strips it. At least one piece (possibly empty) is yielded. Closing the
    iterator early cancels the generation and waits for the thread.
    """
    import torch
    from transformers import StoppingCriteria, TextIteratorStreamer

    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    check_prompt_lengths([len(ids)], int(gen_kwargs.get("max_new_tokens", 40)), context_length)
    eos = list(eos_ids) if eos_ids else end_of_turn_ids(tokenizer, model)
    device = next(model.parameters()).device
    cancel = threading.Event()

    class Cancel(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kw: Any) -> bool:
            return cancel.is_set()

    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    failure: list[BaseException] = []

    def work() -> None:
        try:
            with hold(), torch.inference_mode():
                model.generate(
                    input_ids=torch.tensor([ids], device=device),
                    attention_mask=torch.ones((1, len(ids)), dtype=torch.long, device=device),
                    eos_token_id=eos,
                    pad_token_id=tokenizer.pad_token_id,
                    streamer=streamer,
                    stopping_criteria=[Cancel()],
                    **gen_kwargs,
                )
        except BaseException as exc:  # surfaced in the consumer below
            failure.append(exc)
            streamer.end()

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    stops = list(stop or [])
    hold_back = max((len(s) for s in stops), default=1) - 1
    text, emitted, finished = "", 0, False
    try:
        for piece in streamer:
            text += piece
            if emitted == 0:
                text = text.lstrip()
            cut, stopped = truncate_at_stop(text, stops)
            safe = len(cut.rstrip()) if stopped else max(emitted, len(text) - hold_back)
            if safe > emitted:
                chunk, emitted = (cut if stopped else text)[emitted:safe], safe
                yield chunk
            if stopped:
                cancel.set()
                break
        else:
            finished = True
            tail = text.rstrip()
            if len(tail) > emitted or emitted == 0:
                yield tail[emitted:]
    finally:
        cancel.set()
        if not finished:
            for _ in streamer:  # drain until the generating thread signals its end
                pass
        thread.join()
    if failure:
        raise failure[0]


def option_loglikelihoods(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    options: Sequence[Sequence[str]],
    *,
    batch_size: int = 16,
    eos_ids: Sequence[int] | None = None,
    context_length: int | None = None,
) -> list[list[float]]:
    """Sum of log-probabilities of each option's tokens as the continuation of its prompt.

    Choice questions are scored this way by lm-evaluation-harness: no parsing of free text, the
    model's preference among the options is read off directly. Prompt and option are tokenized
    separately and concatenated, so a merge across the boundary cannot change the option's tokens.
    Each prompt is read once and its KV cache shared by all its options: with retrieved context
    the prompt is hundreds of tokens and an option a few, so this is most of the cost saved.
    """
    import torch
    from transformers import DynamicCache

    if len(prompts) != len(options):
        msg = f"option_loglikelihoods got {len(prompts)} prompts but {len(options)} option lists; pass one list per prompt."
        raise ValueError(msg)
    contexts: list[list[int]] = []
    conts: list[list[list[int]]] = []
    for i, (prompt, opts) in enumerate(zip(prompts, options, strict=True)):
        ctx = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        if not ctx:
            msg = f"Prompt {i + 1} is empty; option log-likelihoods need a prompt to condition on."
            raise ValueError(msg)
        row = []
        for j, option in enumerate(opts):
            cont = tokenizer(option, add_special_tokens=False)["input_ids"]
            if not cont:
                msg = f"Option {j + 1} of prompt {i + 1} is empty ({option!r}); every option needs text to score."
                raise ValueError(msg)
            row.append(cont)
        contexts.append(ctx)
        conts.append(row)
    lengths = [len(c) + len(o) for c, row in zip(contexts, conts, strict=True) for o in row]
    check_prompt_lengths(lengths, 0, context_length)
    scores: list[list[float]] = [[0.0] * len(opts) for opts in options]
    pad = _pad_id(tokenizer, list(eos_ids) if eos_ids else end_of_turn_ids(tokenizer, model))
    order = [i for i in sorted(range(len(prompts)), key=lambda k: -len(contexts[k])) if conts[i]]
    dev = next(model.parameters()).device
    with torch.inference_mode():
        for first in range(0, len(order), batch_size):
            group = order[first : first + batch_size]
            # 1. The prompts, left-padded, once each: the cache and the first option token's logits.
            ids, mask = pad_batch([contexts[i] for i in group], pad)
            cache = DynamicCache(config=model.config)
            out = model(
                input_ids=ids.to(dev),
                attention_mask=mask.to(dev),
                position_ids=(mask.cumsum(-1) - 1).clamp(min=0).to(dev),
                past_key_values=cache,
                use_cache=True,
                logits_to_keep=1,
            )
            first_logprobs = torch.log_softmax(out.logits[:, -1].float(), dim=-1)
            # 2. Every option of those prompts, right-padded, on a copy of its prompt's cache.
            rows = [(r, i, j) for r, i in enumerate(group) for j in range(len(conts[i]))]
            cont_ids, cont_mask = pad_batch([conts[i][j] for _, i, j in rows], pad, side="right")
            span = cont_ids.shape[1]
            owner = torch.tensor([r for r, _, _ in rows])
            cache.batch_select_indices(owner.to(dev))
            starts = torch.tensor([len(contexts[i]) for _, i, _ in rows])
            logits = None
            if span > 1:  # the last option token's logits are never needed
                logits = model(
                    input_ids=cont_ids[:, :-1].to(dev),
                    attention_mask=torch.cat([mask[owner], cont_mask[:, :-1]], dim=1).to(dev),
                    position_ids=(starts[:, None] + torch.arange(span - 1)[None, :]).to(dev),
                    past_key_values=cache,
                    use_cache=True,
                ).logits.float()
            for k, (r, i, j) in enumerate(rows):
                cont = conts[i][j]
                total = first_logprobs[r, cont[0]]
                if len(cont) > 1:
                    rest = torch.log_softmax(logits[k, : len(cont) - 1], dim=-1)
                    targets = torch.tensor(cont[1:], device=rest.device)
                    total = total + rest.gather(-1, targets[:, None]).sum()
                scores[i][j] = float(total)
    return scores
