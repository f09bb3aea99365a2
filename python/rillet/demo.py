"""A CloudTrail-like event stream to try rillet on, and a demo that replays it.

:func:`generate` makes the stream: API calls to AWS services, in the order a consumer of the
trail would receive them (arrival order), so event time is out of order the way real
deliveries are. :func:`run_demo` replays it through a few CloudTrail metrics and prints what
each one emitted, with the late rows and the run metrics. ``rillet demo`` runs it from the
command line.

>>> from rillet.demo import generate
>>> df = generate(events=1_000, seed=1)
>>> df.columns
['event_time', 'event_source', 'event_name', 'aws_region', 'source_ip', 'user_arn', 'error_code', 'bytes', 'latency_ms']
>>> df.equals(generate(events=1_000, seed=1))
True
"""
from __future__ import annotations

import datetime as dt
import sys
import time
from typing import TextIO

import numpy as np
import polars as pl

import rillet as rl

__all__ = ["generate", "run_demo"]

#: Event time of the first event: Monday 2 March 2026, 09:00 UTC.
START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
#: Mean event-time rate, events per second (the default 200,000 events span about 13 minutes).
RATE_PER_S = 250
ACCOUNT = "111122223333"

# Each service with its API calls and their relative popularity.
CATALOG: dict[str, list[tuple[str, float]]] = {
    "s3.amazonaws.com": [("GetObject", 60), ("PutObject", 25), ("HeadObject", 15),
                         ("ListObjectsV2", 10), ("DeleteObject", 3), ("GetBucketAcl", 2)],
    "kms.amazonaws.com": [("Decrypt", 30), ("GenerateDataKey", 12), ("Encrypt", 4),
                          ("DescribeKey", 3)],
    "sts.amazonaws.com": [("AssumeRole", 25), ("GetCallerIdentity", 10),
                          ("AssumeRoleWithWebIdentity", 5)],
    "ec2.amazonaws.com": [("DescribeInstances", 30), ("DescribeSecurityGroups", 10),
                          ("DescribeVolumes", 8), ("RunInstances", 3), ("CreateTags", 2),
                          ("StartInstances", 1.5), ("StopInstances", 1.5),
                          ("TerminateInstances", 1)],
    "dynamodb.amazonaws.com": [("GetItem", 20), ("Query", 12), ("PutItem", 10),
                               ("UpdateItem", 6), ("BatchWriteItem", 2)],
    "logs.amazonaws.com": [("PutLogEvents", 22), ("CreateLogStream", 2),
                           ("DescribeLogGroups", 2)],
    "lambda.amazonaws.com": [("Invoke", 18), ("GetFunction", 3), ("ListFunctions", 2),
                             ("UpdateFunctionCode", 0.5)],
    "sqs.amazonaws.com": [("ReceiveMessage", 15), ("SendMessage", 10), ("DeleteMessage", 9)],
    "monitoring.amazonaws.com": [("PutMetricData", 12), ("GetMetricData", 5),
                                 ("DescribeAlarms", 2)],
    "ssm.amazonaws.com": [("GetParameter", 8), ("GetParameters", 3),
                          ("DescribeInstanceInformation", 2)],
    "iam.amazonaws.com": [("GetRole", 4), ("ListAttachedRolePolicies", 2), ("ListRoles", 2),
                          ("GetPolicy", 2), ("CreateRole", 0.3), ("AttachRolePolicy", 0.3)],
    "secretsmanager.amazonaws.com": [("GetSecretValue", 6), ("DescribeSecret", 1)],
    "ecr.amazonaws.com": [("GetAuthorizationToken", 3), ("BatchGetImage", 3)],
    "sns.amazonaws.com": [("Publish", 5), ("ListTopics", 0.5)],
}
# Typical latency of each service, milliseconds (medians of a log-normal).
MEDIAN_LATENCY_MS = {
    "s3.amazonaws.com": 25.0, "kms.amazonaws.com": 6.0, "sts.amazonaws.com": 30.0,
    "ec2.amazonaws.com": 90.0, "dynamodb.amazonaws.com": 8.0, "logs.amazonaws.com": 15.0,
    "lambda.amazonaws.com": 120.0, "sqs.amazonaws.com": 12.0, "monitoring.amazonaws.com": 20.0,
    "ssm.amazonaws.com": 18.0, "iam.amazonaws.com": 60.0, "secretsmanager.amazonaws.com": 22.0,
    "ecr.amazonaws.com": 35.0, "sns.amazonaws.com": 20.0,
}
REGIONS: list[tuple[str, float]] = [
    ("us-east-1", 40), ("us-west-2", 18), ("eu-west-1", 12), ("eu-central-1", 8),
    ("ap-northeast-1", 6), ("us-east-2", 5), ("ap-southeast-2", 4), ("us-gov-west-1", 3),
    ("ca-central-1", 2), ("sa-east-1", 2),
]
ERRORS: list[tuple[str, float]] = [
    ("AccessDenied", 30), ("ThrottlingException", 25), ("ResourceNotFoundException", 15),
    ("ValidationException", 10), ("InvalidParameterValue", 8), ("ServiceUnavailable", 2),
]
#: Share of ordinary calls that fail; the incident adds about one more percent.
ERROR_RATE = 0.02
ROLES = ["ci-deploy", "lambda-exec", "ecs-task", "data-pipeline", "ReadOnly", "Admin"]
N_USERS = 60
N_SESSIONS = 140
N_IPS = 1_500

#: The incident: a leaked access key tries to launch instances and is denied, from one address.
INCIDENT_IP = "203.0.113.66"
INCIDENT_USER = f"arn:aws:iam::{ACCOUNT}:user/build-bot"
INCIDENT_SHARE = 0.01  # of all events
INCIDENT_AT = 0.55  # of the stream's event-time span


def _weights(pairs: list[tuple[str, float]]) -> tuple[list[str], np.ndarray]:
    names = [n for n, _ in pairs]
    w = np.array([w for _, w in pairs], dtype=np.float64)
    return names, w / w.sum()


def _principals() -> list[str]:
    users = [f"arn:aws:iam::{ACCOUNT}:user/dev-{i:02d}" for i in range(N_USERS)]
    sessions = [
        f"arn:aws:sts::{ACCOUNT}:assumed-role/{ROLES[i % len(ROLES)]}/session-{i:03d}"
        for i in range(N_SESSIONS)
    ]
    # Interleave, so both kinds appear among the most active principals.
    out = [s for pair in zip(sessions, users) for s in pair] + sessions[len(users):]
    return out + [INCIDENT_USER]


def _addresses() -> list[str]:
    private = [f"10.{i // 250}.{(i * 7) % 250}.{i % 250 + 1}" for i in range(N_IPS - 500)]
    public = [f"{net}.{h}" for net in ("198.51.100", "192.0.2") for h in range(1, 251)]
    return private + public


def _zipf_p(n: int, s: float) -> np.ndarray:
    p = np.arange(1, n + 1, dtype=np.float64) ** -s
    return p / p.sum()


def _arrival_delay_us(rng: np.random.Generator, n: int) -> np.ndarray:
    """How long after its event time each record reaches the stream, microseconds.

    96.5% within about a second, 3% from 2 to 90 seconds late (some of them later than a
    minute's allowed lateness), 0.5% from 3 to 20 minutes late (always too late).
    """
    u = rng.random(n)
    delay = rng.exponential(250_000.0, size=n)
    slow = (u >= 0.965) & (u < 0.995)
    far = u >= 0.995
    delay[slow] = rng.uniform(2e6, 90e6, size=int(slow.sum()))
    delay[far] = rng.uniform(180e6, 1_200e6, size=int(far.sum()))
    return delay.astype(np.int64)


def generate(events: int = 200_000, seed: int = 7) -> pl.DataFrame:
    """A CloudTrail-like stream of ``events`` API calls, in arrival order.

    Columns: ``event_time`` (Datetime us, UTC), ``event_source`` (``"ec2.amazonaws.com"``
    ...), ``event_name``, ``aws_region``, ``source_ip``, ``user_arn``, ``error_code`` (null
    unless the call failed, about 3% of rows), ``bytes`` (response size) and ``latency_ms``.

    Event times are a Poisson process at 250 events per second from 2026-03-02 09:00 UTC.
    Rows come in the order they would reach a consumer: most within a second of their event
    time, some seconds to a minute and a half late, and a few (0.5%) 3 to 20 minutes late.
    About half-way through, a leaked key (``user/build-bot``, from ``203.0.113.66``) makes a
    two-minute burst of ``RunInstances`` calls, every one denied with ``AccessDenied``.
    The same ``events`` and ``seed`` always give the same frame.

    >>> df = generate(events=5_000, seed=3)
    >>> df.height, df["event_time"].dtype
    (5000, Datetime(time_unit='us', time_zone='UTC'))
    """
    if isinstance(events, bool) or not isinstance(events, int) or events < 1:
        raise ValueError(f"events must be a positive integer, got {events!r}")
    rng = np.random.default_rng(seed)
    start_us = int(START.timestamp()) * 1_000_000

    services = list(CATALOG)
    apis = [(s, name, w) for s in services for name, w in CATALOG[s]]
    api_service = np.array([services.index(s) for s, _, _ in apis])
    api_p = np.array([w for _, _, w in apis], dtype=np.float64)
    api_p /= api_p.sum()
    run_instances = next(
        i for i, (s, name, _) in enumerate(apis) if s == "ec2.amazonaws.com" and name == "RunInstances"
    )
    region_names, region_p = _weights(REGIONS)
    error_names, error_p = _weights(ERRORS)
    principals = _principals()
    addresses = _addresses() + [INCIDENT_IP]

    # Ordinary traffic: a Poisson process in event time.
    n_incident = int(events * INCIDENT_SHARE)
    n = events - n_incident
    event_us = start_us + np.cumsum(rng.exponential(1e6 / RATE_PER_S, size=n)).astype(np.int64)
    api = rng.choice(len(apis), size=n, p=api_p)
    principal = rng.choice(len(principals) - 1, size=n, p=_zipf_p(len(principals) - 1, 1.1))
    address = rng.choice(len(addresses) - 1, size=n, p=_zipf_p(len(addresses) - 1, 1.05))
    region = rng.choice(len(region_names), size=n, p=region_p)
    failed = rng.random(n) < ERROR_RATE
    error = rng.choice(len(error_names), size=n, p=error_p)

    # The incident: denied RunInstances calls, uniform over two minutes (less on tiny streams).
    span = int(event_us[-1] - start_us) if n else 0
    burst_len = max(1, min(120_000_000, span // 10))
    burst_at = start_us + int(span * INCIDENT_AT)
    burst_us = np.sort(burst_at + rng.integers(0, burst_len, size=n_incident))
    not_gov = np.array([r != "us-gov-west-1" for r in region_names])
    incident_regions = np.flatnonzero(not_gov)

    event_us = np.concatenate([event_us, burst_us])
    api = np.concatenate([api, np.full(n_incident, run_instances)])
    principal = np.concatenate([principal, np.full(n_incident, len(principals) - 1)])
    address = np.concatenate([address, np.full(n_incident, len(addresses) - 1)])
    region = np.concatenate([region, rng.choice(incident_regions, size=n_incident)])
    failed = np.concatenate([failed, np.ones(n_incident, dtype=bool)])
    error = np.concatenate([error, np.full(n_incident, error_names.index("AccessDenied"))])

    # Response sizes and latencies; failures answer quickly with a short error document.
    service = api_service[api]
    median_ms = np.array([MEDIAN_LATENCY_MS[s] for s in services])[service]
    latency = np.round(median_ms * rng.lognormal(0.0, 0.6, size=events), 3)
    latency[failed] = np.round(rng.lognormal(np.log(4.0), 0.4, size=int(failed.sum())), 3)
    nbytes = np.minimum(rng.lognormal(7.0, 1.1, size=events), 5e6).astype(np.int64) + 120
    nbytes[failed] = rng.integers(180, 420, size=int(failed.sum()))

    # Deliver: arrival = event time + delay; rows in arrival order (ties keep event order).
    by_time = np.argsort(event_us, kind="stable")
    arrival_us = event_us[by_time] + _arrival_delay_us(rng, events)
    order = by_time[np.argsort(arrival_us, kind="stable")]

    def pick(values: list[str], index: np.ndarray) -> pl.Series:
        return pl.Series(values, dtype=pl.String).gather(index[order])

    df = pl.DataFrame(
        {
            "event_time": pl.Series(event_us[order]).cast(pl.Datetime("us", "UTC")),
            "event_source": pick(services, service),
            "event_name": pick([name for _, name, _ in apis], api),
            "aws_region": pick(region_names, region),
            "source_ip": pick(addresses, address),
            "user_arn": pick(principals, principal),
            "error_code": pick(error_names, error),
            "bytes": nbytes[order],
            "latency_ms": latency[order],
        }
    )
    return df.with_columns(
        pl.when(pl.Series(failed[order])).then(pl.col("error_code")).alias("error_code")
    )


# ------------------------------------------------------------------------------ the demo
def _micro_batches(df: pl.DataFrame, rows: int = 10_000) -> list[pl.DataFrame]:
    """The stream cut into micro-batches, as a consumer would read it (slices, no copies)."""
    return [df.slice(i, rows) for i in range(0, df.height, rows)]


def _when(value: object) -> str:
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S") + (" UTC" if value.tzinfo else "")
    return str(value)


def _metrics_line(run: rl.Run, seconds: float) -> str:
    m = run.metrics
    return (
        f"  rows in {m['rows_in']:,}: accepted {m['rows_accepted']:,}, late {m['rows_late']:,}, "
        f"rejected {m['rows_rejected']:,}, filtered out {m['rows_filtered']:,}\n"
        f"  emitted {m['rows_emitted']:,} rows | watermark {_when(m['watermark'])} | "
        f"{seconds:.2f} s"
    )


def run_demo(
    events: int = 200_000,
    seed: int = 7,
    progress: bool | None = True,
    out: TextIO | None = None,
) -> dict[str, rl.Run]:
    """Replays :func:`generate`'s stream through a few CloudTrail metrics and prints them.

    Every query reads the stream in arrival order, in micro-batches of 10,000 rows, with a
    5 s watermark delay and one minute of allowed lateness:

    * calls and failures per service per minute (tumbling 1 minute windows);
    * EC2 failures per minute, and the addresses with the most EC2 failures in any five
      minutes (hopping windows of 5 minutes every minute);
    * the busiest APIs, from per-minute calls per (service, API), ranked with polars.

    Prints each result table, the run metrics (rows in, late, rejected, watermark) and the
    late rows, to ``out`` (standard output by default). Returns the runs by name.
    """
    out = sys.stdout if out is None else out
    began = time.perf_counter()

    def say(*lines: object) -> None:
        for line in lines:
            print(line, file=out)
        out.flush()

    t0 = time.perf_counter()
    df = generate(events, seed)
    say(
        f"rillet {rl.__version__} demo: {df.height:,} CloudTrail-like events (seed {seed}), "
        f"made in {time.perf_counter() - t0:.2f} s",
        f"event time {_when(df['event_time'].min())} .. {_when(df['event_time'].max())}",
        "replayed in arrival order, 10,000 rows per micro-batch; every query has",
        "watermark = latest event time seen - 5 s, and 1 minute of allowed lateness",
    )
    batches = _micro_batches(df)
    failed = pl.col("error_code").is_not_null()
    runs: dict[str, rl.Run] = {}

    def replay(name: str, title: str, query: rl.Query) -> rl.Run:
        say("", f"== {title}")
        t = time.perf_counter()
        run = query.run(progress=progress)
        runs[name] = run
        say(_metrics_line(run, time.perf_counter() - t))
        return run

    def stream() -> rl.Stream:
        return rl.stream(batches, time="event_time", watermark="5s")

    with pl.Config(tbl_rows=14, tbl_hide_column_data_types=True, tbl_hide_dataframe_shape=True,
                   fmt_str_lengths=40, tbl_width_chars=100):
        # 1. Calls per service per minute.
        run = replay(
            "calls_per_service",
            "calls and failures per service per minute",
            stream()
            .window(rl.tumbling("1m"), by="event_source", lateness="1m")
            .agg(
                rl.count().alias("calls"),
                rl.count(where=failed).alias("failures"),
                rl.mean("latency_ms"),
                rl.sum("bytes"),
            ),
        )
        say(
            "  first rows emitted (window_end = window_start + 1m not shown):",
            run.output.select(
                "event_source", "window_start", "calls", "failures",
                pl.col("latency_ms_mean").round(1),
            ).head(8),
        )
        late = run.late
        say(
            f"  late rows, kept in run.late: {late.height:,}; the five latest "
            "(late_by = watermark at arrival - event time):",
            late.sort("late_by", descending=True)
            .select(
                pl.col("event_time").dt.truncate("1s"),
                "event_source",
                "event_name",
                pl.duration(seconds=pl.col("late_by").dt.total_seconds()).alias("late_by"),
            )
            .head(5),
        )

        # 2. EC2 failures per minute, and who is failing.
        ec2 = pl.col("event_source") == "ec2.amazonaws.com"
        run = replay(
            "ec2_failures",
            "EC2 failures per minute",
            stream()
            .filter(ec2)
            .window(rl.tumbling("1m"), lateness="1m")
            .agg(
                rl.count().alias("calls"),
                rl.count(where=failed).alias("failures"),
                rl.count(where=pl.col("error_code") == "AccessDenied").alias("access_denied"),
            ),
        )
        say(
            run.output.drop("window_end").with_columns(
                failure_rate=(pl.col("failures") / pl.col("calls")).round(3)
            )
        )
        run = replay(
            "ec2_failing_ips",
            "addresses with the most EC2 failures in 5 minutes (hopping 5m every 1m)",
            stream()
            .filter(ec2 & failed)
            .window(rl.hopping("5m", "1m"), by="source_ip", lateness="1m")
            .agg(
                rl.count().alias("failures"),
                rl.count(where=pl.col("event_name") == "RunInstances").alias("run_instances"),
            ),
        )
        say(
            "  each address at its worst five minutes:",
            run.output.sort(["failures", "window_start"], descending=[True, False])
            .unique("source_ip", keep="first", maintain_order=True)
            .drop("window_end")
            .head(5),
        )

        # 3. Busiest APIs: rillet counts per minute, polars ranks them (top_k is not built yet).
        run = replay(
            "calls_per_api",
            "busiest APIs (calls per minute per API with rillet, ranked with polars)",
            stream()
            .window(rl.tumbling("1m"), by=["event_source", "event_name"], lateness="1m")
            .agg(rl.count().alias("calls"), rl.count(where=failed).alias("failures")),
        )
        busiest = (
            run.output.group_by("event_source", "event_name")
            .agg(
                calls=pl.col("calls").sum(),
                failures=pl.col("failures").sum(),
                peak_per_min=pl.col("calls").max(),
            )
            .sort(["calls", "event_source", "event_name"], descending=[True, False, False])
            .head(10)
        )
        say(busiest)

    say("", f"done in {time.perf_counter() - began:.2f} s")
    return runs
