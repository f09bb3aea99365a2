"""Streaming SQL: ``rl.sql`` (one SELECT) and ``rl.Application`` (a Kinesis Data Analytics
application), planned by the core (``src/sql``) into queries built with the Python API."""
