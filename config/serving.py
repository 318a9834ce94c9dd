"""The settings of answering questions: search and the LLM, Slack, the workers, and keeping
it running. The groups of what the index is built from are in config/groups.py."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from config.groups import http_url, none_word, shown, split_list
from config.specs import parse_schedule


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
    answer_deadline_s: float = Field(
        120.0,
        gt=0,
        description="The most an answer may take, model included; past it the asker gets an "
        "apology instead of a wait",
    )
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
    slack_rate_share: float = Field(
        1.0,
        gt=0.0,
        le=1.0,
        description="This process's share of Slack's per-workspace rate limits: with N bot "
        "replicas on one workspace, 1/N each",
    )
    slack_timeout_s: float = Field(
        15.0, gt=0, le=120, description="Seconds one Slack Web API call may take"
    )
    slack_patience_s: float = Field(
        60.0,
        ge=0,
        description="How long a finished answer waits out Slack's rate limits before it goes "
        "back to the queue (to be delivered later, never dropped)",
    )
    max_request_bytes: int = Field(
        1 << 20,
        ge=1024,
        le=64 << 20,
        description="HTTP mode: larger requests to /slack/events are refused before they are "
        "read (Slack's own are a few KB)",
    )
    answer_bots: bool = Field(False, description="Answer mentions from other apps and bots too")

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
    db_connect_timeout_s: int = Field(
        10, ge=1, le=300, description="Seconds to wait for PostgreSQL to accept a connection"
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
