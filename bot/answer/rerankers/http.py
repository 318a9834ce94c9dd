"""A `/rerank` endpoint (vLLM, Infinity, TEI-style) as a reranker."""

from __future__ import annotations

import time
from collections.abc import Sequence

import httpx

from config.logger import get_logger

log = get_logger(__name__)
ATTEMPTS = 3
RETRY_STATUS = {408, 429, 500, 502, 503, 504}


class RerankerUnavailable(RuntimeError):
    """The /rerank endpoint failed, retries included; the cause is logged, not shown."""


class HttpReranker:
    """A `/rerank` endpoint (vLLM, Infinity, TEI-style: query + documents -> relevance)."""

    def __init__(
        self,
        name: str,
        base_url: str,
        api_key: str | None,
        timeout_s: float = 30.0,
        *,
        backoff_s: float = 0.5,
    ) -> None:
        """`api_key`: the reranker's own (DOCSBOT_RERANKER_API_KEY), never the LLM's."""
        self.name = name
        self.url = base_url.rstrip("/") + "/rerank"
        self.backoff_s = backoff_s
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(timeout=timeout_s, headers=headers)

    def score(self, query: str, documents: Sequence[str]) -> list[float]:
        if not documents:
            return []
        body = {"model": self.name, "query": query, "documents": list(documents)}
        for attempt in range(1, ATTEMPTS + 1):
            try:
                response = self.client.post(self.url, json=body)
                if response.status_code in RETRY_STATUS and attempt < ATTEMPTS:
                    raise httpx.HTTPStatusError(
                        f"HTTP {response.status_code}", request=response.request, response=response
                    )
                response.raise_for_status()
                return self._scores(response.json(), len(documents))
            except (httpx.TransportError, httpx.HTTPStatusError) as error:
                retry = attempt < ATTEMPTS and (
                    isinstance(error, httpx.TransportError)
                    or error.response.status_code in RETRY_STATUS
                )
                if not retry:
                    raise RerankerUnavailable(f"{self.url}: {error}") from error
                log.warning("reranker at %s failed (%s); retrying", self.url, error)
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            except (ValueError, KeyError, TypeError) as error:  # not a rerank answer at all
                raise RerankerUnavailable(f"{self.url} answered something else: {error}") from error
        raise AssertionError("unreachable")

    @staticmethod
    def _scores(data: object, count: int) -> list[float]:
        assert isinstance(data, dict)
        scores = [0.0] * count
        for result in data["results"]:
            scores[int(result["index"])] = float(result["relevance_score"])
        return scores
