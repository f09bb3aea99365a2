"""Looking at results: notebook and terminal views of runs and running queries (``display``)
and plots (``plot``). Knows sources (to tell live ones) and nothing above."""
