"""The fake OpenAI server must be indistinguishable, for our purposes, from a real endpoint when
driven by the real `openai` SDK; otherwise tests built on it would prove nothing."""

from __future__ import annotations

import base64
import math
import struct
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.fakes.openai_server import FakeOpenAI, hash_embedding


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def _client(fake: FakeOpenAI, **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{fake.url}/v1", api_key="test", max_retries=0, **kwargs)


def test_chat_non_streaming(fake: FakeOpenAI) -> None:
    fake.chat_reply = "Hello from the fake."
    client = _client(fake)
    resp = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi there"}]
    )
    assert resp.choices[0].message.content == "Hello from the fake."
    assert resp.choices[0].message.role == "assistant"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.model == "m"
    assert resp.usage is not None and resp.usage.prompt_tokens == 2
    (req,) = fake.requests_to("/v1/chat/completions")
    assert req.method == "POST"
    assert req.headers["authorization"] == "Bearer test"
    assert req.json["messages"] == [{"role": "user", "content": "hi there"}]


def test_chat_reply_callable_sees_request_body(fake: FakeOpenAI) -> None:
    fake.chat_reply = lambda body: body["messages"][-1]["content"].upper()
    resp = _client(fake).chat.completions.create(
        model="m", messages=[{"role": "user", "content": "echo me"}]
    )
    assert resp.choices[0].message.content == "ECHO ME"


def test_chat_streaming_reassembles_reply(fake: FakeOpenAI) -> None:
    reply = "The quick brown fox jumps over the lazy dog.\n\nSecond  paragraph, spaced oddly. "
    fake.chat_reply = reply
    stream = _client(fake).chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "q"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    content_chunks = [c for c in chunks if c.choices]
    assert content_chunks[0].choices[0].delta.role == "assistant"
    pieces = [c.choices[0].delta.content or "" for c in content_chunks]
    assert "".join(pieces) == reply
    assert sum(1 for p in pieces if p) > 2  # really split into several deltas
    assert content_chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == len(reply.split())


def test_keep_alive_and_requests_after_streams(fake: FakeOpenAI) -> None:
    client = _client(fake)
    msgs: Any = [{"role": "user", "content": "q"}]
    client.chat.completions.create(model="m", messages=msgs)
    client.embeddings.create(model="e", input="x")
    for _ in range(2):
        stream = client.chat.completions.create(model="m", messages=msgs, stream=True)
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    client.chat.completions.create(model="m", messages=msgs)
    ports = [r.client_port for r in fake.requests]
    assert len(ports) == 5
    # Content-Length framing lets httpx reuse the socket for non-streamed calls. (The SDK itself
    # drops the connection after a stream: it stops reading at [DONE], before the final chunk.)
    assert ports[0] == ports[1] == ports[2]


def test_fail_with_500_raises_internal_server_error(fake: FakeOpenAI) -> None:
    fake.fail_with = 500
    with pytest.raises(openai.InternalServerError) as info:
        _client(fake).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "q"}]
        )
    assert info.value.status_code == 500
    assert "fake failure" in info.value.message


def test_fail_with_429_raises_rate_limit(fake: FakeOpenAI) -> None:
    fake.fail_with = 429
    with pytest.raises(openai.RateLimitError):
        _client(fake).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "q"}], stream=True
        )


def test_delay_triggers_client_timeout_and_stop_is_prompt() -> None:
    fake = FakeOpenAI().start()
    fake.delay_s = 30
    try:
        with pytest.raises(openai.APITimeoutError):
            _client(fake, timeout=0.3).chat.completions.create(
                model="m", messages=[{"role": "user", "content": "q"}]
            )
    finally:
        thread = fake._thread
        fake.stop()  # wakes the handler sleeping in delay_s, then joins the server thread
    assert thread is not None and not thread.is_alive()


def test_embeddings_default_base64(fake: FakeOpenAI) -> None:
    resp = _client(fake).embeddings.create(model="e", input=["alpha", "beta", "gamma"])
    assert [d.index for d in resp.data] == [0, 1, 2]
    assert all(len(d.embedding) == 16 for d in resp.data)
    assert resp.data[0].embedding == pytest.approx(hash_embedding("alpha"), abs=1e-6)
    assert math.isclose(sum(x * x for x in resp.data[1].embedding), 1.0, rel_tol=1e-5)
    (req,) = fake.requests_to("/v1/embeddings")
    assert req.json["encoding_format"] == "base64"  # what this SDK sends when not told


def test_embeddings_float_and_custom_fn(fake: FakeOpenAI) -> None:
    fake.embedding_fn = lambda text: [float(len(text)), 0.5, -1.0]
    resp = _client(fake).embeddings.create(model="e", input="four", encoding_format="float")
    assert len(resp.data) == 1
    assert resp.data[0].embedding == [4.0, 0.5, -1.0]


def test_embeddings_raw_base64_is_little_endian_float32(fake: FakeOpenAI) -> None:
    r = httpx.post(
        f"{fake.url}/v1/embeddings",
        json={"model": "e", "input": "x", "encoding_format": "base64"},
    )
    raw = base64.b64decode(r.json()["data"][0]["embedding"])
    assert list(struct.unpack("<16f", raw)) == pytest.approx(hash_embedding("x"), abs=1e-6)


@pytest.mark.parametrize("path", ["/rerank", "/v1/rerank"])
def test_rerank(fake: FakeOpenAI, path: str) -> None:
    docs = ["nothing relevant", "reset your password here", "password policy"]
    r = httpx.post(
        f"{fake.url}{path}",
        json={"model": "r", "query": "reset password", "documents": docs, "top_n": 2},
    )
    assert r.status_code == 200
    body = r.json()
    assert body["model"] == "r"
    results = body["results"]
    assert [x["index"] for x in results] == [1, 2]
    assert results[0]["relevance_score"] == 1.0 and results[1]["relevance_score"] == 0.5
    assert results[0]["document"] == {"text": docs[1]}


def test_models_and_unknown_path(fake: FakeOpenAI) -> None:
    ids = [m.id for m in _client(fake).models.list()]
    assert ids == fake.model_ids
    r = httpx.get(f"{fake.url}/v1/nope")
    assert r.status_code == 404
    assert r.json()["error"]["type"] == "not_found_error"
    assert [(x.method, x.path) for x in fake.requests][-1] == ("GET", "/v1/nope")


def test_url_requires_start() -> None:
    with pytest.raises(RuntimeError):
        _ = FakeOpenAI().url
