"""Rerankers: given a question and candidate sections, how likely each one answers it.

The local Qwen3-Reranker (`qwen3`, torch) or any `/rerank` endpoint (`http`); the heavy one is
imported only when it is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from config.settings import Settings


# Measured on a 2-core CPU, 10 pairs of ~500 tokens: batches of 4 score as fast as batches of 8
# (torch bf16 5% faster), and OpenVINO, which keeps each layer's buffers for the batch, holds
# ~0.9 GB less (docs/cpu.md). GPUs keep the larger batch.
CPU_BATCH, GPU_BATCH = 4, 8


def rerank_batch_size(settings: Settings, device: str) -> int:
    """DOCSBOT_RERANKER_BATCH_SIZE, or the measured default for `device` (`cpu`, `cuda`)."""
    if settings.reranker_batch_size is not None:
        return settings.reranker_batch_size
    return CPU_BATCH if device == "cpu" else GPU_BATCH


class Reranker(Protocol):
    name: str

    def score(self, query: str, documents: Sequence[str]) -> list[float]:
        """p(relevant) in [0, 1] for each document, in input order."""
        ...


def build_reranker(settings: Settings) -> Reranker | None:
    if settings.reranker_model is None:
        return None
    if settings.reranker_url:
        from bot.answer.rerankers.http import HttpReranker

        key = settings.reranker_api_key  # its own: OPENAI_API_KEY goes to the LLM only
        return HttpReranker(
            settings.reranker_model,
            settings.reranker_url,
            key.get_secret_value() if key else None,
        )
    from indexer.openvino_runtime import choose_backend

    backend, automatic = choose_backend(settings)
    if backend == "openvino":
        from bot.answer.rerankers.openvino import open_reranker

        if (reranker := open_reranker(settings, automatic)) is not None:
            return reranker
    from bot.answer.rerankers.qwen3 import Qwen3Reranker
    from indexer.hardware import pick_device

    device = pick_device(settings.device)
    return Qwen3Reranker.load(
        settings.reranker_model,
        device=device,
        dtype=settings.dtype,
        instruction=settings.reranker_instruction,
        max_length=settings.reranker_max_length,
        batch_size=rerank_batch_size(settings, device),
    )
