"""Settings, database wiring and the Slack app manifest."""

from pathlib import Path

SLACK_MANIFEST = Path(__file__).parent / "slack_manifest.yml"
