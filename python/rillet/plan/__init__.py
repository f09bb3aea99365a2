"""What a query is, before it runs: window layouts (``windows``), aggregates
(``aggregates``) and the plan the Rust core checks and types (``plan``). Imports only the
base modules (errors, time) and the core."""
