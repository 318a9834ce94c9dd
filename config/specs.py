"""The value types inside Settings: where documents come from, and when to re-index."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel


class SourceSpec(BaseModel):
    """One place documents come from: a local folder or an http(s) page / sitemap.xml.

    Written as `PATH`, `PATH=BASE_URL` or `URL` in `DOCSBOT_SOURCES`; `base_url` maps a file to
    its public page (`{path}`, `{path_noext}` and `{stem}` placeholders are filled in, otherwise
    the relative path is appended).
    """

    location: str
    base_url: str | None = None
    name: str | None = None

    @property
    def is_url(self) -> bool:
        return self.location.startswith(("http://", "https://"))

    @property
    def key(self) -> str:
        """Stable identity of the source in the index (survives relative/absolute spelling)."""
        if self.name:
            return self.name
        if self.is_url:
            return self.location
        return str(Path(self.location).expanduser().resolve())

    @classmethod
    def parse(cls, raw: str) -> SourceSpec:
        text = raw.strip()
        if not text:
            raise ValueError("empty source")
        if text.startswith(("http://", "https://")):
            return cls(location=text)
        location, sep, base_url = text.partition("=")
        if sep and not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base URL of {location!r} must start with http:// or https://")
        return cls(location=location.strip(), base_url=base_url.strip() or None)


INTERVAL = re.compile(r"^(\d+)\s*([smhdw])$")
INTERVAL_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True)
class Schedule:
    """`interval_s` for "every N", `cron` (five crontab fields, UTC) otherwise."""

    interval_s: int | None = None
    cron: str | None = None

    def describe(self) -> str:
        return f"every {self.interval_s} s" if self.interval_s else f"cron '{self.cron}' (UTC)"


def parse_schedule(text: str) -> Schedule | None:
    """`30m`, `1h`, `1d`, a crontab line, or `off` (None)."""
    value = text.strip().lower()
    if value in {"", "off", "none", "false", "0"}:
        return None
    if match := INTERVAL.match(value):
        seconds = int(match.group(1)) * INTERVAL_SECONDS[match.group(2)]
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
