"""Where results go: Parquet and JSON Lines datasets, databases, callbacks (``writers``),
fed by the driver loop."""
