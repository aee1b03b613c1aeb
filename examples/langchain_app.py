"""An ordinary LangChain app on top of domainllm: a retrieval chain composed with ``|``.

    python examples/langchain_app.py               # the embedded base model
    python examples/langchain_app.py runs/dental   # a fine-tuned run (adapter on)

domainllm supplies two LangChain components and nothing else is special:

* ``expert.chat_model()``: a ``ChatHuggingFace`` over the run's model and chat template, with the
  adapter on (or off: ``adapter=False`` gives the base model from the same weights);
* a retriever over the practice's knowledge base (a persistent Chroma store, built or updated here).

The rest is plain LCEL: a ``ChatPromptTemplate``, a dict of runnables, ``StrOutputParser``. ``.batch()``
answers all questions in one batched generation. Everything runs offline.
"""

from __future__ import annotations

import argparse
import logging
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

QUESTIONS = [
    "How much notice do I need to give to cancel an appointment?",
    "Who is the specialist orthodontist at the practice?",
    "What time does the practice close on Saturdays?",
]


def format_docs(docs: list) -> str:
    return "\n\n".join(f"[{d.metadata['doc_id']}] {d.page_content}" for d in docs)


def main() -> int:
    parser = argparse.ArgumentParser(description="A LangChain RAG app over a domainllm expert.")
    parser.add_argument("run_dir", nargs="?", help="a training run directory (default: the base model)")
    parser.add_argument("--store", help="Chroma store folder (default: RUN/store, or runs/stores/<domain>)")
    parser.add_argument("questions", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for noisy in ("transformers", "sentence_transformers", "chromadb", "domainllm.data"):
        logging.getLogger(noisy).setLevel(logging.ERROR)

    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_core.runnables import RunnableLambda, RunnablePassthrough

    from domainllm.rag import get_retriever, knowledge_base
    from domainllm.serve import load_expert

    # 1. The model: a run (adapter on) or the embedded base model. One copy of the weights in memory.
    expert = load_expert(run_dir=args.run_dir) if args.run_dir else load_expert()
    cfg = expert.config
    chat = expert.chat_model(adapter=expert.is_finetuned)

    # 2. The knowledge base: the domain's documents in a persistent Chroma store (incremental updates).
    store = knowledge_base(cfg, store_dir=args.store)
    retriever = get_retriever(store, cfg.retrieval)

    # 3. Plain LCEL.
    system = expert.system_prompt or "You are a helpful assistant."
    prompt = ChatPromptTemplate.from_messages(
        [
            ("system", system + " Answer in one short sentence, using the practice information."),
            ("human", "Practice information:\n{context}\n\nQuestion: {question}"),
        ]
    )
    chain = (
        {"context": retriever | RunnableLambda(format_docs), "question": RunnablePassthrough()}
        | prompt
        | chat
        | StrOutputParser()
    )
    questions = args.questions or QUESTIONS
    for question, answer in zip(questions, chain.batch(questions), strict=True):
        print(f"Q: {question}\nA: {answer.strip()}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
