"""Tiny, randomly initialised Qwen3 models saved to disk for offline tests.

The real Qwen3-Embedding / Qwen3-Reranker checkpoints are hundreds of MB and need the Hugging Face
hub; these builders produce the *same architecture and on-disk layout* in a few KB so the code
paths that load and run them (AutoModelForCausalLM, AutoTokenizer, SentenceTransformer) are
exercised for real. The weights are random: outputs are deterministic per seed but meaningless.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM, Qwen3Model

__all__ = [
    "EMBEDDER_PROMPTS",
    "SPECIAL_TOKENS",
    "build_embedder",
    "build_reranker",
    "build_tokenizer",
    "write_sentence_transformers_files",
]

# Qwen's chat-control tokens are "special" (dropped by skip_special_tokens) while the thinking
# markers are plain added tokens, mirroring the real Qwen3 tokenizer_config.json.
_SPECIAL = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
_THINK = ("<think>", "</think>")
SPECIAL_TOKENS: tuple[str, ...] = _SPECIAL + _THINK

# Copied verbatim from Qwen/Qwen3-Embedding-0.6B's config_sentence_transformers.json so code that
# relies on prompt_name="query" behaves as in production.
EMBEDDER_PROMPTS: dict[str, str] = {
    "query": "Instruct: Given a web search query, retrieve relevant passages that answer the query"
    "\nQuery:",
    "document": "",
}

# A minimal ChatML template; enough for apply_chat_template to produce Qwen-shaped prompts.
_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Varied enough for BPE to learn several hundred merges (so the vocab lands in the 600-1000
# range) while staying small enough to train in milliseconds. The bare "yes"/"no" lines matter:
# the reranker scores P("yes") vs P("no") after "\n\n", and byte-level BPE only yields those as
# single tokens (without the "Ġ" space prefix) if they occur as standalone pre-tokens.
_CORPUS = """\
The documentation bot answers questions about your product in Slack, with citations.
It searches an index of pages, ranks the passages, and asks a language model to write a reply.
Every answer links back to the source page so that people can check the details themselves.
Install the package, configure the workspace token, and run the indexer before the first query.
The indexer crawls the site map, splits each page into chunks, and stores their embeddings.
A chunk is a short passage of text: a heading, a few paragraphs, or a code example.
When a user mentions the bot in a channel, it reads the thread and retrieves relevant chunks.
The reranker reads the query and one document at a time and judges whether they match.
If nothing relevant is found, the bot says so instead of guessing an answer.
Administrators can schedule a nightly refresh, or trigger one by hand from the command line.
Errors are logged with the request identifier, the channel, and the time it took to respond.
How do I reset my password? Open the settings page, choose security, and follow the steps.
Where are the release notes? They are published on the changelog page after every version.
Can I export my data? Yes, from the account menu you can download a JSON or CSV archive.
Does the service support single sign-on? Yes, SAML and OpenID Connect are both available.
Is there a rate limit? Requests above one hundred per minute receive status code 429.
What happens when the server is down? Clients retry with exponential backoff and jitter.
Quick brown foxes jump over lazy dogs; zebras and owls watch quietly from the valley.
Judge whether the Document meets the requirements based on the Query and the Instruct provided.
Note that the answer can only be "yes" or "no".
yes
no
yes
no
"""


def _train_backend(vocab_size: int) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    # Byte-level pre-tokenisation without a prefix space matches Qwen: "yes" at the start of a
    # line is a different token from " yes" mid-sentence.
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(_SPECIAL),
        # Seeding the full byte alphabet means any input (emoji, accents) round-trips losslessly.
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    # Repetition raises pair counts so merges are learned in a stable, frequency-driven order.
    tok.train_from_iterator([_CORPUS] * 8, trainer=trainer)
    return tok


def _make_tokenizer(vocab_size: int = 800) -> PreTrainedTokenizerFast:
    fast = PreTrainedTokenizerFast(
        tokenizer_object=_train_backend(vocab_size),
        # Qwen pads with EOS and has no BOS/UNK: byte-level BPE can encode any input.
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        model_max_length=2048,
        chat_template=_CHAT_TEMPLATE,
    )
    fast.add_special_tokens({"additional_special_tokens": list(_SPECIAL[1:])})
    fast.add_tokens(list(_THINK))
    for word in ("yes", "no", *SPECIAL_TOKENS):
        ids = fast.encode(word, add_special_tokens=False)
        if len(ids) != 1:
            # Fail loudly here rather than let a reranker test silently score sub-word pieces.
            raise RuntimeError(f"tiny tokenizer splits {word!r} into {ids}")
    return fast


def build_tokenizer(path: Path) -> None:
    """Train the tiny byte-level BPE tokenizer and save it (tokenizer.json + config) to `path`.

    Padding side is left at the library default (right); callers pass ``padding_side``.
    """
    path.mkdir(parents=True, exist_ok=True)
    _make_tokenizer().save_pretrained(str(path))


def _config(tokenizer: PreTrainedTokenizerFast, hidden_size: int, layers: int) -> Qwen3Config:
    eos_id = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    if not isinstance(eos_id, int):
        raise TypeError(f"unexpected id for <|endoftext|>: {eos_id!r}")
    return Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        tie_word_embeddings=True,
        max_position_embeddings=2048,
        pad_token_id=eos_id,
        eos_token_id=eos_id,
        bos_token_id=None,
    )


def build_reranker(path: Path, *, hidden_size: int = 64, layers: int = 2, seed: int = 0) -> Path:
    """Save a tiny Qwen3ForCausalLM + tokenizer to `path` (Qwen3-Reranker layout); return `path`.

    Load with ``AutoModelForCausalLM.from_pretrained(path)`` and
    ``AutoTokenizer.from_pretrained(path, padding_side="left")``.
    """
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = _make_tokenizer()
    torch.manual_seed(seed)
    model = Qwen3ForCausalLM(_config(tokenizer, hidden_size, layers))
    model.save_pretrained(str(path), safe_serialization=True)
    tokenizer.save_pretrained(str(path))
    return path


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def build_embedder(path: Path, *, hidden_size: int = 64, layers: int = 2, seed: int = 0) -> Path:
    """Save a tiny sentence-transformers model (Qwen3-Embedding layout) to `path`; return `path`.

    Modules: Qwen3Model -> last-token pooling -> L2 normalise. ``model.prompts["query"]`` carries
    Qwen3-Embedding's instruction prompt. Load with ``SentenceTransformer(str(path))``.
    """
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = _make_tokenizer()
    torch.manual_seed(seed)
    model = Qwen3Model(_config(tokenizer, hidden_size, layers))
    model.save_pretrained(str(path), safe_serialization=True)
    tokenizer.save_pretrained(str(path))

    write_sentence_transformers_files(path, hidden_size, max_seq_length=2048)
    return path


def write_sentence_transformers_files(path: Path, dim: int, *, max_seq_length: int) -> None:
    """The sentence-transformers files of a Qwen3 embedder directory, last-token pooled and
    normalised, with Qwen3-Embedding's prompts (also used by bench/embed_bench.py).

    Written by hand, in the legacy format the real Qwen3-Embedding repo ships, rather than via
    SentenceTransformer.save(): ST 6 would write its newer layout, and loading the *published*
    layout is what production actually does. It also keeps this builder independent of the ST
    version's module import paths."""
    _write_json(
        path / "modules.json",
        [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {
                "idx": 1,
                "name": "1",
                "path": "1_Pooling",
                "type": "sentence_transformers.models.Pooling",
            },
            {
                "idx": 2,
                "name": "2",
                "path": "2_Normalize",
                "type": "sentence_transformers.models.Normalize",
            },
        ],
    )
    _write_json(
        path / "sentence_bert_config.json",
        {"max_seq_length": max_seq_length, "do_lower_case": False},
    )
    _write_json(
        path / "1_Pooling" / "config.json",
        {
            "word_embedding_dimension": dim,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": False,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "pooling_mode_weightedmean_tokens": False,
            "pooling_mode_lasttoken": True,
            "include_prompt": True,
        },
    )
    # Normalize has no parameters; the real repo has no 2_Normalize folder at all, but an empty
    # directory is harmless and makes the layout self-describing.
    (path / "2_Normalize").mkdir(exist_ok=True)
    _write_json(
        path / "config_sentence_transformers.json",
        {"prompts": EMBEDDER_PROMPTS, "default_prompt_name": None, "similarity_fn_name": "cosine"},
    )
