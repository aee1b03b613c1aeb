"""LangChain's ``HuggingFacePipeline`` and ``ChatHuggingFace``, fixed for serving and for fair evaluation.

The stock ``HuggingFacePipeline`` samples with the pipeline's defaults, echoes the prompt, ignores
``stop`` and its own ``pipeline_kwargs`` at call time, runs ``.batch()`` through the pipeline without
left padding, and has no idea of the chat template's end-of-turn token. :class:`ExpertLLM` keeps the
stock class (so ``isinstance(llm, HuggingFacePipeline)`` holds and ``ChatHuggingFace`` wraps it) and
replaces generation with the engine in :mod:`domainllm.serve.generate` that every arm, the merge
parity check and the benchmark share; this module only translates between LangChain's objects and
the engine's.

:class:`ExpertChatModel` is ``ChatHuggingFace`` whose ``.batch()`` and ``.abatch()`` render every
conversation and send them to the LLM in one batched call (the stock one runs a thread pool of single
generations), and whose async methods work (the stock class refuses them for a local pipeline).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, UsageMetadata
from langchain_core.outputs import (
    ChatGeneration,
    ChatGenerationChunk,
    ChatResult,
    Generation,
    GenerationChunk,
    LLMResult,
)
from langchain_core.runnables.config import get_config_list, run_in_executor
from langchain_huggingface import ChatHuggingFace, HuggingFacePipeline

from domainllm.serve.generate import generate_texts, generation_kwargs, stream_text

__all__ = ["ExpertChatModel", "ExpertLLM"]

# Call-time keyword arguments that LangChain or the stock class use and model.generate must not see.
_NOT_FOR_GENERATE = {"pipeline_kwargs", "skip_prompt", "return_full_text", "stream"}


class ExpertLLM(HuggingFacePipeline):
    """A ``HuggingFacePipeline`` over a :class:`~domainllm.serve.load.DomainExpert`'s model.

    ``adapter`` picks the fine-tuned (True) or base (False) behaviour of the one model in memory;
    ``generation`` is the domainllm GenerationConfig (greedy by default). ``pipeline_kwargs`` (on
    the instance and at call time) and plain call-time keywords such as ``max_new_tokens`` override
    it, in that order.
    """

    expert: Any = None
    adapter: bool = True
    generation: Any = None

    @property
    def _llm_type(self) -> str:
        return "domainllm_expert"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        import dataclasses

        gen = dataclasses.asdict(self.generation) if self.generation is not None else None
        return {
            "model_id": self.model_id,
            "adapter": self.adapter,
            "generation": gen,
            "pipeline_kwargs": self.pipeline_kwargs,
        }

    def _gen_kwargs(self, kwargs: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        overrides = dict(self.pipeline_kwargs or {})
        overrides.update(kwargs.get("pipeline_kwargs") or {})
        overrides.update({k: v for k, v in kwargs.items() if k not in _NOT_FOR_GENERATE})
        full_text = bool(overrides.pop("return_full_text", kwargs.get("return_full_text", False)))
        for key in _NOT_FOR_GENERATE:
            overrides.pop(key, None)
        return generation_kwargs(self.generation, overrides), full_text

    def _generate(
        self,
        prompts: list[str],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        gen_kwargs, full_text = self._gen_kwargs(kwargs)
        expert = self.expert
        with expert.adapter_enabled(self.adapter):
            outputs = generate_texts(
                expert.model,
                expert.tokenizer,
                prompts,
                gen_kwargs=gen_kwargs,
                batch_size=self.batch_size,
                eos_ids=expert.eos_ids,
                stop=stop,
                context_length=expert.context_length,
                decoding=self.generation.decoding if self.generation is not None else "eager",
            )
        generations = []
        for prompt, out in zip(prompts, outputs, strict=True):
            info = {
                "finish_reason": out.finish_reason,
                "prompt_tokens": out.prompt_tokens,
                "completion_tokens": len(out.token_ids),
            }
            text = prompt + out.text if full_text else out.text
            generations.append([Generation(text=text, generation_info=info)])
        usage = {
            "prompt_tokens": sum(o.prompt_tokens for o in outputs),
            "completion_tokens": sum(len(o.token_ids) for o in outputs),
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        return LLMResult(
            generations=generations, llm_output={"token_usage": usage, "model_name": self.model_id}
        )

    def _stream(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[GenerationChunk]:
        """Text as it is generated (:func:`~domainllm.serve.generate.stream_text`), honouring stop strings."""
        gen_kwargs, _ = self._gen_kwargs(kwargs)
        expert = self.expert
        pieces = stream_text(
            expert.model,
            expert.tokenizer,
            prompt,
            gen_kwargs=gen_kwargs,
            eos_ids=expert.eos_ids,
            stop=stop,
            context_length=expert.context_length,
            hold=lambda: expert.adapter_enabled(self.adapter),
        )
        with contextlib.closing(pieces):  # stopping early here cancels the generation at once
            for text in pieces:
                chunk = GenerationChunk(text=text)
                if run_manager:
                    run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                yield chunk


class ExpertChatModel(ChatHuggingFace):
    """``ChatHuggingFace`` whose ``.batch()`` is one batched generation, and which also works async.

    Conversations are rendered with the run's chat template and sent to :class:`ExpertLLM` in one
    call. Callbacks fire on the LLM (the stock per-message chat-model runs are not created). The
    stock class refuses ``ainvoke``/``abatch``/``astream`` over a ``HuggingFacePipeline``; here they run
    the same synchronous generation in an executor thread, so an async app (a web server, an agent)
    gets the same answers without blocking its event loop. Every message carries the token counts
    (``usage_metadata`` and ``response_metadata``), batched or not.
    """

    @staticmethod
    def _to_chat_result(llm_result: LLMResult) -> ChatResult:
        model_name = (llm_result.llm_output or {}).get("model_name")
        return ChatResult(
            generations=[_chat_generation(g, model_name) for g in llm_result.generations[0]],
            llm_output=llm_result.llm_output,
        )

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        stream: bool | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        sync_manager = run_manager.get_sync() if run_manager else None
        return await run_in_executor(None, self._generate, messages, stop, sync_manager, stream, **kwargs)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        prompt = self._to_chat_prompt(messages)
        async for chunk in self.llm._astream(prompt, stop=stop, run_manager=run_manager, **kwargs):
            yield ChatGenerationChunk(
                message=AIMessageChunk(content=chunk.text), generation_info=chunk.generation_info
            )

    def _batch_prompts(self, inputs: list[Any], config: Any) -> tuple[list[str], dict[str, Any]] | None:
        """The rendered prompts and LLM call options for one batched call, or None to use the stock path.

        ``max_concurrency`` asks for LangChain's own scheduling, and one input gains nothing from batching.
        """
        configs = get_config_list(config, len(inputs))
        if len(inputs) <= 1 or configs[0].get("max_concurrency") is not None:
            return None
        prompts = [self._to_chat_prompt(self._convert_input(i).to_messages()) for i in inputs]
        options = {
            key: [c.get(key) for c in configs] for key in ("callbacks", "tags", "metadata", "run_name")
        }
        return prompts, options

    def _batch_messages(self, result: LLMResult) -> list[AIMessage]:
        model_name = (result.llm_output or {}).get("model_name")
        return [_chat_generation(row[0], model_name).message for row in result.generations]

    def batch(
        self,
        inputs: list[Any],
        config: Any = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[Any]:
        call = self._batch_prompts(inputs, config)
        if call is None:
            return super().batch(inputs, config, return_exceptions=return_exceptions, **kwargs)
        prompts, options = call
        try:
            return self._batch_messages(self.llm.generate(prompts, **options, **kwargs))
        except Exception as exc:
            if return_exceptions:
                return [exc for _ in inputs]
            raise

    async def abatch(
        self,
        inputs: list[Any],
        config: Any = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[Any]:
        call = self._batch_prompts(inputs, config)
        if call is None:
            return await super().abatch(inputs, config, return_exceptions=return_exceptions, **kwargs)
        prompts, options = call
        try:
            return self._batch_messages(await self.llm.agenerate(prompts, **options, **kwargs))
        except Exception as exc:
            if return_exceptions:
                return [exc for _ in inputs]
            raise


def _chat_generation(generation: Generation, model_name: str | None) -> ChatGeneration:
    """One answer as a chat generation whose message carries its own token counts.

    A batch's ``llm_output`` sums the whole batch, so each message's usage comes from its own
    ``generation_info`` (written by :class:`ExpertLLM`), the same numbers an ``invoke`` reports.
    """
    info = dict(generation.generation_info or {})
    usage = None
    metadata: dict[str, Any] = dict(info)
    if "prompt_tokens" in info and "completion_tokens" in info:
        prompt, completion = int(info["prompt_tokens"]), int(info["completion_tokens"])
        usage = UsageMetadata(input_tokens=prompt, output_tokens=completion, total_tokens=prompt + completion)
        metadata["token_usage"] = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
    if model_name is not None:
        metadata["model_name"] = model_name
    message = AIMessage(content=generation.text, usage_metadata=usage, response_metadata=metadata)
    return ChatGeneration(message=message, generation_info=info or None)
