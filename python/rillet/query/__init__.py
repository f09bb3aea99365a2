"""The query builder users call: streams, windows, queries, ``rl.run`` (``stream``) and
queries running in the background, ``rl.start`` (``live``). The top of the library: it builds
plans and hands them to the runtime, sinks and views."""
