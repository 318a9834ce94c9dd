"""The embedder on OpenVINO: the model exported once (int8 weights), docsbot's own tokenizing.

Same vectors as `LocalEmbedder` up to quantization (cosine >= 0.99 against torch fp32, checked
in tests/test_openvino.py): the same tokenizer, prompts and truncation, last-token pooling and
L2 normalisation. Texts are padded on the right and the graph is causal, so a text's last real
token never sees padding and no attention mask is needed (left-padded rows come out as NaN in
OpenVINO). Widths are padded up to a few fixed ones and batches cut into power-of-two sizes, so
the CPU plugin builds kernels for a shape once and reuses them (each new shape costs it new
kernels and buffers; see bot/answer/rerankers/openvino.py). A call's batches run on all the
compiled model's streams at once (`Runner.map`). sentence-transformers' own
OpenVINO backend needs optimum-intel, which pins transformers < 5 here, hence the direct export.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from config.logger import get_logger
from config.settings import Settings
from indexer.embedding import QWEN3_QUERY_TEMPLATE, Progress, TokenCounter, longest_first
from indexer.hardware import ensure_loadable
from indexer.model_cache import ModelCache, fingerprint, models_dir
from indexer.openvino_runtime import (
    EXPORT_FORMAT,
    OpenVINOUnsupported,
    Runner,
    Steps,
    batch_pieces,
    calibration_ids,
    calibration_version,
    compile_ir,
    document_width,
    export_to_ir,
    or_torch,
    padded_width,
    precision_of,
    runtime_version,
    source_dir,
    versions,
)
from indexer.vectors import normalise

log = get_logger(__name__)
META = "embedder.json"
TOKENIZER = "tokenizer"
# Architectures whose export is tested; `auto` leaves others (e.g. MiniLM) on torch.
KNOWN_TYPES = {"qwen3"}


def model_type(source: Path) -> str:
    try:
        return str(json.loads((source / "config.json").read_text()).get("model_type", ""))
    except (OSError, ValueError):
        return ""


class OpenVINOEmbedder:
    backend = "openvino"
    fixed_shapes = True  # pad to a few shapes (False: exact shapes, for tests and benches)

    def __init__(
        self,
        name: str,
        *,
        cache_dir: Path,
        quantization: str = "int8",
        dtype: str = "auto",
        dim: int | None = None,
        batch_size: int | None = None,
        query_instruction: str | None = None,
        known_only: bool = False,
    ) -> None:
        """`known_only` (DOCSBOT_BACKEND=auto): refuse, before any work, models whose export
        is not tested, so the caller can keep them on torch."""
        from transformers import AutoTokenizer

        ref = ensure_loadable(name, "embedding", "DOCSBOT_EMBEDDING_MODEL")
        source = source_dir(ref)
        if known_only and model_type(source) not in KNOWN_TYPES:
            raise OpenVINOUnsupported(f"{name} is not a Qwen3 embedder")
        key = {
            "format": EXPORT_FORMAT,
            "kind": "embedder",
            "model": name,
            "revision": fingerprint(source),
            "quantization": quantization,
            "openvino": runtime_version(),
        }
        if quantization == "int8-static":
            key["calibration"] = calibration_version()
        what = f"{name} (embedder) to OpenVINO {quantization}"
        entry = ModelCache(cache_dir).get_or_build(
            key, lambda tmp: export_embedder(source, tmp, quantization, what), what
        )
        meta = json.loads((entry / META).read_text(encoding="utf-8"))
        self.tokenizer: Any = AutoTokenizer.from_pretrained(
            str(entry / TOKENIZER), padding_side="right"
        )
        self._counter = TokenCounter(self.tokenizer)
        # Indexing sends many batches at once (Runner.map): streams keep every core busy.
        compiled = compile_ir(entry, dtype, throughput=True)
        self._run = Runner(compiled)
        self.pad_id = int(self.tokenizer.pad_token_id or 0)
        self.precision = precision_of(compiled, quantization)
        native = int(meta["dim"])
        if dim is not None and dim > native:
            raise ValueError(
                f"DOCSBOT_EMBEDDING_DIM={dim} is larger than {name}'s {native} dimensions"
            )
        self.name = name
        self.dim = dim or native
        self.max_tokens = int(meta["max_seq_length"])
        # OpenVINO gains nothing from bigger batches on a CPU; 4 keeps padding low.
        self.batch_size = batch_size or 4
        model_prompt = str((meta.get("prompts") or {}).get("query") or "")
        if model_prompt and query_instruction:
            self.query_prompt = QWEN3_QUERY_TEMPLATE.format(instruction=query_instruction)
        else:
            self.query_prompt = model_prompt
        log.info(
            "embedding model %s on OpenVINO (%s), %d dims, max %d tokens",
            name,
            self.precision,
            self.dim,
            self.max_tokens,
        )

    def describe(self) -> str:
        return f"{self.backend} {self.precision}"

    def _encode(
        self,
        texts: Sequence[str],
        prompt: str | None,
        width_of: Callable[[int], int] = padded_width,
    ) -> np.ndarray:
        if prompt:
            texts = [prompt + text for text in texts]
        rows = self.tokenizer(list(texts), truncation="longest_first", max_length=self.max_tokens)[
            "input_ids"
        ]
        # Batched by token count, longest first (callers sort by characters, which only
        # approximate it): rows of a batch then pad to nearly the same width.
        order = sorted(range(len(rows)), key=lambda i: -len(rows[i]))
        if self.fixed_shapes:
            sizes = batch_pieces(len(rows), self.batch_size)
        else:
            sizes = [
                min(self.batch_size, len(rows) - i) for i in range(0, len(rows), self.batch_size)
            ]
        pieces, batches = [], []
        start = 0
        for size in sizes:
            piece = order[start : start + size]
            start += size
            longest = max(len(rows[i]) for i in piece)
            width = width_of(longest) if self.fixed_shapes else longest
            ids = np.full((size, width), self.pad_id, dtype=np.int64)
            for row, i in enumerate(piece):
                ids[row, : len(rows[i])] = rows[i]
            last = np.asarray([len(rows[i]) - 1 for i in piece], dtype=np.int64)
            pieces.append(piece)
            batches.append((ids, last))
        if not batches:
            return np.zeros((0, self.dim), dtype=np.float32)
        pooled = self._run.map(batches)
        out = np.zeros((len(rows), pooled[0].shape[1]), dtype=np.float32)
        for piece, vectors in zip(pieces, pooled, strict=True):
            out[piece] = vectors
        return normalise(out[:, : self.dim])

    def _encode_documents(self, texts: Sequence[str], prompt: str | None) -> np.ndarray:
        return self._encode(texts, prompt, document_width)

    def embed_documents(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return longest_first(texts, self.dim, self.batch_size * 4, self._encode_documents, progress)

    def embed_query(self, text: str) -> list[float]:
        return [float(x) for x in self._encode([text], self.query_prompt)[0]]

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self._counter(texts)


def pooled_module(body: Any) -> Any:
    """The transformer body with last-token pooling, as one module to export."""
    import torch

    class LastTokenPooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = body

        def forward(self, input_ids: torch.Tensor, last_index: torch.Tensor) -> torch.Tensor:
            # No cache: DynamicCache's first cat onto an empty tensor fails to convert.
            hidden = self.body(input_ids=input_ids, use_cache=False).last_hidden_state
            return hidden[torch.arange(hidden.shape[0]), last_index]

    return LastTokenPooled()


def export_embedder(source: Path, target: Path, quantization: str, what: str) -> None:
    """The sentence-transformers model's transformer + last-token pooling, as one graph, with
    the tokenizer and what the embedder needs to know (prompts, dimension, max length)."""
    import torch
    from sentence_transformers import SentenceTransformer

    step = Steps(what, 4)
    step("loading the model in float32")
    st: Any = SentenceTransformer(str(source), device="cpu", model_kwargs={"dtype": torch.float32})
    modules = list(st)
    pooling = modules[1] if len(modules) > 1 else None
    mode = getattr(pooling, "pooling_mode", None) or (
        "lasttoken" if getattr(pooling, "pooling_mode_lasttoken", False) else None
    )
    body = getattr(modules[0], "auto_model", None)
    if mode != "lasttoken" or body is None or len(modules) > 3:
        raise OpenVINOUnsupported(
            f"{source} is not a last-token-pooled transformer (like Qwen3-Embedding), which is "
            "all the OpenVINO embedder exports: set DOCSBOT_BACKEND=torch for this model."
        )
    # sentence-transformers may format text itself (a chat template, for models saved with a
    # message input format); this path tokenizes plain text, so such a model stays on torch.
    probe = "How do I reset my password?"
    if hasattr(st, "preprocess"):  # sentence-transformers 6: prompts are checked too
        seen = [st.preprocess([probe], prompt=p or None) for p in ("", *st.prompts.values())]
        plain = [st.tokenizer([p + probe]) for p in ("", *st.prompts.values())]
    else:
        seen, plain = [st.tokenize([probe])], [st.tokenizer([probe])]
    pairs = zip(seen, plain, strict=True)
    if any(a["input_ids"][0].tolist() != b["input_ids"][0] for a, b in pairs):
        raise OpenVINOUnsupported(
            f"sentence-transformers formats {source}'s input in a way the OpenVINO embedder "
            "does not reproduce (a chat template?): set DOCSBOT_BACKEND=torch for this model."
        )
    meta = {
        "dim": int(st.get_embedding_dimension() or body.config.hidden_size),
        "max_seq_length": int(st.max_seq_length or 512),
        "prompts": dict(st.prompts or {}),
        "versions": versions(),
    }
    st.tokenizer.save_pretrained(str(target / TOKENIZER))
    (target / META).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    body.eval()
    batch = torch.export.Dim("batch", max=1024)
    length = torch.export.Dim("length", max=32768)
    example = (torch.ones((2, 16), dtype=torch.long), torch.tensor([15, 7]))
    export_to_ir(
        pooled_module(body),
        example,
        {"input_ids": {0: batch, 1: length}, "last_index": {0: batch}},
        target,
        quantization=quantization,
        step=step,
        names=("input_ids", "last_index"),
        calibration=lambda: calibration_inputs(st.tokenizer, str(st.prompts.get("query") or "")),
        smooth_quant_alpha=0.75,
    )


def calibration_inputs(tokenizer: Any, query_prompt: str) -> list[dict[str, np.ndarray]]:
    """Documents, and questions with the query prompt, as the graph takes them."""
    prompt = tokenizer(query_prompt, add_special_tokens=False)["input_ids"] if query_prompt else []
    out = []
    for i, ids in enumerate(calibration_ids(tokenizer)):
        row = (list(prompt) + ids[:30]) if i % 5 == 4 else ids
        out.append(
            {
                "input_ids": np.asarray([row], dtype=np.int64),
                "last_index": np.asarray([len(row) - 1], dtype=np.int64),
            }
        )
    return out


def open_embedder(settings: Settings, automatic: bool) -> OpenVINOEmbedder | None:
    """The OpenVINO embedder for these settings; None where `auto` should keep torch."""

    def build() -> OpenVINOEmbedder:
        return OpenVINOEmbedder(
            settings.embedding_model,
            cache_dir=models_dir(settings),
            quantization=settings.quantization,
            dtype=settings.dtype,
            dim=settings.embedding_dim,
            batch_size=settings.embedding_batch_size,
            query_instruction=settings.query_instruction,
            known_only=automatic,
        )

    return or_torch(build, automatic, "embedding model")
