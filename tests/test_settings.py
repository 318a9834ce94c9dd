"""Settings: defaults, environment / TOML sources, aliases, secrets and readable errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import SecretStr

from config.settings import (
    DEFAULT_EMBEDDING_MODEL,
    DEFAULT_RERANKER_MODEL,
    Settings,
    SettingsError,
    SourceSpec,
    load_settings,
)


def config_listing(settings: Settings) -> str:
    """What `docsbot config` prints: one `name value` line per field of model_dump()."""
    lines = []
    for name, value in settings.model_dump().items():
        if name == "sources":
            value = [SourceSpec.model_validate(s).location for s in value] or "(none)"
        lines.append(f"{name:22} {value}")
    return "\n".join(lines)


def test_defaults_are_embedded_storage_under_data_and_the_qwen3_models() -> None:
    settings = load_settings()

    assert settings.milvus_uri == "./data/milvus.db"
    assert settings.milvus_is_lite is True
    assert settings.database_url == "sqlite:///./data/docsbot.db"
    assert settings.embedding_model == DEFAULT_EMBEDDING_MODEL == "Qwen/Qwen3-Embedding-0.6B"
    assert settings.reranker_model == DEFAULT_RERANKER_MODEL == "Qwen/Qwen3-Reranker-0.6B"
    assert settings.llm_model == "gpt-4o"
    assert settings.sources == []
    assert (settings.chunk_tokens, settings.chunk_overlap) == (350, 40)
    assert (settings.device, settings.dtype, settings.log_level) == ("auto", "auto", "INFO")
    assert settings.openai_api_key is None and settings.slack_bot_token is None
    assert settings.llm_enabled is False


def test_milvus_server_uri_is_not_lite(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCSBOT_MILVUS_URI", "http://milvus:19530")

    assert load_settings().milvus_is_lite is False


def test_sources_from_env_as_comma_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCSBOT_SOURCES", " docs , https://example.com/sitemap.xml,,other ")

    sources = load_settings().sources

    assert [s.location for s in sources] == ["docs", "https://example.com/sitemap.xml", "other"]
    assert [s.base_url for s in sources] == [None, None, None]
    assert [s.is_url for s in sources] == [False, True, False]


def test_sources_from_env_as_json_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "DOCSBOT_SOURCES", json.dumps(["guides=https://docs.example.com/", "https://x.org/page"])
    )

    sources = load_settings().sources

    assert sources == [
        SourceSpec(location="guides", base_url="https://docs.example.com/"),
        SourceSpec(location="https://x.org/page"),
    ]


def test_source_path_with_base_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCSBOT_SOURCES", "site/docs=https://base/")

    (spec,) = load_settings().sources

    assert spec.location == "site/docs"
    assert spec.base_url == "https://base/"
    assert spec.is_url is False
    # The key is the absolute folder, so `docs` and `/abs/docs` are one source.
    assert spec.key == str(tmp_path / "site" / "docs")


def test_source_with_url_containing_equals_is_a_url() -> None:
    (spec,) = load_settings(sources=["https://x.org/search?q=a"]).sources

    assert (spec.location, spec.base_url) == ("https://x.org/search?q=a", None)


def test_reranker_none_word_disables_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCSBOT_RERANKER_MODEL", "none")
    assert load_settings().reranker_model is None

    monkeypatch.setenv("DOCSBOT_RERANKER_MODEL", "BAAI/bge-reranker-base")
    assert load_settings().reranker_model == "BAAI/bge-reranker-base"


def test_openai_and_slack_ecosystem_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-123")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-bot")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "sign-me")
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-app")

    settings = load_settings()

    assert isinstance(settings.openai_api_key, SecretStr)
    assert settings.openai_api_key.get_secret_value() == "sk-test-123"
    assert settings.openai_base_url == "http://127.0.0.1:8000/v1"
    assert settings.slack_bot_token is not None
    assert settings.slack_bot_token.get_secret_value() == "xoxb-bot"
    assert settings.slack_signing_secret is not None
    assert settings.slack_signing_secret.get_secret_value() == "sign-me"
    assert settings.slack_app_token is not None
    assert settings.slack_app_token.get_secret_value() == "xapp-app"


def test_docsbot_prefixed_names_work_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCSBOT_OPENAI_API_KEY", "sk-prefixed")
    monkeypatch.setenv("DOCSBOT_SLACK_BOT_TOKEN", "xoxb-prefixed")

    settings = load_settings()

    assert settings.openai_api_key is not None
    assert settings.openai_api_key.get_secret_value() == "sk-prefixed"
    assert settings.slack_bot_token is not None
    assert settings.slack_bot_token.get_secret_value() == "xoxb-prefixed"


def test_secrets_are_hidden_from_repr_and_config_listing(monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = {
        "OPENAI_API_KEY": "sk-SECRET-openai",
        "SLACK_BOT_TOKEN": "xoxb-SECRET-bot",
        "SLACK_SIGNING_SECRET": "SECRET-signing",
        "SLACK_APP_TOKEN": "xapp-SECRET-app",
        "DOCSBOT_MILVUS_TOKEN": "root:SECRET-milvus",
        "DOCSBOT_EMBEDDING_API_KEY": "SECRET-embedding",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)

    settings = load_settings()
    shown = [repr(settings), str(settings), config_listing(settings)]
    shown.append(settings.model_dump_json())

    for text in shown:
        assert "SECRET" not in text
    assert "**********" in config_listing(settings)
    assert settings.milvus_token is not None
    assert settings.milvus_token.get_secret_value() == "root:SECRET-milvus"


def test_docsbot_toml_in_cwd_is_read(tmp_path: Path) -> None:
    (tmp_path / "docsbot.toml").write_text(
        'sources = ["handbook=https://handbook.example.com/", "https://x.org/sitemap.xml"]\n'
        "chunk_tokens = 512\n"
        'llm_model = "gpt-4o-mini"\n'
    )

    settings = load_settings()

    assert settings.chunk_tokens == 512
    assert settings.llm_model == "gpt-4o-mini"
    assert [(s.location, s.base_url) for s in settings.sources] == [
        ("handbook", "https://handbook.example.com/"),
        ("https://x.org/sitemap.xml", None),
    ]


def test_config_file_env_points_elsewhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "docsbot.toml").write_text("chunk_tokens = 111\n")
    other = tmp_path / "conf" / "prod.toml"
    other.parent.mkdir()
    other.write_text('chunk_tokens = 222\ndevice = "cpu"\n')
    monkeypatch.setenv("DOCSBOT_CONFIG_FILE", str(other))

    settings = load_settings()

    assert (settings.chunk_tokens, settings.device) == (222, "cpu")


def test_env_beats_toml_and_keywords_beat_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "docsbot.toml").write_text('chunk_tokens = 512\ntop_k = 7\ndevice = "cuda"\n')
    monkeypatch.setenv("DOCSBOT_CHUNK_TOKENS", "256")
    monkeypatch.setenv("DOCSBOT_DEVICE", "cpu")

    settings = load_settings(device="auto")

    assert settings.chunk_tokens == 256  # env over toml
    assert settings.top_k == 7  # toml over default
    assert settings.device == "auto"  # keyword over env


@pytest.mark.parametrize(
    ("env", "value", "named", "accepts"),
    [
        ("DOCSBOT_DEVICE", "gpu", "DOCSBOT_DEVICE", "'auto', 'cpu' or 'cuda'"),
        ("DOCSBOT_CHUNK_TOKENS", "5", "DOCSBOT_CHUNK_TOKENS", "greater than or equal to 32"),
        ("DOCSBOT_DATABASE_URL", "mysql://x", "DOCSBOT_DATABASE_URL", "sqlite:// or postgresql://"),
        ("OPENAI_BASE_URL", "ftp://x", "OPENAI_BASE_URL", "http:// or https://"),
        ("DOCSBOT_LOG_LEVEL", "trace", "DOCSBOT_LOG_LEVEL", "'DEBUG', 'INFO', 'WARNING' or"),
        ("DOCSBOT_SOURCES", "docs=ftp://x", "DOCSBOT_SOURCES", "must start with http://"),
    ],
)
def test_bad_values_name_the_variable_and_what_it_accepts(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, named: str, accepts: str
) -> None:
    monkeypatch.setenv(env, value)

    with pytest.raises(SettingsError) as caught:
        load_settings()

    message = str(caught.value)
    assert message.startswith("Invalid configuration:")
    assert named in message
    assert accepts in message
    assert "docsbot.toml" in message  # says where to fix it
    assert "errors.pydantic.dev" not in message  # not pydantic's raw dump
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_every_bad_value_is_reported_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCSBOT_DEVICE", "gpu")
    monkeypatch.setenv("DOCSBOT_DATABASE_URL", "mysql://x")

    with pytest.raises(SettingsError) as caught:
        load_settings()

    lines = str(caught.value).splitlines()
    assert any(line.strip().startswith("DOCSBOT_DEVICE='gpu'") for line in lines)
    assert any(line.strip().startswith("DOCSBOT_DATABASE_URL='mysql://x'") for line in lines)


def test_bad_alias_value_names_the_ecosystem_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "ftp://x")

    with pytest.raises(SettingsError) as caught:
        load_settings()

    assert "\n  OPENAI_BASE_URL='ftp://x':" in str(caught.value)


def test_bad_number_is_shown_not_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCSBOT_CHUNK_TOKENS", "5")

    with pytest.raises(SettingsError) as caught:
        load_settings()

    assert "DOCSBOT_CHUNK_TOKENS='5'" in str(caught.value)


def test_rejected_secret_value_is_never_printed(tmp_path: Path) -> None:
    (tmp_path / "docsbot.toml").write_text("openai_api_key = 987654321\n")

    with pytest.raises(SettingsError) as caught:
        load_settings()

    assert "OPENAI_API_KEY" in str(caught.value)
    assert "987654321" not in str(caught.value)


@pytest.mark.parametrize(
    ("env", "enabled"),
    [
        ({"OPENAI_API_KEY": "sk-x"}, True),
        ({"OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}, True),
        ({"OPENAI_API_KEY": "sk-x", "OPENAI_BASE_URL": "https://llm.internal/v1"}, True),
        ({}, False),
        ({"OPENAI_API_KEY": "sk-x", "DOCSBOT_LLM_MODEL": "none"}, False),
        ({"OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "DOCSBOT_LLM_MODEL": "off"}, False),
    ],
)
def test_llm_enabled_truth_table(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], enabled: bool
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    settings = load_settings()

    assert settings.llm_enabled is enabled
    if "DOCSBOT_LLM_MODEL" in env:
        assert settings.llm_model is None


# --- names docsbot does not know ----------------------------------------------------------------


def test_a_misspelled_variable_stops_docsbot_naming_the_closest_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCSBOT_TOPK", "3")
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert "DOCSBOT_TOPK (environment) (did you mean DOCSBOT_TOP_K?)" in str(raised.value)


def test_a_misspelled_key_in_docsbot_toml_or_dotenv_stops_docsbot(tmp_path: Path) -> None:
    (tmp_path / "docsbot.toml").write_text("chunk_tokns = 512\n")
    (tmp_path / ".env").write_text("DOCSBOT_RERANK_TRESHOLD=0.2\n")
    with pytest.raises(SettingsError) as raised:
        load_settings()
    message = str(raised.value)
    assert "chunk_tokns (docsbot.toml) (did you mean chunk_tokens?)" in message
    assert "DOCSBOT_RERANK_TRESHOLD (.env) (did you mean DOCSBOT_RERANK_THRESHOLD?)" in message


def test_aliases_the_config_file_variable_and_the_suites_own_are_known(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "other.toml").write_text("top_k = 7\n")
    monkeypatch.setenv("DOCSBOT_CONFIG_FILE", str(tmp_path / "other.toml"))
    monkeypatch.setenv("DOCSBOT_OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("DOCSBOT_TEST_ANYTHING", "1")
    settings = load_settings()
    assert settings.top_k == 7 and settings.openai_api_key is not None


def test_every_setting_is_described_and_the_docs_tables_are_current() -> None:
    from config.reference import main

    undocumented = [n for n, f in Settings.model_fields.items() if not f.description]
    assert undocumented == []
    assert main(["--check"]) == 0  # README.md and docs/configuration.md match the code
