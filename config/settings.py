"""The one validated configuration object, built once in `main` and passed down.

Values come from (highest first) keyword arguments, environment variables (`DOCSBOT_*` plus the
ecosystem's own `SLACK_*` / `OPENAI_*` names), a `.env` file, and `docsbot.toml`. The settings
themselves, grouped and described, are in config/groups.py. A name docsbot does not know, in
the environment or in docsbot.toml, stops it with the closest valid name: a misspelled key
would otherwise be silently ignored.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from config.errors import UserError
from config.groups import (
    DEFAULT_EMBEDDING_MODEL,
    DEFAULT_INSTRUCTION,
    DEFAULT_RERANKER_MODEL,
    Documents,
    Models,
    Storage,
)
from config.serving import Answering, Operations, Slack, Workers
from config.specs import Schedule, SourceSpec, parse_schedule, redact

ENV_PREFIX = "DOCSBOT_"
TOML_FILE_ENV = "DOCSBOT_CONFIG_FILE"
DEFAULT_TOML = "docsbot.toml"
DOTENV = ".env"
# Variables docsbot reads that are not settings: where the TOML file is, and the test suite's.
OTHER_VARIABLES = {TOML_FILE_ENV}
RESERVED_PREFIXES = ("DOCSBOT_TEST_",)
__all__ = [
    "DEFAULT_EMBEDDING_MODEL",
    "DEFAULT_INSTRUCTION",
    "DEFAULT_RERANKER_MODEL",
    "Schedule",
    "Settings",
    "SettingsError",
    "SourceSpec",
    "load_settings",
    "parse_schedule",
]


class SettingsError(UserError, ValueError):
    """A configuration value is unusable; the message names the setting and what it accepts."""


# Bases in reverse: pydantic orders fields from the last base to the first, and `docsbot
# config` lists them in the reference's order (Storage first).
class Settings(BaseSettings, Operations, Workers, Slack, Answering, Models, Documents, Storage):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=DOTENV,
        env_file_encoding="utf-8",
        extra="ignore",  # unknown names are reported by `unknown_names`, with a suggestion
        populate_by_name=True,
        toml_file=DEFAULT_TOML,
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
        toml = TomlConfigSettingsSource(settings_cls, toml_file=toml_path())
        return (init_settings, env_settings, dotenv_settings, toml, file_secret_settings)


def toml_path() -> str:
    # Read straight from the process environment: it decides where the other values come
    # from, so it cannot itself be one of them.
    return os.environ.get(TOML_FILE_ENV, DEFAULT_TOML)


def env_name(field: str) -> str:
    """The variable a person sets for `field`: OPENAI_API_KEY, DOCSBOT_TOP_K, …"""
    info = Settings.model_fields.get(field)
    alias = info.validation_alias if info else None
    if isinstance(alias, AliasChoices) and alias.choices:
        return str(alias.choices[0])
    return f"{ENV_PREFIX}{field.upper()}"


def _env_names() -> set[str]:
    names = set(OTHER_VARIABLES)
    for field, info in Settings.model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(str(choice).upper() for choice in alias.choices)
        else:
            names.add(f"{ENV_PREFIX}{field.upper()}")
    return names


def _suggest(name: str, known: set[str]) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def _dotenv_names() -> list[str]:
    if not Path(DOTENV).is_file():
        return []
    from dotenv import dotenv_values

    return [name for name in dotenv_values(DOTENV) if name]


def unknown_names() -> list[str]:
    """Each name docsbot does not know, with the closest one it does: `DOCSBOT_*` variables in
    the environment and in .env, and the keys of docsbot.toml."""
    known_env = _env_names()
    problems = []
    for where, names in (("environment", list(os.environ)), (DOTENV, _dotenv_names())):
        for name in names:
            upper = name.upper()
            if not upper.startswith(ENV_PREFIX) or upper.startswith(RESERVED_PREFIXES):
                continue
            if upper not in known_env:
                problems.append(f"{name} ({where}){_suggest(upper, known_env)}")
    path = Path(toml_path())
    if path.is_file():
        known_keys = set(Settings.model_fields)
        try:
            keys = list(tomllib.loads(path.read_text(encoding="utf-8")))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise SettingsError(f"{path} is not valid TOML: {error}") from None
        for key in keys:
            if key not in known_keys:
                problems.append(f"{key} ({path}){_suggest(key, known_keys)}")
    return problems


def _field_of(location: str) -> str:
    """Errors name aliased fields by their alias (OPENAI_BASE_URL); map back to the field."""
    for name, info in Settings.model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices) and location in alias.choices:
            return name
    return location


def _is_secret(field: str) -> bool:
    info = Settings.model_fields.get(field)
    return info is not None and "SecretStr" in str(info.annotation)


def describe_validation_error(error: ValidationError) -> str:
    lines = ["Invalid configuration:"]
    for item in error.errors():
        field = _field_of(str(item["loc"][0])) if item["loc"] else "?"
        # A source URL may carry a token (git+https://token@host/...): never echo it.
        shown = "<secret>" if _is_secret(field) else redact(repr(item.get("input")))
        lines.append(f"  {env_name(field)}={shown}: {item['msg']}")
    lines.append("Fix the value in the environment, .env or docsbot.toml (see `docsbot config`).")
    return "\n".join(lines)


def load_settings(**overrides: Any) -> Settings:
    """Build Settings, turning pydantic's error dump into a message a person can act on."""
    if problems := unknown_names():
        raise SettingsError(
            "Unknown settings:\n"
            + "\n".join(f"  {problem}" for problem in problems)
            + "\nEvery setting is listed in docs/configuration.md and by `docsbot config`."
        )
    try:
        return Settings(**overrides)
    except ValidationError as error:
        raise SettingsError(describe_validation_error(error)) from None
