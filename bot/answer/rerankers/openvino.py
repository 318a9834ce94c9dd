"""Qwen3-Reranker on OpenVINO: `Qwen3Reranker`'s exact computation, exported once, int8 weights.

The same token ids, length buckets and score (p(yes) from the no/yes rows of lm_head at each
pair's last token), and the same shared-prefix KV reuse, in one exported graph:

    (input_ids B x W, last_index B, past keys/values 1 x heads x P x dim per layer)
        -> (hidden state at each row's last token B x H, the new keys/values of row 0)

The question's prefix runs through it once with an empty past (P = 0) and its keys/values
become the past of every batch of pairs. The two lm_head rows stay outside the graph, in fp32
as in Qwen3Reranker: the score is their difference, which int8 rows would skew.
Rows are padded on the right: with causal attention a row's last real token never sees its
padding, so the graph needs no attention mask. Every new input shape costs the CPU plugin new
kernels and buffers (0.3-0.8 s a batch on the 0.6B model), and a new question brings new pair
widths and batch sizes: so widths are padded up to a few fixed ones (`padded_width`), batches
are cut into power-of-two sizes (`batch_pieces`), and the kernels built for the first questions
serve the later ones. The prefix run is padded the same way and its keys/values cut back to
the real prefix: the past that pairs attend to must stay exact, as the graph has no mask to
hide padding there (a new past length costs nothing measurable: it only changes attention's
shapes, not the weight multiplications').
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bot.answer.rerankers import rerank_batch_size
from bot.answer.rerankers.qwen3 import Qwen3Reranker, common_prefix_length
from config.logger import get_logger
from config.settings import Settings
from indexer.hardware import ensure_loadable
from indexer.model_cache import ModelCache, fingerprint, models_dir
from indexer.openvino_embedder import model_type
from indexer.openvino_runtime import (
    EXPORT_FORMAT,
    OpenVINOUnsupported,
    Runner,
    Steps,
    batch_pieces,
    calibration_ids,
    calibration_version,
    compile_ir,
    export_to_ir,
    or_torch,
    padded_width,
    precision_of,
    runtime_version,
    source_dir,
    versions,
)

log = get_logger(__name__)
SETTING = "DOCSBOT_RERANKER_MODEL"
HEAD = "no_yes_rows.npy"  # lm_head rows of "no" and "yes", fp32


# Subclassed for the recipe's tokenization (`encode`), which must stay identical, and its length
# grouping (`_batches`, here on padded widths); the torch model and its cache are not used.
class OpenVINOReranker(Qwen3Reranker):
    backend = "openvino"
    fixed_shapes = True  # pad to a few shapes (False: exact shapes, for tests and benches)

    def __init__(
        self,
        runner: Runner,
        tokenizer: Any,
        *,
        name: str,
        instruction: str,
        precision: str,
        layers: int,
        kv_heads: int,
        head_dim: int,
        no_yes_rows: np.ndarray,
        max_length: int = 8192,
        batch_size: int = 8,
    ) -> None:
        self._set_prompt(tokenizer, name, instruction, max_length, batch_size)
        self.device = torch.device("cpu")  # what rerank_limit asks a local reranker
        self.precision = precision
        self._run = runner
        self._no_yes = no_yes_rows.astype(np.float64)
        self._layers = layers
        self._kv_shape = (1, kv_heads, 0, head_dim)

    @classmethod
    def open(
        cls,
        name: str,
        *,
        cache_dir: Path,
        quantization: str = "int8",
        dtype: str = "auto",
        instruction: str,
        max_length: int = 8192,
        batch_size: int = 8,
    ) -> OpenVINOReranker:
        """Export (once, cached under `cache_dir`) and compile the reranker `name`."""
        from transformers import AutoConfig, AutoTokenizer

        ref = ensure_loadable(name, "reranker", SETTING)
        source = source_dir(ref)
        key = {
            "format": EXPORT_FORMAT,
            "kind": "reranker",
            "model": name,
            "revision": fingerprint(source),
            "quantization": quantization,
            "openvino": runtime_version(),
        }
        if quantization == "int8-static":
            key["calibration"] = calibration_version()
        what = f"{name} (reranker) to OpenVINO {quantization}"
        entry = ModelCache(cache_dir).get_or_build(
            key, lambda tmp: export_reranker(source, tmp, quantization, what), what
        )
        config = AutoConfig.from_pretrained(str(source), local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(str(source), local_files_only=True)
        compiled = compile_ir(entry, dtype)
        precision = precision_of(compiled, quantization)
        log.info("reranker %s on OpenVINO (%s)", name, precision)
        return cls(
            Runner(compiled),
            tokenizer,
            name=name,
            instruction=instruction,
            precision=precision,
            layers=int(config.num_hidden_layers),
            kv_heads=int(config.num_key_value_heads),
            head_dim=int(getattr(config, "head_dim", None) or 0)
            or int(config.hidden_size) // int(config.num_attention_heads),
            no_yes_rows=np.load(entry / HEAD),
            max_length=max_length,
            batch_size=batch_size,
        )

    def _call(
        self, ids: np.ndarray, last: np.ndarray, past: list[np.ndarray], outputs: int
    ) -> list[np.ndarray]:
        return self._run([ids, last, *past], outputs=outputs)

    def _width(self, longest: int) -> int:
        return padded_width(longest) if self.fixed_shapes else longest

    def _batches(self, lengths: list[int]) -> list[list[int]]:
        """Qwen3Reranker's length groups, on padded widths (rows that pad to the same width
        group freely), each cut into power-of-two batches, longest rows first."""
        if not self.fixed_shapes:
            return super()._batches(lengths)
        out = []
        for group in super()._batches([padded_width(n) for n in lengths]):
            group = sorted(group, key=lambda i: -lengths[i])
            for size in batch_pieces(len(group), self.batch_size):
                out.append(group[:size])
                group = group[size:]
        return out

    def _prefix_past(self, prefix: list[int]) -> list[np.ndarray]:
        empty = [np.zeros(self._kv_shape, dtype=np.float32) for _ in range(2 * self._layers)]
        if not prefix:
            return empty
        # Padded on the right like the pairs; keys/values up to the last real token are the
        # same (causal attention), and only those are kept.
        ids = np.full((1, self._width(len(prefix))), self.pad_id, dtype=np.int64)
        ids[0, : len(prefix)] = prefix
        last = np.asarray([len(prefix) - 1], dtype=np.int64)
        new = self._call(ids, last, empty, 1 + 2 * self._layers)[1:]
        return [np.ascontiguousarray(kv[:, :, : len(prefix)]) for kv in new]

    def _score_rests(self, past: list[np.ndarray], rests: list[list[int]]) -> np.ndarray:
        width = self._width(max(len(r) for r in rests))
        ids = np.full((len(rests), width), self.pad_id, dtype=np.int64)
        for row, rest in enumerate(rests):
            ids[row, : len(rest)] = rest
        last = np.asarray([len(r) - 1 for r in rests], dtype=np.int64)
        (hidden,) = self._call(ids, last, past, 1)
        no_yes = hidden.astype(np.float64) @ self._no_yes.T
        # p(yes) = exp(log_softmax(no, yes)[yes]), as Qwen3Reranker computes it.
        return 1.0 / (1.0 + np.exp(no_yes[:, 0] - no_yes[:, 1]))

    def score(self, query: str, documents: Sequence[str]) -> list[float]:
        if not documents:
            return []
        sequences = self.encode(query, documents)
        shared = common_prefix_length(sequences)
        past = self._prefix_past(sequences[0][:shared])
        rests = [s[shared:] for s in sequences]
        scores = [0.0] * len(sequences)
        for batch in self._batches([len(r) for r in rests]):
            values = self._score_rests(past, [rests[i] for i in batch])
            for i, value in zip(batch, values, strict=True):
                scores[i] = float(value)
        return scores


def export_reranker(source: Path, target: Path, quantization: str, what: str) -> None:
    import json

    from transformers import AutoModelForCausalLM, AutoTokenizer

    step = Steps(what, 4)
    step("loading the model in float32")
    tokenizer = AutoTokenizer.from_pretrained(str(source), local_files_only=True)
    model: Any = AutoModelForCausalLM.from_pretrained(
        str(source), dtype=torch.float32, local_files_only=True
    ).eval()
    rows = [tokenizer.convert_tokens_to_ids("no"), tokenizer.convert_tokens_to_ids("yes")]
    head = model.get_output_embeddings().weight[rows].detach().float().numpy()
    np.save(target / HEAD, head)
    graph = PairScorer(model.get_decoder()).eval()
    config = graph.body.config
    layers, heads, dim = config.num_hidden_layers, config.num_key_value_heads, config.head_dim
    past = tuple(torch.zeros((1, heads, 3, dim)) for _ in range(2 * layers))
    example = (torch.ones((2, 5), dtype=torch.long), torch.tensor([4, 2]), *past)
    batch = torch.export.Dim("batch", max=1024)
    width = torch.export.Dim("width", max=32768)
    prefix = torch.export.Dim("prefix", max=32768)
    shapes = {
        "input_ids": {0: batch, 1: width},
        "last_index": {0: batch},
        "past": tuple({2: prefix} for _ in past),
    }
    names = ["input_ids", "last_index"]
    for i in range(layers):
        names += [f"past_key.{i}", f"past_value.{i}"]
    export_to_ir(
        graph,
        example,
        shapes,
        target,
        quantization=quantization,
        step=step,
        names=names,
        calibration=lambda: calibration_inputs(tokenizer, names, (1, heads, 0, dim)),
    )
    (target / "reranker.json").write_text(json.dumps({"versions": versions()}, indent=2))


def calibration_inputs(
    tokenizer: Any, names: list[str], empty_past: tuple[int, ...]
) -> list[dict[str, np.ndarray]]:
    """Whole question + section prompts (prefix included, so an empty past), as scored."""
    from bot.answer.rerankers.qwen3 import PREFIX, SUFFIX, format_pair
    from config.groups import DEFAULT_INSTRUCTION

    windows = calibration_ids(tokenizer)
    prefix = tokenizer.encode(PREFIX, add_special_tokens=False)
    suffix = tokenizer.encode(SUFFIX, add_special_tokens=False)
    empty = np.zeros(empty_past, dtype=np.float32)
    out = []
    for i, window in enumerate(windows):
        question = tokenizer.decode(windows[(i + 7) % len(windows)][:16])
        pair = format_pair(DEFAULT_INSTRUCTION, question, tokenizer.decode(window))
        ids = prefix + tokenizer.encode(pair, add_special_tokens=False) + suffix
        sample = {
            "input_ids": np.asarray([ids], dtype=np.int64),
            "last_index": np.asarray([len(ids) - 1], dtype=np.int64),
        }
        out.append(sample | {name: empty for name in names[2:]})
    return out


def _cache_class() -> type:
    from transformers import DynamicCache

    class GraphCache(DynamicCache):
        """The prefix keys/values as graph inputs: each layer returns them (expanded to the
        batch) + the new ones, and keeps row 0's new ones as the graph's extra outputs."""

        def __init__(self, config: Any, past: Sequence[torch.Tensor]) -> None:
            super().__init__(config=config)
            self.new: list[torch.Tensor] = []
            layer: Any
            for i, layer in enumerate(self.layers):
                layer.keys, layer.values = past[2 * i], past[2 * i + 1]
                layer.dtype, layer.device = past[0].dtype, past[0].device
                layer.is_initialized = True

        def get_seq_length(self, layer_idx: int = 0) -> Any:
            # DynamicLayer tests numel() == 0, which pins the prefix length while tracing; the
            # symbolic length (not int(): that would pin it too) keeps it dynamic.
            layer: Any = self.layers[layer_idx]
            return layer.keys.shape[-2]

        def update(
            self,
            key_states: torch.Tensor,
            value_states: torch.Tensor,
            layer_idx: int,
            *args: Any,
            **kwargs: Any,
        ) -> tuple[torch.Tensor, torch.Tensor]:
            layer: Any = self.layers[layer_idx]
            batch = key_states.shape[0]
            self.new += [key_states[:1], value_states[:1]]
            keys = torch.cat([layer.keys.expand(batch, -1, -1, -1), key_states], dim=-2)
            values = torch.cat([layer.values.expand(batch, -1, -1, -1), value_states], dim=-2)
            return keys, values

    return GraphCache


class PairScorer(torch.nn.Module):
    """The exported graph: the body on top of the prefix, the hidden state at each row's last
    token (where Qwen3Reranker._score_rest reads it), and row 0's keys/values."""

    def __init__(self, body: Any) -> None:
        super().__init__()
        self.body = body
        self.cache_class = _cache_class()

    def forward(
        self, input_ids: torch.Tensor, last_index: torch.Tensor, *past: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        cache = self.cache_class(self.body.config, past)
        hidden = self.body(input_ids=input_ids, past_key_values=cache, use_cache=True)
        states = hidden.last_hidden_state
        last = states[torch.arange(states.shape[0]), last_index]
        return (last, *cache.new)


def open_reranker(settings: Settings, automatic: bool) -> OpenVINOReranker | None:
    """The OpenVINO reranker for these settings; None where `auto` should keep torch."""
    name = settings.reranker_model
    if name is None:
        return None

    def build() -> OpenVINOReranker:
        if automatic and model_type(source_dir(ensure_loadable(name, "reranker", SETTING))) != (
            "qwen3"
        ):
            raise OpenVINOUnsupported(f"{name} is not a Qwen3 reranker")
        return OpenVINOReranker.open(
            name,
            cache_dir=models_dir(settings),
            quantization=settings.quantization,
            dtype=settings.dtype,
            instruction=settings.reranker_instruction,
            max_length=settings.reranker_max_length,
            batch_size=rerank_batch_size(settings, "cpu"),
        )

    return or_torch(build, automatic, "reranker")
