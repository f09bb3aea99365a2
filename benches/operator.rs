//! Criterion benches of the window operator and its accumulators on a K1-like stream:
//! minute tumbling windows over two string keys, in arrival order with a little disorder.

use _core::aggregate::{AggKind, AggSpec};
use _core::operator::{EmitMode, LateMode, Operator, OperatorConfig, WindowOperator};
use _core::time::TimeUnit;
use _core::window::WindowSpec;
use arrow_array::types::UInt32Type;
use arrow_array::{
    ArrayRef, DictionaryArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray, UInt32Array,
};
use arrow_schema::{DataType, Field, Schema, TimeUnit as ArrowUnit};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::sync::Arc;

const ROWS: usize = 200_000;

fn stream() -> RecordBatch {
    let mut x = 42u64;
    let mut next = move || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        x >> 33
    };
    let services: Vec<String> = (0..20).map(|i| format!("svc{i}.amazonaws.com")).collect();
    let names: Vec<String> = (0..190).map(|i| format!("Api{i}")).collect();
    let mut t = 1_767_225_600_000_000i64;
    let users: Vec<String> = (0..5000)
        .map(|i| format!("arn:aws:iam::123456789012:user/user{i:04}"))
        .collect();
    let (mut ts, mut src, mut name, mut bytes, mut lat, mut user) =
        (vec![], vec![], vec![], vec![], vec![], Vec::<u32>::new());
    for _ in 0..ROWS {
        t += (next() % 1000) as i64;
        let jitter = if next() % 50 == 0 {
            (next() % 30_000_000) as i64
        } else {
            0
        };
        ts.push(t - jitter);
        let s = (next() % 20) as usize;
        src.push(s as u32);
        name.push(((s * 7 + (next() % 10) as usize) % 190) as u32);
        bytes.push((next() % 20_000) as i64);
        lat.push((next() % 5000) as f64 / 10.0);
        user.push((next() % 5000) as u32);
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new(
            "event_time",
            DataType::Timestamp(ArrowUnit::Microsecond, Some("UTC".into())),
            true,
        ),
        Field::new("event_source", DataType::Utf8View, true),
        Field::new("event_name", DataType::Utf8View, true),
        Field::new("bytes", DataType::Int64, true),
        Field::new("latency_ms", DataType::Float64, true),
        Field::new("user", DataType::Utf8View, true),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(TimestampMicrosecondArray::from(ts).with_timezone("UTC")),
            strings(&services, src),
            strings(&names, name),
            Arc::new(Int64Array::from(bytes)),
            Arc::new(Float64Array::from(lat)),
            strings(&users, user),
        ],
    )
    .unwrap()
}

/// A string view column as polars hands it over after reading dictionary-encoded Parquet:
/// the views of equal values point at the same bytes.
fn strings(values: &[String], codes: Vec<u32>) -> ArrayRef {
    let dict = DictionaryArray::<UInt32Type>::new(
        UInt32Array::from(codes),
        Arc::new(StringArray::from(values.to_vec())),
    );
    arrow_cast::cast(&dict, &DataType::Utf8View).unwrap()
}

fn config(by: &[&str], aggs: Vec<AggSpec>, spec: WindowSpec, emit: EmitMode) -> OperatorConfig {
    OperatorConfig {
        time_column: "event_time".into(),
        time_unit: TimeUnit::Microsecond,
        by: by.iter().map(|&b| b.to_string()).collect(),
        window: spec.into(),
        delay: 5_000_000,
        lateness: 60_000_000,
        emit,
        revise: Default::default(),
        late: LateMode::Collect,
        early_ms: None,
        aggs,
    }
}

fn agg(kind: AggKind, column: Option<&str>, name: &str) -> AggSpec {
    AggSpec {
        kind,
        column: column.map(String::from),
        filter: None,
        name: name.into(),
        options: Default::default(),
    }
}

/// A bench case: name, key columns, aggregates, windows, emission.
type Case<'a> = (&'a str, &'a [&'a str], Vec<AggSpec>, WindowSpec, EmitMode);

fn bench(c: &mut Criterion) {
    let batch = stream();
    let minute = WindowSpec::tumbling(60_000_000, 0).unwrap();
    let k1 = vec![
        agg(AggKind::Count, None, "count"),
        agg(AggKind::Sum, Some("bytes"), "bytes_sum"),
        agg(AggKind::Mean, Some("latency_ms"), "latency_ms_mean"),
        agg(AggKind::Max, Some("latency_ms"), "latency_ms_max"),
    ];
    let mut g = c.benchmark_group("operator");
    g.throughput(Throughput::Elements(ROWS as u64));
    g.sample_size(10);
    let k1_keys: &[&str] = &["event_source", "event_name"];
    let mut top10 = agg(AggKind::TopK, Some("event_name"), "event_name_top_k");
    top10.options.k = 10;
    let mut cases: Vec<Case> = vec![
        (
            "k1_tumbling_final",
            k1_keys,
            k1.clone(),
            minute,
            EmitMode::Final,
        ),
        ("k1_tumbling_amend", k1_keys, k1, minute, EmitMode::Amend),
        // K4: no key, the ten most frequent event names per minute.
        ("k4_top_k_no_key", &[], vec![top10], minute, EmitMode::Final),
        // K5: distinct users per service and minute, exact and HyperLogLog.
        (
            "k5_count_distinct",
            &["event_source"],
            vec![agg(
                AggKind::CountDistinct,
                Some("user"),
                "user_count_distinct",
            )],
            minute,
            EmitMode::Final,
        ),
        (
            "k5_approx_count_distinct",
            &["event_source"],
            vec![agg(
                AggKind::ApproxCountDistinct,
                Some("user"),
                "user_approx",
            )],
            minute,
            EmitMode::Final,
        ),
    ];
    let rest: Vec<(&str, Vec<AggSpec>, WindowSpec, EmitMode)> = vec![
        (
            "count_only",
            vec![agg(AggKind::Count, None, "count")],
            minute,
            EmitMode::Final,
        ),
        (
            "sum_f64",
            vec![agg(AggKind::Sum, Some("latency_ms"), "s")],
            minute,
            EmitMode::Final,
        ),
        (
            "min_i64",
            vec![agg(AggKind::Min, Some("bytes"), "m")],
            minute,
            EmitMode::Final,
        ),
        (
            "hopping_5m_1m_count",
            vec![agg(AggKind::Count, None, "count")],
            WindowSpec::hopping(300_000_000, 60_000_000, 0).unwrap(),
            EmitMode::Final,
        ),
    ];
    cases.extend(rest.into_iter().map(|(n, a, s, e)| (n, k1_keys, a, s, e)));
    for (name, by, aggs, spec, emit) in cases {
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut op = WindowOperator::new(config(by, aggs.clone(), spec, emit));
                for lo in (0..ROWS).step_by(65_536) {
                    let len = 65_536.min(ROWS - lo);
                    op.process(&batch.slice(lo, len), None).unwrap();
                }
                op.flush().unwrap()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
