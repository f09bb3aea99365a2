//! The operator contract (`trait Operator`) over every kind of window, checked against an
//! uninterrupted run of the same operator: snapshot/restore, merging partial states, the
//! emitted floor, and what happens before the first batch.

use _core::aggregate::{AggKind, AggSpec};
use _core::operator::{
    build, EmitMode, FloorColumn, LateMode, Metrics, Operator, OperatorConfig, Revise, Windowing,
};
use _core::time::TimeUnit;
use _core::window::{Calendar, CalendarLength, Cumulative, WindowSpec};
use _core::Error;
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Int64Array, RecordBatch, StringArray};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use arrow_schema::{DataType, Field, Schema};
use std::sync::Arc;

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// A stream of rows (time, key, value) in arrival order.
#[derive(Clone, Default)]
struct Stream {
    t: Vec<Option<i64>>,
    k: Vec<Option<&'static str>>,
    v: Vec<Option<i64>>,
}

impl Stream {
    /// Mostly in order with some disorder, some rows far behind (late), a few null times,
    /// keys and values; times are multiples of `unit` from `base`.
    fn random(seed: u64, n: usize, unit: i64, base: i64, late: bool) -> Stream {
        let mut r = Rng(seed);
        let mut s = Stream::default();
        let mut x = 0i64;
        for _ in 0..n {
            x += r.below(3) as i64;
            let t = match r.below(20) {
                0 if late => x - 12 - r.below(30) as i64,
                1..=3 => x - r.below(if late { 6 } else { 3 }) as i64,
                _ => x,
            };
            let null_time = late && r.below(60) == 0;
            s.t.push((!null_time).then_some(base + t * unit));
            s.k.push(match r.below(7) {
                0 => None,
                1 | 2 => Some("a"),
                3 | 4 => Some("b"),
                _ => Some("c"),
            });
            s.v.push((r.below(10) != 0).then(|| r.below(100) as i64 - 30));
        }
        s
    }

    fn len(&self) -> usize {
        self.t.len()
    }

    fn pick(&self, rows: impl Iterator<Item = usize>) -> Stream {
        let mut s = Stream::default();
        for i in rows {
            s.t.push(self.t[i]);
            s.k.push(self.k[i]);
            s.v.push(self.v[i]);
        }
        s
    }

    fn batch(&self, lo: usize, hi: usize) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("t", DataType::Int64, true),
            Field::new("k", DataType::Utf8, true),
            Field::new("v", DataType::Int64, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(self.t[lo..hi].to_vec())),
                Arc::new(StringArray::from(self.k[lo..hi].to_vec())),
                Arc::new(Int64Array::from(self.v[lo..hi].to_vec())),
            ],
        )
        .unwrap()
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

/// How a query emits: mode, revise, early firing.
type Emission = (EmitMode, Revise, bool);

const EMISSIONS: [Emission; 7] = [
    (EmitMode::Final, Revise::Row, false),
    (EmitMode::Amend, Revise::Row, false),
    (EmitMode::Amend, Revise::Watermark, false),
    (EmitMode::Changelog, Revise::Row, false),
    (EmitMode::Changelog, Revise::Watermark, false),
    (EmitMode::Amend, Revise::Row, true),
    (EmitMode::Changelog, Revise::Watermark, true),
];

/// The window layouts under test, with the unit their stream's times step by.
fn windowings() -> Vec<(&'static str, Windowing, i64)> {
    let hour = 3600;
    vec![
        ("tumbling", WindowSpec::tumbling(10, 0).unwrap().into(), 1),
        ("hopping", WindowSpec::hopping(30, 10, 0).unwrap().into(), 1),
        (
            "cumulative",
            WindowSpec::Cumulative(Cumulative::new(30, 10, 0).unwrap()).into(),
            1,
        ),
        (
            "calendar",
            WindowSpec::Calendar(
                Calendar::new(
                    "America/New_York",
                    1,
                    CalendarLength::Wall(86_400),
                    CalendarLength::Wall(86_400),
                    0,
                )
                .unwrap(),
            )
            .into(),
            hour,
        ),
        (
            "session",
            Windowing::Session {
                gap: 5,
                max_duration: None,
            },
            1,
        ),
        (
            "session_max",
            Windowing::Session {
                gap: 5,
                max_duration: Some(25),
            },
            1,
        ),
        ("sliding", Windowing::Sliding { period: 15 }, 1),
        ("sliding_rows", Windowing::SlidingRows { preceding: 3 }, 1),
    ]
}

/// Whether the windowing takes the emission: a window of rows only comes out final.
fn supported(window: &Windowing, emission: Emission) -> bool {
    !matches!(window, Windowing::SlidingRows { .. }) || emission.0 == EmitMode::Final
}

fn config(window: Windowing, unit: i64, lateness: i64, emission: Emission) -> OperatorConfig {
    let (emit, revise, early) = emission;
    OperatorConfig {
        time_column: "t".into(),
        time_unit: TimeUnit::Integer,
        by: vec!["k".into()],
        window,
        delay: 3 * unit,
        lateness: lateness * unit,
        emit,
        revise,
        late: LateMode::Collect,
        early_ms: early.then_some(50),
        aggs: vec![
            agg(AggKind::Count, None, "count"),
            agg(AggKind::Sum, Some("v"), "v_sum"),
            agg(AggKind::CountDistinct, Some("v"), "v_distinct"),
            agg(AggKind::Last, Some("v"), "v_last"),
        ],
    }
}

/// Every configuration: (name, config, stream unit). Sliding windows have no early firing.
fn configs() -> Vec<(String, OperatorConfig, i64)> {
    let mut out = Vec::new();
    for (name, window, unit) in windowings() {
        for emission in EMISSIONS {
            if emission.2 && window.per_row() {
                continue;
            }
            if !supported(&window, emission) {
                continue;
            }
            for lateness in [0, 12] {
                let label = format!("{name} {emission:?} lateness={lateness}");
                out.push((label, config(window, unit, lateness, emission), unit));
            }
        }
    }
    out
}

fn rows_of(b: &RecordBatch) -> Vec<String> {
    let options = FormatOptions::default().with_null("null");
    let formatters: Vec<_> = b
        .columns()
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).unwrap())
        .collect();
    (0..b.num_rows())
        .map(|i| {
            formatters
                .iter()
                .map(|f| f.value(i).to_string())
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect()
}

/// What a run shows: rows emitted in order, late rows (global index, late by), rejected rows.
#[derive(Debug, Default, PartialEq)]
struct Seen {
    rows: Vec<String>,
    late: Vec<(usize, i64)>,
    rejected: Vec<usize>,
}

/// Feeds rows `from..to` in batches of `size`, at wall clock 10 ms per row.
fn feed(op: &mut dyn Operator, s: &Stream, from: usize, to: usize, size: usize, seen: &mut Seen) {
    let mut lo = from;
    while lo < to {
        let hi = (lo + size).min(to);
        let r = op.process(&s.batch(lo, hi), Some(lo as i64 * 10)).unwrap();
        seen.rows.extend(rows_of(&r.output));
        seen.late.extend(
            r.late_rows
                .iter()
                .zip(&r.late_by)
                .map(|(&i, &by)| (lo + i as usize, by)),
        );
        seen.rejected
            .extend(r.rejected_rows.iter().map(|&i| lo + i as usize));
        lo = hi;
    }
}

fn gauges(mut m: Metrics) -> Metrics {
    m.state_bytes = 0; // capacities differ after a restore
    m
}

#[test]
fn a_restored_snapshot_continues_exactly_as_an_uninterrupted_run() {
    for (name, cfg, unit) in configs() {
        let s = Stream::random(7, 240, unit, 1_700_000_000, true);
        let n = s.len();
        for size in [1, 7, n] {
            for cut in [0, n / 2, n] {
                let cut = if size == n { cut } else { cut / size * size };
                let mut whole = build(cfg.clone()).unwrap();
                let mut expected = Seen::default();
                feed(whole.as_mut(), &s, 0, cut, size, &mut expected);
                feed(whole.as_mut(), &s, cut, n, size, &mut expected);
                expected.rows.extend(rows_of(&whole.flush().unwrap()));

                let mut first = build(cfg.clone()).unwrap();
                let mut got = Seen::default();
                feed(first.as_mut(), &s, 0, cut, size, &mut got);
                let bytes = first.snapshot().unwrap();
                let mut second = build(cfg.clone()).unwrap();
                second.restore(&bytes).unwrap();
                assert_eq!(
                    gauges(second.metrics()),
                    gauges(first.metrics()),
                    "{name}: metrics after restore"
                );
                feed(second.as_mut(), &s, cut, n, size, &mut got);
                got.rows.extend(rows_of(&second.flush().unwrap()));
                assert_eq!(got, expected, "{name}, batches of {size}, cut at {cut}");
                assert_eq!(gauges(second.metrics()), gauges(whole.metrics()), "{name}");
            }
        }
    }
}

#[test]
fn a_snapshot_taken_after_flush_restores_a_finished_operator() {
    let (_, cfg, unit) = configs().remove(0);
    let s = Stream::random(3, 50, unit, 0, true);
    let mut op = build(cfg.clone()).unwrap();
    op.process(&s.batch(0, 50), None).unwrap();
    op.flush().unwrap();
    let mut back = build(cfg).unwrap();
    back.restore(&op.snapshot().unwrap()).unwrap();
    let e = back.process(&s.batch(0, 5), None).unwrap_err();
    assert!(e.to_string().contains("after flush"), "{e}");
}

#[test]
fn restoring_into_another_kind_or_a_changed_config_is_a_config_error_naming_it() {
    let windows = windowings();
    let emission = EMISSIONS[0];
    let s = Stream::random(5, 60, 1, 0, true);
    for (name, window, _) in &windows {
        let cfg = config(*window, 1, 12, emission);
        let mut op = build(cfg.clone()).unwrap();
        op.process(&s.batch(0, 60), None).unwrap();
        let bytes = op.snapshot().unwrap();

        let mut changed = cfg.clone();
        changed.lateness = 20;
        let e = build(changed).unwrap().restore(&bytes).unwrap_err();
        assert!(matches!(e, Error::Config(_)), "{name}: {e:?}");
        assert!(
            e.to_string().contains("lateness was 12, is 20"),
            "{name}: {e}"
        );

        let mut fewer = cfg.clone();
        fewer.aggs.pop();
        let e = build(fewer).unwrap().restore(&bytes).unwrap_err();
        assert!(e.to_string().contains("aggs was"), "{name}: {e}");

        for (other, window, _) in &windows {
            let same_kind = op.kind() == build(config(*window, 1, 12, emission)).unwrap().kind();
            if same_kind {
                continue;
            }
            let e = build(config(*window, 1, 12, emission))
                .unwrap()
                .restore(&bytes)
                .unwrap_err();
            assert!(matches!(e, Error::Config(_)), "{name} into {other}: {e:?}");
            assert!(
                e.to_string()
                    .contains(&format!("of a {} operator", op.kind())),
                "{name} into {other}: {e}"
            );
        }

        let e = build(cfg.clone())
            .unwrap()
            .restore(&bytes[..bytes.len() / 2])
            .unwrap_err();
        assert!(matches!(e, Error::Config(_)), "{name}: truncated: {e:?}");
        let e = build(cfg).unwrap().restore(b"not a snapshot").unwrap_err();
        assert!(matches!(e, Error::Config(_)), "{name}: garbage: {e:?}");
    }
}

#[test]
fn two_window_operators_fed_halves_then_merged_emit_what_one_fed_everything_emits() {
    let emission = (EmitMode::Final, Revise::Row, false);
    for (name, window, unit) in windowings().into_iter().take(4) {
        // No row is late for one operator fed everything (disorder below the delay), so
        // none is for either half; windows close only at the end.
        let s = Stream::random(11, 400, unit, 1_700_000_000, false);
        let n = s.len();
        let cfg = config(window, unit, 100_000, emission);
        for size in [1, 7, n] {
            let halves = [
                s.pick((0..n).filter(|i| i % 2 == 0)),
                s.pick((0..n).filter(|i| i % 2 == 1)),
            ];
            let mut all = build(cfg.clone()).unwrap();
            let mut seen = Seen::default();
            feed(all.as_mut(), &s, 0, n, size, &mut seen);
            assert!(seen.rows.is_empty() && seen.late.is_empty(), "{name}");
            let mut parts = [build(cfg.clone()).unwrap(), build(cfg.clone()).unwrap()];
            for (op, half) in parts.iter_mut().zip(&halves) {
                let mut seen = Seen::default();
                feed(op.as_mut(), half, 0, half.len(), size, &mut seen);
                assert!(seen.rows.is_empty() && seen.late.is_empty(), "{name}");
            }
            // A common watermark: both advance to the instant the whole stream reached.
            let wm = all.metrics().watermark.unwrap();
            for op in parts.iter_mut() {
                assert_eq!(op.advance_watermark(wm).unwrap().num_rows(), 0);
            }
            // An operator that saw no row takes both partial states just as well.
            let mut fresh = build(cfg.clone()).unwrap();
            fresh.merge(&parts[0].partial().unwrap()).unwrap();
            fresh.merge(&parts[1].partial().unwrap()).unwrap();
            let mut from_fresh = rows_of(&fresh.flush().unwrap());
            let [mut a, b] = parts;
            a.merge(&b.partial().unwrap()).unwrap();
            let mut got = rows_of(&a.flush().unwrap());
            let mut expected = rows_of(&all.flush().unwrap());
            got.sort();
            expected.sort();
            from_fresh.sort();
            assert!(!expected.is_empty());
            assert_eq!(got, expected, "{name}, batches of {size}");
            assert_eq!(
                from_fresh, expected,
                "{name}, batches of {size}, into a fresh operator"
            );
            let (m, all_m) = (a.metrics(), all.metrics());
            assert_eq!(
                (m.rows_in, m.rows_accepted, m.rows_rejected, m.rows_emitted),
                (
                    all_m.rows_in,
                    all_m.rows_accepted,
                    all_m.rows_rejected,
                    all_m.rows_emitted
                ),
                "{name}"
            );
        }
    }
}

#[test]
fn sessions_sliding_and_updating_modes_refuse_to_merge_with_a_clear_error() {
    let s = Stream::random(2, 30, 1, 0, true);
    for (name, window, unit) in windowings() {
        for emission in [EMISSIONS[0], EMISSIONS[1]] {
            if !supported(&window, emission) {
                continue;
            }
            let cfg = config(window, unit, 12, emission);
            let mergeable =
                matches!(window, Windowing::Aligned(_)) && emission.0 == EmitMode::Final;
            if mergeable {
                continue;
            }
            let mut a = build(cfg.clone()).unwrap();
            a.process(&s.batch(0, 30), None).unwrap();
            let e = a.partial().unwrap_err();
            assert!(matches!(e, Error::Config(_)), "{name}: {e:?}");
            let why = match window {
                Windowing::Aligned(_) => "mergeable in final mode only",
                _ => "not mergeable",
            };
            assert!(e.to_string().contains(why), "{name}: {e}");
            assert!(a.merge(b"").is_err(), "{name}");
        }
    }
}

/// The output column a floor is about, as integers.
fn column(b: &RecordBatch, col: FloorColumn) -> Option<Vec<i64>> {
    let name = match col {
        FloorColumn::WindowStart => "window_start",
        FloorColumn::WindowEnd => "window_end",
        FloorColumn::RowTime => "t",
    };
    let c = b.column_by_name(name)?;
    let c = c.as_primitive::<Int64Type>();
    Some((0..c.len()).map(|i| c.value(i)).collect())
}

#[test]
fn no_row_is_emitted_below_a_floor_reported_earlier_and_the_floor_advances() {
    let cols = [
        FloorColumn::WindowStart,
        FloorColumn::WindowEnd,
        FloorColumn::RowTime,
    ];
    let mut advanced = 0;
    for (seed, (name, cfg, unit)) in configs().into_iter().enumerate() {
        let s = Stream::random(seed as u64 + 100, 300, unit, 1_700_000_000, true);
        let n = s.len();
        for size in [1, 7, n] {
            let mut op = build(cfg.clone()).unwrap();
            // floors[i][c]: after step i; emitted[i]: the rows step i emitted.
            let mut floors: Vec<[Option<i64>; 3]> = Vec::new();
            let mut emitted: Vec<RecordBatch> = Vec::new();
            let step = |floors: &mut Vec<_>, emitted: &mut Vec<_>, op: &dyn Operator, out| {
                emitted.push(out);
                floors.push(cols.map(|c| op.emitted_floor(c)));
            };
            let mut lo = 0;
            let mut r = Rng(seed as u64);
            while lo < n {
                let hi = (lo + size).min(n);
                let out = op.process(&s.batch(lo, hi), Some(lo as i64 * 10)).unwrap();
                step(&mut floors, &mut emitted, op.as_ref(), out.output);
                // An idle source's clock, and heartbeats, now and then.
                if r.below(5) == 0 {
                    let wm = op.metrics().watermark.unwrap_or(0);
                    let out = op.advance_watermark(wm + r.below(4) as i64 * unit).unwrap();
                    step(&mut floors, &mut emitted, op.as_ref(), out);
                }
                if r.below(3) == 0 {
                    let out = op.tick(lo as i64 * 10 + 25).unwrap();
                    step(&mut floors, &mut emitted, op.as_ref(), out);
                }
                lo = hi;
            }
            let before_flush = floors.last().copied().unwrap();
            let out = op.flush().unwrap();
            step(&mut floors, &mut emitted, op.as_ref(), out);
            for (c, &col) in cols.iter().enumerate() {
                // The smallest value emitted at each step and after it.
                let mut later = i64::MAX;
                let mut min_after = vec![i64::MAX; emitted.len()];
                for i in (0..emitted.len()).rev() {
                    min_after[i] = later;
                    if let Some(values) = column(&emitted[i], col) {
                        later = later.min(values.into_iter().min().unwrap_or(i64::MAX));
                    }
                }
                for (i, f) in floors.iter().enumerate() {
                    if let Some(floor) = f[c] {
                        assert!(
                            floor <= min_after[i],
                            "{name}, batches of {size}: {col:?} floor {floor} after step {i}, \
                             but a row with {} came later",
                            min_after[i]
                        );
                    }
                }
                // Floors advance as the input does, not only at its end.
                let first = floors.iter().find_map(|f| f[c]);
                if size == n {
                    continue; // one batch: nothing to advance between
                }
                if let (Some(first), Some(last)) = (first, before_flush[c]) {
                    assert!(
                        last > first,
                        "{name}, batches of {size}: {col:?} stayed at {first}"
                    );
                    advanced += 1;
                }
            }
        }
    }
    assert!(advanced > 200, "only {advanced} floors checked");
}

#[test]
fn a_tumbling_floor_passes_the_first_window_once_the_watermark_closes_it() {
    let cfg = config(
        WindowSpec::tumbling(10, 0).unwrap().into(),
        1,
        0,
        EMISSIONS[0],
    );
    let mut op = build(cfg).unwrap();
    assert_eq!(op.emitted_floor(FloorColumn::WindowStart), None);
    let s = Stream {
        t: vec![Some(1), Some(5), Some(47)],
        k: vec![Some("a"); 3],
        v: vec![Some(1); 3],
    };
    op.process(&s.batch(0, 2), None).unwrap();
    assert_eq!(op.emitted_floor(FloorColumn::WindowStart), Some(0));
    // The watermark reaches 44: windows up to [30, 40) closed, [40, 50) is the first open.
    let out = op.process(&s.batch(2, 3), None).unwrap().output;
    assert_eq!(out.num_rows(), 1);
    assert_eq!(op.emitted_floor(FloorColumn::WindowStart), Some(40));
    assert_eq!(op.emitted_floor(FloorColumn::WindowEnd), Some(50));
    assert_eq!(op.emitted_floor(FloorColumn::RowTime), None);
    op.flush().unwrap();
    assert_eq!(op.emitted_floor(FloorColumn::WindowStart), Some(i64::MAX));
    assert_eq!(op.emitted_floor(FloorColumn::RowTime), None);
}

#[test]
fn before_the_first_batch_every_kind_behaves_the_same() {
    for (name, window, unit) in windowings() {
        let emission = if supported(&window, EMISSIONS[1]) {
            EMISSIONS[1]
        } else {
            EMISSIONS[0]
        };
        let cfg = config(window, unit, 2, emission);
        let mut op = build(cfg.clone()).unwrap();
        let tick = op.tick(1_000).unwrap();
        assert_eq!((tick.num_rows(), tick.num_columns()), (0, 0), "{name}");
        assert!(op.output_schema().is_none(), "{name}");
        for col in [FloorColumn::WindowStart, FloorColumn::RowTime] {
            assert_eq!(op.emitted_floor(col), None, "{name}");
        }
        // The watermark moves without a batch: rows below it (and its lateness) are late.
        let wm = 1_700_000_000 + 100 * unit;
        let out = op.advance_watermark(wm).unwrap();
        assert_eq!((out.num_rows(), out.num_columns()), (0, 0), "{name}");
        assert_eq!(op.metrics().watermark, None, "{name}: no row seen yet");
        let s = Stream {
            t: vec![Some(1_700_000_000), Some(wm + 10 * unit)],
            k: vec![Some("a"); 2],
            v: vec![Some(1); 2],
        };
        let r = op.process(&s.batch(0, 2), None).unwrap();
        assert_eq!(r.late_rows, vec![0], "{name}");
        assert!(op.output_schema().is_some(), "{name}");

        let mut op = build(cfg).unwrap();
        let out = op.flush().unwrap();
        assert_eq!((out.num_rows(), out.num_columns()), (0, 0), "{name}");
        assert_eq!(op.metrics(), Metrics::default(), "{name}");
        let e = op.process(&s.batch(0, 2), None).unwrap_err();
        assert!(e.to_string().contains("after flush"), "{name}: {e}");
    }
}

#[test]
fn a_snapshot_of_another_format_version_is_refused_and_a_failed_restore_changes_nothing() {
    let (_, cfg, unit) = configs().remove(0);
    let s = Stream::random(9, 80, unit, 0, true);
    let mut op = build(cfg.clone()).unwrap();
    op.process(&s.batch(0, 40), None).unwrap();
    let bytes = op.snapshot().unwrap();
    // The header is the first item: rewrite its format version.
    let (mut header, rest): (ciborium::Value, _) =
        _core::codec::decode_prefix(&bytes, "test").unwrap();
    for (k, v) in header.as_map_mut().unwrap() {
        if k.as_text() == Some("format") {
            *v = ciborium::Value::Integer(99.into());
        }
    }
    let mut newer = _core::codec::encode(&header).unwrap();
    newer.extend_from_slice(rest);
    let mut other = build(cfg.clone()).unwrap();
    other.process(&s.batch(0, 10), None).unwrap();
    let before = other.snapshot().unwrap();
    let e = other.restore(&newer).unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e:?}");
    assert!(e.to_string().contains("format version 99"), "{e}");
    // A snapshot damaged after its header fails while reading it; the operator keeps its state.
    let mut damaged = bytes.clone();
    let n = damaged.len();
    damaged.truncate(n - 40);
    assert!(other.restore(&damaged).is_err());
    assert_eq!(other.snapshot().unwrap(), before);
}

#[test]
fn without_key_columns_and_over_large_batches_snapshots_and_merges_hold_too() {
    // Large batches of queries without keys take the two-thread paths (the accumulators on
    // a second thread, rows judged in two halves).
    let n = 80_000;
    for (name, window, unit) in windowings() {
        for emission in [EMISSIONS[0], EMISSIONS[3]] {
            if !supported(&window, emission) {
                continue;
            }
            let mut cfg = config(window, unit, 12, emission);
            cfg.by.clear();
            let s = Stream::random(21, n, unit, 1_700_000_000, true);
            let cut = n / 2;
            let mut whole = build(cfg.clone()).unwrap();
            let mut expected = Seen::default();
            feed(whole.as_mut(), &s, 0, cut, cut, &mut expected);
            feed(whole.as_mut(), &s, cut, n, n, &mut expected);
            expected.rows.extend(rows_of(&whole.flush().unwrap()));
            let mut first = build(cfg.clone()).unwrap();
            let mut got = Seen::default();
            feed(first.as_mut(), &s, 0, cut, cut, &mut got);
            let mut second = build(cfg.clone()).unwrap();
            second.restore(&first.snapshot().unwrap()).unwrap();
            feed(second.as_mut(), &s, cut, n, n, &mut got);
            got.rows.extend(rows_of(&second.flush().unwrap()));
            assert!(
                got == expected,
                "{name} {emission:?}: a restored run differs"
            );
        }
    }
    let cfg = {
        let mut c = config(
            WindowSpec::tumbling(10, 0).unwrap().into(),
            1,
            100_000,
            EMISSIONS[0],
        );
        c.by.clear();
        c
    };
    let s = Stream::random(22, n, 1, 0, false);
    let mut all = build(cfg.clone()).unwrap();
    all.process(&s.batch(0, n), None).unwrap();
    let halves = [s.pick(0..n / 3), s.pick(n / 3..n)];
    let mut parts = halves.map(|h| {
        let mut op = build(cfg.clone()).unwrap();
        op.process(&h.batch(0, h.len()), None).unwrap();
        op
    });
    let wm = all.metrics().watermark.unwrap();
    for op in parts.iter_mut() {
        op.advance_watermark(wm).unwrap();
    }
    let [mut a, b] = parts;
    a.merge(&b.partial().unwrap()).unwrap();
    let (mut got, mut expected) = (rows_of(&a.flush().unwrap()), rows_of(&all.flush().unwrap()));
    got.sort();
    expected.sort();
    assert_eq!(got, expected);
}
