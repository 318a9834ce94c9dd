"""A read-only KV cache of the prompt prefix every reranker input shares.

Each (query, document) sequence starts with the same tokens: the system prompt, the
instruction, the query and the `<Document>:` tag. Causal attention means their keys and values
do not depend on what follows, so they are computed once per question and reused by every
batch. Once frozen, `update` returns prefix + new keys/values expanded to the batch without
storing them, so no batch-sized cache outlives a layer's forward pass.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import DynamicCache


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
