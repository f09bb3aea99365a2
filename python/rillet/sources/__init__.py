"""Where rows come from: micro-batches from DataFrames and iterables (``base``), paced
replay (``pacing``), rillet's own sources (``source``): files, tails of files and folders,
Kafka, Kinesis and CloudTrail logs. Below the runtime, which reads them."""
