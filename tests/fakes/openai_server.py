"""A fake OpenAI-compatible HTTP server for tests, built only on the standard library.

It listens on a real loopback socket so the production HTTP stack (the `openai` SDK and its
httpx transport, or plain httpx for /rerank) is exercised end to end: headers, keep-alive, SSE
parsing, status-code-to-exception mapping and timeouts. Behaviour is steered by plain attributes
that tests may change at any time, even while the server runs.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import struct
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

__all__ = ["FakeOpenAI", "RecordedRequest", "hash_embedding", "word_overlap"]


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # keys lower-cased, so tests need not guess the client's casing
    json: Any  # None when the body was empty or not JSON
    # Client's TCP port: equal ports on consecutive requests prove a keep-alive connection reuse.
    client_port: int = 0


def hash_embedding(text: str, dims: int = 16) -> list[float]:
    """Deterministic unit vector: equal texts embed equally, different texts (almost) never do."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    raw = [(digest[i % len(digest)] / 127.5) - 1.0 for i in range(dims)]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    return [x / norm for x in raw]


def word_overlap(query: str, document: str) -> float:
    """Share of the query's words present in the document: crude but monotonic and in [0, 1]."""
    q, d = (set(re.findall(r"\w+", text.lower())) for text in (query, document))
    return len(q & d) / len(q) if q else 0.0


def _split_for_stream(text: str, words_per_chunk: int = 3) -> list[str]:
    # Split at whitespace->non-whitespace boundaries so "".join(pieces) == text exactly,
    # whitespace included; tests compare the reassembled stream against the full reply.
    pieces = re.split(r"(?<=\s)(?=\S)", text)
    return [
        "".join(pieces[i : i + words_per_chunk]) for i in range(0, len(pieces), words_per_chunk)
    ]


def _count_tokens(value: Any) -> int:
    # A word count stands in for tokens: usage just needs to be plausible and deterministic.
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, list):
        return sum(_count_tokens(v) for v in value)
    if isinstance(value, dict):
        return _count_tokens(value.get("content", value.get("text", "")))
    return 0


class _HttpError(Exception):
    def __init__(self, status: int, message: str, err_type: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status = status
        self.err_type = err_type


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Don't join handler threads on close: a handler parked in delay_s or on an idle keep-alive
    # socket must not make stop() hang.
    block_on_close = False

    def __init__(self, fake: FakeOpenAI) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up mid-response (timeout tests) are expected; keep stderr clean.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 so httpx can reuse connections; every response therefore carries Content-Length
    # or is chunked, otherwise the client could not tell where a body ends.
    protocol_version = "HTTP/1.1"
    server_version = "FakeOpenAI/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    @property
    def fake(self) -> FakeOpenAI:
        return cast(_Server, self.server).fake

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
        path = self.path.split("?", 1)[0]
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.fake._record(RecordedRequest(method, path, headers, body, self.client_address[1]))
        routes: dict[tuple[str, str], Callable[[Any], None]] = {
            ("POST", "/v1/chat/completions"): self._chat,
            ("POST", "/v1/embeddings"): self._embeddings,
            ("POST", "/v1/rerank"): self._rerank,
            ("POST", "/rerank"): self._rerank,
            ("GET", "/v1/models"): self._models,
        }
        route = routes.get((method, path))
        try:
            if route is None:
                raise _HttpError(404, f"no route for {method} {path}", "not_found_error")
            if (status := self.fake.fail_routes.get(path)) is not None:
                raise _HttpError(status, f"fake failure of {path} (HTTP {status})", "server_error")
            if path in self.fake.html_routes:  # a proxy's error page, with status 200
                page = b"<html><body><h1>Maintenance</h1></body></html>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)
                return
            if method == "POST" and not isinstance(body, dict):
                raise _HttpError(400, "request body must be a JSON object")
            route(body)
        except _HttpError as exc:
            self._error(exc.status, str(exc), exc.err_type)
        except ConnectionError:
            self.close_connection = True
        except Exception as exc:
            # A broken test callback (chat_reply, embedding_fn...) should surface as a 500 the
            # client can report, not as a dropped socket that looks like a network fault.
            self._error(500, f"fake server callback failed: {exc!r}", "server_error")

    def _send_json(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", f"req_{uuid.uuid4().hex[:16]}")
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str, err_type: str) -> None:
        error = {"message": message, "type": err_type, "param": None, "code": None}
        self._send_json(status, {"error": error})

    def _chat(self, body: dict[str, Any]) -> None:
        fake = self.fake
        if fake.fail_with is not None:
            kind = "server_error" if fake.fail_with >= 500 else "invalid_request_error"
            raise _HttpError(fake.fail_with, f"fake failure (HTTP {fake.fail_with})", kind)
        fake._sleep(fake.delay_s)
        reply = fake.chat_reply(body) if callable(fake.chat_reply) else fake.chat_reply
        model = str(body.get("model") or "fake-model")
        usage = {"prompt_tokens": _count_tokens(body.get("messages", []))}
        usage["completion_tokens"] = _count_tokens(reply)
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        base = {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "created": int(time.time())}
        base["model"] = model
        if body.get("stream"):
            options = body.get("stream_options") or {}
            self._stream(base, reply, usage if options.get("include_usage") else None)
            return
        message = {"role": "assistant", "content": reply}
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
        self._send_json(
            200, {**base, "object": "chat.completion", "choices": [choice], "usage": usage}
        )

    def _stream(self, base: dict[str, Any], reply: str, usage: dict[str, int] | None) -> None:
        def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            return {**base, "object": "chat.completion.chunk", "choices": [choice]}

        def events() -> Iterator[dict[str, Any]]:
            # Same shape as OpenAI: a role-only opener, content deltas, an empty closer carrying
            # finish_reason, then (if asked) a usage chunk with no choices.
            yield chunk({"role": "assistant", "content": ""}, None)
            for piece in _split_for_stream(reply):
                yield chunk({"content": piece}, None)
            yield chunk({}, "stop")
            if usage is not None:
                yield {**base, "object": "chat.completion.chunk", "choices": [], "usage": usage}

        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        # Chunked framing, as real servers use, so the body end is explicit and the socket can
        # stay open (though the SDK itself closes it once it has read [DONE]).
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for event in events():
            self._write_chunk(f"data: {json.dumps(event)}\n\n".encode())
            self.fake._sleep(self.fake.chunk_delay_s)
        self._write_chunk(b"data: [DONE]\n\n")
        self._write_chunk(b"")  # zero-length chunk terminates the body

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):X}\r\n".encode("ascii") + data + b"\r\n")
        self.wfile.flush()  # flush per event so clients see a real incremental stream

    def _embeddings(self, body: dict[str, Any]) -> None:
        raw_input = body.get("input")
        inputs = raw_input if isinstance(raw_input, list) else [raw_input]
        # Token-id arrays are legal OpenAI input; hash their JSON so they still embed stably.
        texts = [x if isinstance(x, str) else json.dumps(x) for x in inputs]
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        for i, text in enumerate(texts):
            vector = [float(x) for x in self.fake.embedding_fn(text)]
            encoded: list[float] | str = vector
            if as_base64:
                # The openai SDK asks for base64 by default and decodes little-endian float32.
                packed = struct.pack(f"<{len(vector)}f", *vector)
                encoded = base64.b64encode(packed).decode("ascii")
            data.append({"object": "embedding", "index": i, "embedding": encoded})
        tokens = _count_tokens(texts)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        model = str(body.get("model") or "fake-embedding")
        self._send_json(200, {"object": "list", "data": data, "model": model, "usage": usage})

    def _rerank(self, body: dict[str, Any]) -> None:
        query = body.get("query")
        documents = body.get("documents")
        if not isinstance(query, str) or not isinstance(documents, list):
            raise _HttpError(400, "rerank needs a string 'query' and a list 'documents'")
        # Cohere-style clients may send {"text": ...} objects instead of bare strings.
        texts = [d.get("text", "") if isinstance(d, dict) else str(d) for d in documents]
        scored = [(i, float(self.fake.rerank_fn(query, t))) for i, t in enumerate(texts)]
        scored.sort(key=lambda pair: pair[1], reverse=True)  # stable: ties keep input order
        top_n = body.get("top_n")
        if isinstance(top_n, int) and top_n >= 0:
            scored = scored[:top_n]
        results = [
            {"index": i, "relevance_score": score, "document": {"text": texts[i]}}
            for i, score in scored
        ]
        model = str(body.get("model") or "fake-reranker")
        usage = {"total_tokens": _count_tokens([query, *texts])}
        rerank_id = f"rerank-{uuid.uuid4().hex[:24]}"
        self._send_json(200, {"id": rerank_id, "model": model, "usage": usage, "results": results})

    def _models(self, _body: Any) -> None:
        models = [
            {"id": m, "object": "model", "created": 0, "owned_by": "fake"}
            for m in self.fake.model_ids
        ]
        self._send_json(200, {"object": "list", "data": models})


class FakeOpenAI:
    """Fake OpenAI-compatible server. Use as ``with FakeOpenAI() as fake:`` or start()/stop().

    Point clients at ``f"{fake.url}/v1"``; inspect ``fake.requests`` afterwards.
    """

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.chat_reply: str | Callable[[dict[str, Any]], str] = "This is a fake reply."
        self.fail_with: int | None = None
        self.delay_s: float = 0.0
        self.chunk_delay_s: float = 0.0  # between streamed chunks: a model that takes its time
        self.fail_routes: dict[str, int] = {}  # path -> HTTP status every request gets
        self.html_routes: set[str] = set()  # paths answered by an HTML page with status 200
        self.embedding_fn: Callable[[str], list[float]] = hash_embedding
        self.rerank_fn: Callable[[str, str], float] = word_overlap
        self.model_ids: list[str] = ["fake-chat", "fake-embedding", "fake-reranker"]
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeOpenAI is not running; call start() first")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeOpenAI:
        if self._server is not None:
            return self
        self._stopping.clear()
        server = self._server = _Server(self)
        # A short poll interval keeps shutdown(), and so stop(), fast.
        kwargs = {"poll_interval": 0.05}
        self._thread = threading.Thread(target=server.serve_forever, kwargs=kwargs, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()  # wake handlers sleeping in delay_s
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def requests_to(self, path: str) -> list[RecordedRequest]:
        """Recorded requests whose path equals `path` (e.g. "/v1/chat/completions")."""
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)
