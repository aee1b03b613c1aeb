"""``domainllm merge``: fold the adapter into a float32 base, save it, and prove nothing changed.

A merged model serves without PEFT (vLLM, llama.cpp, plain transformers), but merging into a 4-bit
or a 16-bit base would bake rounding error into the new weights (``W + BA`` rounded to bfloat16 can
lose most of a small LoRA update), so the base is always loaded in float32 here, whatever the run
trained or serves in, and the sum is formed there. Only the result is cast, once, to the dtype it is
saved in (``dtype``: float32 by default). The merge is then checked, not trusted: greedy answers of
the saved merged model (reloaded from disk in its saved dtype) and of the unmerged adapter on the
float32 base are compared on up to 16 validation prompts rendered exactly as in training, together
with the largest absolute logit difference, so the check also measures what the saved dtype costs.
The numbers and the saved dtype go to the run manifest under ``merge``; below the threshold the merge
is refused and nothing is left on disk (it is written to a temporary folder and renamed into place
only after it passed).
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any

from domainllm.errors import ConfigError, DataError, ModelError
from domainllm.fsio import replace_dir, temp_dir_beside

__all__ = ["MERGE_DTYPES", "PARITY_PROMPTS", "merge_adapter", "parity_prompts"]

log = logging.getLogger(__name__)

PARITY_PROMPTS = 16
# Dtypes the merged weights can be saved in; "auto" is the config's model.dtype as resolved for serving.
MERGE_DTYPES = ("float32", "bfloat16", "float16", "auto")
# Used only when the run's data cannot be loaded on this machine (the merge still gets checked).
_FALLBACK_QUESTIONS = (
    "What are your opening hours?",
    "How much does a check-up cost?",
    "How do I cancel an appointment?",
    "Who should I contact in an emergency?",
)


def parity_prompts(cfg: Any, tokenizer: Any, limit: int = PARITY_PROMPTS) -> tuple[list[str], str]:
    """Validation prompts rendered as in training (the run's system prompt), and where they came from."""
    from domainllm.data.formatting import format_user_message, render_prompt
    from domainllm.data.loaders import load_domain

    try:
        dataset = load_domain(cfg.data, cfg.base_dir)
        records = dataset.val or dataset.test or dataset.train
        users = [format_user_message(r) for r in records[:limit]]
        source = "val" if dataset.val else ("test" if dataset.test else "train")
    except DataError as exc:
        log.warning("Parity check uses generic questions: the run's data cannot be loaded here (%s)", exc)
        users, source = list(_FALLBACK_QUESTIONS), "generic"
    if not users:
        users, source = list(_FALLBACK_QUESTIONS), "generic"
    return [render_prompt(tokenizer, u, cfg.data.system_prompt) for u in users], source


def _prompt_logits(model: Any, tokenizer: Any, prompts: list[str], batch_size: int) -> list[Any]:
    """Logits at every prompt position, per prompt, on the CPU (left-padded batches)."""
    import torch

    from domainllm.serve.generate import pad_batch

    device = next(model.parameters()).device
    encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    out: list[Any] = []
    with torch.inference_mode():
        for first in range(0, len(encoded), batch_size):
            chunk = encoded[first : first + batch_size]
            width = max(len(ids) for ids in chunk)
            ids, mask = pad_batch(chunk, tokenizer.pad_token_id or 0)
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            logits = model(
                input_ids=ids.to(device), attention_mask=mask.to(device), position_ids=positions.to(device)
            ).logits.float()
            for r, seq in enumerate(chunk):
                out.append(logits[r, width - len(seq) :].cpu())
    return out


def _answers(model: Any, tokenizer: Any, prompts: list[str], cfg: Any, eos: list[int]) -> list[list[int]]:
    from domainllm.serve.generate import generate_texts, generation_kwargs, model_context_length

    outputs = generate_texts(
        model,
        tokenizer,
        prompts,
        gen_kwargs=generation_kwargs(cfg.generation, {"do_sample": False}),
        batch_size=cfg.generation.batch_size,
        eos_ids=eos,
        context_length=model_context_length(model, tokenizer),
    )
    return [o.token_ids for o in outputs]


MERGE_RECORD = "domainllm-merge.json"


def _check_output(out: Path, overwrite: bool) -> None:
    """Refuse, before any work, an output folder holding a merged model (without --overwrite) or other files."""
    if out.exists() and not out.is_dir():
        msg = f"The merge output '{out}' is a file. Choose a folder with --output-dir."
        raise ModelError(msg)
    if not out.is_dir() or not any(out.iterdir()):
        return
    if not (out / MERGE_RECORD).is_file():
        msg = (
            f"'{out}' is not empty and holds no {MERGE_RECORD}, so it is not a merged model domainllm wrote; "
            "domainllm will not replace files it did not write. Choose another --output-dir."
        )
        raise ModelError(msg)
    if not overwrite:
        msg = (
            f"'{out}' already holds a merged model. Pass --overwrite to replace it (the old one stays until "
            "the new one has passed the parity check), or choose another --output-dir."
        )
        raise ModelError(msg)


def merge_adapter(
    run_dir: str | Path,
    output_dir: str | Path | None = None,
    parity_threshold: float = 0.9,
    dtype: str = "float32",
    overwrite: bool = False,
) -> Path:
    """Merge RUN/adapter into the float32 base, save it to RUN/merged (or ``output_dir``), check parity.

    An existing merged model at the output folder is replaced only with ``overwrite`` (and only once
    the new one has passed parity); a folder that is not a merged model domainllm wrote is never touched.

    ``dtype`` is what the merged weights are saved in: float32 (default, lossless), bfloat16 or
    float16 (half the size, checked like any other), or auto (the config's ``model.dtype`` as serving
    resolves it on this device). Returns the merged model folder. Raises ModelError (and leaves nothing
    behind) when fewer than ``parity_threshold`` of the parity prompts get identical greedy answers
    from the saved merged model and the unmerged adapter in float32.
    """
    import dataclasses

    from transformers import AutoModelForCausalLM

    from domainllm.modeling import load_base_model, resolve_dtype, select_device
    from domainllm.rundir import RunDir
    from domainllm.serve.bases import check_base_matches, trained_base_names
    from domainllm.serve.generate import end_of_turn_ids
    from domainllm.serve.load import _attach_adapter

    if not 0.0 <= parity_threshold <= 1.0:
        msg = f"--parity-threshold is {parity_threshold}; use a share between 0 and 1 (0.9 = 90% identical answers)."
        raise ConfigError(msg)
    if dtype not in MERGE_DTYPES:
        msg = f"--dtype is '{dtype}'; use one of {', '.join(MERGE_DTYPES)} (the dtype the merged weights are saved in)."
        raise ConfigError(msg)
    start = time.perf_counter()
    run = RunDir.open(run_dir)
    cfg = run.load_config()
    out = Path(output_dir) if output_dir else run.merged_dir
    _check_output(out, overwrite)
    adapter_dir = run.adapter_dir
    tokenizer_path = str(adapter_dir) if (adapter_dir / "tokenizer_config.json").is_file() else None
    save_dtype = resolve_dtype(cfg.model.dtype if dtype == "auto" else dtype, select_device(cfg.model.device))
    full = dataclasses.replace(cfg.model, dtype="float32")  # never merge in the serving dtype
    loaded = load_base_model(full, cfg.quantization, quantize=False, tokenizer_path=tokenizer_path)
    trained = trained_base_names(run, adapter_dir)
    check_base_matches(trained, cfg.model.name_or_path, loaded.path, str(run.path))
    tokenizer = loaded.tokenizer
    model = _attach_adapter(
        loaded.model, str(adapter_dir), trained[0] if trained else "?", cfg.model.name_or_path
    )
    prompts, source = parity_prompts(cfg, tokenizer)
    eos = end_of_turn_ids(tokenizer, model)
    size = cfg.generation.batch_size
    log.info("Parity reference: unmerged adapter on %d %s prompts", len(prompts), source)
    before_ids = _answers(model, tokenizer, prompts, cfg, eos)
    before_logits = _prompt_logits(model, tokenizer, prompts, size)
    merged = model.merge_and_unload().to(save_dtype)  # summed in float32, rounded once

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_dir_beside(out)
    try:
        merged.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        device = loaded.device
        del merged, model, loaded  # the reloaded copy is checked: what is on disk is what gets served
        # dtype="auto": the dtype the files hold, so the check and the manifest see what was saved.
        reloaded = AutoModelForCausalLM.from_pretrained(tmp, dtype="auto").to(device).eval()
        after_ids = _answers(reloaded, tokenizer, prompts, cfg, eos)
        after_logits = _prompt_logits(reloaded, tokenizer, prompts, size)
        identical = sum(a == b for a, b in zip(before_ids, after_ids, strict=True))
        share = identical / len(prompts)
        max_diff = max(float((a - b).abs().max()) for a, b in zip(before_logits, after_logits, strict=True))
        passed = share >= parity_threshold
        record = {
            "output_dir": str(out),
            "passed": passed,
            "prompts": len(prompts),
            "prompts_from": source,
            "identical": identical,
            "identical_share": round(share, 4),
            "max_abs_logit_diff": max_diff,
            "threshold": parity_threshold,
            "dtype": str(reloaded.dtype).replace("torch.", ""),
            "merged_in": "float32",
            "seconds": round(time.perf_counter() - start, 2),
            "merged_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        if not passed:
            saved = record["dtype"]
            hint = (
                f"save in float32 (--dtype float32; this merge saved {saved}), " if saved != "float32" else ""
            )
            msg = (
                f"Merge parity failed for '{run.path}': only {identical} of {len(prompts)} {source} prompts "
                f"({share:.0%}) got identical greedy answers from the merged and the unmerged model (threshold "
                f"{parity_threshold:.0%}); largest logit difference {max_diff:.4g}. Nothing was written. Serve "
                f"the unmerged adapter, {hint}or lower --parity-threshold if the differences are acceptable."
            )
            raise ModelError(msg)
        import json

        (tmp / MERGE_RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        replace_dir(tmp, out)
        run.update_manifest(merge=record)  # recorded only once the merged model is in place
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info(
        "Merged model written to %s (%d/%d identical, max logit diff %.3g)",
        out,
        identical,
        len(prompts),
        max_diff,
    )
    return out
