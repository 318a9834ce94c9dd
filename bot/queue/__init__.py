"""The durable question queue in SQL: tables, the store listeners write to and workers claim
from, and the worker pool. Knows nothing of Slack."""
