"""The one validated configuration object, built once in `main` and passed down.

Values come from (highest first) keyword arguments, environment variables (`DOCSBOT_*` plus the
ecosystem's own `SLACK_*` / `OPENAI_*` names), a `.env` file, and `docsbot.toml`.
"""

from __future__ import annotations

import os
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from config.specs import Schedule, SourceSpec, parse_schedule, redact

DEFAULT_EMBEDDING_MODEL = "Qwen/Qwen3-Embedding-0.6B"
DEFAULT_RERANKER_MODEL = "Qwen/Qwen3-Reranker-0.6B"
DEFAULT_RERANK_INSTRUCTION = (
    "Given a web search query, retrieve relevant passages that answer the query"
)
TOML_FILE_ENV = "DOCSBOT_CONFIG_FILE"
__all__ = ["Schedule", "Settings", "SettingsError", "SourceSpec", "load_settings", "parse_schedule"]


class SettingsError(ValueError):
    """A configuration value is unusable; the message names the setting and what it accepts."""


def _split_list(value: Any) -> Any:
    """Accept `a,b` and JSON lists from the environment, lists from TOML."""
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("["):
            import json

            return json.loads(stripped)
        return [part for part in (p.strip() for p in stripped.split(",")) if part]
    return value


def _none_word(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() in {"", "none", "off", "false"}:
        return None
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="DOCSBOT_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        toml_file="docsbot.toml",
    )

    # Storage
    milvus_uri: str = Field(
        "./data/milvus.db",
        description="Milvus Lite file (embedded) or http://host:19530 for a Milvus server",
    )
    milvus_token: SecretStr | None = Field(None, description="Milvus server token (user:pass)")
    milvus_collection: str = Field("docsbot_chunks", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")
    database_url: str = Field(
        "sqlite:///./data/docsbot.db", description="SQLAlchemy URL: SQLite or PostgreSQL"
    )

    # Documents
    sources: Annotated[list[SourceSpec], NoDecode] = Field(
        default_factory=list,
        description="Folders (PATH or PATH=BASE_URL), URLs, and git repositories "
        "(git+URL[@REF][#SUBDIR][=BASE_URL]) to index",
    )
    chunk_tokens: int = Field(350, ge=32, le=8192, description="Token budget of one chunk")
    chunk_overlap: int = Field(40, ge=0, le=1024, description="Tokens repeated between chunks")
    max_file_bytes: int = Field(2_000_000, ge=1, description="Larger files are skipped")

    # Models
    embedding_model: str = DEFAULT_EMBEDDING_MODEL
    embedding_dim: int | None = Field(None, ge=8, le=8192, description="Matryoshka truncation")
    embedding_url: str | None = Field(
        None, description="OpenAI-compatible /v1 base URL serving the embedding model (vLLM)"
    )
    embedding_api_key: SecretStr | None = None
    embedding_batch_size: int | None = Field(
        None,
        ge=1,
        le=1024,
        description="Default: 4 on CPU (padding costs more than batching gains there), 32 on GPU",
    )
    query_instruction: str | None = Field(
        None, description="Task instruction for the query prompt; default: the model's own"
    )
    reranker_model: str | None = DEFAULT_RERANKER_MODEL
    reranker_url: str | None = Field(None, description="Base URL of a /rerank endpoint (vLLM)")
    reranker_instruction: str = DEFAULT_RERANK_INSTRUCTION
    reranker_max_length: int = Field(1024, ge=64, le=32768)
    reranker_batch_size: int = Field(8, ge=1, le=256)
    model_fallback: bool = Field(
        True,
        description="When the default Qwen3 models cannot be had (no hub, not cached), use the "
        "packaged all-MiniLM-L6-v2 and no reranker, with a warning; false: fail instead",
    )
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"

    # Answering
    candidates: int = Field(20, ge=1, le=200, description="Hybrid search results kept")
    rerank_candidates: int | None = Field(
        None,
        ge=1,
        le=200,
        description="How many hybrid results the reranker scores; default all on a GPU or a "
        "remote reranker, 8 on a CPU (seconds, not half a minute, per question)",
    )
    top_k: int = Field(5, ge=1, le=50, description="Sources given to the LLM")
    rerank_threshold: float = Field(
        0.15, ge=0.0, le=1.0, description="Below this best rerank score the bot abstains"
    )
    llm_model: str | None = "gpt-4o"
    llm_timeout_s: float = Field(60.0, gt=0)
    llm_max_retries: int = Field(2, ge=0, le=10)
    llm_max_tokens: int = Field(900, ge=16)
    llm_temperature: float = Field(0.1, ge=0.0, le=2.0)
    openai_api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("OPENAI_API_KEY", "DOCSBOT_OPENAI_API_KEY")
    )
    openai_base_url: str | None = Field(
        None, validation_alias=AliasChoices("OPENAI_BASE_URL", "DOCSBOT_OPENAI_BASE_URL")
    )

    # Slack
    slack_bot_token: SecretStr | None = Field(
        None, validation_alias=AliasChoices("SLACK_BOT_TOKEN", "DOCSBOT_SLACK_BOT_TOKEN")
    )
    slack_signing_secret: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("SLACK_SIGNING_SECRET", "DOCSBOT_SLACK_SIGNING_SECRET"),
    )
    slack_app_token: SecretStr | None = Field(
        None, validation_alias=AliasChoices("SLACK_APP_TOKEN", "DOCSBOT_SLACK_APP_TOKEN")
    )

    slack_api_url: str = Field(
        "https://slack.com/api/",
        description="Slack Web API base URL (an enterprise proxy, or a fake in tests)",
    )
    host: str = Field("0.0.0.0", description="HTTP mode: address `docsbot serve` listens on")
    port: int = Field(3000, ge=0, le=65535, description="HTTP mode: port of /slack/events")
    allowed_channels: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Channel IDs the bot answers in (empty: every channel it is in)",
    )
    allowed_users: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="User IDs the bot answers (empty: everyone)"
    )
    slack_command: str = Field(
        "/ask", pattern=r"^/[a-z0-9_-]{1,31}$", description="The slash command the bot answers"
    )
    slack_streaming: Literal["auto", "off"] = Field(
        "auto",
        description="auto: stream into assistant threads with chat.startStream, update a "
        "placeholder elsewhere; off: always update a placeholder",
    )

    # Worker
    workers: int = Field(
        4,
        ge=1,
        le=64,
        description="Questions answered at the same time (most of an answer is waiting for "
        "the LLM; with a local reranker on a small CPU, fewer answer each one sooner)",
    )
    max_queued: int = Field(
        100, ge=1, description="Waiting questions beyond which people are told the bot is busy"
    )
    question_max_age_s: float = Field(
        900.0, gt=0, description="Older unanswered questions (after a restart) get an apology"
    )
    history_turns: int = Field(
        6, ge=0, le=50, description="Earlier messages of a thread the LLM sees"
    )

    # Indexing schedule and operations
    index_schedule: str = Field(
        "1h",
        description="How often `serve`/`scheduler` re-index: an interval (30m, 1h, 1d), a "
        "crontab line ('0 */2 * * *', UTC), or off",
    )
    index_misfire_grace_s: int = Field(
        3600,
        ge=1,
        description="A run missed while docsbot was down still happens on start if it is at "
        "most this late; later ones are skipped until the next slot",
    )
    index_lease_s: float = Field(
        60.0,
        ge=3.0,
        le=3600.0,
        description="One indexing run at a time across processes: a crashed holder's lease "
        "expires after this long, then another process may index",
    )
    git_cache_dir: str = Field("./data/git", description="Where git sources are cloned and pulled")
    db_auto_upgrade: bool = Field(
        True,
        description="Upgrade the database schema on start when it is behind; false: refuse to "
        "start and ask for `docsbot db upgrade`",
    )
    db_pool_size: int = Field(
        10, ge=1, le=200, description="PostgreSQL connections kept open per process"
    )
    admin_users: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="User IDs who may start a re-index from the App Home tab",
    )
    metrics: bool = Field(True, description="Serve Prometheus metrics on /metrics")

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = Field(
        "text", description="json: one JSON object per line, with question ids, for log shippers"
    )

    @field_validator("sources", mode="before")
    @classmethod
    def _parse_sources(cls, value: Any) -> Any:
        items = _split_list(value)
        if not isinstance(items, list):
            return items
        return [SourceSpec.parse(item) if isinstance(item, str) else item for item in items]

    @field_validator("allowed_channels", "allowed_users", "admin_users", mode="before")
    @classmethod
    def _parse_ids(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("slack_api_url")
    @classmethod
    def _slack_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value if value.endswith("/") else value + "/"

    @field_validator("reranker_model", "llm_model", "embedding_url", "reranker_url", mode="before")
    @classmethod
    def _none_words(cls, value: Any) -> Any:
        return _none_word(value)

    @field_validator("index_schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        parse_schedule(value)  # raises ValueError with the accepted forms
        return value.strip()

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("embedding_url", "reranker_url", "openai_base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("database_url")
    @classmethod
    def _db_url(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError("must be a SQLAlchemy URL starting with sqlite:// or postgresql://")
        return value

    @property
    def llm_enabled(self) -> bool:
        """An LLM writes answers when a model is named and a key or an endpoint is given."""
        return self.llm_model is not None and (
            self.openai_api_key is not None or self.openai_base_url is not None
        )

    @property
    def milvus_is_lite(self) -> bool:
        return not self.milvus_uri.startswith(("http://", "https://", "tcp://", "unix:"))

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Read the config-file location straight from the process environment: it decides
        # where the other values come from, so it cannot itself be one of them.
        toml_path = os.environ.get(TOML_FILE_ENV, "docsbot.toml")
        toml = TomlConfigSettingsSource(settings_cls, toml_file=toml_path)
        return (init_settings, env_settings, dotenv_settings, toml, file_secret_settings)


def _field_of(location: str) -> str:
    """Errors name aliased fields by their alias (OPENAI_BASE_URL); map back to the field."""
    for name, info in Settings.model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices) and location in alias.choices:
            return name
    return location


def _env_name(field: str) -> str:
    info = Settings.model_fields.get(field)
    alias = info.validation_alias if info else None
    if isinstance(alias, AliasChoices) and alias.choices:
        return str(alias.choices[0])
    return f"DOCSBOT_{field.upper()}"


def _is_secret(field: str) -> bool:
    info = Settings.model_fields.get(field)
    return info is not None and "SecretStr" in str(info.annotation)


def describe_validation_error(error: ValidationError) -> str:
    lines = ["Invalid configuration:"]
    for item in error.errors():
        field = _field_of(str(item["loc"][0])) if item["loc"] else "?"
        # A source URL may carry a token (git+https://token@host/...): never echo it.
        shown = "<secret>" if _is_secret(field) else redact(repr(item.get("input")))
        lines.append(f"  {_env_name(field)}={shown}: {item['msg']}")
    lines.append("Fix the value in the environment, .env or docsbot.toml (see `docsbot config`).")
    return "\n".join(lines)


def load_settings(**overrides: Any) -> Settings:
    """Build Settings, turning pydantic's error dump into a message a person can act on."""
    try:
        return Settings(**overrides)
    except ValidationError as error:
        raise SettingsError(describe_validation_error(error)) from None
