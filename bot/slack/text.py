"""The words people read in Slack, in one place: what the bot says while it works, when it
cannot answer, and when it is asked something it will not do."""

from __future__ import annotations

THINKING = ":mag: Searching the docs…"
# The assistant pane shows the app's name first: "docsbot is searching the docs…".
STATUS = "is searching the docs…"
SLACK_SLOW = (
    ":hourglass_flowing_sand: Your answer is ready, but Slack is asking me to slow down. "
    "It will appear here in a moment."
)
APOLOGY = (
    "Sorry, something went wrong while answering this, and it has been logged. "
    "Please try again in a minute; if it keeps happening, tell the team that runs me."
)
BUSY = (
    "Sorry, I'm answering a lot of questions right now and can't take this one. "
    "Please ask again in a minute."
)
EXPIRED = (
    "Sorry, I was restarted before I could answer this, and it's been too long to answer "
    "now. Please ask again if you still need it."
)
NOT_ENABLED = (
    "Sorry, I'm not enabled here. Ask the team that runs me to add this channel (or you) to "
    "the allow-list, or ask me somewhere I'm enabled."
)
ASK_USAGE = "Ask me about the docs, e.g. `/ask How do I create a collection?`"
MENTION_HINT = "Ask me something after the mention, e.g. “@docsbot how do I get started?”"
GREETING = "Hi! Ask me anything about the docs; I answer with links to the sections I used."
SUGGESTED_TITLE = "Try one of these"
SUGGESTED_PROMPTS = (
    ("Get started", "How do I get started?"),
    ("Configuration", "Which configuration options are there, and what do they do?"),
    ("Troubleshoot an error", "I'm getting an error. Where do the docs explain it?"),
)
REASON_INTRO = (
    "Your 👎 is recorded. If you tell us what was missing or wrong, the people who own the docs "
    "can fix it."
)
PRIVATE_OFFER = (
    ":lock: Docs you can read privately seem to answer this better than the ones searched "
    "here. Only you can see this."
)
PRIVATE_BUTTON = "Answer me in a DM"
PRIVATE_INTRO = "Here is that question again, answered from all the docs you can read:"
REINDEX_ADMINS_ONLY = "Only the admins listed below can re-index."
REINDEX_UNAVAILABLE = "Re-indexing is not available in this process."


def vote_thanks(rating: str, previous: str | None) -> str:
    if previous == rating:
        return "You already voted on this answer; your vote stands."
    if rating == "up":
        return "Thanks! Your 👍 is recorded." + (" (changed from 👎)" if previous else "")
    return "Thanks, your 👎 is recorded." + (" (changed from 👍)" if previous else "")
