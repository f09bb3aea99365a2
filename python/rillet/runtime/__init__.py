"""Running queries: one query's run against the core's operator (``execution``) and the one
driver loop over a dataflow of queries (``driver``). Reads sources, knows queries through
``rillet.plan.plan.QueryBase``; the query builder sits above it."""
