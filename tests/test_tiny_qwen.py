"""The tiny Qwen3 builders must produce directories the real loaders accept offline, with the
properties production code relies on: single-token "yes"/"no", a query prompt, unit vectors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from sentence_transformers import SentenceTransformer
from transformers import AutoModelForCausalLM, AutoTokenizer

from tests.fakes.tiny_qwen import (
    EMBEDDER_PROMPTS,
    SPECIAL_TOKENS,
    build_embedder,
    build_reranker,
    build_tokenizer,
)


@pytest.fixture(scope="module")
def reranker_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_reranker(tmp_path_factory.mktemp("reranker"))


@pytest.fixture(scope="module")
def embedder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_embedder(tmp_path_factory.mktemp("embedder"))


def test_tokenizer_tokens(tmp_path: Path) -> None:
    build_tokenizer(tmp_path)
    tok = AutoTokenizer.from_pretrained(str(tmp_path))
    assert 600 <= len(tok) <= 1000
    for token in ("yes", "no", *SPECIAL_TOKENS):
        token_id = tok.convert_tokens_to_ids(token)
        assert isinstance(token_id, int) and token_id != tok.unk_token_id
        assert tok.encode(token, add_special_tokens=False) == [token_id]
    assert tok.pad_token == tok.eos_token == "<|endoftext|>"
    assert tok.padding_side == "right"  # left padding is the caller's choice, not baked in
    text = "Héllo wörld 😀 <think>\n\n</think>\n\nyes"
    assert tok.decode(tok.encode(text, add_special_tokens=False)) == text


def test_reranker_forward(reranker_dir: Path) -> None:
    tok = AutoTokenizer.from_pretrained(str(reranker_dir), padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(str(reranker_dir))
    assert not model.training
    assert type(model).__name__ == "Qwen3ForCausalLM"
    assert (reranker_dir / "model.safetensors").is_file()
    batch = tok(
        ["<|im_start|>user\nIs this relevant?<|im_end|>\n", "short"],
        padding=True,
        return_tensors="pt",
    )
    assert batch["attention_mask"][1, 0] == 0  # left padded
    with torch.no_grad():
        logits = model(**batch).logits
    assert logits.shape == (2, batch["input_ids"].shape[1], len(tok))
    yes_no = logits[:, -1, [tok.convert_tokens_to_ids("yes"), tok.convert_tokens_to_ids("no")]]
    assert torch.isfinite(yes_no).all()


def test_reranker_is_deterministic_per_seed(tmp_path: Path) -> None:
    weights = []
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        model = AutoModelForCausalLM.from_pretrained(
            str(build_reranker(tmp_path / name, seed=seed))
        )
        weights.append(model.state_dict()["model.embed_tokens.weight"].clone())
    assert torch.equal(weights[0], weights[1])
    assert not torch.equal(weights[0], weights[2])


def test_embedder_layout_and_encode(embedder_dir: Path) -> None:
    pooling = json.loads((embedder_dir / "1_Pooling" / "config.json").read_text())
    assert pooling["pooling_mode_lasttoken"] is True
    model = SentenceTransformer(str(embedder_dir), device="cpu")
    assert model.prompts["query"] == EMBEDDER_PROMPTS["query"] != ""
    assert model.prompts["document"] == ""
    queries = model.encode(["how do I reset my password?", "x"], prompt_name="query")
    docs = model.encode(["Open the settings page.", "x"])
    assert queries.shape == docs.shape == (2, 64)
    for vectors in (queries, docs):
        assert torch.allclose(torch.linalg.norm(torch.from_numpy(vectors), dim=1), torch.ones(2))
    # The instruction prompt must actually reach the model.
    assert not torch.allclose(torch.from_numpy(queries[1]), torch.from_numpy(docs[1]))
