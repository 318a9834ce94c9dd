"""Qwen3-Reranker: a causal LM judging "does this document answer the query?" yes / no.

Same inputs and the same score as the published recipe (prefix/suffix chat template,
`<Instruct>/<Query>/<Document>`, left padding, p(yes) from the yes/no logits), but computed
without waste: the recipe materialises batch x length x 151,669 vocabulary logits to read two
columns at the last position; here the transformer body runs once, and only the two lm_head
rows (no, yes) are applied to the last hidden state; the prompt prefix all pairs share
(system prompt, instruction, query) is run once per question and its KV cache reused; pairs
are sorted by length and batched, so short documents are not padded to the longest one; and
bf16 is used where the hardware has it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from transformers import DynamicCache

from config.logger import get_logger
from indexer.hardware import ensure_loadable, pick_device, pick_dtype

log = get_logger(__name__)

PREFIX = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query "
    'and the Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n'
    "<|im_start|>user\n"
)
SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"


def format_pair(instruction: str, query: str, document: str) -> str:
    return f"<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {document}"


# The prompt prefix every pair shares (system prompt, instruction, query, `<Document>:`):
# causal attention means its keys and values do not depend on what follows, so they are
# computed once per question and reused by every batch. Once frozen, `update` returns prefix +
# new keys/values expanded to the batch without storing them, so no batch-sized cache outlives
# a layer's forward pass.
class SharedPrefixCache(DynamicCache):
    frozen = False

    def update(
        self,
        key_states: torch.Tensor,
        value_states: torch.Tensor,
        layer_idx: int,
        *args: Any,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.frozen:
            return super().update(key_states, value_states, layer_idx, *args, **kwargs)
        layer: Any = self.layers[layer_idx]
        batch = key_states.shape[0]
        keys = torch.cat([layer.keys.expand(batch, -1, -1, -1), key_states], dim=-2)
        values = torch.cat([layer.values.expand(batch, -1, -1, -1), value_states], dim=-2)
        return keys, values


def common_prefix_length(sequences: list[list[int]]) -> int:
    """Tokens all sequences share, always leaving at least one token of each to run."""
    first = sequences[0]
    shortest = min(len(s) for s in sequences)
    n = 0
    while n < shortest - 1 and all(s[n] == first[n] for s in sequences):
        n += 1
    return n


class Qwen3Reranker:
    backend = "torch"

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        name: str,
        instruction: str,
        max_length: int = 8192,
        batch_size: int = 8,
    ) -> None:
        """Wrap a loaded Qwen3 causal LM; `load()` is the usual way in."""
        self._set_prompt(tokenizer, name, instruction, max_length, batch_size)
        self.device = next(model.parameters()).device
        self.precision = str(next(model.parameters()).dtype).removeprefix("torch.")
        no_id = tokenizer.convert_tokens_to_ids("no")
        yes_id = tokenizer.convert_tokens_to_ids("yes")
        head = model.get_output_embeddings().weight
        # Two rows of the vocabulary projection are all the score needs.
        self.yes_no_rows = head[[no_id, yes_id]].detach().clone().float()
        self.body = model.get_decoder()

    def _set_prompt(
        self, tokenizer: Any, name: str, instruction: str, max_length: int, batch_size: int
    ) -> None:
        """What `encode` and the batching need, whatever runs the model."""
        self.name = name
        self.instruction = instruction
        self.max_length = max_length
        self.batch_size = batch_size
        self.tokenizer = tokenizer
        self.prefix_ids: list[int] = tokenizer.encode(PREFIX, add_special_tokens=False)
        self.suffix_ids: list[int] = tokenizer.encode(SUFFIX, add_special_tokens=False)
        self.pad_id = int(tokenizer.pad_token_id or 0)

    @classmethod
    def load(
        cls,
        name: str,
        *,
        device: str = "auto",
        dtype: str = "auto",
        instruction: str,
        max_length: int = 8192,
        batch_size: int = 8,
    ) -> Qwen3Reranker:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        ref = ensure_loadable(name, "reranker", "DOCSBOT_RERANKER_MODEL")
        target = pick_device(device)
        torch_dtype = pick_dtype(dtype, target)
        local = ref.local_only
        tokenizer = AutoTokenizer.from_pretrained(
            ref.path, padding_side="left", local_files_only=local
        )
        model: Any = AutoModelForCausalLM.from_pretrained(
            ref.path, dtype=torch_dtype, local_files_only=local
        )
        model.to(target).eval()
        log.info("reranker %s on %s (%s)", name, target, str(torch_dtype).removeprefix("torch."))
        return cls(
            model,
            tokenizer,
            name=name,
            instruction=instruction,
            max_length=max_length,
            batch_size=batch_size,
        )

    def describe(self) -> str:
        """What runs it, for `docsbot serve`'s log and the Home tab: `torch bfloat16`."""
        return f"{self.backend} {self.precision}"

    def encode(self, query: str, documents: Sequence[str]) -> list[list[int]]:
        """Token ids exactly as the recipe builds them (pair truncated, then wrapped)."""
        budget = self.max_length - len(self.prefix_ids) - len(self.suffix_ids)
        pairs = [format_pair(self.instruction, query, doc) for doc in documents]
        encoded = self.tokenizer(
            pairs,
            padding=False,
            truncation="longest_first",
            return_attention_mask=False,
            max_length=budget,
        )
        return [self.prefix_ids + ids + self.suffix_ids for ids in encoded["input_ids"]]

    def _batches(self, lengths: list[int]) -> list[list[int]]:
        """Indices grouped by similar length; a batch holds at most batch_size x the median."""
        order = sorted(range(len(lengths)), key=lambda i: lengths[i])
        budget = self.batch_size * max(1, sorted(lengths)[len(lengths) // 2])
        batches: list[list[int]] = []
        current: list[int] = []
        for i in order:
            longest = lengths[i]  # ascending order: the newcomer is the longest
            if current and (
                len(current) >= self.batch_size or longest * (len(current) + 1) > budget
            ):
                batches.append(current)
                current = []
            current.append(i)
        if current:
            batches.append(current)
        return batches

    @torch.inference_mode()
    def _prefix_cache(self, prefix: list[int]) -> SharedPrefixCache:
        cache = SharedPrefixCache(config=self.body.config)
        if prefix:
            ids = torch.tensor([prefix], dtype=torch.long, device=self.device)
            self.body(input_ids=ids, past_key_values=cache, use_cache=True)
        cache.frozen = True
        return cache

    @torch.inference_mode()
    def _score_rest(
        self, cache: SharedPrefixCache, shared: int, rests: list[list[int]]
    ) -> torch.Tensor:
        """Run each sequence's own tokens on top of the shared prefix, right-padded; the score
        is read at each row's last real token, where the recipe reads its last position."""
        batch, width = len(rests), max(len(r) for r in rests)
        ids = torch.full((batch, width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((batch, shared + width), dtype=torch.long)
        mask[:, :shared] = 1
        for row, rest in enumerate(rests):
            ids[row, : len(rest)] = torch.tensor(rest)
            mask[row, shared : shared + len(rest)] = 1
        positions = torch.arange(shared, shared + width, device=self.device).expand(batch, -1)
        out = self.body(
            input_ids=ids.to(self.device),
            attention_mask=mask.to(self.device),
            position_ids=positions,
            past_key_values=cache,
            use_cache=True,
        )
        last_index = torch.tensor([len(r) - 1 for r in rests], device=self.device)
        last = out.last_hidden_state[torch.arange(batch, device=self.device), last_index].float()
        logits = last @ self.yes_no_rows.T  # (batch, [no, yes])
        return torch.log_softmax(logits, dim=-1)[:, 1].exp().cpu()

    def score(self, query: str, documents: Sequence[str]) -> list[float]:
        if not documents:
            return []
        sequences = self.encode(query, documents)
        shared = common_prefix_length(sequences)
        cache = self._prefix_cache(sequences[0][:shared])
        rests = [s[shared:] for s in sequences]
        scores = [0.0] * len(sequences)
        for batch in self._batches([len(r) for r in rests]):
            values = self._score_rest(cache, shared, [rests[i] for i in batch]).tolist()
            for i, value in zip(batch, values, strict=True):
                scores[i] = float(value)
        return scores
