"""An OpenAI-compatible /v1/embeddings endpoint as the embedder (vLLM serving Qwen3-Embedding,
TEI, OpenAI): what a GPU box serving many bot replicas, or a CPU-only host, uses.

Asymmetric models embed questions and passages differently. Servers that know the model's
roles take an `input_type` field (`input_types`: the values for queries and documents); for
the others the texts carry the model's prefixes themselves (E5's "query: " / "passage: ").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import openai

from config.settings import DEFAULT_INSTRUCTION
from indexer.chunking import approx_token_counter
from indexer.embedding import QWEN3_QUERY_TEMPLATE, Progress
from indexer.errors import EmbedderUnavailable
from indexer.vectors import normalise


class RemoteEmbedder:
    """An OpenAI-compatible /v1/embeddings endpoint (vLLM serving Qwen3-Embedding, or OpenAI)."""

    def __init__(
        self,
        name: str,
        base_url: str,
        api_key: str | None,
        *,
        dim: int | None = None,
        batch_size: int = 64,
        query_instruction: str | None = None,
        timeout_s: float = 60.0,
        max_retries: int = 2,
        input_types: tuple[str, str] | None = None,
        query_prefix: str = "",
        document_prefix: str = "",
    ) -> None:
        import openai

        self.client = openai.OpenAI(
            base_url=base_url,
            api_key=api_key or "not-needed",
            timeout=timeout_s,
            max_retries=max_retries,
        )
        self.name = name
        self.batch_size = batch_size
        self.requested_dim = dim
        # The server applies no prompt: Qwen3 queries need the instruction in the text itself.
        instruction = query_instruction or (
            DEFAULT_INSTRUCTION if "qwen3-embedding" in name.lower() else None
        )
        self.query_prompt = (
            QWEN3_QUERY_TEMPLATE.format(instruction=instruction) if instruction else ""
        )
        self.query_prompt += query_prefix
        self.document_prefix = document_prefix
        self.input_types = input_types
        self.max_tokens = 8192
        self._dim: int | None = None

    @property
    def dim(self) -> int:
        """Asked of the server on first use, not at construction: building the embedder must
        not need the network (`report gaps` with no gaps, `--help`)."""
        if self._dim is None:
            self._dim = len(self._call(["dimension probe"], "query")[0])
        return self._dim

    def _call(self, texts: list[str], role: Literal["query", "document"]) -> np.ndarray:
        kwargs: dict[str, Any] = {"dimensions": self.requested_dim} if self.requested_dim else {}
        if self.input_types:
            # Not an OpenAI parameter: the client passes it through in the JSON body.
            kwargs["extra_body"] = {"input_type": self.input_types[0 if role == "query" else 1]}
        try:
            response = self.client.embeddings.create(model=self.name, input=texts, **kwargs)
        except openai.OpenAIError as error:  # retried with backoff by the client already
            raise EmbedderUnavailable(
                f"The embedding server at {self.client.base_url} failed "
                f"({type(error).__name__}: {error}). Is it running, and are "
                "DOCSBOT_EMBEDDING_URL / DOCSBOT_EMBEDDING_API_KEY right?"
            ) from error
        rows = sorted(response.data, key=lambda d: d.index)
        vectors = np.asarray([r.embedding for r in rows], dtype=np.float32)
        if self.requested_dim:
            vectors = vectors[:, : self.requested_dim]
        return normalise(vectors)

    def embed_documents(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        parts = []
        for start in range(0, len(texts), self.batch_size):
            batch = [self.document_prefix + t for t in texts[start : start + self.batch_size]]
            parts.append(self._call(batch, "document"))
            if progress:
                progress(len(batch))
        return np.concatenate(parts) if parts else np.zeros((0, self.dim), dtype=np.float32)

    def embed_query(self, text: str) -> list[float]:
        return [float(x) for x in self._call([self.query_prompt + text], "query")[0]]

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return approx_token_counter(texts)
