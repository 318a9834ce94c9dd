"""Settings, database wiring and the Slack app manifest."""
