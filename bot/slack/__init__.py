"""Everything Slack-shaped: the Bolt app and its listeners, the HTTP server, replies, the
Home tab, Block Kit, mrkdwn and the words people read."""
