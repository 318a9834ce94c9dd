"""Question in, cited answer out: retrieval and fusion, rerankers, the LLM, condensing
follow-ups, evaluation. Knows nothing of Slack, SQL rows or the command line."""
