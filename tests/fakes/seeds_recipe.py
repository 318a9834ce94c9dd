"""The seeds' Qwen3-Reranker recipe, step for step (../shared/reference/qwen3-rag-recipe.md).

The reference both the exactness test and the speed benchmark compare our reranker with: full
vocabulary logits at every position, all documents in one batch padded (left) to the longest.
Kept verbatim in substance on purpose; it is the baseline, not code to improve.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

PREFIX = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query "
    'and the Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n'
    "<|im_start|>user\n"
)
SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"


class RecipeReranker:
    def __init__(
        self, model: Any, tokenizer: Any, instruction: str, max_length: int = 8192
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer  # loaded with padding_side="left", as the recipe does
        self.instruction = instruction
        self.max_length = max_length
        self.token_false_id = tokenizer.convert_tokens_to_ids("no")
        self.token_true_id = tokenizer.convert_tokens_to_ids("yes")
        self.prefix_tokens = tokenizer.encode(PREFIX, add_special_tokens=False)
        self.suffix_tokens = tokenizer.encode(SUFFIX, add_special_tokens=False)

    def format_instruction(self, query: str, doc: str) -> str:
        return f"<Instruct>: {self.instruction}\n<Query>: {query}\n<Document>: {doc}"

    def process_inputs(self, pairs: list[str]) -> Any:
        inputs = self.tokenizer(
            pairs,
            padding=False,
            truncation="longest_first",
            return_attention_mask=False,
            max_length=self.max_length - len(self.prefix_tokens) - len(self.suffix_tokens),
        )
        for i, ele in enumerate(inputs["input_ids"]):
            inputs["input_ids"][i] = self.prefix_tokens + ele + self.suffix_tokens
        return inputs

    def token_ids(self, query: str, documents: Sequence[str]) -> list[list[int]]:
        pairs = [self.format_instruction(query, doc) for doc in documents]
        return [list(ids) for ids in self.process_inputs(pairs)["input_ids"]]

    @torch.no_grad()
    def score(self, query: str, documents: Sequence[str]) -> list[float]:
        pairs = [self.format_instruction(query, doc) for doc in documents]
        inputs = self.tokenizer.pad(
            self.process_inputs(pairs),
            padding=True,
            return_tensors="pt",
            max_length=self.max_length,
        )
        inputs = {key: value.to(self.model.device) for key, value in inputs.items()}
        batch_scores = self.model(**inputs).logits[:, -1, :]
        true_vector = batch_scores[:, self.token_true_id]
        false_vector = batch_scores[:, self.token_false_id]
        batch_scores = torch.stack([false_vector, true_vector], dim=1)
        batch_scores = torch.nn.functional.log_softmax(batch_scores, dim=1)
        return [float(x) for x in batch_scores[:, 1].exp().tolist()]
