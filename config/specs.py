"""The value types inside Settings: where documents come from, and when to re-index."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from pydantic import BaseModel, SecretStr, model_validator

GIT_PREFIX = "git+"
GIT_SCHEMES = ("https", "http", "ssh", "file")
REDACTED = "***"
# A base URL starts the moment `=http(s)://` appears: a token or a URL may hold a bare `=`.
BASE_URL_SPLIT = re.compile(r"=(?=https?://)")
# `@REF` is the last `@` of the path, after a character that is not `/`: `/@scope/` is a path.
PATH_AT_REF = re.compile(r"(?P<path>.*[^/])@(?P<ref>[^@]*)")
# A branch or tag name; never `-…`, which git would read as an option.
REF = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./+-]*")
WEB_HOSTS = {"github.com": "blob", "www.github.com": "blob", "gitlab.com": "-/blob"}


def split_credentials(url: str) -> tuple[str, str | None]:
    """`scheme://secret@host/…` → (`scheme://***@host/…`, `secret`); other URLs unchanged.

    On http(s) any user part may be a token (GitHub takes one as the user name); on ssh only
    `user:password` is, the `git@` of `ssh://git@host/…` is just the account."""
    scheme, sep, rest = url.partition("://")
    authority = rest.split("/", 1)[0]
    userinfo, at, _ = authority.rpartition("@")
    if not (sep and at and userinfo) or userinfo == REDACTED:
        return url, None
    if scheme.removeprefix(GIT_PREFIX) not in ("http", "https") and ":" not in userinfo:
        return url, None
    return f"{scheme}://{REDACTED}@{rest[len(userinfo) + 1 :]}", userinfo


def redact(text: str) -> str:
    """Every `scheme://secret@` in `text` (a message, a git error line) with the secret hidden."""
    return re.sub(
        r"\b[a-z][a-z0-9+.-]*://[^\s/@'\"]+@[^\s'\"]*",
        lambda match: split_credentials(match.group(0))[0],
        text,
    )


class SourceSpec(BaseModel):
    """One place documents come from: a local folder, an http(s) page / sitemap.xml, or a git
    repository.

    Written as `PATH`, `PATH=BASE_URL`, `URL` or `git+URL[@REF][#SUBDIR][=BASE_URL]` in
    `DOCSBOT_SOURCES`; `base_url` maps a file to its public page (`{path}`, `{path_noext}` and
    `{stem}` placeholders are filled in, otherwise the relative path is appended).

    For git, `location` is `git+URL` with any password or token replaced by `***`, so it can be
    logged and shown; the secret itself is kept in `git_credentials`.
    """

    location: str
    base_url: str | None = None
    name: str | None = None
    git_ref: str | None = None
    subdir: str | None = None
    git_credentials: SecretStr | None = None
    doc_set: str | None = None  # the doc set it belongs to (config/docsets.py); None: implicit

    @model_validator(mode="before")
    @classmethod
    def _hide_credentials(cls, data: Any) -> Any:
        if isinstance(data, dict) and str(data.get("location", "")).startswith(GIT_PREFIX):
            location, secret = split_credentials(data["location"])
            if secret is not None:
                return {**data, "location": location, "git_credentials": SecretStr(secret)}
        return data

    @property
    def is_url(self) -> bool:
        return self.location.startswith(("http://", "https://"))

    @property
    def is_git(self) -> bool:
        return self.location.startswith(GIT_PREFIX)

    @property
    def git_remote(self) -> str:
        """The repository URL without `git+` and without credentials: safe to show or store."""
        return self.location.removeprefix(GIT_PREFIX).replace(f"://{REDACTED}@", "://", 1)

    @property
    def clone_url(self) -> str:
        """The repository URL git is given, credentials included: never log it."""
        url = self.location.removeprefix(GIT_PREFIX)
        if self.git_credentials is None:
            return url
        secret = self.git_credentials.get_secret_value()
        return url.replace(f"://{REDACTED}@", f"://{secret}@", 1)

    @property
    def key(self) -> str:
        """Stable identity of the source in the index (survives relative/absolute spelling;
        for git, a new token or none at all), prefixed with its doc set's name when it has
        one: the same folder in two sets is two sources."""
        return f"{self.doc_set}:{self._own_key}" if self.doc_set else self._own_key

    @property
    def _own_key(self) -> str:
        if self.name:
            return self.name
        if self.is_git:
            ref = f"@{self.git_ref}" if self.git_ref else ""
            subdir = f"#{self.subdir}" if self.subdir else ""
            return f"{GIT_PREFIX}{self.git_remote}{ref}{subdir}"
        if self.is_url:
            return self.location
        return str(Path(self.location).expanduser().resolve())

    def git_web_url(self, rel_path: str) -> str | None:
        """The file's page on github.com or gitlab.com at REF (HEAD: the default branch)."""
        if not self.is_git:
            return None
        parts = urlsplit(self.git_remote)
        host = (parts.hostname or "").lower()
        repo = parts.path.strip("/").removesuffix(".git")
        if parts.scheme not in ("https", "http", "ssh") or host not in WEB_HOSTS or not repo:
            return None
        if WEB_HOSTS[host] == "blob" and repo.count("/") != 1:  # GitHub: exactly ORG/REPO
            return None
        path = "/".join(part for part in (self.subdir, rel_path) if part)
        ref = quote(self.git_ref or "HEAD", safe="/")
        return f"https://{host.removeprefix('www.')}/{repo}/{WEB_HOSTS[host]}/{ref}/{quote(path)}"

    @classmethod
    def parse(cls, raw: str) -> SourceSpec:
        text = raw.strip()
        if not text:
            raise ValueError("empty source")
        if text.startswith(GIT_PREFIX):
            return cls._parse_git(text)
        if text.startswith(("http://", "https://")):
            return cls(location=text)
        location, sep, base_url = text.partition("=")
        if sep and not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base URL of {location!r} must start with http:// or https://")
        return cls(location=location.strip(), base_url=base_url.strip() or None)

    @classmethod
    def _parse_git(cls, text: str) -> SourceSpec:
        shown = redact(text)
        source, *base = BASE_URL_SPLIT.split(text, maxsplit=1)
        url, _, subdir = source.partition("#")
        scheme, sep, rest = url.removeprefix(GIT_PREFIX).partition("://")
        if not sep or scheme not in GIT_SCHEMES:
            raise ValueError(
                f"git source {shown!r} must start with git+https://, git+http://, git+ssh:// or "
                "git+file:// (for git@host:org/repo write git+ssh://git@host/org/repo)"
            )
        authority, _, path = rest.partition("/")
        if "=" in path or "=" in subdir:
            raise ValueError(f"base URL of {shown!r} must start with http:// or https://")
        ref = None
        if match := PATH_AT_REF.fullmatch(path):
            path, ref = match["path"], match["ref"]
            if not REF.fullmatch(ref) or ".." in ref:
                raise ValueError(f"git source {shown!r}: {ref!r} is not a branch or tag name")
        if not path.strip("/"):
            raise ValueError(f"git source {shown!r} names no repository")
        return cls(
            location=f"{GIT_PREFIX}{scheme}://{authority}/{path}",
            git_ref=ref,
            subdir=cls._clean_subdir(subdir, shown),
            base_url=base[0].strip() if base else None,
        )

    @staticmethod
    def _clean_subdir(subdir: str, shown: str) -> str | None:
        cleaned = posixpath.normpath(subdir.strip().strip("/")) if subdir.strip("/ ") else "."
        if cleaned == ".." or cleaned.startswith("../"):
            raise ValueError(f"git source {shown!r}: #{subdir} leaves the repository")
        return None if cleaned == "." else cleaned


DURATION = re.compile(r"^(\d+)\s*([smhdw])$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> int | None:
    """`90s`, `30m`, `12h`, `7d`, `2w` → seconds; None when `text` is not such a duration."""
    match = DURATION.match(text.strip().lower())
    return int(match.group(1)) * UNIT_SECONDS[match.group(2)] if match else None


@dataclass(frozen=True)
class Schedule:
    """`interval_s` for "every N", `cron` (five crontab fields, UTC) otherwise."""

    interval_s: int | None = None
    cron: str | None = None

    def describe(self) -> str:
        if not self.interval_s:
            return f"on '{self.cron}' (UTC)"
        for unit in ("w", "d", "h", "m"):  # the largest unit that divides it: 1h, not 3600 s
            if self.interval_s % UNIT_SECONDS[unit] == 0:
                return f"every {self.interval_s // UNIT_SECONDS[unit]}{unit}"
        return f"every {self.interval_s}s"


def parse_schedule(text: str) -> Schedule | None:
    """`30m`, `1h`, `1d`, a crontab line, or `off` (None)."""
    value = text.strip().lower()
    if value in {"", "off", "none", "false", "0"}:
        return None
    if (seconds := parse_duration(value)) is not None:
        if seconds < 1:
            raise ValueError("the interval must be at least 1s")
        return Schedule(interval_s=seconds)
    fields = value.split()
    if len(fields) == 5:
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(value, timezone="UTC")
        except ValueError as error:
            raise ValueError(f"not a valid crontab line ({error})") from None
        return Schedule(cron=value)
    raise ValueError(
        "use an interval like 30m, 1h or 1d, a crontab line like '0 */2 * * *', or off"
    )
