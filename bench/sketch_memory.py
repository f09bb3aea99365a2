#!/usr/bin/env python3
"""Memory one window holds for each distinct-count, quantile and top-K aggregate, by number of
distinct values: the engine's own state estimate (metrics["state_bytes"]) of one open window
(flush=False), minus that of a count() alone.

    python bench/sketch_memory.py
"""
from __future__ import annotations

import polars as pl

import rillet as rl

AGGS = {
    "count_distinct": lambda: rl.count_distinct("v"),
    "approx_count_distinct(p=14)": lambda: rl.approx_count_distinct("v"),
    "quantile (exact)": lambda: rl.quantile("x", 0.99),
    "approx_quantile(1%)": lambda: rl.approx_quantile("x", 0.99),
    "top_k(10)": lambda: rl.top_k("v", 10),
    "top_k(10, approx)": lambda: rl.top_k("v", 10, approx=True),
}


def state(n: int, agg) -> int:
    df = pl.DataFrame({"t": [0] * n, "v": list(range(n)), "x": [float(i) + 0.5 for i in range(n)]})
    q = rl.stream(df, time="t", flush=False).window(rl.tumbling(10)).agg(*([agg()] if agg else [rl.count()]))
    return q.run(progress=False).metrics["state_bytes"]


def main() -> None:
    sizes = [1_000, 100_000, 1_000_000]
    print(f"{'aggregate':30}" + "".join(f"{f'{n:,} distinct':>20}" for n in sizes))
    base = {n: state(n, None) for n in sizes}
    for name, agg in AGGS.items():
        cells = []
        for n in sizes:
            b = state(n, agg) - base[n]
            cells.append(f"{b / 1024:>16,.0f} KiB")
        print(f"{name:30}" + "".join(cells))


if __name__ == "__main__":
    main()
