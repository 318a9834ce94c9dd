"""The Slack app manifest shipped with docsbot, filled in for a deployment."""

from __future__ import annotations

from pathlib import Path

import yaml

SLACK_MANIFEST = Path(__file__).parent / "slack_manifest.yml"


def render_manifest(url: str | None = None, *, socket_mode: bool = False) -> str:
    """The manifest with the public URL of `docsbot serve` filled in, or without request URLs
    for Socket Mode."""
    data = yaml.safe_load(SLACK_MANIFEST.read_text())
    settings = data["settings"]
    commands = data["features"]["slash_commands"]
    if socket_mode:
        settings["socket_mode_enabled"] = True
        settings["event_subscriptions"].pop("request_url")
        settings["interactivity"].pop("request_url")
        for command in commands:
            command.pop("url")
    elif url:
        events_url = f"{url.rstrip('/')}/slack/events"
        settings["event_subscriptions"]["request_url"] = events_url
        settings["interactivity"]["request_url"] = events_url
        for command in commands:
            command["url"] = events_url
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
