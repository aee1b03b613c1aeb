"""``domainllm chat``: the domain expert as a terminal Q&A bot, streaming its answers.

It serves a run directory the way the comparison does: the fine-tuned arm (or, with ``--rag``, the
fine-tuned + retrieval arm) from the chain specs, on the one model in memory; ``--no-adapter`` and
``base`` give the prompt-only and RAG arms of the base model. With ``--rag`` the bot shows which
documents it was given. A failed answer never ends the conversation: errors a user causes (an empty
or too-long question) are printed as they are, any other error (a generation failure, say) as one
line naming its type, and Ctrl-C while an answer streams stops that answer and returns to the
prompt. ``/quit``, end of input (Ctrl-D) or Ctrl-C at the prompt leaves.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, TextIO

from domainllm.config import DomainConfig
from domainllm.errors import DomainLLMError

__all__ = ["BASE", "QUIT_COMMANDS", "chat_arm", "format_sources", "run_chat"]

log = logging.getLogger(__name__)

BASE = "base"
QUIT_COMMANDS = ("/quit", "/exit", "/q")
PROMPT = "you> "
ANSWER = "bot> "


def chat_arm(finetuned: bool, rag: bool) -> str:
    """The chain spec the bot answers with."""
    if finetuned:
        return "finetuned_rag" if rag else "finetuned"
    return "rag" if rag else "prompt_only"


def format_sources(sources: list[Any]) -> str:
    """``sources: [doc_id] source, ...`` with each document once, in retrieval order."""
    seen: dict[str, str] = {}
    for doc in sources:
        meta = doc.metadata or {}
        doc_id = str(meta.get("doc_id", "?"))
        seen.setdefault(doc_id, str(meta.get("source", "")))
    items = [f"[{doc_id}] {source}".rstrip() for doc_id, source in seen.items()]
    return "sources: " + ("; ".join(items) if items else "none")


def run_chat(
    run_dir: str | Path,
    rag: bool = False,
    store_dir: str | Path | None = None,
    config: DomainConfig | None = None,
    adapter: bool = True,
    input_stream: TextIO | None = None,
    output_stream: TextIO | None = None,
) -> int:
    """Talk to RUN_DIR (or ``"base"``) until /quit or end of input; returns the exit code (0)."""
    from domainllm.chains import build_prompt_chain, chains_dir, load_chain_spec
    from domainllm.serve.generate import check_prompt_lengths
    from domainllm.serve.load import load_expert

    inp = input_stream or sys.stdin
    out = output_stream or sys.stdout
    is_base = str(run_dir) == BASE
    expert = load_expert(config=config) if is_base else load_expert(run_dir=run_dir, config=config)
    cfg = expert.config
    finetuned = adapter and expert.is_finetuned
    arm = chat_arm(finetuned, rag)
    spec = load_chain_spec(arm, chains_dir(cfg), cfg.data.name)
    retriever = None
    if rag:
        from domainllm.rag.store import get_retriever, knowledge_base, open_store

        store = open_store(store_dir, cfg.retrieval) if store_dir is not None else knowledge_base(cfg)
        retriever = get_retriever(store, cfg.retrieval, spec.k)
    prepare = build_prompt_chain(spec, expert, retriever)
    llm = expert.llm(adapter=finetuned)
    who = "the base model" if is_base else f"run {run_dir}"
    out.write(f"domainllm chat with {who} (arm '{arm}'). Ask a question; /quit to leave.\n")
    out.flush()
    while True:
        out.write(PROMPT)
        out.flush()
        try:
            line = inp.readline()
        except KeyboardInterrupt:  # Ctrl-C at the prompt: leave, as with end of input
            line = ""
        if not line:
            out.write("\n")
            out.flush()
            return 0
        question = line.strip()
        if question.lower() in QUIT_COMMANDS:
            return 0
        if not question:
            out.write("error: the question is empty. Type a question, or /quit to leave.\n")
            continue
        started = False
        try:
            prepared = prepare.invoke(question)
            n_tokens = expert.count_tokens(prepared["prompt"])
            check_prompt_lengths([n_tokens], cfg.generation.max_new_tokens, expert.context_length)
            out.write(ANSWER)
            started = True
            out.flush()
            for token in llm.stream(prepared["prompt"]):
                out.write(token)
                out.flush()
            out.write("\n")
            if rag:
                out.write(format_sources(prepared["sources"]) + "\n")
        except KeyboardInterrupt:  # Ctrl-C mid-answer: the stream's cleanup stopped generation
            out.write(f"{chr(10) if started else ''}(interrupted)\n")
        except DomainLLMError as exc:
            out.write(f"{chr(10) if started else ''}error: {exc}\n")
        except Exception as exc:  # one bad answer must not end the session; --debug logs the traceback
            log.debug("Answering %r failed", question, exc_info=True)
            first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else "(no message)"
            out.write(f"{chr(10) if started else ''}error: {type(exc).__name__}: {first}\n")
        out.flush()
