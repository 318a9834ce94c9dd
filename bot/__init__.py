"""docsbot, the bot: answering (`answer`), the durable question queue (`queue`), Slack
(`slack`), operators' tools (`ops`), the commands (`cli`), and `wiring`, which builds the
long-lived pieces from Settings. docs/architecture.md draws the rooms and their rules."""
