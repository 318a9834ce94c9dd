"""Every setting, in the groups the configuration reference shows them in: here what the
index is built from (storage, documents, models), in config/serving.py how questions are
answered (answering, Slack, workers, operations).

`Settings` (config/settings.py) is these groups together. Each field carries its description,
and where the default is decided at run time, the `shown` default the reference prints;
docs/configuration.md and the README's table are generated from here (config/reference.py).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from config.docsets import DocSet, check_doc_sets, effective_sets, parse_doc_sets
from config.specs import SourceSpec

DEFAULT_EMBEDDING_MODEL = "Qwen/Qwen3-Embedding-0.6B"
DEFAULT_RERANKER_MODEL = "Qwen/Qwen3-Reranker-0.6B"
# The task instruction both Qwen3 models were trained with: the embedder's query prompt and
# the reranker's <Instruct>.
DEFAULT_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"


def shown(text: str) -> dict[str, Any]:
    """The default as the reference prints it, where the value is decided at run time."""
    return {"shown": text}


def split_list(value: Any) -> Any:
    """Accept `a,b` and JSON lists from the environment, lists from TOML."""
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("["):
            import json

            return json.loads(stripped)
        return [part for part in (p.strip() for p in stripped.split(",")) if part]
    return value


def none_word(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() in {"", "none", "off", "false"}:
        return None
    return value


def http_url(value: str | None) -> str | None:
    if value is not None and not value.startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL")
    return value


class Storage(BaseModel):
    """Where the index and the bot's memory live."""

    milvus_uri: str = Field(
        "./data/milvus.db",
        description="Milvus Lite file (embedded, one process), or `http://host:19530` for a "
        "Milvus server or `milvus-lite server`",
    )
    milvus_token: SecretStr | None = Field(
        None, description="Token of a Milvus server (`user:password`)"
    )
    milvus_collection: str = Field(
        "docsbot_chunks",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,254}$",
        description="Name of the Milvus collection holding the chunks",
    )
    database_url: str = Field(
        "sqlite:///./data/docsbot.db",
        description="SQLAlchemy URL of the database (SQLite, or "
        "`postgresql+psycopg://user:pass@host/db`)",
    )

    @field_validator("database_url")
    @classmethod
    def _storage_db_url(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError("must be a SQLAlchemy URL starting with sqlite:// or postgresql://")
        return value


class Documents(BaseModel):
    """What is indexed, and how it is cut into chunks."""

    sources: Annotated[list[SourceSpec], NoDecode] = Field(
        default_factory=list,
        description="Folders (`PATH` or `PATH=BASE_URL`), `http(s)` pages or sitemaps, git "
        "repositories (`git+URL[@REF][#SUBDIR][=BASE_URL]`), comma-separated",
    )
    doc_sets: Annotated[list[DocSet], NoDecode] = Field(
        default_factory=list,
        description="Named sets of docs, each with its sources and where it may be searched "
        "(`[[doc_sets]]` tables in docsbot.toml, or a JSON array); none: one set from "
        "DOCSBOT_SOURCES, searchable everywhere",
    )
    offer_private_answers: bool = Field(
        True,
        description="When docs the asker may read in a DM (but the channel may not) answer "
        "clearly better, tell the asker alone, with a button for the answer in a DM",
    )
    chunk_tokens: int = Field(350, ge=32, le=8192, description="Token budget of one chunk")
    chunk_overlap: int = Field(
        40, ge=0, le=1024, description="Tokens repeated between consecutive chunks"
    )
    max_file_bytes: int = Field(
        2_000_000, ge=1, description="Larger files are skipped, with a log line naming them"
    )
    git_cache_dir: str = Field("./data/git", description="Where git sources are cloned and pulled")
    index_delete_guard: float = Field(
        0.2,
        ge=0.0,
        le=1.0,
        description="A run that would delete more than this share of the indexed documents is "
        "held until `docsbot index --confirm-deletions` (1: never hold)",
    )

    @field_validator("sources", mode="before")
    @classmethod
    def _documents_parse_sources(cls, value: Any) -> Any:
        items = split_list(value)
        if not isinstance(items, list):
            return items
        return [SourceSpec.parse(item) if isinstance(item, str) else item for item in items]

    @field_validator("doc_sets", mode="before")
    @classmethod
    def _documents_parse_sets(cls, value: Any) -> Any:
        return parse_doc_sets(value)

    @model_validator(mode="after")
    def _documents_one_way(self) -> Documents:
        check_doc_sets(self.doc_sets, self.sources)
        return self

    @property
    def sets(self) -> list[DocSet]:
        """The doc sets in force: the configured ones, or one from DOCSBOT_SOURCES."""
        return effective_sets(self.doc_sets, self.sources)

    @property
    def index_sources(self) -> list[SourceSpec]:
        """Every source of every set, as the indexer reads them."""
        return [source for doc_set in self.sets for source in doc_set.sources]


class Models(BaseModel):
    """The embedder and the reranker: local models, or servers that run them."""

    embedding_model: str = Field(
        DEFAULT_EMBEDDING_MODEL, description="Hub id or local path of the embedding model"
    )
    embedding_dim: int | None = Field(
        None,
        ge=8,
        le=8192,
        description="Matryoshka truncation of the vectors (e.g. 512)",
        json_schema_extra=shown("the model's"),
    )
    embedding_url: str | None = Field(
        None, description="OpenAI-compatible `/v1` base URL serving the embedding model (vLLM)"
    )
    embedding_api_key: SecretStr | None = Field(
        None, description="Key for `DOCSBOT_EMBEDDING_URL` (OPENAI_API_KEY goes to the LLM only)"
    )
    embedding_batch_size: int | None = Field(
        None,
        ge=1,
        le=1024,
        description="Texts embedded per batch (on a CPU, padding costs more than batching gains)",
        json_schema_extra=shown("4 on CPU, 32 on GPU, 64 remote"),
    )
    query_instruction: str | None = Field(
        None,
        description="Task instruction of the embedder's query prompt",
        json_schema_extra=shown("the model's own"),
    )
    embedding_input_types: Annotated[list[str] | None, NoDecode] = Field(
        None,
        description="`QUERY,DOCUMENT`: the `input_type` sent with each `/v1/embeddings` request "
        "to `DOCSBOT_EMBEDDING_URL`, for questions and for documents (e.g. `query,document`)",
        json_schema_extra=shown("none sent"),
    )
    embedding_query_prefix: str = Field(
        "", description="Text put before each question embedded (E5 served by TEI: `query: `)"
    )
    embedding_document_prefix: str = Field(
        "",
        description="Text put before each document embedded (E5: `passage: `); changing it "
        "needs `docsbot index --rebuild`",
    )
    reranker_model: str | None = Field(
        DEFAULT_RERANKER_MODEL, description="Hub id or local path of the reranker; `none`: off"
    )
    reranker_url: str | None = Field(
        None, description="Base URL of a `/rerank` endpoint (vLLM) instead of a local reranker"
    )
    reranker_api_key: SecretStr | None = Field(
        None, description="Key for `DOCSBOT_RERANKER_URL` (OPENAI_API_KEY goes to the LLM only)"
    )
    reranker_instruction: str = Field(
        DEFAULT_INSTRUCTION, description="The reranker's `<Instruct>`: what counts as relevant"
    )
    reranker_max_length: int = Field(
        1024,
        ge=64,
        le=32768,
        description="Tokens of one question + section pair the reranker reads",
    )
    reranker_batch_size: int | None = Field(
        None,
        ge=1,
        le=256,
        description="Pairs the local reranker scores at once; unset: 4 on a CPU (8 measured no "
        "faster there, and held ~0.9 GB more with OpenVINO), 8 on a GPU",
    )
    model_fallback: bool = Field(
        True,
        description="When the default Qwen3 models cannot be had (no hub, not cached), use the "
        "packaged all-MiniLM-L6-v2 and no reranker, with a warning; `false`: fail instead",
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="Where local models run: `auto`, `cpu` or `cuda`"
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="Precision of local models; `auto`: bf16 where the CPU or GPU has it"
    )
    backend: Literal["auto", "torch", "openvino"] = Field(
        "auto",
        description="Runtime of the local Qwen3 models: `openvino` (CPU only, needs "
        '`pip install "docsbot[openvino]"`; exported once into `models/` beside the index), '
        "`torch`, or `auto`: OpenVINO on an x86 CPU with the extra installed and "
        "`DOCSBOT_DTYPE=auto` (with AMX, only with `DOCSBOT_QUANTIZATION=int8-static`), else torch",
    )
    quantization: Literal["int8", "int8-static", "none"] = Field(
        "int8-static",
        description="OpenVINO models: `int8-static` (int8 weights and activations, calibrated "
        "on documentation: the fastest; its one-time export takes several minutes), `int8` "
        "(weights only: exports in about a minute, slower), or `none`; torch uses "
        "`DOCSBOT_DTYPE`",
    )

    @field_validator("reranker_model", "embedding_url", "reranker_url", mode="before")
    @classmethod
    def _models_none_words(cls, value: Any) -> Any:
        return none_word(value)

    @field_validator("embedding_url", "reranker_url")
    @classmethod
    def _models_urls(cls, value: str | None) -> str | None:
        return http_url(value)

    @field_validator("embedding_input_types", mode="before")
    @classmethod
    def _models_input_types(cls, value: Any) -> Any:
        value = split_list(none_word(value))
        if value is not None and len(value) != 2:
            raise ValueError("must be two values, for queries then documents: `query,document`")
        return value


def groups() -> tuple[type[BaseModel], ...]:
    """Every group, in the order the reference shows them."""
    from config.serving import Answering, Operations, Slack, Workers

    return (Storage, Documents, Models, Answering, Slack, Workers, Operations)
