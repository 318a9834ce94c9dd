"""Every setting, in the groups the configuration reference shows them in.

`Settings` (config/settings.py) is these groups together. Each field carries its description,
and where the default is decided at run time, the `shown` default the reference prints;
docs/configuration.md and the README's table are generated from here (config/reference.py).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from config.specs import SourceSpec, parse_schedule

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
    chunk_tokens: int = Field(350, ge=32, le=8192, description="Token budget of one chunk")
    chunk_overlap: int = Field(
        40, ge=0, le=1024, description="Tokens repeated between consecutive chunks"
    )
    max_file_bytes: int = Field(
        2_000_000, ge=1, description="Larger files are skipped, with a log line naming them"
    )
    git_cache_dir: str = Field("./data/git", description="Where git sources are cloned and pulled")

    @field_validator("sources", mode="before")
    @classmethod
    def _documents_parse_sources(cls, value: Any) -> Any:
        items = split_list(value)
        if not isinstance(items, list):
            return items
        return [SourceSpec.parse(item) if isinstance(item, str) else item for item in items]


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
        None,
        description="Key for `DOCSBOT_EMBEDDING_URL`",
        json_schema_extra=shown("`OPENAI_API_KEY`"),
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
    reranker_model: str | None = Field(
        DEFAULT_RERANKER_MODEL, description="Hub id or local path of the reranker; `none`: off"
    )
    reranker_url: str | None = Field(
        None, description="Base URL of a `/rerank` endpoint (vLLM) instead of a local reranker"
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
    reranker_batch_size: int = Field(
        8, ge=1, le=256, description="Pairs the local reranker scores at once"
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

    @field_validator("reranker_model", "embedding_url", "reranker_url", mode="before")
    @classmethod
    def _models_none_words(cls, value: Any) -> Any:
        return none_word(value)

    @field_validator("embedding_url", "reranker_url")
    @classmethod
    def _models_urls(cls, value: str | None) -> str | None:
        return http_url(value)


class Answering(BaseModel):
    """How a question becomes an answer: search, rerank, the confidence gate, the LLM."""

    candidates: int = Field(20, ge=1, le=200, description="Hybrid search results kept")
    rerank_candidates: int | None = Field(
        None,
        ge=1,
        le=200,
        description="How many of them the reranker scores (a CPU reranker reads ~250 tokens/s)",
        json_schema_extra=shown("all; 8 for a local reranker on CPU"),
    )
    top_k: int = Field(5, ge=1, le=50, description="Sources given to the LLM")
    rerank_threshold: float = Field(
        0.15, ge=0.0, le=1.0, description="Below this best rerank score the bot abstains"
    )
    llm_model: str | None = Field(
        "gpt-4o", description="Chat model writing the answers; `none`: extractive answers only"
    )
    llm_timeout_s: float = Field(
        60.0, gt=0, description="Seconds the LLM may take to send the next part of an answer"
    )
    llm_max_retries: int = Field(
        2, ge=0, le=10, description="Retries of a failed LLM request (the openai client's own)"
    )
    llm_max_tokens: int = Field(900, ge=16, description="Longest answer, in tokens")
    llm_temperature: float = Field(0.1, ge=0.0, le=2.0, description="The LLM's temperature")
    openai_api_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("OPENAI_API_KEY", "DOCSBOT_OPENAI_API_KEY"),
        description="Key of the LLM endpoint; with it (or a base URL) the LLM writes answers",
    )
    openai_base_url: str | None = Field(
        None,
        validation_alias=AliasChoices("OPENAI_BASE_URL", "DOCSBOT_OPENAI_BASE_URL"),
        description="Any OpenAI-compatible endpoint (vLLM, Azure, Ollama)",
        json_schema_extra=shown("OpenAI's"),
    )

    @field_validator("llm_model", mode="before")
    @classmethod
    def _answering_none_words(cls, value: Any) -> Any:
        return none_word(value)

    @field_validator("openai_base_url")
    @classmethod
    def _answering_url(cls, value: str | None) -> str | None:
        return http_url(value)

    @property
    def llm_enabled(self) -> bool:
        """An LLM writes answers when a model is named and a key or an endpoint is given."""
        return self.llm_model is not None and (
            self.openai_api_key is not None or self.openai_base_url is not None
        )


class Slack(BaseModel):
    """The Slack app: credentials, where `docsbot serve` listens, who it answers."""

    slack_bot_token: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("SLACK_BOT_TOKEN", "DOCSBOT_SLACK_BOT_TOKEN"),
        description="The app's Bot User OAuth Token (`xoxb-…`)",
    )
    slack_signing_secret: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("SLACK_SIGNING_SECRET", "DOCSBOT_SLACK_SIGNING_SECRET"),
        description="Verifies that HTTP requests come from Slack",
    )
    slack_app_token: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("SLACK_APP_TOKEN", "DOCSBOT_SLACK_APP_TOKEN"),
        description="App-level token (`xapp-…`): Socket Mode instead of HTTP, no public URL",
    )
    slack_api_url: str = Field(
        "https://slack.com/api/",
        description="Slack Web API base URL (an egress proxy, or a fake in tests)",
    )
    host: str = Field("0.0.0.0", description="HTTP mode: the address `docsbot serve` listens on")
    port: int = Field(
        3000, ge=0, le=65535, description="HTTP mode: port of `/slack/events` and `/healthz`"
    )
    allowed_channels: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Channel IDs the bot answers in, comma-separated",
        json_schema_extra=shown("every channel it is in"),
    )
    allowed_users: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="User IDs the bot answers, comma-separated",
        json_schema_extra=shown("everyone"),
    )
    slack_command: str = Field(
        "/ask",
        pattern=r"^/[a-z0-9_-]{1,31}$",
        description="The slash command the bot answers (match the manifest)",
    )
    slack_streaming: Literal["auto", "off"] = Field(
        "auto",
        description="`auto`: stream into assistant threads, update a placeholder elsewhere; "
        "`off`: always update a placeholder",
    )

    @field_validator("allowed_channels", "allowed_users", mode="before")
    @classmethod
    def _slack_parse_ids(cls, value: Any) -> Any:
        return split_list(value)

    @field_validator("slack_api_url")
    @classmethod
    def _slack_slack_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value if value.endswith("/") else value + "/"


class Workers(BaseModel):
    """The question queue and the workers answering it."""

    workers: int = Field(
        4,
        ge=1,
        le=64,
        description="Questions answered at the same time (most of an answer is waiting for the "
        "LLM; with a local reranker on a small CPU, fewer answer each one sooner)",
    )
    max_queued: int = Field(
        100, ge=1, description="Waiting questions beyond which people are told the bot is busy"
    )
    question_max_age_s: float = Field(
        900.0, gt=0, description="Older unanswered questions found after a restart get an apology"
    )
    history_turns: int = Field(
        6, ge=0, le=50, description="Earlier messages of a thread the LLM sees"
    )


class Operations(BaseModel):
    """Keeping it running: the re-index schedule, the database, admins, metrics, logs."""

    index_schedule: str = Field(
        "1h",
        description="How often `serve` (or `docsbot scheduler`) re-indexes: an interval "
        "(`30m`, `1h`, `1d`), a crontab line in UTC (`0 */2 * * *`), or `off`",
    )
    index_misfire_grace_s: int = Field(
        3600,
        ge=1,
        description="A run missed while docsbot was down still happens on start if it is at "
        "most this late",
    )
    index_lease_s: float = Field(
        60.0,
        ge=3.0,
        le=3600.0,
        description="One indexing run at a time across processes: a crashed holder's lease "
        "expires after this long",
    )
    db_auto_upgrade: bool = Field(
        True,
        description="Upgrade the database schema on start; `false`: refuse to start and ask "
        "for `docsbot db upgrade`",
    )
    db_pool_size: int = Field(
        10, ge=1, le=200, description="PostgreSQL connections kept open per process"
    )
    admin_users: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="User IDs who may start a re-index from the App Home tab",
        json_schema_extra=shown("nobody"),
    )
    metrics: bool = Field(True, description="Serve Prometheus metrics on `/metrics`")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="`DEBUG`, `INFO`, `WARNING` or `ERROR`"
    )
    log_format: Literal["text", "json"] = Field(
        "text", description="`json`: one JSON object per line, with question ids, for log shippers"
    )

    @field_validator("admin_users", mode="before")
    @classmethod
    def _operations_parse_ids(cls, value: Any) -> Any:
        return split_list(value)

    @field_validator("index_schedule")
    @classmethod
    def _operations_schedule(cls, value: str) -> str:
        parse_schedule(value)  # raises ValueError with the accepted forms
        return value.strip()

    @field_validator("log_level", mode="before")
    @classmethod
    def _operations_upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


GROUPS: tuple[type[BaseModel], ...] = (
    Storage,
    Documents,
    Models,
    Answering,
    Slack,
    Workers,
    Operations,
)
