"""Text to vectors: local sentence-transformers models, or an OpenAI-compatible endpoint.

Documents are embedded without a prompt and questions with the model's `query` prompt (for
Qwen3-Embedding: `Instruct: ...\\nQuery:`). Vectors are L2-normalised, so inner product is
cosine similarity.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from config.logger import get_logger
from config.settings import Settings
from indexer.hardware import ensure_loadable, pick_device, pick_dtype
from indexer.vectors import normalise

log = get_logger(__name__)
Progress = Callable[[int], None]
QWEN3_QUERY_TEMPLATE = "Instruct: {instruction}\nQuery:"


class Embedder(Protocol):
    name: str
    max_tokens: int

    @property
    def dim(self) -> int: ...

    def embed_documents(
        self, texts: Sequence[str], progress: Progress | None = None
    ) -> np.ndarray: ...

    def embed_query(self, text: str) -> list[float]: ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...


class LocalEmbedder:
    """sentence-transformers on this machine; length-sorted batches, bf16 where it pays."""

    def __init__(
        self,
        name: str,
        *,
        device: str = "auto",
        dtype: str = "auto",
        dim: int | None = None,
        batch_size: int | None = None,
        query_instruction: str | None = None,
    ) -> None:
        from sentence_transformers import SentenceTransformer

        ref = ensure_loadable(name, "embedding", "DOCSBOT_EMBEDDING_MODEL")
        self.device = pick_device(device)
        self.torch_dtype = pick_dtype(dtype, self.device)
        self.model = SentenceTransformer(
            ref.path,
            device=self.device,
            model_kwargs={"dtype": self.torch_dtype},
            local_files_only=ref.local_only,
        )
        self.model.eval()
        self._counter = TokenCounter(self.model.tokenizer)
        native = int(self.model.get_embedding_dimension() or 0)
        if dim is not None and dim > native:
            raise ValueError(
                f"DOCSBOT_EMBEDDING_DIM={dim} is larger than {name}'s {native} dimensions"
            )
        self.name = name
        self.dim = dim or native
        self.backend = "torch"
        self.precision = str(self.torch_dtype).removeprefix("torch.")
        self.max_tokens = int(self.model.max_seq_length or 512)
        # Measured on 2 CPU cores (bench/embed_bench.py): batching buys nothing there while
        # padding to the longest text in a batch of 16 wasted 31% of the tokens.
        self.batch_size = batch_size or (32 if self.device.startswith("cuda") else 4)
        model_prompt = (self.model.prompts or {}).get("query") or ""
        if model_prompt and query_instruction:
            self.query_prompt = QWEN3_QUERY_TEMPLATE.format(instruction=query_instruction)
        else:
            self.query_prompt = model_prompt  # no prompt for models that define none
        log.info(
            "embedding model %s on %s (%s), %d dims, max %d tokens",
            name,
            self.device,
            str(self.torch_dtype).removeprefix("torch."),
            self.dim,
            self.max_tokens,
        )

    def describe(self) -> str:
        """What runs it, for `docsbot config` and the Home tab: `torch bfloat16`."""
        return f"{self.backend} {self.precision}"

    def _encode(self, texts: Sequence[str], prompt: str | None) -> np.ndarray:
        import torch

        with torch.inference_mode():
            vectors = self.model.encode(
                list(texts),
                prompt=prompt or None,
                batch_size=self.batch_size,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return normalise(np.asarray(vectors, dtype=np.float32)[:, : self.dim])

    def embed_documents(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return longest_first(texts, self.dim, self.batch_size * 4, self._encode, progress)

    def embed_query(self, text: str) -> list[float]:
        return [float(x) for x in self._encode([text], self.query_prompt)[0]]

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self._counter(texts)


class TokenCounter:
    """Counts tokens on its own copy of a tokenizer: counting runs untruncated, and switching
    a shared fast tokenizer's truncation while a worker thread encodes a question (`serve`
    indexes on its schedule beside the workers) fails with "Already borrowed". Encoding
    always uses the same settings, so it needs no lock and queries never wait."""

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = copy.deepcopy(tokenizer)
        self._lock = threading.Lock()

    def __call__(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        with self._lock:
            encoded = self._tokenizer(
                list(texts), add_special_tokens=False, verbose=False, truncation=False
            )
        return [len(ids) for ids in encoded["input_ids"]]


def longest_first(
    texts: Sequence[str],
    dim: int,
    group: int,
    encode: Callable[[list[str], str | None], np.ndarray],
    progress: Progress | None,
) -> np.ndarray:
    """Documents embedded in groups of `group`, longest first, vectors in input order.
    Sorting once over the whole run (not per call) keeps padding low in every batch."""
    order = np.argsort([-len(t) for t in texts], kind="stable")
    out = np.zeros((len(texts), dim), dtype=np.float32)
    for start in range(0, len(order), group):
        idx = order[start : start + group]
        out[idx] = encode([texts[i] for i in idx], None)
        if progress:
            progress(len(idx))
    return out


def build_embedder(settings: Settings) -> Embedder:
    if settings.embedding_url:
        from indexer.remote_embedder import RemoteEmbedder

        key = settings.embedding_api_key  # its own: OPENAI_API_KEY goes to the LLM only
        return RemoteEmbedder(
            settings.embedding_model,
            settings.embedding_url,
            key.get_secret_value() if key else None,
            dim=settings.embedding_dim,
            batch_size=settings.embedding_batch_size or 64,
            query_instruction=settings.query_instruction,
            input_types=(
                (settings.embedding_input_types[0], settings.embedding_input_types[1])
                if settings.embedding_input_types
                else None
            ),
            query_prefix=settings.embedding_query_prefix,
            document_prefix=settings.embedding_document_prefix,
        )
    from indexer.openvino_runtime import choose_backend

    backend, automatic = choose_backend(settings)
    if backend == "openvino":
        from indexer.openvino_embedder import open_embedder

        if (embedder := open_embedder(settings, automatic)) is not None:
            return embedder
    return LocalEmbedder(
        settings.embedding_model,
        device=settings.device,
        dtype=settings.dtype,
        dim=settings.embedding_dim,
        batch_size=settings.embedding_batch_size,
        query_instruction=settings.query_instruction,
    )
