"""Qwen3Reranker must score exactly like the seeds' recipe, only cheaper.

The recipe (tests/fakes/seeds_recipe.py, after qwen3-rag-recipe.md) runs line for line on the
tiny random Qwen3 reranker in fp32: the full vocabulary logits at the last position, the
`no`/`yes` columns, log-softmax, exp. Our reranker computes two lm_head rows on length-bucketed
batches; the scores must agree anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from bot.answer.rerankers import build_reranker
from bot.answer.rerankers.http import HttpReranker
from bot.answer.rerankers.qwen3 import Qwen3Reranker
from config.settings import Settings
from tests.fakes.openai_server import FakeOpenAI, word_overlap
from tests.fakes.seeds_recipe import RecipeReranker

INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"
QUERY = "How do I reset my password?"
# Very different lengths, deliberately not sorted: length bucketing must reorder them.
DOCS = [
    "The reranker reads the query and one document at a time and judges whether they match. " * 25,
    "yes",
    "Open the settings page, choose security, and follow the steps.",
    "How do I reset my password? Open the settings page. " * 9,
    "no",
    "Errors are logged with the request identifier, the channel, and the time it took. " * 4,
    "Quick brown foxes jump over lazy dogs.",
]


class Recipe:
    """The seeds' recipe (tests/fakes/seeds_recipe.py) on the tiny model, in fp32."""

    def __init__(self, path: Path, max_length: int = 8192) -> None:
        self.tokenizer: Any = AutoTokenizer.from_pretrained(str(path), padding_side="left")
        self.model: Any = AutoModelForCausalLM.from_pretrained(
            str(path), dtype=torch.float32
        ).eval()
        self.max_length = max_length
        reference = self.with_instruction(INSTRUCTION)
        self.prefix_tokens = reference.prefix_tokens
        self.suffix_tokens = reference.suffix_tokens

    def with_instruction(self, instruction: str) -> RecipeReranker:
        return RecipeReranker(self.model, self.tokenizer, instruction, self.max_length)

    def ids(self, instruction: str, query: str, docs: Sequence[str]) -> list[list[int]]:
        return self.with_instruction(instruction).token_ids(query, docs)

    def scores(self, instruction: str, query: str, docs: Sequence[str]) -> list[float]:
        return self.with_instruction(instruction).score(query, docs)


@pytest.fixture(scope="module")
def reranker_path(tiny_models: dict[str, Path]) -> Path:
    return tiny_models["reranker"]


@pytest.fixture(scope="module")
def recipe(reranker_path: Path) -> Recipe:
    return Recipe(reranker_path)


@pytest.fixture(scope="module")
def ours(reranker_path: Path) -> Qwen3Reranker:
    return Qwen3Reranker.load(
        str(reranker_path), device="cpu", dtype="float32", instruction=INSTRUCTION, batch_size=3
    )


def test_scores_equal_the_recipe(ours: Qwen3Reranker, recipe: Recipe) -> None:
    expected = recipe.scores(INSTRUCTION, QUERY, DOCS)
    lengths = [len(ids) for ids in ours.encode(QUERY, DOCS)]

    got = ours.score(QUERY, DOCS)

    # The comparison means something only if the recipe's scores differ between documents.
    assert max(expected) - min(expected) > 1e-3, expected
    # ...and only if bucketing really reorders and splits the documents.
    batches = ours._batches(lengths)
    assert len(batches) > 1
    assert [i for batch in batches for i in batch] != list(range(len(DOCS)))
    assert max(lengths) > 4 * min(lengths)
    assert len(got) == len(DOCS)
    assert got == pytest.approx(expected, abs=1e-4)
    assert all(0.0 <= s <= 1.0 for s in got)


def test_the_instruction_reaches_the_model(ours: Qwen3Reranker, recipe: Recipe) -> None:
    other = "Judge whether the passage is about foxes"
    reranker = Qwen3Reranker(
        recipe.model, recipe.tokenizer, name="tiny", instruction=other, batch_size=4
    )

    got = reranker.score(QUERY, DOCS)

    assert got == pytest.approx(recipe.scores(other, QUERY, DOCS), abs=1e-4)
    assert got != pytest.approx(ours.score(QUERY, DOCS), abs=1e-4)


def test_truncation_matches_the_recipe(reranker_path: Path) -> None:
    max_length = 120
    recipe = Recipe(reranker_path, max_length=max_length)
    ours = Qwen3Reranker.load(
        str(reranker_path),
        device="cpu",
        dtype="float32",
        instruction=INSTRUCTION,
        max_length=max_length,
        batch_size=3,
    )

    ids = ours.encode(QUERY, DOCS)

    assert ids == recipe.ids(INSTRUCTION, QUERY, DOCS)
    assert max(len(x) for x in ids) == max_length  # long documents really were cut
    assert min(len(x) for x in ids) < max_length  # short ones were not padded or cut
    for seq in ids:
        assert seq[: len(recipe.prefix_tokens)] == recipe.prefix_tokens
        assert seq[-len(recipe.suffix_tokens) :] == recipe.suffix_tokens
    assert ours.score(QUERY, DOCS) == pytest.approx(
        recipe.scores(INSTRUCTION, QUERY, DOCS), abs=1e-4
    )


def test_scores_do_not_depend_on_batch_size_or_order(ours: Qwen3Reranker, recipe: Recipe) -> None:
    reference = ours.score(QUERY, DOCS)
    for batch_size in (1, 2, 7, 16):
        other = Qwen3Reranker(
            recipe.model,
            recipe.tokenizer,
            name="tiny",
            instruction=INSTRUCTION,
            batch_size=batch_size,
        )
        assert other.score(QUERY, DOCS) == pytest.approx(reference, abs=1e-5), batch_size

    order = [3, 6, 0, 5, 1, 4, 2]
    shuffled = ours.score(QUERY, [DOCS[i] for i in order])

    assert shuffled == pytest.approx([reference[i] for i in order], abs=1e-5)
    # One document alone scores as it does among the others.
    assert ours.score(QUERY, [DOCS[0]]) == pytest.approx([reference[0]], abs=1e-5)
    assert ours.score(QUERY, []) == []


def test_http_reranker_returns_scores_in_input_order(fake_openai: FakeOpenAI) -> None:
    docs = [
        "Quick brown foxes.",
        "How do I reset my password? Open the settings page.",
        "Reset the password from the settings page.",
        "Nothing relevant here.",
    ]
    reranker = HttpReranker("Qwen/Qwen3-Reranker-0.6B", fake_openai.url, "secret-key")

    scores = reranker.score(QUERY, docs)

    expected = [word_overlap(QUERY, d) for d in docs]
    assert scores == pytest.approx(expected)
    # The server answered best-first, so input order is really restored, not just passed on.
    assert sorted(expected, reverse=True) != expected
    (request,) = fake_openai.requests_to("/rerank")
    assert request.json == {"model": "Qwen/Qwen3-Reranker-0.6B", "query": QUERY, "documents": docs}
    assert request.headers["authorization"] == "Bearer secret-key"
    assert reranker.score(QUERY, []) == []
    assert len(fake_openai.requests_to("/rerank")) == 1


def test_build_reranker(make_settings: Callable[..., Settings], fake_openai: FakeOpenAI) -> None:
    assert build_reranker(make_settings(reranker_model=None)) is None
    assert build_reranker(make_settings(reranker_model="none")) is None

    remote = build_reranker(
        make_settings(reranker_model="Qwen/Qwen3-Reranker-0.6B", reranker_url=fake_openai.url)
    )

    assert isinstance(remote, HttpReranker)
    assert remote.score("password", ["password reset", "foxes"]) == [1.0, 0.0]


def test_the_batch_is_4_on_a_cpu_and_8_on_a_gpu_unless_set(
    make_settings: Callable[..., Settings], reranker_path: Path
) -> None:
    from bot.answer.rerankers import rerank_batch_size

    unset = make_settings(reranker_model=str(reranker_path), reranker_instruction=INSTRUCTION)
    assert unset.reranker_batch_size is None
    assert (rerank_batch_size(unset, "cpu"), rerank_batch_size(unset, "cuda")) == (4, 8)
    pinned = make_settings(reranker_batch_size=16)
    assert (rerank_batch_size(pinned, "cpu"), rerank_batch_size(pinned, "cuda")) == (16, 16)
    local = build_reranker(unset)  # make_settings runs on the CPU
    assert isinstance(local, Qwen3Reranker) and local.batch_size == 4


def test_build_reranker_loads_a_local_model(
    make_settings: Callable[..., Settings], reranker_path: Path, recipe: Recipe
) -> None:
    settings = make_settings(
        reranker_model=str(reranker_path), reranker_instruction=INSTRUCTION, reranker_batch_size=2
    )

    local = build_reranker(settings)

    assert isinstance(local, Qwen3Reranker)
    assert local.batch_size == 2 and local.max_length == settings.reranker_max_length
    assert local.score(QUERY, DOCS[:3]) == pytest.approx(
        recipe.scores(INSTRUCTION, QUERY, DOCS[:3]), abs=1e-4
    )


def test_a_cpu_reranker_judges_fewer_candidates_and_keeps_the_rest_in_order(
    ours: Qwen3Reranker, make_settings: Callable[..., Settings], fake_openai: FakeOpenAI
) -> None:
    from bot.answer.retrieval import Retriever
    from bot.wiring import rerank_limit
    from indexer.hits import Hit

    settings = make_settings()
    assert rerank_limit(settings, ours) == 8  # local model on the CPU
    remote = HttpReranker("m", fake_openai.url, None)
    assert rerank_limit(settings, remote) is None
    assert rerank_limit(make_settings(rerank_candidates=12), ours) == 12

    hits = [Hit(f"id{i}", 1.0 / (i + 1), "s", "p", "T", "", "u", f"text {i}") for i in range(5)]
    fake_openai.rerank_fn = lambda query, doc: float(doc.endswith(("text 1", "text 3")))
    retriever = Retriever(None, None, remote, candidates=5, rerank_limit=2)  # type: ignore[arg-type]

    ranked = retriever.rerank("q", hits)

    assert [c.hit.id for c in ranked] == ["id1", "id0", "id2", "id3", "id4"]
    assert [c.rerank_score for c in ranked] == [1.0, 0.0, None, None, None]
    [request] = fake_openai.requests_to("/rerank")
    assert len(request.json["documents"]) == 2
