"""The command line (``rillet run ...``): its options (``options``) and runs (``run``)."""
