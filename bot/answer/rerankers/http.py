"""A `/rerank` endpoint (vLLM, Infinity, TEI-style) as a reranker."""

from __future__ import annotations

from collections.abc import Sequence

import httpx


class HttpReranker:
    """A `/rerank` endpoint (vLLM, Infinity, TEI-style: query + documents -> relevance)."""

    def __init__(self, name: str, base_url: str, api_key: str | None, timeout_s: float = 30.0):
        self.name = name
        self.url = base_url.rstrip("/") + "/rerank"
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(timeout=timeout_s, headers=headers)

    def score(self, query: str, documents: Sequence[str]) -> list[float]:
        if not documents:
            return []
        response = self.client.post(
            self.url, json={"model": self.name, "query": query, "documents": list(documents)}
        )
        response.raise_for_status()
        scores = [0.0] * len(documents)
        for result in response.json()["results"]:
            scores[int(result["index"])] = float(result["relevance_score"])
        return scores
