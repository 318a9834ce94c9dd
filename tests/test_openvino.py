"""The OpenVINO int8 path: close to torch fp32, exported once, cached safely, chosen by `auto`.

The models are the tiny random Qwen3 ones (tests/fakes/tiny_qwen.py); each is exported once
per module into a shared cache. Without the `openvino` extra the export tests skip, while the
choice of backend and the cache's bookkeeping are still checked.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from config.settings import Settings
from indexer import openvino_runtime
from indexer.embedding import LocalEmbedder, build_embedder
from indexer.model_cache import MANIFEST, ModelCache, models_dir
from indexer.openvino_runtime import (
    BackendUnavailable,
    Runner,
    batch_pieces,
    choose_backend,
    document_width,
    openvino_installed,
    padded_width,
)

INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"
QUERY = "How do I reset my password?"
DOCS = [
    "The reranker reads the query and one document at a time and judges whether they match. " * 12,
    "yes",
    "Open the settings page, choose security, and follow the steps.",
    "How do I reset my password? Open the settings page. " * 6,
    "no",
    "Errors are logged with the request identifier, the channel, and the time it took. " * 3,
    "Quick brown foxes jump over lazy dogs.",
]
needs_extra = pytest.mark.skipif(not openvino_installed(), reason="docsbot[openvino] not installed")


@pytest.fixture(scope="module")
def ov_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("openvino")
    pytest.importorskip("nncf")
    # Named like models_dir(settings) beside a Milvus file, so settings can point at it.
    return tmp_path_factory.mktemp("ov-data") / "models"


@pytest.fixture(scope="module")
def ov_embedder(tiny_models: dict[str, Path], ov_cache: Path) -> Any:
    from indexer.openvino_embedder import OpenVINOEmbedder

    return OpenVINOEmbedder(str(tiny_models["embedder"]), cache_dir=ov_cache, batch_size=2)


@pytest.fixture(scope="module")
def ov_reranker(tiny_models: dict[str, Path], ov_cache: Path) -> Any:
    from bot.answer.rerankers.openvino import OpenVINOReranker

    return OpenVINOReranker.open(
        str(tiny_models["reranker"]), cache_dir=ov_cache, instruction=INSTRUCTION, batch_size=3
    )


# --- closeness to torch fp32 ---------------------------------------------------------------


def test_embedder_vectors_are_within_099_cosine_of_torch_fp32(
    ov_embedder: Any, tiny_models: dict[str, Path]
) -> None:
    torch_fp32 = LocalEmbedder(str(tiny_models["embedder"]), device="cpu", dtype="float32")
    texts = [*DOCS, "a", "Is there a rate limit? " * 3]

    ours = ov_embedder.embed_documents(texts)
    expected = torch_fp32.embed_documents(texts)

    assert ours.shape == expected.shape == (len(texts), 64)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert (ours * expected).sum(axis=1).min() >= 0.99
    # Input order is kept although batches run longest first.
    assert not np.allclose(ours[0], ours[1], atol=1e-2)
    query = np.asarray(ov_embedder.embed_query(QUERY))
    assert ov_embedder.query_prompt == torch_fp32.query_prompt != ""
    assert float(query @ np.asarray(torch_fp32.embed_query(QUERY))) >= 0.99
    assert ov_embedder.count_tokens(texts) == torch_fp32.count_tokens(texts)
    assert (ov_embedder.dim, ov_embedder.max_tokens) == (torch_fp32.dim, torch_fp32.max_tokens)
    assert ov_embedder.embed_documents([]).shape == (0, 64)
    assert (ov_embedder.backend, ov_embedder.precision) == ("openvino", "int8")
    assert ov_embedder.describe() == "openvino int8"
    assert torch_fp32.describe() == "torch float32"


def test_reranker_scores_are_within_1e2_of_torch_fp32_in_the_same_order(
    ov_reranker: Any, tiny_models: dict[str, Path]
) -> None:
    from bot.answer.rerankers.qwen3 import Qwen3Reranker

    torch_fp32 = Qwen3Reranker.load(
        str(tiny_models["reranker"]), device="cpu", dtype="float32", instruction=INSTRUCTION
    )
    expected = torch_fp32.score(QUERY, DOCS)

    got = ov_reranker.score(QUERY, DOCS)

    assert ov_reranker.encode(QUERY, DOCS) == torch_fp32.encode(QUERY, DOCS)
    assert len(ov_reranker._batches([len(s) for s in ov_reranker.encode(QUERY, DOCS)])) > 1
    assert max(expected) - min(expected) > 2e-2  # an order to keep
    assert got == pytest.approx(expected, abs=1e-2)
    assert np.argsort(got).tolist() == np.argsort(expected).tolist()
    # One document alone, and any order, score as among the others (the shared prefix); not
    # bit for bit, as int8 activations are quantized per batch.
    assert ov_reranker.score(QUERY, [DOCS[3]]) == pytest.approx([got[3]], abs=1e-3)
    assert ov_reranker.score(QUERY, DOCS[::-1]) == pytest.approx(got[::-1], abs=1e-3)
    assert ov_reranker.score(QUERY, []) == []
    assert ov_reranker.describe() == "openvino int8" and ov_reranker.device.type == "cpu"


class Shapes:
    """Wraps a model's Runner and records the shape of each call's input_ids."""

    def __init__(self, run: Runner) -> None:
        self.run = run
        self.seen: list[tuple[int, ...]] = []

    def __call__(self, inputs: list[np.ndarray], outputs: int = 1) -> list[np.ndarray]:
        self.seen.append(tuple(inputs[0].shape))
        return self.run(inputs, outputs)

    def map(self, batches: Iterable[Sequence[np.ndarray]]) -> list[np.ndarray]:
        batches = list(batches)
        self.seen.extend(tuple(inputs[0].shape) for inputs in batches)
        return self.run.map(batches)


FIXED_WIDTHS = {padded_width(n) for n in range(1, 8193)}
DOCUMENT_WIDTHS = {document_width(n) for n in range(1, 8193)}


def test_fixed_shapes_are_few_and_leave_no_gaps() -> None:
    assert [padded_width(n) for n in (1, 32, 33, 250, 256, 257, 300, 513, 8000)] == [
        32, 32, 64, 256, 256, 288, 320, 576, 8192,
    ]  # fmt: skip
    assert len(FIXED_WIDTHS) == 48 and 16 not in FIXED_WIDTHS
    # Padding adds under 32 tokens, or under an eighth above 256.
    assert all(0 <= padded_width(n) - n < max(32, n / 8) for n in range(1, 9000))
    # Documents: every 16 tokens up to 512, then the same widths; never 16.
    assert [document_width(n) for n in (1, 32, 33, 250, 512, 513)] == [32, 32, 48, 256, 512, 576]
    assert len(DOCUMENT_WIDTHS) == 63 and 16 not in DOCUMENT_WIDTHS
    assert FIXED_WIDTHS <= DOCUMENT_WIDTHS
    assert all(0 <= document_width(n) - n < 16 for n in range(32, 513))
    pieces = [[1], [2, 1], [4, 2, 1], [8], [8, 2, 1]]
    assert [batch_pieces(n, 8) for n in (1, 3, 7, 8, 11)] == pieces
    assert batch_pieces(5, 3) == [2, 2, 1] and batch_pieces(0, 8) == []


def test_padding_to_fixed_shapes_does_not_move_a_score(
    ov_reranker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pairs and the prefix run are right-padded to a few widths, batches cut to powers of
    two: a row's last real token never sees its padding (causal attention), so each score is
    what exact shapes give, and what the document gets scored alone."""
    shapes = Shapes(ov_reranker._run)
    monkeypatch.setattr(ov_reranker, "_run", shapes)
    padded = ov_reranker.score(QUERY, DOCS)
    alone = [ov_reranker.score(QUERY, [doc])[0] for doc in DOCS]

    assert {w for _, w in shapes.seen} <= FIXED_WIDTHS
    assert {b for b, _ in shapes.seen} <= {1, 2}  # batch_size 3: pieces of 2 and 1
    assert alone == pytest.approx(padded, abs=1e-4)
    monkeypatch.setattr(ov_reranker, "fixed_shapes", False)
    shapes.seen.clear()
    exact = ov_reranker.score(QUERY, DOCS)
    assert not {w for _, w in shapes.seen} <= FIXED_WIDTHS  # the check above can fail
    assert exact == pytest.approx(padded, abs=1e-4)


def test_padding_to_fixed_shapes_does_not_move_a_vector(
    ov_embedder: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same for texts, and for a question. (Unpadded, a call of fewer than 5 tokens in all
    computes differently on the CPU, by ~1e-3: padding to 32 or more always avoids that path,
    so the unpadded comparison is made on texts of 8 tokens or more.)"""
    texts = [*DOCS, "a", "Is there a rate limit? " * 3]
    # Documents' batches run side by side on the model's streams, and still come back in order.
    streams = int(ov_embedder._run.compiled.get_property("NUM_STREAMS"))
    assert streams >= min(2, os.cpu_count() or 1)
    shapes = Shapes(ov_embedder._run)
    monkeypatch.setattr(ov_embedder, "_run", shapes)
    padded = ov_embedder.embed_documents(texts)
    alone = np.stack([ov_embedder.embed_documents([t])[0] for t in texts])
    documents_seen = set(shapes.seen)
    shapes.seen.clear()
    query = ov_embedder.embed_query(QUERY)

    assert {w for _, w in documents_seen} <= DOCUMENT_WIDTHS
    assert {w for _, w in documents_seen} - FIXED_WIDTHS  # documents do use the finer widths
    assert {w for _, w in shapes.seen} <= FIXED_WIDTHS  # a question: the coarser widths
    assert {b for b, _ in documents_seen | set(shapes.seen)} <= {1, 2}
    # Rows are batched by token count and come back in input order, each as embedded alone.
    assert np.abs(alone - padded).max() <= 1e-4
    monkeypatch.setattr(ov_embedder, "fixed_shapes", False)
    shapes.seen.clear()
    longer = [i for i, n in enumerate(ov_embedder.count_tokens(texts)) if n >= 8]
    exact = ov_embedder.embed_documents([texts[i] for i in longer])
    assert not {w for _, w in shapes.seen} <= DOCUMENT_WIDTHS
    assert np.abs(exact - padded[longer]).max() <= 1e-4
    assert ov_embedder.embed_query(QUERY) == pytest.approx(query, abs=1e-4)


def test_int8_static_reranker_is_close_too(tiny_models: dict[str, Path], ov_cache: Path) -> None:
    """Activations quantized as well, calibrated on the shipped documentation through the same
    graph (empty past): still within 1e-2 of torch fp32, in the same order."""
    from bot.answer.rerankers.openvino import OpenVINOReranker
    from bot.answer.rerankers.qwen3 import Qwen3Reranker

    static = OpenVINOReranker.open(
        str(tiny_models["reranker"]),
        cache_dir=ov_cache,
        instruction=INSTRUCTION,
        quantization="int8-static",
    )

    assert static.describe() == "openvino int8-static"
    expected = Qwen3Reranker.load(
        str(tiny_models["reranker"]), device="cpu", dtype="float32", instruction=INSTRUCTION
    ).score(QUERY, DOCS)
    got = static.score(QUERY, DOCS)
    assert got == pytest.approx(expected, abs=1e-2)
    assert np.argsort(got).tolist() == np.argsort(expected).tolist()


def test_int8_static_embedder_is_close_too(tiny_models: dict[str, Path], ov_cache: Path) -> None:
    from indexer.openvino_embedder import OpenVINOEmbedder

    static = OpenVINOEmbedder(
        str(tiny_models["embedder"]), cache_dir=ov_cache, quantization="int8-static"
    )
    torch_fp32 = LocalEmbedder(str(tiny_models["embedder"]), device="cpu", dtype="float32")
    texts = [*DOCS, "Is there a rate limit? " * 3]

    assert static.describe() == "openvino int8-static"
    cosines = (static.embed_documents(texts) * torch_fp32.embed_documents(texts)).sum(axis=1)
    assert cosines.min() >= 0.99


def test_calibration_is_real_documentation_in_windows_of_varied_length(
    tiny_models: dict[str, Path],
) -> None:
    """int8-static measures activation ranges on the documentation shipped in
    indexer/calibration/ (HTTPX and Flask, BSD-3-Clause): 64 windows from 64 sections, of
    every length from 64 to 420 tokens, and the export's cache key names that text."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_models["embedder"]))
    sections = openvino_runtime.calibration_sections()
    windows = openvino_runtime.calibration_ids(tokenizer)

    assert len(sections) == 64 and all(len(s) >= 400 for s in sections)
    assert any("httpx" in s for s in sections) and any("Flask" in s for s in sections)
    assert len(windows) == 64 and {len(w) for w in windows} >= {64, 420}
    assert len({tuple(w[:8]) for w in windows}) == 64  # every window from its own section
    assert len(openvino_runtime.calibration_version()) == 12
    licences = (openvino_runtime.CALIBRATION.parent / "LICENSES.md").read_text()
    assert licences.count("Redistribution and use in source and binary forms") == 2


# --- the cache: exported once, verified, rebuilt when unusable -------------------------------


def test_a_second_start_loads_the_export_without_exporting_again(
    ov_embedder: Any, tiny_models: dict[str, Path], ov_cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from indexer.openvino_embedder import OpenVINOEmbedder

    caplog.set_level(logging.INFO, logger="docsbot")
    again = OpenVINOEmbedder(str(tiny_models["embedder"]), cache_dir=ov_cache)

    assert not [r for r in caplog.records if "exporting" in r.getMessage()]
    assert np.allclose(
        again.embed_documents(DOCS[:3]), ov_embedder.embed_documents(DOCS[:3]), atol=1e-2
    )
    [entry] = [p for p in ov_cache.glob("*.embedder.int8.*") if not p.name.startswith(".")]
    manifest = json.loads((entry / MANIFEST).read_text())
    assert manifest["key"]["model"] == str(tiny_models["embedder"])
    assert manifest["key"]["quantization"] == "int8"
    assert {"model.xml", "model.bin"} <= set(manifest["files"])


class Counting:
    """A ModelCache whose export writes two small files and counts its calls."""

    def __init__(self, root: Path) -> None:
        self.store = ModelCache(root)
        self.built: list[Path] = []

    def build(self, folder: Path) -> None:
        self.built.append(folder)
        (folder / "model.xml").write_text("<net/>")
        (folder / "model.bin").write_bytes(bytes(range(256)) * 64)

    def get(self, key: dict[str, Any] | None = None) -> Path:
        return self.store.get_or_build(key or KEY, self.build, "org/m")


KEY = {"format": 1, "kind": "embedder", "model": "org/m", "revision": "abc", "quantization": "int8"}


@pytest.fixture
def cache(tmp_path: Path) -> Counting:
    return Counting(tmp_path / "models")


def test_cache_builds_once_then_verifies(cache: Counting, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="docsbot")
    entry = cache.get()

    messages = [r.getMessage() for r in caplog.records]
    assert any("one-time" in m and "exporting org/m" in m for m in messages)
    assert any(m.startswith("exported org/m in") for m in messages)
    assert cache.get() == entry and len(cache.built) == 1
    # Built in a temporary folder, renamed whole: nothing else is left beside it.
    assert sorted(p.name for p in entry.parent.iterdir() if not p.name.endswith(".lock")) == [
        entry.name
    ]


@pytest.mark.parametrize(
    "damage",
    [
        lambda e: (e / "model.bin").write_bytes(b"\0" * (256 * 64)),  # same size, other bytes
        lambda e: (e / "model.bin").write_bytes(b"short"),
        lambda e: (e / "model.xml").unlink(),
        lambda e: (e / MANIFEST).write_text("{not json"),
        lambda e: (e / MANIFEST).unlink(),  # an export interrupted before its manifest
    ],
)
def test_a_corrupt_export_is_rebuilt_not_trusted(
    cache: Counting,
    damage: Callable[[Path], object],
    caplog: pytest.LogCaptureFixture,
) -> None:
    entry = cache.get()
    damage(entry)
    caplog.set_level(logging.WARNING, logger="docsbot")

    again = cache.get()

    assert again == entry and len(cache.built) == 2
    assert (again / "model.bin").read_bytes() == bytes(range(256)) * 64
    assert any("rebuilding" in r.getMessage() for r in caplog.records)


def test_a_stale_export_is_replaced(cache: Counting) -> None:
    old = cache.get()
    manifest = json.loads((old / MANIFEST).read_text())
    manifest["key"]["revision"] = "older"  # a folder that claims another key is not trusted
    (old / MANIFEST).write_text(json.dumps(manifest))
    assert cache.get() == old and len(cache.built) == 2

    new = cache.get({**KEY, "revision": "def"})  # a new checkpoint: new entry, old one pruned

    assert new != old and not old.exists() and len(cache.built) == 3
    other = cache.get({**KEY, "quantization": "none"})  # another precision lives beside it
    assert new.exists() and other.exists()


def test_a_failed_export_leaves_nothing(tmp_path: Path) -> None:
    def build(folder: Path) -> None:
        (folder / "model.xml").write_text("half")
        raise MemoryError("out of memory while converting")

    store = ModelCache(tmp_path / "models")
    with pytest.raises(MemoryError):
        store.get_or_build(KEY, build, "org/m")

    assert [p for p in (tmp_path / "models").iterdir() if not p.name.endswith(".lock")] == []


def test_models_live_beside_the_index(make_settings: Callable[..., Settings]) -> None:
    lite = make_settings(milvus_uri="/srv/docsbot/index/milvus.db")
    server = make_settings(milvus_uri="http://milvus:19530", git_cache_dir="/var/lib/d/git")

    assert models_dir(lite) == Path("/srv/docsbot/index/models")
    assert models_dir(server) == Path("/var/lib/d/models")
    assert models_dir(Settings()) == Path("data/models")


# --- which backend ---------------------------------------------------------------------------


def test_auto_picks_openvino_only_on_a_cpu_with_the_extra(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(openvino_runtime, "openvino_installed", lambda: True)
    monkeypatch.setattr(openvino_runtime, "is_x86", lambda: True)
    monkeypatch.setattr(openvino_runtime, "cpu_has_amx", lambda: False)
    assert choose_backend(make_settings(dtype="auto")) == ("openvino", True)
    assert choose_backend(make_settings(dtype="auto", quantization="int8")) == ("openvino", True)
    # With AMX, torch bf16 matches int8 weights: only int8-static (the default) is worth it.
    monkeypatch.setattr(openvino_runtime, "cpu_has_amx", lambda: True)
    assert choose_backend(make_settings(dtype="auto")) == ("openvino", True)
    weights_only = make_settings(dtype="auto", quantization="int8")
    assert choose_backend(weights_only) == ("torch", True)
    monkeypatch.setattr(openvino_runtime, "cpu_has_amx", lambda: False)
    # A pinned torch precision, a GPU, or an explicit torch keep torch.
    assert choose_backend(make_settings(dtype="float32")) == ("torch", True)
    assert choose_backend(make_settings(dtype="auto", device="cuda")) == ("torch", True)
    assert choose_backend(make_settings(backend="torch", dtype="auto")) == ("torch", False)
    assert choose_backend(make_settings(backend="openvino")) == ("openvino", False)
    monkeypatch.setattr(openvino_runtime, "is_x86", lambda: False)
    assert choose_backend(make_settings(dtype="auto")) == ("torch", True)
    monkeypatch.setattr(openvino_runtime, "is_x86", lambda: True)
    monkeypatch.setattr(openvino_runtime, "openvino_installed", lambda: False)
    assert choose_backend(make_settings(dtype="auto")) == ("torch", True)
    with pytest.raises(BackendUnavailable, match=r"docsbot\[openvino\]"):
        choose_backend(make_settings(backend="openvino"))
    monkeypatch.setattr(openvino_runtime, "openvino_installed", lambda: True)
    with pytest.raises(BackendUnavailable, match="DOCSBOT_DEVICE=cuda"):
        choose_backend(make_settings(backend="openvino", device="cuda"))


@needs_extra
def test_auto_keeps_models_it_does_not_know_on_torch(
    make_settings: Callable[..., Settings], minilm: LocalEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(openvino_runtime, "is_x86", lambda: True)
    settings = make_settings(embedding_model="sentence-transformers/all-MiniLM-L6-v2", dtype="auto")

    embedder = build_embedder(settings)

    assert isinstance(embedder, LocalEmbedder) and embedder.backend == "torch"
    assert not models_dir(settings).exists()  # nothing was exported


def test_settings_name_the_backend_and_the_quantization() -> None:
    settings = Settings(backend="openvino", quantization="none")
    assert (settings.backend, settings.quantization) == ("openvino", "none")
    assert (Settings().backend, Settings().quantization) == ("auto", "int8-static")
    with pytest.raises(ValueError, match="backend"):
        Settings(backend="onnx")


@needs_extra
def test_build_embedder_and_reranker_use_openvino_when_asked(
    make_settings: Callable[..., Settings],
    tiny_models: dict[str, Path],
    ov_cache: Path,
    ov_embedder: Any,
    ov_reranker: Any,
) -> None:
    from bot.answer.rerankers import build_reranker
    from bot.answer.rerankers.openvino import OpenVINOReranker
    from bot.wiring import rerank_limit
    from indexer.openvino_embedder import OpenVINOEmbedder

    # models_dir is beside the Milvus file: the module's cache, where both are exported.
    settings = make_settings(
        milvus_uri=str(ov_cache.parent / "milvus.db"),
        embedding_model=str(tiny_models["embedder"]),
        reranker_model=str(tiny_models["reranker"]),
        reranker_instruction=INSTRUCTION,
        backend="openvino",
        quantization="int8",  # the fixtures' exports, already in the cache
    )
    assert models_dir(settings) == ov_cache

    embedder = build_embedder(settings)
    reranker = build_reranker(settings)

    assert isinstance(embedder, OpenVINOEmbedder) and isinstance(reranker, OpenVINOReranker)
    # Batches differ (4 against 2), and so do the int8 activations: close, not equal.
    same = embedder.embed_documents(DOCS[:2]) * ov_embedder.embed_documents(DOCS[:2])
    assert same.sum(axis=1).min() > 0.999
    assert reranker.score(QUERY, DOCS[:2]) == pytest.approx(
        ov_reranker.score(QUERY, DOCS[:2]), abs=1e-3
    )
    assert rerank_limit(settings, reranker) == 8


def test_planned_says_what_will_run(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(openvino_runtime, "openvino_installed", lambda: True)
    monkeypatch.setattr(openvino_runtime, "is_x86", lambda: True)
    monkeypatch.setattr(openvino_runtime, "cpu_has_amx", lambda: False)

    assert openvino_runtime.planned(make_settings(dtype="auto")) == "openvino int8-static (auto)"
    weights_only = make_settings(dtype="auto", quantization="int8")
    assert openvino_runtime.planned(weights_only) == "openvino int8 (auto)"
    assert openvino_runtime.planned(make_settings(dtype="float32")) == "torch float32 (auto)"
    assert openvino_runtime.planned(make_settings(backend="torch")) == "torch float32"
    assert (
        openvino_runtime.planned(make_settings(backend="openvino", quantization="none"))
        == "openvino none"
    )


def test_config_and_the_models_say_what_runs_them(
    make_settings: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    tiny_models: dict[str, Path],
) -> None:
    from typer.testing import CliRunner

    from bot.answer.rerankers.qwen3 import Qwen3Reranker
    from bot.cli.app import app
    from bot.cli.operators import planned_models
    from bot.wiring import described

    monkeypatch.setattr(openvino_runtime, "openvino_installed", lambda: True)
    monkeypatch.setattr(openvino_runtime, "is_x86", lambda: True)
    monkeypatch.setattr(openvino_runtime, "cpu_has_amx", lambda: False)
    monkeypatch.setattr("indexer.hardware.pick_device", lambda setting: "cpu")
    both = make_settings(dtype="auto", reranker_model="org/reranker")
    assert planned_models(both) == ("openvino int8-static (auto)",) * 2
    remote = make_settings(embedding_url="http://emb:8000/v1", reranker_model=None)
    assert planned_models(remote) == ("remote http://emb:8000/v1", "none")
    monkeypatch.setattr(openvino_runtime, "openvino_installed", lambda: False)
    embedding, _ = planned_models(make_settings(backend="openvino"))
    assert embedding.startswith("unavailable: ") and "docsbot[openvino]" in embedding

    monkeypatch.chdir(tmp_path)  # no docsbot.toml or .env of the checkout
    monkeypatch.setenv("DOCSBOT_BACKEND", "torch")
    monkeypatch.setenv("DOCSBOT_DTYPE", "bfloat16")
    monkeypatch.setenv("DOCSBOT_RERANKER_MODEL", "none")
    result = CliRunner().invoke(app, ["config"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "embedding runs on      torch bfloat16" in lines
    assert "reranker runs on       none" in lines

    # What `serve` logs: the name and what runs it.
    torch_fp32 = Qwen3Reranker.load(
        str(tiny_models["reranker"]), device="cpu", dtype="float32", instruction=INSTRUCTION
    )
    assert (torch_fp32.backend, torch_fp32.precision) == ("torch", "float32")
    assert described(torch_fp32) == f"{tiny_models['reranker']} (torch float32)"
