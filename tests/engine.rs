//! Engine tests without Python: a brute-force oracle, batch-size independence, accounting.

use _core::aggregate::{AggKind, AggSpec};
use _core::operator::{EmitMode, LateMode, Operator, OperatorConfig, WindowOperator};
use _core::time::TimeUnit;
use _core::window::{Calendar, CalendarLength, FixedWindows, WindowSpec};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Array, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A small deterministic generator (no extra dependency).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

struct Stream {
    t: Vec<Option<i64>>,
    k: Vec<Option<&'static str>>,
    v: Vec<Option<f64>>,
}

fn random_stream(seed: u64, n: usize) -> Stream {
    let mut r = Lcg(seed);
    let keys = ["a", "b", "c"];
    let mut clock = 0i64;
    let mut s = Stream {
        t: vec![],
        k: vec![],
        v: vec![],
    };
    for _ in 0..n {
        clock += r.below(4) as i64;
        let jitter = match r.below(10) {
            0 => r.below(60) as i64,
            1 | 2 => r.below(8) as i64,
            _ => 0,
        };
        s.t.push(if r.below(40) == 0 {
            None
        } else {
            Some(clock - jitter - 20)
        });
        s.k.push(if r.below(15) == 0 {
            None
        } else {
            Some(keys[r.below(3) as usize])
        });
        s.v.push(if r.below(12) == 0 {
            None
        } else {
            Some(r.below(1000) as f64 / 7.0)
        });
    }
    s
}

fn batch(s: &Stream, lo: usize, hi: usize) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("t", DataType::Int64, true),
        Field::new("k", DataType::Utf8, true),
        Field::new("v", DataType::Float64, true),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(s.t[lo..hi].to_vec())),
            Arc::new(StringArray::from(s.k[lo..hi].to_vec())),
            Arc::new(Float64Array::from(s.v[lo..hi].to_vec())),
        ],
    )
    .unwrap()
}

fn config(spec: WindowSpec, delay: i64, lateness: i64, emit: EmitMode) -> OperatorConfig {
    let agg = |kind, column: Option<&str>, name: &str| AggSpec {
        kind,
        column: column.map(String::from),
        filter: None,
        name: name.into(),
        options: Default::default(),
    };
    OperatorConfig {
        time_column: "t".into(),
        time_unit: TimeUnit::Integer,
        by: vec!["k".into()],
        window: spec.into(),
        delay,
        lateness,
        emit,
        revise: Default::default(),
        late: LateMode::Collect,
        early_ms: None,
        aggs: vec![
            agg(AggKind::Count, None, "count"),
            agg(AggKind::Sum, Some("v"), "v_sum"),
            agg(AggKind::Max, Some("v"), "v_max"),
        ],
    }
}

/// (key, start, end, revision, count, sum, max) rows, plus late and rejected row indices.
type Row = (Option<String>, i64, i64, u32, i64, Option<f64>, Option<f64>);

fn run(s: &Stream, cfg: OperatorConfig, size: usize) -> (Vec<Row>, Vec<u32>, Vec<u32>) {
    run_any(s, cfg, size, true)
}

/// As [`run`]; `keyed` false for a query without key columns (its rows have key None).
fn run_any(
    s: &Stream,
    cfg: OperatorConfig,
    size: usize,
    keyed: bool,
) -> (Vec<Row>, Vec<u32>, Vec<u32>) {
    let amend = cfg.emit == EmitMode::Amend;
    let shift = usize::from(!keyed);
    let mut op = WindowOperator::new(cfg);
    let (mut rows, mut late, mut rejected) = (vec![], vec![], vec![]);
    let collect = |b: &RecordBatch, rows: &mut Vec<Row>| {
        let k = keyed.then(|| b.column(0).as_string::<i32>());
        let st = b.column(1 - shift).as_primitive::<Int64Type>();
        let en = b.column(2 - shift).as_primitive::<Int64Type>();
        let base = if amend { 4 } else { 3 } - shift;
        let c = b.column(base).as_primitive::<Int64Type>();
        let sm = b.column(base + 1).as_primitive::<Float64Type>();
        let mx = b.column(base + 2).as_primitive::<Float64Type>();
        for i in 0..b.num_rows() {
            let rev = if amend {
                b.column(3 - shift)
                    .as_primitive::<arrow_array::types::UInt32Type>()
                    .value(i)
            } else {
                0
            };
            rows.push((
                k.and_then(|k| k.is_valid(i).then(|| k.value(i).to_string())),
                st.value(i),
                en.value(i),
                rev,
                c.value(i),
                sm.is_valid(i).then(|| sm.value(i)),
                mx.is_valid(i).then(|| mx.value(i)),
            ));
        }
    };
    let n = s.t.len();
    let mut lo = 0;
    while lo < n {
        let hi = (lo + size).min(n);
        let r = op.process(&batch(s, lo, hi), None).unwrap();
        collect(&r.output, &mut rows);
        late.extend(r.late_rows.iter().map(|&i| i + lo as u32));
        rejected.extend(r.rejected_rows.iter().map(|&i| i + lo as u32));
        lo = hi;
    }
    collect(&op.flush().unwrap(), &mut rows);
    let m = op.metrics();
    assert_eq!(m.rows_in, m.rows_accepted + m.rows_late + m.rows_rejected);
    (rows, late, rejected)
}

/// Brute force: replay row by row with the definition, then aggregate accepted rows.
/// (window start, key) -> (count, sum, max).
type Expected = BTreeMap<(i64, Option<String>), (i64, Option<f64>, Option<f64>)>;

fn oracle(
    s: &Stream,
    spec: FixedWindows,
    delay: i64,
    lateness: i64,
) -> (Expected, Vec<u32>, Vec<u32>) {
    let mut wm = i64::MIN;
    let (mut late, mut rejected) = (vec![], vec![]);
    let mut windows: Expected = BTreeMap::new();
    for i in 0..s.t.len() {
        let Some(t) = s.t[i] else {
            rejected.push(i as u32);
            continue;
        };
        let mut all_closed = true;
        let mut any = false;
        let mut start = (t - spec.offset).div_euclid(spec.every) * spec.every + spec.offset;
        while start + spec.period > t {
            any = true;
            if start + spec.period + lateness > wm {
                all_closed = false;
                let e = windows
                    .entry((start, s.k[i].map(String::from)))
                    .or_insert((0, None, None));
                e.0 += 1;
                if let Some(v) = s.v[i] {
                    e.1 = Some(e.1.unwrap_or(0.0) + v);
                    e.2 = Some(e.2.map_or(v, |m: f64| m.max(v)));
                }
            }
            start -= spec.every;
        }
        if any && all_closed {
            late.push(i as u32);
            continue;
        }
        wm = wm.max(t - delay);
    }
    (windows, late, rejected)
}

fn check(seed: u64, spec: FixedWindows, delay: i64, lateness: i64) {
    let s = random_stream(seed, 400);
    let fixed = spec;
    let spec = WindowSpec::Fixed(spec);
    let (expected, exp_late, exp_rej) = oracle(&s, fixed, delay, lateness);
    for emit in [EmitMode::Final, EmitMode::Amend] {
        let whole = run(&s, config(spec, delay, lateness, emit), usize::MAX);
        for size in [1, 7] {
            let cut = run(&s, config(spec, delay, lateness, emit), size);
            assert_eq!(
                cut, whole,
                "seed {seed} {spec:?} emit {emit:?} batch {size}"
            );
        }
        let (rows, late, rejected) = whole;
        assert_eq!(late, exp_late, "late rows, seed {seed}");
        assert_eq!(rejected, exp_rej);
        // The last revision of each (window, key) is the final value.
        let mut last: BTreeMap<(i64, Option<String>), Row> = BTreeMap::new();
        for r in rows {
            last.insert((r.1, r.0.clone()), r);
        }
        assert_eq!(last.len(), expected.len(), "seed {seed} {spec:?} {emit:?}");
        for ((start, key), (count, sum, max)) in &expected {
            let r = &last[&(*start, key.clone())];
            assert_eq!(r.2, start + fixed.period);
            assert_eq!(r.4, *count);
            assert_eq!(r.6, *max);
            match (r.5, sum) {
                (Some(a), Some(b)) => assert!((a - b).abs() < 1e-9 * b.abs().max(1.0)),
                (a, b) => assert_eq!(a, *b),
            }
        }
    }
}

#[test]
fn tumbling_matches_brute_force_at_every_batch_size() {
    for seed in 0..20 {
        check(
            seed,
            FixedWindows::tumbling(10, seed as i64 % 4).unwrap(),
            (seed % 3) as i64 * 3,
            (seed % 4) as i64 * 5,
        );
    }
}

#[test]
fn hopping_matches_brute_force_at_every_batch_size() {
    for seed in 0..20 {
        check(
            seed,
            FixedWindows::hopping(15, 5, 2).unwrap(),
            (seed % 3) as i64 * 2,
            (seed % 2) as i64 * 7,
        );
        check(seed, FixedWindows::hopping(4, 10, 0).unwrap(), 1, 3);
    }
}

/// Large batches on two threads: a query without key columns hands the accumulator updates
/// to a second thread while the rows are assigned (final mode), a keyed one encodes keys and
/// updates accumulators side by side. The output must be the one-thread output, and right.
#[test]
fn two_threads_give_the_one_thread_result() {
    let s = random_stream(11, 300_000);
    for fixed in [
        // Windows of tens of thousands of rows: chunks go to the second thread between moments.
        FixedWindows::tumbling(60_000, 3).unwrap(),
        FixedWindows::hopping(90_000, 30_000, 0).unwrap(),
    ] {
        let spec = WindowSpec::Fixed(fixed);
        let (expected, exp_late, _) = oracle(&s, fixed, 6, 20);
        // Without keys: one row per window, the keyed oracle's rows combined.
        let mut unkeyed: BTreeMap<i64, (i64, Option<f64>)> = BTreeMap::new();
        for ((start, _), (count, _, max)) in &expected {
            let e = unkeyed.entry(*start).or_insert((0, None));
            e.0 += count;
            e.1 = match (e.1, *max) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
        }
        for keyed in [true, false] {
            let cfg = || {
                let mut c = config(spec, 6, 20, EmitMode::Final);
                if !keyed {
                    c.by.clear();
                }
                c
            };
            let mut runs = Vec::new();
            for threads in [1, 2] {
                _core::parallel::set_threads(threads).unwrap();
                runs.push(run_any(&s, cfg(), 100_000, keyed));
            }
            _core::parallel::set_threads(1).unwrap();
            assert_eq!(runs[0], runs[1], "{fixed:?} keyed {keyed}");
            let (rows, late, _) = &runs[1];
            assert_eq!(late, &exp_late);
            if keyed {
                assert_eq!(rows.len(), expected.len());
                for r in rows {
                    let (count, _, max) = expected[&(r.1, r.0.clone())];
                    assert_eq!((r.4, r.6), (count, max), "{fixed:?} {r:?}");
                }
            } else {
                assert_eq!(rows.len(), unkeyed.len());
                for r in rows {
                    assert_eq!((r.4, r.6), unkeyed[&r.1], "{fixed:?} {r:?}");
                }
            }
        }
    }
}

/// Large final-mode batches are judged on two threads, a stretch between moments at a time:
/// late rows carry the watermark each met, rejected rows their reasons, and every output
/// batch and counter is the one-thread one (long windows: stretches split between threads;
/// short ones: stretches too small to split).
#[test]
fn two_threads_judge_rows_as_one_does() {
    let mut s = random_stream(5, 200_000);
    for (i, t) in s.t.iter_mut().enumerate() {
        if i % 7 == 0 {
            *t = t.map(|t| t - 3_000); // far behind: late near every window end
        }
    }
    for period in [60_000, 5_000] {
        let spec = WindowSpec::Fixed(FixedWindows::tumbling(period, 0).unwrap());
        let mut runs = Vec::new();
        for threads in [1, 2] {
            _core::parallel::set_threads(threads).unwrap();
            let mut op = WindowOperator::new(config(spec, 2, 0, EmitMode::Final));
            let mut got = Vec::new();
            for lo in (0..s.t.len()).step_by(70_000) {
                let r = op
                    .process(&batch(&s, lo, (lo + 70_000).min(s.t.len())), None)
                    .unwrap();
                got.push((r.output, r.late_rows, r.late_by, r.rejected_rows, r.reasons));
            }
            let rest = op.flush().unwrap();
            runs.push((got, rest, op.metrics()));
        }
        _core::parallel::set_threads(1).unwrap();
        let late: usize = runs[1].0.iter().map(|b| b.1.len()).sum();
        assert!(late > 100, "the stream has late rows ({late})");
        assert!(runs[1].0.iter().all(|b| b.1.len() == b.2.len()));
        assert_eq!(runs[0], runs[1], "period {period}");
    }
}

/// A late row's watermark is the one left by every accepted row before it, also when the
/// rows before it were judged on the other thread.
#[test]
fn a_late_row_meets_the_watermark_of_every_row_before_it() {
    let mut s = Stream {
        t: vec![Some(0), Some(500), Some(1_500)], // closes [0, 1000): watermark 1498
        k: vec![Some("a"); 3],
        v: vec![Some(1.0); 3],
    };
    let n = 100_000;
    for i in 0..n {
        s.t.push(Some(match i {
            _ if i < n / 2 => 1_000 + (i * 900 / (n / 2)) as i64, // up to 1899
            _ if i == n / 2 => 5,                                 // first row of the second half
            _ => 1_000 + (i % 500) as i64,
        }));
        s.k.push(Some(["a", "b", "c"][i % 3]));
        s.v.push(Some(i as f64));
    }
    let spec = WindowSpec::Fixed(FixedWindows::tumbling(1_000, 0).unwrap());
    for threads in [1, 2] {
        _core::parallel::set_threads(threads).unwrap();
        let mut op = WindowOperator::new(config(spec, 2, 0, EmitMode::Final));
        let first = op.process(&batch(&s, 0, 3), None).unwrap();
        assert_eq!(first.output.num_rows(), 1);
        let r = op.process(&batch(&s, 3, n + 3), None).unwrap();
        assert_eq!(r.late_rows, vec![n as u32 / 2], "{threads} threads");
        assert_eq!(r.late_by, vec![1_897 - 5], "{threads} threads");
    }
    _core::parallel::set_threads(1).unwrap();
}

#[test]
fn final_mode_emits_in_end_then_key_order() {
    let s = random_stream(99, 500);
    let (rows, _, _) = run(
        &s,
        config(
            WindowSpec::hopping(20, 5, 0).unwrap(),
            3,
            0,
            EmitMode::Final,
        ),
        1,
    );
    // Within the flush at the end, rows are sorted by (end, start, key); overall, emission
    // moments follow the watermark, so window ends never decrease in final mode.
    for pair in rows.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert!((a.2, a.1, &a.0) < (b.2, b.1, &b.0), "{a:?} then {b:?}");
    }
}

#[test]
fn closed_windows_free_their_state() {
    let s = random_stream(5, 3000);
    let mut op = WindowOperator::new(config(
        WindowSpec::tumbling(10, 0).unwrap(),
        0,
        5,
        EmitMode::Final,
    ));
    let mut peak = 0;
    for lo in (0..3000).step_by(100) {
        op.process(&batch(&s, lo, lo + 100), None).unwrap();
        peak = peak.max(op.metrics().open_windows);
    }
    // Times span ~4500 units, i.e. ~450 windows; only the few near the watermark stay open.
    assert!(peak <= 12, "open windows grew to {peak}");
}

/// One row of nanosecond time through a calendar window; returns (accepted, rejected reasons).
fn calendar_run(tz: &str, every: CalendarLength, times: &[i64]) -> (u64, Vec<String>) {
    let spec = WindowSpec::Calendar(Calendar::new(tz, 1_000_000_000, every, every, 0).unwrap());
    let mut cfg = config(spec, 0, 0, EmitMode::Final);
    cfg.time_unit = TimeUnit::Nanosecond;
    cfg.aggs.truncate(1);
    let schema = Arc::new(Schema::new(vec![
        Field::new(
            "t",
            DataType::Timestamp(arrow_schema::TimeUnit::Nanosecond, None),
            true,
        ),
        Field::new("k", DataType::Utf8, true),
    ]));
    let b = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(arrow_array::TimestampNanosecondArray::from(times.to_vec())),
            Arc::new(StringArray::from(vec![Some("a"); times.len()])),
        ],
    )
    .unwrap();
    let mut op = WindowOperator::new(cfg);
    let r = op.process(&b, None).unwrap();
    op.flush().unwrap();
    let m = op.metrics();
    assert_eq!(m.rows_in, m.rows_accepted + m.rows_late + m.rows_rejected);
    (m.rows_accepted, r.reasons)
}

#[test]
fn a_time_at_the_i64_maximum_with_a_zone_and_day_or_week_windows_finishes() {
    const DAY: i64 = 86_400_000_000_000;
    let started = std::time::Instant::now();
    for tz in [
        "America/New_York",
        "Europe/Paris",
        "UTC",
        "Pacific/Kiritimati",
    ] {
        for every in [CalendarLength::Wall(DAY), CalendarLength::Wall(7 * DAY)] {
            let (accepted, reasons) = calendar_run(tz, every, &[0, i64::MAX]);
            assert_eq!(accepted, 1, "{tz} {every:?}");
            assert_eq!(reasons.len(), 1);
            assert!(reasons[0].contains("outside the times"), "{}", reasons[0]);
        }
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

#[test]
fn calendar_windows_reject_a_time_outside_the_calendar_with_the_supported_range() {
    for every in [
        CalendarLength::Months(1),
        CalendarLength::Months(12),
        CalendarLength::Wall(86_400_000_000_000),
    ] {
        let (accepted, reasons) = calendar_run("Europe/Paris", every, &[0, i64::MIN, i64::MAX]);
        assert_eq!(accepted, 1, "{every:?}");
        assert_eq!(reasons.len(), 2, "{every:?}");
        for r in &reasons {
            // The reason names the supported range, in years a reader recognises.
            assert!(r.contains("(1677-") && r.contains(" to 226"), "{r}");
        }
    }
}

#[test]
fn every_supported_calendar_time_lands_in_a_window_that_contains_it() {
    // At both edges of the supported range, and just outside them.
    for (tz, every) in [
        ("America/New_York", CalendarLength::Wall(86_400_000_000_000)),
        ("Australia/Lord_Howe", CalendarLength::Months(1)),
        ("UTC", CalendarLength::Months(3)),
    ] {
        let c = Calendar::new(tz, 1_000_000_000, every, every, 0).unwrap();
        let (lo, hi) = c.supported();
        for t in [lo, lo + 1, hi - 1, hi] {
            let (f, l) = c.indices(t);
            assert_eq!(f, l, "{tz} {t}");
            assert!(c.start(l) <= t && t < c.end(l), "{tz} {t}");
            assert!(c.start(l) > i64::MIN && c.end(l) < i64::MAX);
        }
        let (f, l) = c.indices(lo - 1);
        assert!(f > l);
        let (f, l) = c.indices(hi + 1);
        assert!(f > l);
    }
}

#[test]
fn fixed_windows_reject_a_row_whose_window_cannot_be_written() {
    // Tumbling 10: the window of i64::MAX would end past it, that of i64::MIN start before it.
    let s = Stream {
        t: vec![Some(5), Some(i64::MAX), Some(i64::MIN), Some(i64::MAX - 20)],
        k: vec![Some("a"); 4],
        v: vec![Some(1.0); 4],
    };
    let spec = WindowSpec::tumbling(10, 0).unwrap();
    for size in [1, 7] {
        let (rows, late, rejected) = run(&s, config(spec, 0, 0, EmitMode::Final), size);
        assert_eq!(rejected, vec![1, 2]);
        assert!(late.is_empty());
        let bounds: Vec<(i64, i64)> = rows.iter().map(|r| (r.1, r.2)).collect();
        let top = (i64::MAX - 20).div_euclid(10) * 10;
        assert_eq!(bounds, vec![(0, 10), (top, top + 10)]);
    }
}

#[test]
fn too_many_windows_per_row_is_refused_before_any_row() {
    let e = WindowSpec::hopping(365 * 86_400, 1, 0).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("31536000 windows") && msg.contains("10000"),
        "{msg}"
    );
    assert!(WindowSpec::hopping(10_000, 1, 0).is_ok());
    let day = CalendarLength::Wall(86_400);
    let year = CalendarLength::Wall(86_400 * 365 * 30);
    let msg = Calendar::new("UTC", 1, day, year, 0)
        .unwrap_err()
        .to_string();
    // 30 years of 1-day steps: 10950 windows on each row.
    assert!(
        msg.contains("10950 windows") && msg.contains("limit of 10000"),
        "{msg}"
    );
    let msg = WindowSpec::hopping(10_001, 1, 0).unwrap_err().to_string();
    assert!(msg.contains("10001 windows"), "{msg}");
}

/// Rows with key "a", times `t` and value 1.
fn times_batch(t: &[i64]) -> RecordBatch {
    let s = Stream {
        t: t.iter().map(|&t| Some(t)).collect(),
        k: vec![Some("a"); t.len()],
        v: vec![Some(1.0); t.len()],
    };
    batch(&s, 0, t.len())
}

#[test]
fn revise_watermark_keeps_state_bounded_under_late_rows_with_a_standing_watermark() {
    use _core::operator::Revise;
    // hopping(50, 1): a late row changes 50 emitted windows. The watermark stands still, so
    // nothing is emitted until the end; the state held meanwhile must not grow with the
    // number of late rows (or with the size of a batch of them).
    let mut cfg = config(
        WindowSpec::hopping(50, 1, 0).unwrap(),
        0,
        1_000_000,
        EmitMode::Amend,
    );
    cfg.revise = Revise::Watermark;
    let mut op = WindowOperator::new(cfg);
    let on_time: Vec<i64> = (0..1000).collect();
    op.process(&times_batch(&on_time), None).unwrap();
    let late = |n: usize| times_batch(&vec![500; n]);
    op.process(&late(1_000), None).unwrap();
    let small = op.metrics().state_bytes;
    for _ in 0..2 {
        op.process(&late(20_000), None).unwrap();
    }
    let large = op.metrics().state_bytes;
    assert!(
        large <= small + small / 4,
        "state grew from {small} to {large} bytes with late rows alone"
    );
    // And nothing was lost: at the end, each window holding t=500 shows all its rows.
    let out = op.flush().unwrap();
    let starts = out.column(1).as_primitive::<Int64Type>();
    let counts = out.column(4).as_primitive::<Int64Type>();
    let mut seen = 0;
    for i in 0..out.num_rows() {
        let start = starts.value(i);
        if (451..=500).contains(&start) {
            seen += 1;
            assert_eq!(counts.value(i), 50 + 41_000, "window at {start}");
        }
    }
    assert_eq!(seen, 50);
}

#[test]
fn revise_watermark_session_merges_keep_the_pending_list_bounded() {
    use _core::operator::SessionOperator;
    use _core::operator::{Revise, Windowing};
    // 500 emitted one-row sessions 100 apart; then late rows every 5 units fill the gaps,
    // each extending a session and every 20th merging two. Pending revisions must be held
    // once per session, not once per late row (a list scanned at every merge).
    let mut cfg = config(
        WindowSpec::tumbling(10, 0).unwrap(),
        0,
        1_000_000,
        EmitMode::Amend,
    );
    cfg.window = Windowing::Session {
        gap: 10,
        max_duration: None,
    };
    cfg.revise = Revise::Watermark;
    let mut op = SessionOperator::new(cfg).unwrap();
    let mut first: Vec<i64> = (0..500).map(|k| k * 100).collect();
    first.push(60_000);
    op.process(&times_batch(&first), None).unwrap();
    // Every late row lands in the sessions already emitted; each pass repeats the times, in
    // batches of 1,000 rows.
    let fill: Vec<i64> = (0..50_000).step_by(5).collect();
    let pass = |op: &mut SessionOperator| {
        for rows in fill.chunks(1_000) {
            op.process(&times_batch(rows), None).unwrap();
        }
    };
    pass(&mut op);
    let before = op.metrics().state_bytes;
    for _ in 0..3 {
        pass(&mut op);
    }
    let after = op.metrics().state_bytes;
    assert!(
        after <= before + before / 4,
        "state grew from {before} to {after} bytes with late rows alone"
    );
    // All 500 sessions merged into one, holding every row.
    let out = op.flush().unwrap();
    let counts = out.column(4).as_primitive::<Int64Type>();
    let starts = out.column(1).as_primitive::<Int64Type>();
    let last = (0..out.num_rows())
        .rev()
        .find(|&i| starts.value(i) == 0)
        .expect("the merged session");
    assert_eq!(counts.value(last), 500 + 4 * 10_000);
}

#[test]
fn session_early_and_revise_watermark_emit_no_unchanged_revision() {
    use _core::operator::SessionOperator;
    use _core::operator::{Revise, Windowing};
    for emit in [EmitMode::Amend, EmitMode::Changelog] {
        let mut cfg = config(WindowSpec::tumbling(10, 0).unwrap(), 0, 100, emit);
        cfg.window = Windowing::Session {
            gap: 5,
            max_duration: None,
        };
        cfg.revise = Revise::Watermark;
        cfg.early_ms = Some(10);
        let mut op = SessionOperator::new(cfg).unwrap();
        // (start, end, revision or row kind, count) of every emitted row, in order.
        let mut rows: Vec<(i64, i64, u32, i64)> = Vec::new();
        let mut take = |b: &RecordBatch| {
            let col = |i: usize| b.column(i).as_primitive::<Int64Type>().clone();
            let (st, en, c) = (col(1), col(2), col(4));
            let tag = b.column(3);
            for i in 0..b.num_rows() {
                let tag = match tag.data_type() {
                    DataType::UInt32 => tag
                        .as_primitive::<arrow_array::types::UInt32Type>()
                        .value(i),
                    _ => {
                        let s = tag.as_string::<i32>().value(i);
                        ["+I", "-U", "+U", "-D"]
                            .iter()
                            .position(|&k| k == s)
                            .unwrap() as u32
                    }
                };
                rows.push((st.value(i), en.value(i), tag, c.value(i)));
            }
        };
        for (n, t) in [0, 2, 20, 60].into_iter().enumerate() {
            let r = op.process(&times_batch(&[t]), Some(20 * n as i64)).unwrap();
            take(&r.output);
        }
        take(&op.flush().unwrap());
        // Counts only grow: bounds and a count shown twice are a session emitted unchanged
        // (amend: a second revision; changelog: a -U/+U pair that changes nothing).
        let mut shown: Vec<(i64, i64, i64)> = Vec::new();
        for &(s, e, tag, c) in &rows {
            if emit == EmitMode::Changelog && (tag == 1 || tag == 3) {
                continue; // retractions repeat what was shown, by design
            }
            assert!(!shown.contains(&(s, e, c)), "{emit:?}: {rows:?}");
            shown.push((s, e, c));
        }
        // The session [0, 7) ends with both its rows.
        assert!(shown.contains(&(0, 7, 2)), "{emit:?}: {rows:?}");
    }
}
