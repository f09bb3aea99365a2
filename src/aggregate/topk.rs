//! Top-K: exact (a count per item) and approximate (Space-Saving with `capacity` counters:
//! any item heavier than N / capacity is present, each count is an upper bound and
//! `count - error` a lower bound, and counts are exact while the items fit).

use super::contract::RowContext;
use super::rows::{Column, OutBuilder, RowState, Scalar, TopKEntry};
use hashbrown::HashMap;
use serde::{Deserialize, Serialize};

/// Settings of a top-K.
pub struct TopKConfig {
    /// How many items to report.
    pub k: usize,
    /// Space-Saving counters (approximate mode only).
    pub capacity: usize,
    /// Sum a weight column instead of counting rows.
    pub weighted: bool,
}

#[inline]
fn weight_of(cfg: &TopKConfig, aux: Option<&Column<'_>>, row: usize) -> Option<f64> {
    if !cfg.weighted {
        return Some(1.0);
    }
    aux.and_then(|w| w.f64(row))
}

fn report(cfg: &TopKConfig, items: Vec<(&Scalar, f64, f64)>, out: &mut OutBuilder) {
    let mut items = items;
    items.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp_value(b.0)));
    items.truncate(cfg.k);
    let entries: Vec<TopKEntry<'_>> = items
        .iter()
        .map(|&(value, count, error)| TopKEntry {
            value,
            count,
            error,
        })
        .collect();
    if let OutBuilder::TopK(b) = out {
        b.push(&entries);
    }
}

/// Exact top-K: every item's count (or summed weight). Nulls are not items.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExactTopK(HashMap<Box<[u8]>, (Scalar, f64)>);

impl RowState for ExactTopK {
    type Config = TopKConfig;
    fn new(_: &TopKConfig) -> Self {
        ExactTopK::default()
    }
    fn counts_values(cfg: &TopKConfig) -> bool {
        // Summed weights would be added in another order, and rounded differently.
        !cfg.weighted
    }
    fn add_count(&mut self, _: &TopKConfig, col: &Column<'_>, row: usize, count: u32) {
        let mut buf = [0u8; 8];
        let k = col.key(row, &mut buf).expect("valid");
        match self.0.get_mut(k) {
            Some(e) => e.1 += f64::from(count),
            None => {
                let v = col.scalar(row).expect("valid");
                self.0.insert(k.into(), (v, f64::from(count)));
            }
        }
    }
    #[inline]
    fn update(
        &mut self,
        cfg: &TopKConfig,
        col: &Column<'_>,
        aux: Option<&Column<'_>>,
        row: usize,
        _: &RowContext<'_>,
    ) {
        let Some(w) = weight_of(cfg, aux, row) else {
            return;
        };
        let mut buf = [0u8; 8];
        let Some(k) = col.key(row, &mut buf) else {
            return;
        };
        match self.0.get_mut(k) {
            Some(e) => e.1 += w,
            None => {
                let v = col.scalar(row).expect("valid");
                self.0.insert(k.into(), (v, w));
            }
        }
    }
    fn merge(&mut self, _: &TopKConfig, other: &Self) {
        for (k, (v, c)) in &other.0 {
            match self.0.get_mut(k) {
                Some(e) => e.1 += c,
                None => {
                    self.0.insert(k.clone(), (v.clone(), *c));
                }
            }
        }
    }
    fn evaluate(&self, cfg: &TopKConfig, out: &mut OutBuilder) {
        report(
            cfg,
            self.0.values().map(|(v, c)| (v, *c, 0.0)).collect(),
            out,
        );
    }
    fn size(&self) -> usize {
        self.0.len() * 64 + 48
    }
}

/// An item's key bytes with its value, count and error.
type Counter = (Box<[u8]>, (Scalar, f64, f64));

/// Space-Saving (Metwally, Agrawal, El Abbadi 2005), with the merge of Cafaro, Pulimeno and
/// Tempesta (2016) so partial summaries combine with the same guarantees.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SpaceSaving {
    counters: HashMap<Box<[u8]>, (Scalar, f64, f64)>,
}

impl SpaceSaving {
    fn min_count(&self, cfg: &TopKConfig) -> f64 {
        if self.counters.len() < cfg.capacity {
            return 0.0;
        }
        self.counters
            .values()
            .map(|e| e.1)
            .fold(f64::INFINITY, f64::min)
    }
}

impl RowState for SpaceSaving {
    type Config = TopKConfig;
    fn new(_: &TopKConfig) -> Self {
        SpaceSaving::default()
    }
    #[inline]
    fn update(
        &mut self,
        cfg: &TopKConfig,
        col: &Column<'_>,
        aux: Option<&Column<'_>>,
        row: usize,
        _: &RowContext<'_>,
    ) {
        let Some(w) = weight_of(cfg, aux, row) else {
            return;
        };
        let mut buf = [0u8; 8];
        let Some(k) = col.key(row, &mut buf) else {
            return;
        };
        if let Some(e) = self.counters.get_mut(k) {
            e.1 += w;
            return;
        }
        let v = col.scalar(row).expect("valid");
        if self.counters.len() < cfg.capacity {
            self.counters.insert(k.into(), (v, w, 0.0));
            return;
        }
        // Replace the smallest counter: the newcomer inherits its count as error.
        let (victim, min) = self
            .counters
            .iter()
            .min_by(|a, b| {
                a.1 .1
                    .total_cmp(&b.1 .1)
                    .then_with(|| b.1 .0.cmp_value(&a.1 .0))
            })
            .map(|(key, e)| (key.clone(), e.1))
            .expect("full");
        self.counters.remove(&victim);
        self.counters.insert(k.into(), (v, min + w, min));
    }
    fn merge(&mut self, cfg: &TopKConfig, other: &Self) {
        let (min_a, min_b) = (self.min_count(cfg), other.min_count(cfg));
        let mut merged: HashMap<Box<[u8]>, (Scalar, f64, f64)> = HashMap::new();
        for (k, (v, c, e)) in &self.counters {
            let (cb, eb) = other.counters.get(k).map_or((min_b, min_b), |o| (o.1, o.2));
            merged.insert(k.clone(), (v.clone(), c + cb, e + eb));
        }
        for (k, (v, c, e)) in &other.counters {
            if !self.counters.contains_key(k) {
                merged.insert(k.clone(), (v.clone(), c + min_a, e + min_a));
            }
        }
        if merged.len() > cfg.capacity {
            let mut all: Vec<Counter> = merged.into_iter().collect();
            all.sort_by(|a, b| {
                b.1 .1
                    .total_cmp(&a.1 .1)
                    .then_with(|| a.1 .0.cmp_value(&b.1 .0))
            });
            all.truncate(cfg.capacity);
            merged = all.into_iter().collect();
        }
        self.counters = merged;
    }
    fn evaluate(&self, cfg: &TopKConfig, out: &mut OutBuilder) {
        report(
            cfg,
            self.counters
                .values()
                .map(|(v, c, e)| (v, *c, *e))
                .collect(),
            out,
        );
    }
    fn size(&self) -> usize {
        self.counters.len() * 72 + 48
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{ArrayRef, Int64Array};
    use std::sync::Arc;

    fn feed<S: RowState<Config = TopKConfig>>(cfg: &TopKConfig, values: &[i64]) -> S {
        let a: ArrayRef = Arc::new(Int64Array::from(values.to_vec()));
        let col = Column::of(&a, "t").unwrap();
        let times = vec![0; values.len()];
        let ctx = RowContext {
            times: &times,
            seq_base: 0,
            parallel: true,
        };
        let mut s = S::new(cfg);
        for r in 0..values.len() {
            s.update(cfg, &col, None, r, &ctx);
        }
        s
    }

    #[test]
    fn space_saving_bounds_hold_and_heavy_items_are_present() {
        let cfg = TopKConfig {
            k: 5,
            capacity: 20,
            weighted: false,
        };
        // Zipf-ish: item i appears 1000 / (i + 1) times, interleaved.
        let mut values = Vec::new();
        for round in 0..1000 {
            for i in 0..200i64 {
                if round < 1000 / (i + 1) {
                    values.push(i);
                }
            }
        }
        let n = values.len() as f64;
        let ss: SpaceSaving = feed(&cfg, &values);
        let exact: ExactTopK = feed(&cfg, &values);
        for (k, (_, c, e)) in &ss.counters {
            let truth = exact.0.get(k).map_or(0.0, |x| x.1);
            assert!(*c >= truth && c - e <= truth, "{c} {e} {truth}");
        }
        for (k, (_, truth)) in &exact.0 {
            if *truth > n / cfg.capacity as f64 {
                assert!(ss.counters.contains_key(k));
            }
        }
        // Merging two halves keeps the bounds.
        let (left, right) = values.split_at(values.len() / 2);
        let mut a: SpaceSaving = feed(&cfg, left);
        let b: SpaceSaving = feed(&cfg, right);
        a.merge(&cfg, &b);
        for (k, (_, c, e)) in &a.counters {
            let truth = exact.0.get(k).map_or(0.0, |x| x.1);
            assert!(*c >= truth && c - e <= truth);
        }
    }

    /// String views are tallied per (slot, string) before the states count them; the result
    /// is the row-by-row result (plain strings), with null values and a filter skipped.
    #[test]
    fn tallied_string_views_count_like_rows() {
        use crate::aggregate::{build, AggKind, AggSpec, RowContext};
        use arrow_array::{BooleanArray, RecordBatch, StringArray, StringViewArray};
        use arrow_schema::{DataType, Field, Schema};
        let n = 20_000;
        let values: Vec<Option<String>> = (0..n)
            .map(|i| (i % 13 != 0).then(|| format!("item-with-a-long-name-{}", (i * i) % 97)))
            .collect();
        let keep: Vec<Option<bool>> = (0..n)
            .map(|i| (i % 11 != 0).then_some(i % 5 != 0))
            .collect();
        let rows: Vec<u32> = (0..n as u32).collect();
        let slots: Vec<u32> = (0..n as u32).map(|i| (i / 700 + i % 3) % 8).collect();
        let mut spec = AggSpec {
            kind: AggKind::TopK,
            column: Some("v".into()),
            filter: Some("keep".into()),
            name: "top".into(),
            options: Default::default(),
        };
        spec.options.k = 5;
        let result = |strings: ArrayRef| {
            let t = strings.data_type().clone();
            let schema = Schema::new(vec![
                Field::new("v", t.clone(), true),
                Field::new("keep", DataType::Boolean, true),
            ]);
            let keep: ArrayRef = Arc::new(BooleanArray::from(keep.clone()));
            let batch = RecordBatch::try_new(Arc::new(schema), vec![strings, keep]).unwrap();
            let mut acc = build(&spec, Some((0, &t)), None, Some(1)).unwrap();
            for s in 0..8 {
                acc.reset(s);
            }
            let times = vec![0; n];
            let ctx = RowContext {
                times: &times,
                seq_base: 0,
                parallel: true,
            };
            // Twice: the second batch adds to the states the first left.
            for _ in 0..2 {
                acc.update(&batch, &rows, &slots, &ctx).unwrap();
            }
            acc.snapshot(&(0..8).collect::<Vec<u32>>());
            acc.finish()
        };
        let plain = result(Arc::new(StringArray::from(values.clone())));
        let views = result(Arc::new(StringViewArray::from(values)));
        assert_eq!(plain.len(), 8);
        assert_eq!(&plain, &views);
    }

    #[test]
    fn exact_when_items_fit() {
        let cfg = TopKConfig {
            k: 3,
            capacity: 10,
            weighted: false,
        };
        let values = [1, 2, 2, 3, 3, 3, 4];
        let ss: SpaceSaving = feed(&cfg, &values);
        let exact: ExactTopK = feed(&cfg, &values);
        for (k, (_, c, e)) in &ss.counters {
            assert_eq!(*e, 0.0);
            assert_eq!(*c, exact.0[k].1);
        }
    }
}
