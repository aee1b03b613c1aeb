"""Loading a domain expert for serving: one base model in memory, the adapter switched on or off.

A run directory says everything serving needs (see :mod:`domainllm.rundir`): the resolved config
(base model, quantization, the system prompt the model was trained with), the adapter and the
tokenizer with its chat template. The base is loaded through :func:`domainllm.modeling.load_base_model`
exactly as training loaded it, so a 4-bit-trained run is served on the same 4-bit base, and the
adapter is attached unmerged. The base arms of a comparison run on the same weights with the
adapter disabled (``model.disable_adapter()`` under a lock) instead of loading a second copy.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from domainllm.config import DomainConfig, GenerationConfig
from domainllm.errors import ConfigError, ModelError, RunDirError
from domainllm.serve.bases import check_base_matches, trained_base_names

__all__ = ["DomainExpert", "load_expert"]

log = logging.getLogger(__name__)


class DomainExpert:
    """A loaded model (with or without a LoRA adapter) plus what serving it needs.

    Attributes: ``model`` (a ``PeftModel`` when an adapter is attached), ``tokenizer`` (the run's,
    with its chat template), ``config`` (the DomainConfig it was loaded with), ``system_prompt`` (the
    one the adapter was trained with), ``device``, ``run_dir``, ``adapter_path``, ``merged``.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        config: DomainConfig,
        *,
        system_prompt: str | None,
        device: str,
        quant_mode: str = "none",
        base_path: str = "",
        run_dir: Path | None = None,
        adapter_path: str | None = None,
        merged: bool = False,
    ) -> None:
        from domainllm.serve.generate import end_of_turn_ids, model_context_length

        self.model = model
        self.tokenizer = tokenizer
        self.config = config
        self.system_prompt = system_prompt
        self.device = device
        self.quant_mode = quant_mode
        self.base_path = base_path
        self.run_dir = run_dir
        self.adapter_path = adapter_path
        self.merged = merged
        self.eos_ids = end_of_turn_ids(tokenizer, model)
        self.context_length = model_context_length(model, tokenizer)
        self._lock = threading.RLock()
        self._pipeline: Any = None
        # name -> (run_dir, adapter_path, system_prompt) of every adapter loaded on this base; PEFT
        # calls a single adapter "default" (domainllm.serve.adapters loads several under run names).
        self.adapters: dict[str, tuple[Path | None, str, str | None]] = (
            {"default": (run_dir, adapter_path, system_prompt)} if adapter_path else {}
        )

    def __repr__(self) -> str:
        what = "merged" if self.merged else ("adapter" if self.has_adapter else "base only")
        return f"DomainExpert({self.base_path!r}, {what}, device={self.device!r})"

    @property
    def generation_mode(self) -> str:
        """How batched generation decodes for this model and ``config.generation.decoding`` (recorded per arm)."""
        from domainllm.serve.decoding import decoding_mode, describe_decoding

        return describe_decoding(decoding_mode(self.model, self.config.generation.decoding))

    @property
    def has_adapter(self) -> bool:
        """True when a LoRA adapter is attached (and can be switched off)."""
        return self.adapter_path is not None

    @property
    def is_finetuned(self) -> bool:
        """True when the model answers as the fine-tuned expert (adapter attached or merged in)."""
        return self.has_adapter or self.merged

    def set_adapter(self, name: str) -> None:
        """Make run ``name``'s adapter the active one, with the system prompt that run was trained with."""
        if name not in self.adapters:
            msg = f"No adapter named '{name}' is loaded; loaded: {', '.join(self.adapters) or 'none'}."
            raise ModelError(msg)
        with self._lock:
            if len(self.adapters) > 1:
                self.model.set_adapter(name)
            self.run_dir, self.adapter_path, self.system_prompt = self.adapters[name]

    @contextlib.contextmanager
    def adapter_enabled(self, enabled: bool = True) -> Iterator[None]:
        """Hold the model with the adapter on or off; a lock keeps concurrent callers from mixing states."""
        if not enabled:
            self._check_can_disable()
        with self._lock:
            if self.has_adapter and not enabled:
                with self.model.disable_adapter():
                    yield
            else:
                yield

    def _check_can_disable(self) -> None:
        if self.merged:
            msg = (
                "This expert was loaded from a merged model, whose adapter cannot be switched off, so it "
                "cannot serve the base arms. Load it unmerged (load_expert(run_dir, merged=False))."
            )
            raise ModelError(msg)

    @property
    def pipeline(self) -> Any:
        """The transformers text-generation pipeline over this model (built once, shared by all LLMs)."""
        if self._pipeline is None:
            from transformers import pipeline

            module = self.model.get_base_model() if self.has_adapter else self.model
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._pipeline = pipeline("text-generation", model=module, tokenizer=self.tokenizer)
        return self._pipeline

    def llm(
        self, adapter: bool = True, generation: GenerationConfig | None = None, **pipeline_kwargs: Any
    ) -> Any:
        """A LangChain LLM (an ``HuggingFacePipeline``) answering with the adapter on or off.

        Prompts must already be rendered with the chat template (the chains do this); generation
        settings default to the config's ``generation`` section.
        """
        from domainllm.serve.langchain import ExpertLLM

        if not adapter:
            self._check_can_disable()
        gen = generation or self.config.generation
        name = self.run_dir.name if self.run_dir else Path(self.base_path).name or "model"
        suffix = "merged" if self.merged else ("adapter" if adapter and self.has_adapter else "base")
        return ExpertLLM(
            pipeline=self.pipeline,
            model_id=f"{name} ({suffix})",
            expert=self,
            adapter=adapter,
            generation=gen,
            batch_size=gen.batch_size,
            pipeline_kwargs=pipeline_kwargs or None,
        )

    def chat_model(self, adapter: bool = True, generation: GenerationConfig | None = None) -> Any:
        """A LangChain ``ChatHuggingFace`` over :meth:`llm`, rendering messages with the run's chat template."""
        from domainllm.serve.langchain import ExpertChatModel

        llm = self.llm(adapter=adapter, generation=generation)
        return ExpertChatModel(llm=llm, tokenizer=self.tokenizer, model_id=llm.model_id)

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text`` as this model sees them (no special tokens added)."""
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def param_bytes(self) -> int:
        """Bytes held by the model's parameters and buffers (what a second copy would cost)."""
        tensors = list(self.model.parameters()) + list(self.model.buffers())
        return sum(t.numel() * t.element_size() for t in tensors)

    def option_loglikelihoods(
        self,
        prompts: Sequence[str],
        options: Sequence[Sequence[str]],
        adapter: bool = True,
        batch_size: int | None = None,
    ) -> list[list[float]]:
        """Log-likelihood of each option as the continuation of its prompt, adapter on or off.

        See :func:`domainllm.serve.generate.option_loglikelihoods`; ``batch_size`` defaults to the
        config's ``generation.batch_size``.
        """
        from domainllm.serve.generate import option_loglikelihoods

        with self.adapter_enabled(adapter):
            return option_loglikelihoods(
                self.model,
                self.tokenizer,
                prompts,
                options,
                batch_size=batch_size or self.config.generation.batch_size,
                eos_ids=self.eos_ids,
                context_length=self.context_length,
            )


# --------------------------------------------------------------------------------------------------
# Loading


def _attach_adapter(
    base: Any, adapter_dir: str, trained: str, configured: str, name: str | None = None
) -> Any:
    """``base`` with the adapter attached (a PeftModel); a PeftModel ``base`` gets it as adapter ``name``."""
    from peft import PeftModel

    from domainllm.weights import check_adapter_weights

    # RunDir.open checked a run's adapter already; this covers adapters given by id or folder.
    check_adapter_weights(adapter_dir, "Copy or download the adapter again.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            if isinstance(base, PeftModel):
                base.load_adapter(adapter_dir, adapter_name=name, is_trainable=False)
                model = base
            else:
                model = PeftModel.from_pretrained(
                    base, adapter_dir, adapter_name=name or "default", is_trainable=False
                )
    except (RuntimeError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else exc.__class__.__name__
        msg = (
            f"The adapter '{adapter_dir}' does not fit the base model '{configured}' (it was trained on "
            f"'{trained}'): {first}. Serve it on the base it was trained on (set model.name_or_path, "
            "or omit --config to use the run's own config)."
        )
        raise ModelError(msg) from exc
    model.eval()
    return model


def _resolve_adapter_id(adapter_id: str) -> str:
    """A local adapter folder, or a hub adapter id that is cached or reachable; else a ModelError."""
    path = Path(adapter_id).expanduser()
    if path.exists():
        if not (path / "adapter_config.json").is_file():
            msg = (
                f"The adapter folder '{path}' has no adapter_config.json. Pass load_expert(adapter_id=...) a "
                "PEFT adapter folder (one with adapter_config.json, as written by training in RUN/adapter) "
                "or a hub adapter id."
            )
            raise ModelError(msg)
        return str(path)
    from huggingface_hub import snapshot_download

    offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")
    try:
        return snapshot_download(adapter_id, local_files_only=offline)
    except Exception as exc:  # offline misses, 404s and connection errors end in the same advice
        state = (
            "HF_HUB_OFFLINE is set and it is not in the local cache"
            if offline
            else (f"it cannot be fetched ({exc.__class__.__name__})")
        )
        msg = (
            f"The adapter '{adapter_id}' names a hub adapter, but {state}. Cache it while online, pass a "
            "local adapter folder, or serve a run directory trained here (load_expert(run_dir=...))."
        )
        raise ModelError(msg) from None


def _load_merged(run: Any, cfg: DomainConfig, system_prompt: str | None) -> DomainExpert:
    """RUN/merged as a plain full-precision model (it has the adapter baked in)."""
    import dataclasses

    from domainllm.modeling import load_base_model

    folder = run.merged_dir
    if not (folder / "config.json").is_file():
        msg = f"Run directory '{run.path}' has no merged model ({folder}). Write it with 'domainllm merge {run.path}'."
        raise RunDirError(msg)
    mcfg = dataclasses.replace(cfg.model, name_or_path=str(folder))
    loaded = load_base_model(mcfg, cfg.quantization, quantize=False)
    loaded.model.eval()
    return DomainExpert(
        loaded.model,
        loaded.tokenizer,
        cfg,
        system_prompt=system_prompt,
        device=loaded.device,
        quant_mode=loaded.quant_mode,
        base_path=loaded.path,
        run_dir=run.path,
        merged=True,
    )


def load_expert(
    run_dir: str | Path | None = None,
    config: DomainConfig | None = None,
    adapter_id: str | None = None,
    merged: bool = False,
) -> DomainExpert:
    """Load a domain expert: a run directory, a hub/local adapter on the configured base, or the base alone.

    * ``run_dir``: the run's config.yaml decides everything unless ``config`` is given, in which case
      the adapter's base must match ``config.model``. ``merged=True`` loads ``RUN/merged`` (written by
      ``domainllm merge``) instead of attaching the adapter.
    * ``adapter_id``: a PEFT adapter (hub id or folder) on ``config.model``.
    * neither: ``config.model`` alone (``config`` None = the shipped dental default).
    """
    from domainllm.config import load_config
    from domainllm.modeling import load_base_model
    from domainllm.rundir import RunDir

    if run_dir is not None and adapter_id is not None:
        msg = "Pass either a run directory or an adapter id to load_expert, not both."
        raise ConfigError(msg)
    run = None
    system_prompt: str | None
    if run_dir is not None:
        run = RunDir.open(run_dir, require_adapter=not merged)
        run_cfg = run.load_config()
        cfg = config or run_cfg
        system_prompt = run_cfg.data.system_prompt
    else:
        cfg = config or load_config(None)
        system_prompt = cfg.data.system_prompt

    if run is not None and merged:
        return _load_merged(run, cfg, system_prompt)

    from domainllm.defaults import resolve_model

    adapter_dir: Path | None = None
    if run is not None:
        adapter_dir = run.adapter_dir
    elif adapter_id is not None:
        adapter_dir = Path(_resolve_adapter_id(adapter_id))
    resolved = resolve_model(cfg.model.name_or_path, cfg.model.revision)
    trained: list[str] = []
    if adapter_dir is not None:
        trained = trained_base_names(run, adapter_dir)
        check_base_matches(trained, cfg.model.name_or_path, resolved, str(run.path if run else adapter_id))
    # The run's tokenizer (and chat template) when the adapter folder has one, else the base's.
    has_tokenizer = adapter_dir is not None and (adapter_dir / "tokenizer_config.json").is_file()
    loaded = load_base_model(
        cfg.model, cfg.quantization, tokenizer_path=str(adapter_dir) if has_tokenizer else None
    )
    model = loaded.model
    if adapter_dir is not None:
        model = _attach_adapter(
            model, str(adapter_dir), trained[0] if trained else "?", cfg.model.name_or_path
        )
    model.eval()
    return DomainExpert(
        model,
        loaded.tokenizer,
        cfg,
        system_prompt=system_prompt,
        device=loaded.device,
        quant_mode=loaded.quant_mode,
        base_path=loaded.path,
        run_dir=run.path if run else None,
        adapter_path=str(adapter_dir) if adapter_dir else None,
    )
