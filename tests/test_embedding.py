"""Embedders: the tiny Qwen3 model (prompts, Matryoshka, ordering), all-MiniLM-L6-v2 (real
semantics), and an OpenAI-compatible endpoint (the fake server on loopback)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from config.settings import DEFAULT_INSTRUCTION
from indexer.embedding import LocalEmbedder
from indexer.hardware import ModelUnavailable, ensure_loadable, packaged_minilm_path, resolve_model
from indexer.remote_embedder import RemoteEmbedder
from tests.fakes.openai_server import FakeOpenAI, hash_embedding
from tests.fakes.tiny_qwen import EMBEDDER_PROMPTS

QWEN_QUERY_PROMPT = (
    "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery:"
)
# Lengths from one token to a few hundred, in no particular order.
TEXTS = [
    "a",
    "The reranker reads the query and one document at a time and judges whether they match. " * 20,
    "How do I reset my password?",
    "yes no " * 40,
    "Errors are logged.",
    "b c",
    "Install the package, configure the workspace token, and run the indexer.",
    "z",
    "quick brown fox jumps",
    "Is there a rate limit? " * 3,
]


def unit_rows(matrix: np.ndarray) -> bool:
    return bool(np.allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-5))


@pytest.fixture(scope="module")
def tiny_path(tiny_models: dict[str, Path]) -> Path:
    return tiny_models["embedder"]


@pytest.fixture(scope="module")
def tiny(tiny_path: Path) -> LocalEmbedder:
    # batch_size=2: embed_documents works in steps of 8, so TEXTS spans two steps and every
    # model batch pads a shorter text.
    return LocalEmbedder(str(tiny_path), device="cpu", dtype="float32", batch_size=2)


# --- LocalEmbedder on the tiny Qwen3 embedder -------------------------------------------------


def test_query_prompt_is_the_models_own(tiny: LocalEmbedder) -> None:
    assert tiny.query_prompt == EMBEDDER_PROMPTS["query"] == QWEN_QUERY_PROMPT
    assert tiny.dim == 64
    assert tiny.name.endswith("embedder")


def test_query_instruction_replaces_the_task(tiny_path: Path, tiny: LocalEmbedder) -> None:
    custom = LocalEmbedder(str(tiny_path), device="cpu", dtype="float32", query_instruction="X")

    assert custom.query_prompt == "Instruct: X\nQuery:"
    text = "How do I reset my password?"
    got = np.asarray(custom.embed_query(text))
    # The prompt is really prepended to the text the model sees...
    assert got == pytest.approx(custom.embed_documents(["Instruct: X\nQuery:" + text])[0], abs=1e-5)
    # ...and differs from the default instruction's.
    assert not np.allclose(got, tiny.embed_query(text), atol=1e-3)


def test_query_gets_the_prompt_documents_do_not(tiny: LocalEmbedder) -> None:
    text = "How do I reset my password?"

    query = np.asarray(tiny.embed_query(text), dtype=np.float32)
    document = tiny.embed_documents([text])[0]

    assert query.shape == document.shape == (64,)
    assert np.linalg.norm(query) == pytest.approx(1.0, abs=1e-5)
    assert np.linalg.norm(document) == pytest.approx(1.0, abs=1e-5)
    assert not np.allclose(query, document, atol=1e-3)
    assert query == pytest.approx(tiny.embed_documents([QWEN_QUERY_PROMPT + text])[0], abs=1e-5)


def test_matryoshka_truncation(tiny_path: Path, tiny: LocalEmbedder) -> None:
    small = LocalEmbedder(str(tiny_path), device="cpu", dtype="float32", dim=16)

    vectors = small.embed_documents(TEXTS[:4])
    query = np.asarray(small.embed_query(TEXTS[2]))

    assert small.dim == 16
    assert vectors.shape == (4, 16) and query.shape == (16,)
    assert unit_rows(vectors) and np.linalg.norm(query) == pytest.approx(1.0, abs=1e-5)
    # The first 16 native dimensions, renormalised: the Matryoshka prefix, not some other cut.
    full = tiny.embed_documents(TEXTS[:4])[:, :16]
    expected = full / np.linalg.norm(full, axis=1, keepdims=True)
    assert np.allclose(vectors, expected, atol=1e-5)


def test_dimension_larger_than_native_is_refused(tiny_path: Path) -> None:
    with pytest.raises(ValueError, match=r"DOCSBOT_EMBEDDING_DIM=128.*64"):
        LocalEmbedder(str(tiny_path), device="cpu", dtype="float32", dim=128)


def test_documents_keep_their_input_order(tiny: LocalEmbedder) -> None:
    progress: list[int] = []

    together = tiny.embed_documents(TEXTS, progress=progress.append)

    assert together.shape == (len(TEXTS), 64) and together.dtype == np.float32
    assert unit_rows(together)
    for i, text in enumerate(TEXTS):
        alone = tiny.embed_documents([text])[0]
        assert np.allclose(together[i], alone, atol=1e-4), (i, text[:30])
    # Different texts really embed differently, so a permutation could not pass unnoticed.
    assert not np.allclose(together[0], together[1], atol=1e-2)
    assert sum(progress) == len(TEXTS) and len(progress) == 2
    assert tiny.embed_documents([]).shape == (0, 64)


def test_count_tokens(tiny: LocalEmbedder) -> None:
    counts = tiny.count_tokens(["yes", "yes no " * 40, ""])

    assert counts[0] == 1 and counts[2] == 0
    assert counts[1] >= 80
    assert tiny.count_tokens([]) == []


# --- all-MiniLM-L6-v2: a model without a query prompt, with real semantics ---------------------


def test_minilm_has_no_query_prompt(minilm: LocalEmbedder) -> None:
    text = "How do I install Milvus on Windows?"

    assert minilm.query_prompt == ""
    assert minilm.dim == 384
    assert np.allclose(minilm.embed_query(text), minilm.embed_documents([text])[0], atol=1e-5)


def test_minilm_semantics(minilm: LocalEmbedder) -> None:
    query = np.asarray(minilm.embed_query("How do I install Milvus on Windows?"))
    windows, gpu = minilm.embed_documents(
        [
            "You can install Milvus on Windows by using Docker Desktop with WSL 2.",
            "GPU_IVF_PQ is a GPU index type that compresses vectors with product quantization.",
        ]
    )

    assert float(query @ windows) > float(query @ gpu) + 0.1


# --- RemoteEmbedder against the fake OpenAI server ---------------------------------------------


def scaled_embedding(text: str) -> list[float]:
    """24 dims, deliberately not unit length: the client must normalise."""
    return [5.0 * x for x in hash_embedding(text, 24)]


def test_remote_embedder_probes_dims_and_normalises(fake_openai: FakeOpenAI) -> None:
    fake_openai.embedding_fn = scaled_embedding
    remote = RemoteEmbedder(
        "Qwen/Qwen3-Embedding-0.6B", f"{fake_openai.url}/v1", "test", batch_size=3
    )

    assert remote.dim == 24
    docs = TEXTS[:7]
    vectors = remote.embed_documents(docs)

    assert vectors.shape == (7, 24)
    assert unit_rows(vectors)
    expected = np.asarray([hash_embedding(t, 24) for t in docs], dtype=np.float32)
    assert np.allclose(vectors, expected, atol=1e-5)
    calls = fake_openai.requests_to("/v1/embeddings")
    assert calls[0].json["input"] == ["dimension probe"]
    # Documents go as they are (no prompt), split into batches of batch_size.
    assert [c.json["input"] for c in calls[1:]] == [docs[0:3], docs[3:6], docs[6:7]]
    assert all(c.json["model"] == "Qwen/Qwen3-Embedding-0.6B" for c in calls)
    assert all(c.headers["authorization"] == "Bearer test" for c in calls)


def test_remote_qwen3_queries_carry_the_instruction(fake_openai: FakeOpenAI) -> None:
    fake_openai.embedding_fn = scaled_embedding
    remote = RemoteEmbedder("Qwen/Qwen3-Embedding-0.6B", f"{fake_openai.url}/v1", None)

    vector = remote.embed_query("How do I reset my password?")

    sent = fake_openai.requests_to("/v1/embeddings")[-1].json["input"]
    assert sent == [f"Instruct: {DEFAULT_INSTRUCTION}\nQuery:How do I reset my password?"]
    assert sent[0].startswith(QWEN_QUERY_PROMPT)
    assert np.allclose(vector, hash_embedding(sent[0], 24), atol=1e-5)


def test_remote_other_models_get_no_prompt_unless_asked(fake_openai: FakeOpenAI) -> None:
    base = f"{fake_openai.url}/v1"
    plain = RemoteEmbedder("text-embedding-3-small", base, "k")
    plain.embed_query("hello there")
    assert fake_openai.requests_to("/v1/embeddings")[-1].json["input"] == ["hello there"]

    custom = RemoteEmbedder("text-embedding-3-small", base, "k", query_instruction="Find docs")
    custom.embed_query("hello there")
    sent = fake_openai.requests_to("/v1/embeddings")[-1].json["input"]
    assert sent == ["Instruct: Find docs\nQuery:hello there"]


def test_remote_requested_dimensions(fake_openai: FakeOpenAI) -> None:
    fake_openai.embedding_fn = scaled_embedding
    remote = RemoteEmbedder("Qwen/Qwen3-Embedding-0.6B", f"{fake_openai.url}/v1", "k", dim=8)

    vectors = remote.embed_documents(["one", "two"])

    assert remote.dim == 8 and vectors.shape == (2, 8)
    assert unit_rows(vectors)
    assert all(c.json["dimensions"] == 8 for c in fake_openai.requests_to("/v1/embeddings"))
    assert remote.embed_documents([]).shape == (0, 8)


def test_a_remote_embedder_asks_its_server_nothing_until_it_is_used(
    fake_openai: FakeOpenAI,
) -> None:
    remote = RemoteEmbedder("fake-embedding", f"{fake_openai.url}/v1", None)
    assert fake_openai.requests_to("/v1/embeddings") == []  # building it is not a network call
    assert remote.dim == 16
    assert len(fake_openai.requests_to("/v1/embeddings")) == 1  # the dimension, asked once
    assert remote.dim == 16 and len(fake_openai.requests_to("/v1/embeddings")) == 1


# --- where models come from --------------------------------------------------------------------


def test_missing_model_fails_naming_the_setting() -> None:
    with pytest.raises(ModelUnavailable, match="DOCSBOT_EMBEDDING_MODEL") as raised:
        ensure_loadable("no-such-org/no-such-model-xyz", "embedding", "DOCSBOT_EMBEDDING_MODEL")
    assert "no-such-org/no-such-model-xyz" in str(raised.value)


def test_local_embedder_with_missing_model_fails_before_loading_anything() -> None:
    with pytest.raises(ModelUnavailable, match="DOCSBOT_EMBEDDING_MODEL"):
        LocalEmbedder("no-such-org/no-such-model-xyz", device="cpu", dtype="float32")


def test_packaged_minilm_is_resolved_by_its_hub_name(tmp_path: Path) -> None:
    packaged = packaged_minilm_path()
    assert packaged is not None and (packaged / "config.json").is_file()

    assert resolve_model("sentence-transformers/all-MiniLM-L6-v2") == str(packaged)
    assert resolve_model("all-MiniLM-L6-v2") == str(packaged)
    assert resolve_model(str(tmp_path)) == str(tmp_path)
    assert resolve_model("Qwen/Qwen3-Embedding-0.6B") == "Qwen/Qwen3-Embedding-0.6B"
    # Loadable without the hub (HF_HUB_OFFLINE=1 here): it is a local directory.
    ref = ensure_loadable("sentence-transformers/all-MiniLM-L6-v2", "embedding", "X")
    assert str(packaged) in str(ref)
