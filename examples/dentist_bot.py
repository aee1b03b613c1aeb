"""The dentist bot in your terminal, through the Python API.

    python examples/dentist_bot.py                 # the embedded base model, persona prompt
    python examples/dentist_bot.py --rag           # ... answering from the practice's documents
    python examples/dentist_bot.py runs/dental     # a fine-tuned run (adapter on)
    python examples/dentist_bot.py runs/dental --rag --store runs/stores/dental

It is what ``domainllm chat`` runs: domainllm.chat.run_chat loads the run (one base model, the adapter
switchable), picks the arm from the chain specs (prompt_only, rag, finetuned or finetuned_rag),
streams the answer token by token and, with --rag, prints the documents it was given.
Type /quit (or press Ctrl-D) to leave. Everything runs offline.
"""

from __future__ import annotations

import argparse
import logging
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the defaults are embedded: never reach for the hub
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")  # chromadb


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Chat with a domainllm run (or the base model) in the terminal."
    )
    parser.add_argument(
        "run_dir", nargs="?", default="base", help="a training run directory, or 'base' (default)"
    )
    parser.add_argument(
        "--rag", action="store_true", help="retrieve from the knowledge base and show the sources"
    )
    parser.add_argument("--store", help="Chroma store folder (default: built from the run's documents)")
    parser.add_argument("--no-adapter", action="store_true", help="answer with the base model of the run")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for noisy in ("transformers", "sentence_transformers", "chromadb", "domainllm.data"):
        logging.getLogger(noisy).setLevel(logging.ERROR)

    from domainllm.chat import run_chat
    from domainllm.errors import DomainLLMError

    try:
        return run_chat(args.run_dir, rag=args.rag, store_dir=args.store, adapter=not args.no_adapter)
    except DomainLLMError as exc:  # a bad run directory, a store built with another embedder, ...
        print(f"error: {exc}")
        return exc.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
