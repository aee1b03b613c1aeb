"""The sentence-transformers encoder behind the ``embed_sim`` score (loaded only when scoring runs)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from domainllm.eval.scoring import EmbeddingScorer

__all__ = ["embedding_scorer", "sentence_encoder"]


def sentence_encoder(model_name: str = "default", device: str = "cpu", batch_size: int = 64) -> Callable:
    """``encode(texts) -> array`` over a sentence-transformers model, loaded on the first call."""
    model: list[Any] = []

    def encode(texts: list[str]) -> Any:
        if not model:
            from sentence_transformers import SentenceTransformer

            from domainllm.defaults import resolve_embedder

            model.append(SentenceTransformer(resolve_embedder(model_name), device=device))
        return model[0].encode(texts, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False)

    return encode


def embedding_scorer(model_name: str = "default", device: str = "cpu") -> EmbeddingScorer:
    """The comparison's answer-to-reference similarity scorer with the retrieval embedder."""
    return EmbeddingScorer(sentence_encoder(model_name, device))
