"""The Milvus collection of chunks: dense vectors + Milvus' built-in BM25 on the same text.

The same code talks to Milvus Lite (a local file) and a Milvus server; only the URI differs.
The collection records which embedding model and dimension built it, so a bot started with
another model is refused instead of searching garbage.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
from pymilvus import DataType, Function, FunctionType, MilvusClient

from config.docsets import IMPLICIT
from config.errors import UserError
from config.logger import get_logger
from indexer import lexical
from indexer.chunking import Chunk
from indexer.hits import Hit

log = get_logger(__name__)
SCHEMA_VERSION = "2"  # 2: each chunk carries its doc set
SETLESS_SCHEMA = "1"  # before doc sets: still read, where only the implicit set exists
PROP_MODEL = "docsbot.embedding_model"
PROP_DIM = "docsbot.embedding_dim"
PROP_SCHEMA = "docsbot.schema_version"
OUTPUT_FIELDS = ["source_key", "path", "title", "heading", "url", "text"]
SET_FIELD = "doc_set"
# A plain field with an INVERTED index, not a partition key: at 100,000 chunks in Milvus Lite
# (bench/docset_filter_bench.py) filtered searches cost 0.96-1.16x unfiltered either way, Lite
# does not prune partitions, and a partition key is fixed when the collection is made. A
# server with millions of chunks per set would gain from one; flip this and re-index there.
SET_AS_PARTITION_KEY = False
ANALYZER = {"tokenizer": "standard"}
DELETE_BATCH = 500


SetField = Literal["partition key", "indexed", "none"]


def collection_layout(client: MilvusClient, dim: int, set_field: SetField) -> tuple[Any, Any]:
    """The collection's schema and index parameters. `set_field` is how the doc set is stored:
    bench/docset_filter_bench.py measures the three on this same layout."""
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
    schema.add_field("source_key", DataType.VARCHAR, max_length=1024)
    schema.add_field("path", DataType.VARCHAR, max_length=2048)
    schema.add_field("title", DataType.VARCHAR, max_length=2048)
    schema.add_field("heading", DataType.VARCHAR, max_length=4096)
    schema.add_field("url", DataType.VARCHAR, max_length=4096)
    schema.add_field("text", DataType.VARCHAR, max_length=65535)
    if set_field != "none":
        schema.add_field(
            SET_FIELD,
            DataType.VARCHAR,
            max_length=64,
            is_partition_key=set_field == "partition key",
        )
    # BM25 reads `lexical`: the stemmed, stop-word-free text with title and headings weighted
    # (see indexer.lexical); the analyzer only has to split it on spaces.
    schema.add_field(
        "lexical",
        DataType.VARCHAR,
        max_length=65535,
        enable_analyzer=True,
        analyzer_params=ANALYZER,
    )
    schema.add_field("dense", DataType.FLOAT_VECTOR, dim=dim)
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(
        Function(
            name="content_bm25",
            function_type=FunctionType.BM25,
            input_field_names=["lexical"],
            output_field_names=["sparse"],
        )
    )
    index = client.prepare_index_params()
    index.add_index("dense", index_type="AUTOINDEX", metric_type="IP")
    index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    if set_field == "indexed":
        index.add_index(SET_FIELD, index_type="INVERTED")
    return schema, index


class IndexMismatch(UserError, RuntimeError):
    """The collection was built with another embedding model or dimension."""


class IndexMissing(UserError, RuntimeError):
    """Nothing has been indexed yet."""


class MilvusStore:
    def __init__(
        self,
        client: MilvusClient,
        collection: str,
        model: str,
        dim: int | Callable[[], int],
        *,
        named_sets: bool = False,
    ) -> None:
        """`dim` may be a callable: a remote embedder learns its dimension on first use.
        `named_sets`: doc sets are configured, so an index without them cannot serve."""
        self.client = client
        self.collection = collection
        self.model = model
        self.named_sets = named_sets
        self.has_sets = True  # the collection stores each chunk's set (False: an old index)
        self._dim = dim

    @property
    def dim(self) -> int:
        if callable(self._dim):
            self._dim = self._dim()
        return self._dim

    def exists(self) -> bool:
        return bool(self.client.has_collection(self.collection))

    def _properties(self) -> dict[str, Any] | None:
        if not self.exists():
            return None
        return dict(self.client.describe_collection(self.collection).get("properties") or {})

    def recorded_model(self) -> tuple[str, int] | None:
        props = self._properties()
        if props is None:
            return None
        return str(props.get(PROP_MODEL, "?")), int(props.get(PROP_DIM, 0) or 0)

    def check_model(self) -> None:
        """Refuse to read or write an index built by another embedding model."""
        recorded = self.recorded_model()
        if recorded is None:
            raise IndexMissing(
                f"No index yet in collection {self.collection!r}: run `docsbot index` first."
            )
        if recorded != (self.model, self.dim):
            raise IndexMismatch(
                f"The index in collection {self.collection!r} was built with "
                f"{recorded[0]} ({recorded[1]} dims), but the configured embedding model is "
                f"{self.model} ({self.dim} dims). Re-index with `docsbot index --rebuild`, or set "
                f"DOCSBOT_EMBEDDING_MODEL / DOCSBOT_EMBEDDING_DIM back to what built it."
            )
        schema = (self._properties() or {}).get(PROP_SCHEMA)
        self.has_sets = schema == SCHEMA_VERSION
        if schema == SETLESS_SCHEMA and self.named_sets:
            raise IndexMismatch(
                f"The index in collection {self.collection!r} was built before doc sets, and "
                "doc_sets are configured now: re-index with `docsbot index --rebuild` so each "
                "chunk knows its set."
            )
        if schema not in (SCHEMA_VERSION, SETLESS_SCHEMA):
            raise IndexMismatch(
                f"The index in collection {self.collection!r} has layout version {schema}, this "
                f"docsbot writes version {SCHEMA_VERSION}: re-index with `docsbot index --rebuild`."
            )
        self.load()

    def create(self) -> None:
        set_field: SetField = "partition key" if SET_AS_PARTITION_KEY else "indexed"
        schema, index = collection_layout(self.client, self.dim, set_field)
        self.client.create_collection(
            self.collection,
            schema=schema,
            index_params=index,
            consistency_level="Strong",
            properties={
                PROP_MODEL: self.model,
                PROP_DIM: str(self.dim),
                PROP_SCHEMA: SCHEMA_VERSION,
            },
        )
        log.info(
            "created Milvus collection %s (%s, %d dims)", self.collection, self.model, self.dim
        )
        self.has_sets = True

    def ensure(self) -> bool:
        """Create the collection if absent (True), else check it matches the model."""
        if not self.exists():
            self.create()
            return True
        self.check_model()
        return False

    def load(self) -> None:
        """A collection is 'released' after a restart; searching needs it loaded."""
        self.client.load_collection(self.collection)

    def drop(self) -> None:
        if self.exists():
            self.client.drop_collection(self.collection)

    def upsert(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        rows = [
            {
                "id": c.id,
                "source_key": c.source_key,
                "path": c.path,
                "title": c.title[:2000],
                "heading": c.heading[:4000],
                "url": c.url[:4000],
                "text": c.text,
                "lexical": lexical.document_text(c.title, c.heading, c.text)[:60000],
                "dense": vector.tolist(),
                **({SET_FIELD: c.doc_set} if self.has_sets else {}),
            }
            for c, vector in zip(chunks, vectors, strict=True)
        ]
        if rows:
            self.client.upsert(self.collection, rows)

    def delete(self, ids: Sequence[str]) -> None:
        for start in range(0, len(ids), DELETE_BATCH):
            self.client.delete(self.collection, ids=list(ids[start : start + DELETE_BATCH]))

    def count(self) -> int:
        if not self.exists():  # a fresh install, before its first run
            return 0
        result = self.client.query(self.collection, filter="", output_fields=["count(*)"])
        return int(result[0]["count(*)"]) if result else 0

    @staticmethod
    def _hits(result: Any) -> list[Hit]:
        hits = []
        for row in result[0] if result else []:
            entity = row.get("entity", {})
            hits.append(
                Hit(
                    id=str(row["id"]),
                    score=float(row["distance"]),
                    **{name: str(entity.get(name, "")) for name in OUTPUT_FIELDS},
                    doc_set=str(entity.get(SET_FIELD) or IMPLICIT),
                )
            )
        return hits

    def _scope(self, sets: Sequence[str] | None) -> dict[str, Any]:
        """The search arguments that keep it within `sets` (None: every set)."""
        if sets is None or not self.has_sets:
            return {"output_fields": OUTPUT_FIELDS}
        names = ", ".join(json.dumps(name) for name in sets)
        return {"output_fields": [*OUTPUT_FIELDS, SET_FIELD], "filter": f"{SET_FIELD} in [{names}]"}

    def search_dense(
        self, vector: list[float], limit: int, sets: Sequence[str] | None = None
    ) -> list[Hit]:
        """The nearest chunks; `sets`: only chunks of these doc sets (an empty list: none)."""
        if sets is not None and not sets:
            return []
        result = self.client.search(
            self.collection,
            data=[vector],
            anns_field="dense",
            limit=limit,
            search_params={"metric_type": "IP"},
            **self._scope(sets),
        )
        return self._hits(result)

    def search_bm25(self, text: str, limit: int, sets: Sequence[str] | None = None) -> list[Hit]:
        if sets is not None and not sets:
            return []
        result = self.client.search(
            self.collection,
            data=[lexical.normalise(text) or text],
            anns_field="sparse",
            limit=limit,
            search_params={"metric_type": "BM25"},
            **self._scope(sets),
        )
        return self._hits(result)
