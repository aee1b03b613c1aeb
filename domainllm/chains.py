"""The arms of the comparison as LangChain runnables, built from the YAML specs in ``chains/``.

An arm is data, not code: which model behaviour (base or fine-tuned), which system prompt, whether
and how it retrieves, and the prompt layout are fields of a spec file a user copies and edits (see
``chains/README.md``). :func:`build_chain` turns a spec into an ordinary LCEL runnable::

    normalize input -> retrieve (retriever.batch) -> render prompt (chat template) -> llm -> StrOutputParser

Every step batches: ``chain.batch(inputs)`` retrieves for all questions in one ``retriever.batch``
and generates all answers in one batched ``generate`` call on the model. The base and fine-tuned arms
share one :class:`~domainllm.serve.load.DomainExpert`: base arms run with the adapter disabled.

Fine-tuned arms render the user turn with :func:`domainllm.data.formatting.format_user_message` and
the run's system prompt, exactly as training did.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from domainllm.errors import ConfigError, DataError, EvalError

__all__ = [
    "FROM_RUN",
    "ChainSpec",
    "JudgeSpec",
    "arm_user_message",
    "build_chain",
    "build_prompt_chain",
    "chains_dir",
    "list_arms",
    "load_chain_spec",
    "load_judge_spec",
    "normalize_input",
    "render_arm_prompt",
]

FROM_RUN = "from_run"
GENERIC = "generic"
_MODELS = ("base", "finetuned")
_RETRIEVAL = ("none", "retriever", "gold")
_CONTEXT_FIELDS = {"text", "doc_id", "source", "chunk_id", "index"}


@dataclass(frozen=True)
class ChainSpec:
    """One arm: see ``chains/README.md`` for the meaning of each field."""

    name: str
    description: str = ""
    model: str = "base"
    system_prompt: str | None = None
    retrieval: str = "none"
    k: int | None = None
    user_template: str | None = None
    context_template: str = "[{doc_id}] {text}"
    context_separator: str = "\n\n"
    path: str = field(default="", compare=False)

    @property
    def adapter(self) -> bool:
        """Whether the arm answers with the fine-tuned adapter enabled."""
        return self.model == "finetuned"

    @property
    def uses_retrieval(self) -> bool:
        """Whether the arm needs a retriever (the oracle brings its own gold context)."""
        return self.retrieval == "retriever"


@dataclass(frozen=True)
class JudgeSpec:
    """The LLM-as-judge prompt: ``user_template`` has {question}, {reference} and {candidate}."""

    system_prompt: str
    user_template: str
    labels: tuple[str, ...] = ("correct", "incorrect")
    path: str = ""


# --------------------------------------------------------------------------------------------------
# Loading specs


def _chains_root(chains_dir: str | Path | None) -> Path:
    from domainllm.resources import resource_path

    return Path(chains_dir) if chains_dir else resource_path("chains")


def _search_dirs(root: Path, domain: str | None) -> list[Path]:
    dirs = [root / domain] if domain else []
    return [*dirs, root / GENERIC, root]


def chains_dir(cfg: Any) -> Path | None:
    """Where a config's chain specs live: ``compare.chains_dir`` (relative to the config file), else None
    (the shipped ``chains/``). The one rule compare, chat and RAFT training share."""
    from domainllm.resources import resolve_path

    if not cfg.compare.chains_dir:
        return None
    return resolve_path(cfg.compare.chains_dir, cfg.base_dir, key="compare.chains_dir")


def list_arms(chains_dir: str | Path | None = None, domain: str | None = None) -> list[str]:
    """Names of the arms available for ``domain`` (its own folder, then generic/, then the top level)."""
    names: set[str] = set()
    for folder in _search_dirs(_chains_root(chains_dir), domain):
        if folder.is_dir():
            names |= {p.stem for p in folder.glob("*.yaml") if p.stem != "judge"}
    return sorted(names)


def _fields(template: str) -> set[str]:
    try:
        return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        msg = f"Template {template!r} is malformed ({exc}). Double literal braces as {{{{ and }}}}."
        raise ConfigError(msg) from exc


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        msg = f"Chain spec '{path}' is not valid YAML: {exc}."
        raise ConfigError(msg) from exc
    if not isinstance(data, dict):
        msg = f"Chain spec '{path}' must be a mapping of keys (name, model, system_prompt, ...)."
        raise ConfigError(msg)
    return data


def _spec_from_dict(data: dict[str, Any], path: Path) -> ChainSpec:
    allowed = {f for f in ChainSpec.__dataclass_fields__ if f != "path"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        msg = (
            f"Chain spec '{path}' has unknown key '{unknown[0]}'. Allowed keys: {', '.join(sorted(allowed))}."
        )
        raise ConfigError(msg)
    data = {"name": path.stem, **data}
    for key, allowed_values in (("model", _MODELS), ("retrieval", _RETRIEVAL)):
        if key in data and data[key] not in allowed_values:
            msg = f"Chain spec '{path}' key '{key}' is {data[key]!r}; allowed values: {', '.join(allowed_values)}."
            raise ConfigError(msg)
    for key in (
        "name",
        "description",
        "system_prompt",
        "user_template",
        "context_template",
        "context_separator",
    ):
        if data.get(key) is not None and not isinstance(data[key], str):
            msg = f"Chain spec '{path}' key '{key}' is {data[key]!r}; expected text."
            raise ConfigError(msg)
    k = data.get("k")
    if k is not None and (not isinstance(k, int) or isinstance(k, bool) or k < 1):
        msg = f"Chain spec '{path}' key 'k' is {k!r}; use a positive integer or leave it out (retrieval.k)."
        raise ConfigError(msg)
    spec = ChainSpec(**data, path=str(path))
    if spec.user_template is not None:
        names = _fields(spec.user_template)
        if "question" not in names or not names <= {"question", "context"}:
            msg = (
                f"Chain spec '{path}' key 'user_template' uses {sorted(names)}; it must contain {{question}} "
                "and may contain {context} only."
            )
            raise ConfigError(msg)
        if spec.retrieval != "none" and "context" not in names:
            msg = f"Chain spec '{path}' retrieves ({spec.retrieval}) but its user_template has no {{context}} placeholder."
            raise ConfigError(msg)
    bad = _fields(spec.context_template) - _CONTEXT_FIELDS
    if bad:
        msg = f"Chain spec '{path}' key 'context_template' uses {sorted(bad)}; allowed: {', '.join(sorted(_CONTEXT_FIELDS))}."
        raise ConfigError(msg)
    return spec


def load_chain_spec(name: str, chains_dir: str | Path | None = None, domain: str | None = None) -> ChainSpec:
    """The spec of arm ``name``: ``<chains_dir>/<domain>/``, then ``generic/``, then the top level."""
    root = _chains_root(chains_dir)
    for folder in _search_dirs(root, domain):
        path = folder / f"{name}.yaml"
        if path.is_file() and name != "judge":
            return _spec_from_dict(_read_yaml(path), path)
    arms = list_arms(chains_dir, domain)
    msg = (
        f"Unknown arm '{name}': no {name}.yaml in {root}{f'/{domain}' if domain else ''} or its generic/ folder. "
        f"Available arms: {', '.join(arms) or 'none'}. Add a spec file or fix compare.arms."
    )
    raise EvalError(msg)


def load_judge_spec(chains_dir: str | Path | None = None) -> JudgeSpec:
    """The LLM-as-judge prompt from ``judge.yaml`` (the user's chains_dir first, then the shipped one)."""
    from domainllm.resources import resource_path

    candidates = [_chains_root(chains_dir) / "judge.yaml", resource_path("chains") / "judge.yaml"]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        msg = f"No judge.yaml in {candidates[0].parent}. Copy chains/judge.yaml from domainllm."
        raise EvalError(msg)
    data = _read_yaml(path)
    template = data.get("user_template")
    if not isinstance(template, str) or not {"question", "reference", "candidate"} <= _fields(template):
        msg = f"Judge spec '{path}' needs a user_template with {{question}}, {{reference}} and {{candidate}}."
        raise ConfigError(msg)
    labels = tuple(str(x) for x in data.get("labels") or ("correct", "incorrect"))
    return JudgeSpec(str(data.get("system_prompt") or ""), template, labels, str(path))


# --------------------------------------------------------------------------------------------------
# Building runnables


def normalize_input(value: Any) -> dict[str, Any]:
    """Accept a question string, a QARecord, or a dict with question/options/context/doc_id."""
    from domainllm.data.records import QARecord

    if isinstance(value, str):
        data: dict[str, Any] = {"question": value}
    elif isinstance(value, QARecord):
        data = {
            "question": value.question,
            "options": list(value.options) if value.options else None,
            "context": value.context,
            "doc_id": value.doc_id,
        }
    elif isinstance(value, dict):
        data = dict(value)
    else:
        msg = f"A chain input must be a question string, a QARecord or a dict with 'question'; got {type(value).__name__}."
        raise DataError(msg)
    question = data.get("question")
    if not isinstance(question, str) or not question.strip():
        msg = (
            f"The question is empty ({question!r}). Ask something, e.g. {{'question': 'When are you open?'}}."
        )
        raise DataError(msg)
    data["question"] = question.strip()
    data.setdefault("options", None)
    data.setdefault("context", None)
    data.setdefault("doc_id", None)
    return data


def _user_record(data: dict[str, Any]) -> Any:
    """What format_user_message formats: the question, with lettered options for choice questions."""
    from domainllm.data.records import QARecord

    options = data.get("options")
    if not options:
        return data["question"]
    return QARecord(
        id="-", question=data["question"], answer=str(options[0]), options=tuple(map(str, options))
    )


def _format_context(spec: ChainSpec, docs: Sequence[Any]) -> str:
    parts = []
    for i, doc in enumerate(docs, start=1):
        meta = doc.metadata or {}
        parts.append(
            spec.context_template.format(
                text=doc.page_content.strip(),
                doc_id=meta.get("doc_id", ""),
                source=meta.get("source", ""),
                chunk_id=meta.get("chunk_id", ""),
                index=i,
            )
        )
    return spec.context_separator.join(parts)


def _gold_sources(data: dict[str, Any], retriever: Any, spec: ChainSpec) -> list[Any]:
    """The oracle's context: the input's gold passage, else the gold document's chunks from the store."""
    from langchain_core.documents import Document

    doc_id = data.get("doc_id")
    if data.get("context"):
        return [
            Document(page_content=data["context"], metadata={"doc_id": doc_id or "gold", "source": "gold"})
        ]
    store = getattr(retriever, "vectorstore", None)
    if doc_id and store is not None:
        from domainllm.rag import document_chunks

        pairs = document_chunks(store, doc_id)
        if pairs:
            text = "\n\n".join(text for _, text in pairs)
            meta = {"doc_id": doc_id, "source": pairs[0][0].get("source", ""), "chunk_id": f"{doc_id}::*"}
            return [Document(page_content=text, metadata=meta)]
    msg = (
        f"Arm '{spec.name}' puts the gold document in the prompt, but the question {data['question']!r} has no "
        f"'context' and its doc_id {doc_id!r} is not in the knowledge base. Pass the gold passage as 'context' "
        "or give the chain a retriever over a store that holds the document."
    )
    raise EvalError(msg)


def _with_retriever_k(retriever: Any, k: int | None) -> Any:
    if k is None or retriever is None or not hasattr(retriever, "search_kwargs"):
        return retriever
    return retriever.model_copy(update={"search_kwargs": {**retriever.search_kwargs, "k": k}})


def _batched_step(inner: Any, pick: Any, merge: Any, name: str) -> Any:
    """A runnable that feeds ``pick(input)`` to ``inner`` and returns ``merge(input, output)``.

    Its ``batch``/``abatch`` hand all picked inputs to ``inner.batch``/``inner.abatch`` in one call,
    which is what makes retrieval one ``retriever.batch`` and generation one batched ``generate``
    (a RunnableParallel or RunnableLambda would run the inner runnable once per input).
    """
    from langchain_core.runnables import Runnable

    class BatchedStep(Runnable):
        def invoke(self, input: Any, config: Any = None, **kwargs: Any) -> Any:
            return merge(input, inner.invoke(pick(input), config))

        async def ainvoke(self, input: Any, config: Any = None, **kwargs: Any) -> Any:
            return merge(input, await inner.ainvoke(pick(input), config))

        def batch(
            self, inputs: list[Any], config: Any = None, *, return_exceptions: bool = False, **kw: Any
        ) -> list[Any]:
            outs = inner.batch([pick(i) for i in inputs], config, return_exceptions=return_exceptions)
            return [o if isinstance(o, Exception) else merge(i, o) for i, o in zip(inputs, outs, strict=True)]

        async def abatch(
            self, inputs: list[Any], config: Any = None, *, return_exceptions: bool = False, **kw: Any
        ) -> list[Any]:
            outs = await inner.abatch([pick(i) for i in inputs], config, return_exceptions=return_exceptions)
            return [o if isinstance(o, Exception) else merge(i, o) for i, o in zip(inputs, outs, strict=True)]

    step = BatchedStep()
    step.name = name
    return step


def _keep(data: dict[str, Any]) -> dict[str, Any]:
    return {"sources": data.get("sources", []), "prompt": data["prompt"]}


def arm_user_message(spec: ChainSpec, data: dict[str, Any], sources: Sequence[Any]) -> str:
    """The user turn arm ``spec`` builds for ``data`` (question, options) and retrieved ``sources``."""
    from domainllm.data.formatting import format_user_message

    record = _user_record(data)
    if spec.retrieval == "none":
        return format_user_message(record, template=spec.user_template)
    return format_user_message(record, context=_format_context(spec, sources), template=spec.user_template)


def render_arm_prompt(
    spec: ChainSpec, tokenizer: Any, system_prompt: str | None, data: dict[str, Any], sources: Sequence[Any]
) -> str:
    """The prompt arm ``spec`` shows the model for ``data`` and ``sources``, chat template applied.

    The one rendering of an arm's prompt: the chains call it at inference, and RAFT training
    (:mod:`domainllm.training.raft`) builds its examples from :func:`arm_user_message` through the
    same chat formatting, so a RAFT-trained model sees byte for byte the layout the ``finetuned_rag``
    arm serves it.
    """
    from domainllm.data.formatting import render_prompt

    return render_prompt(tokenizer, arm_user_message(spec, data, sources), system_prompt)


def build_prompt_chain(spec: ChainSpec, expert: Any, retriever: Any = None) -> Any:
    """The runnable from a chain input to ``{"question", "prompt", "sources", ...}`` (no generation)."""
    from langchain_core.runnables import RunnableLambda

    if spec.retrieval == "retriever" and retriever is None:
        msg = (
            f"Arm '{spec.name}' retrieves from the knowledge base, but no retriever was given. Pass "
            "retriever=get_retriever(open_store(store_dir, cfg.retrieval), cfg.retrieval)."
        )
        raise EvalError(msg)
    system_prompt = expert.system_prompt if spec.system_prompt == FROM_RUN else spec.system_prompt
    tokenizer = expert.tokenizer

    def render(data: dict[str, Any]) -> dict[str, Any]:
        sources = data.get("sources") or []
        if spec.retrieval == "gold":
            sources = _gold_sources(data, retriever, spec)
        prompt = render_arm_prompt(spec, tokenizer, system_prompt, data, sources)
        return {**data, "sources": sources, "prompt": prompt}

    steps = RunnableLambda(normalize_input, name="normalize_input")
    if spec.retrieval == "retriever":
        steps = steps | _batched_step(
            _with_retriever_k(retriever, spec.k),
            pick=lambda data: data["question"],
            merge=lambda data, docs: {**data, "sources": docs},
            name="retrieve",
        )
    return steps | RunnableLambda(render, name=f"render_{spec.name}")


def build_chain(spec: ChainSpec, expert: Any, retriever: Any = None, return_sources: bool = False) -> Any:
    """The arm as an LCEL runnable: a question in, the answer text out (or answer, sources and prompt).

    ``expert`` is a :class:`~domainllm.serve.load.DomainExpert`; base arms run it with the adapter
    disabled, fine-tuned arms with it enabled.
    """
    from operator import itemgetter

    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.runnables import RunnableLambda

    if spec.adapter and not expert.is_finetuned:
        msg = (
            f"Arm '{spec.name}' needs the fine-tuned model, but the expert has no adapter (it is the base model "
            f"alone). Load a run: load_expert(run_dir=...)."
        )
        raise EvalError(msg)
    if not spec.adapter and expert.merged:
        msg = (
            f"Arm '{spec.name}' needs the base model, but the expert is a merged model (adapter baked in). "
            "Load the run unmerged to serve base and fine-tuned arms from one model."
        )
        raise EvalError(msg)
    prompt_chain = build_prompt_chain(spec, expert, retriever)
    answer = expert.llm(adapter=spec.adapter) | StrOutputParser()
    if return_sources:
        chain = prompt_chain | _batched_step(
            answer,
            pick=lambda data: data["prompt"],
            merge=lambda data, text: {"answer": text, **_keep(data)},
            name="answer",
        )
    else:
        chain = prompt_chain | RunnableLambda(itemgetter("prompt"), name="prompt") | answer
    return chain.with_config(run_name=f"domainllm:{spec.name}")
