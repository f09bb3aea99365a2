//! Hotspots (Kinesis Data Analytics' `HOTSPOTS`): regions of the last `window_size` rows
//! that are much denser than the window as a whole. Kinesis never published its algorithm;
//! this is the design rillet documents (docs/anomaly.md):
//!
//! * the window is the key's last `window_size` rows, each a point in the columns' space;
//! * two points are neighbours when they are at most `scan_radius` apart (Euclidean, in the
//!   columns' own units, so put the columns on comparable scales);
//! * a point is a *core* point when it has more neighbours than 99% of points would if the
//!   window's points were spread evenly over its box: with `lambda` the neighbours a point
//!   expects then (the window's points times the ball of radius `scan_radius` over the
//!   box's volume), the least `k >= 2` with `P(Poisson(lambda) >= k) < 1%`. Core points that
//!   are neighbours share a hotspot, and a non-core point joins the hotspot of a core
//!   neighbour (DBSCAN, Ester et al. 1996, with `eps = scan_radius` and that `k`). A fixed
//!   count would make a third of an even background core at Kinesis' example settings and
//!   let background chains grow a hotspot's box;
//! * a hotspot is such a group of at least `min_points` points. Its box is the points'
//!   bounding box, and its `density` is its points per unit of box volume over the
//!   window's points per unit of the window's box volume (each side at least
//!   `scan_radius`), so 1 is the window's average and a real hotspot is many times that.
//!
//! ```text
//!   y                                  window: 1000 rows spread over [0, 10] x [0, 10]
//!   |   .    .       .     .           plus 40 rows in [6.0, 6.3] x [2.0, 2.2]:
//!   |       .    ::::.   .             one hotspot, box [6.0, 6.3] x [2.0, 2.2],
//!   |  .      .  ::::  .    .          density about (40 / 0.06) / (1040 / 100), i.e. 64
//!   +------------------------- x
//! ```
//!
//! Each row gets the hotspots of the window that ends with it, densest first.

use crate::error::{Error, Result};
use arrow_array::builder::{Float64Builder, ListBuilder};
use arrow_array::{ArrayRef, Float64Array, ListArray, StructArray};
use arrow_buffer::{NullBuffer, OffsetBuffer};
use arrow_schema::{DataType, Field, Fields};
use hashbrown::HashMap;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::Arc;

/// The parameters of a hotspots detector.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HotspotsParams {
    /// Values per row.
    pub columns: usize,
    /// Rows in the window.
    pub window_size: usize,
    /// Neighbours are at most this far apart.
    pub scan_radius: f64,
    /// Points a hotspot holds at least.
    pub min_points: usize,
}

/// One hotspot: its density relative to the window, and its box.
#[derive(Clone, Debug, PartialEq)]
pub struct Hotspot {
    /// Points per volume over the window's points per volume.
    pub density: f64,
    /// The box's lower corner.
    pub min: Vec<f64>,
    /// The box's upper corner.
    pub max: Vec<f64>,
    /// Points in it.
    pub points: usize,
}

/// The last rows of one key and the hotspots among them.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Hotspots {
    params: HotspotsParams,
    /// The window's points, oldest first, `columns` values each.
    window: VecDeque<f64>,
}

/// The neighbours a core point has at least: the least `k >= 2` that fewer than 1% of
/// points would reach if `n` points were spread evenly over a box of `volume` (sides at
/// least `r`) in `d` dimensions, each expecting `lambda` neighbours within `r`.
fn core_neighbours(n: usize, volume: f64, r: f64, d: usize) -> usize {
    // The volume of the d-ball of radius r: pi^(d/2) / Gamma(d/2 + 1) * r^d.
    let half = d as f64 / 2.0;
    let gamma = if d.is_multiple_of(2) {
        (1..=d / 2).map(|i| i as f64).product::<f64>()
    } else {
        // Gamma(3/2) = sqrt(pi) / 2, then Gamma(x + 1) = x Gamma(x) up to d/2 + 1.
        let mut g = std::f64::consts::PI.sqrt() / 2.0; // Gamma(3/2)
        let mut x = 1.5;
        while x < half + 1.0 - 1e-9 {
            g *= x;
            x += 1.0;
        }
        g
    };
    let ball = std::f64::consts::PI.powf(half) / gamma * r.powi(d as i32);
    let lambda = (n.saturating_sub(1)) as f64 * (ball / volume).min(1.0);
    // P(N >= k) = 1 - sum_{i<k} e^-l l^i / i!
    let mut term = (-lambda).exp();
    let mut below = term;
    let mut k = 1;
    while 1.0 - below >= 0.01 && k < n {
        term *= lambda / k as f64;
        below += term;
        k += 1;
    }
    k.max(2)
}

impl Hotspots {
    /// An empty window.
    pub fn new(params: HotspotsParams) -> Result<Self> {
        if !(2..=100_000).contains(&params.window_size) {
            return Err(Error::Config(format!(
                "window_size must be between 2 and 100000 rows (Kinesis used 100 to 1000), \
                 got {}",
                params.window_size
            )));
        }
        if !(params.scan_radius.is_finite() && params.scan_radius > 0.0) {
            return Err(Error::Config(format!(
                "scan_radius must be a positive distance in the columns' units, got {}",
                params.scan_radius
            )));
        }
        if params.min_points < 2 || params.min_points > params.window_size {
            return Err(Error::Config(format!(
                "min_points must be at least 2 and at most window_size ({}), got {}",
                params.window_size, params.min_points
            )));
        }
        if params.columns == 0 {
            return Err(Error::Config(
                "hotspots look at at least one numeric column".into(),
            ));
        }
        Ok(Hotspots {
            window: VecDeque::with_capacity(params.window_size * params.columns),
            params,
        })
    }

    /// Bytes of memory the window holds.
    pub fn bytes(&self) -> usize {
        self.window.capacity() * 8
    }

    /// Adds a row (finite values), dropping the oldest beyond the window.
    pub fn update(&mut self, row: &[f64]) {
        let d = self.params.columns;
        if self.window.len() == self.params.window_size * d {
            self.window.drain(..d);
        }
        self.window.extend(row.iter().copied());
    }

    /// The hotspots of the current window, densest first.
    pub fn hotspots(&self) -> Vec<Hotspot> {
        let d = self.params.columns;
        let n = self.window.len() / d;
        if n < self.params.min_points {
            return Vec::new();
        }
        let points: Vec<f64> = self.window.iter().copied().collect();
        let neighbours = self.neighbours(&points, n);
        let r = self.params.scan_radius;
        let volume = |min: &[f64], max: &[f64]| -> f64 {
            min.iter()
                .zip(max)
                .map(|(lo, hi)| (hi - lo).max(r))
                .product::<f64>()
        };
        let (wmin, wmax) = bounds(&points, d, 0..n);
        let window_volume = volume(&wmin, &wmax);
        let needed = core_neighbours(n, window_volume, r, d);
        // DBSCAN: grow clusters from core points.
        let core: Vec<bool> = neighbours.iter().map(|nb| nb.len() >= needed).collect();
        let mut cluster = vec![usize::MAX; n];
        let mut groups: Vec<Vec<usize>> = Vec::new();
        for start in 0..n {
            if !core[start] || cluster[start] != usize::MAX {
                continue;
            }
            let id = groups.len();
            let mut members = vec![start];
            cluster[start] = id;
            let mut stack = vec![start];
            while let Some(p) = stack.pop() {
                for &q in &neighbours[p] {
                    if cluster[q] != usize::MAX {
                        continue;
                    }
                    cluster[q] = id;
                    members.push(q);
                    if core[q] {
                        stack.push(q);
                    }
                }
            }
            groups.push(members);
        }
        let window_density = n as f64 / window_volume;
        let mut out: Vec<Hotspot> = groups
            .into_iter()
            .filter(|g| g.len() >= self.params.min_points)
            .map(|g| {
                let (min, max) = bounds(&points, d, g.iter().copied());
                let density = g.len() as f64 / volume(&min, &max) / window_density;
                Hotspot {
                    density,
                    min,
                    max,
                    points: g.len(),
                }
            })
            .collect();
        out.sort_by(|a, b| {
            b.density.total_cmp(&a.density).then_with(|| {
                a.min
                    .partial_cmp(&b.min)
                    .unwrap_or(std::cmp::Ordering::Equal)
            })
        });
        out
    }

    /// Each point's neighbours (other points at most `scan_radius` away), through a grid
    /// of cells `scan_radius` wide in up to three dimensions, pairwise beyond.
    fn neighbours(&self, points: &[f64], n: usize) -> Vec<Vec<usize>> {
        let d = self.params.columns;
        let r = self.params.scan_radius;
        let r2 = r * r;
        let near = |a: usize, b: usize| -> bool {
            let mut s = 0.0;
            for k in 0..d {
                let diff = points[a * d + k] - points[b * d + k];
                s += diff * diff;
            }
            s <= r2
        };
        let mut out = vec![Vec::new(); n];
        if d > 3 {
            for a in 0..n {
                for b in a + 1..n {
                    if near(a, b) {
                        out[a].push(b);
                        out[b].push(a);
                    }
                }
            }
            return out;
        }
        let cell = |i: usize| -> [i64; 3] {
            let mut c = [0i64; 3];
            for (k, slot) in c.iter_mut().enumerate().take(d) {
                *slot = (points[i * d + k] / r).floor() as i64;
            }
            c
        };
        let mut grid: HashMap<[i64; 3], Vec<usize>> = HashMap::new();
        for i in 0..n {
            grid.entry(cell(i)).or_default().push(i);
        }
        let span = |k: usize| if k < d { -1..=1 } else { 0..=0 };
        for (a, mine) in out.iter_mut().enumerate() {
            let c = cell(a);
            for dx in span(0) {
                for dy in span(1) {
                    for dz in span(2) {
                        let Some(list) = grid.get(&[c[0] + dx, c[1] + dy, c[2] + dz]) else {
                            continue;
                        };
                        for &b in list {
                            if b != a && near(a, b) {
                                mine.push(b);
                            }
                        }
                    }
                }
            }
        }
        out
    }
}

fn bounds(points: &[f64], d: usize, members: impl Iterator<Item = usize>) -> (Vec<f64>, Vec<f64>) {
    let mut min = vec![f64::INFINITY; d];
    let mut max = vec![f64::NEG_INFINITY; d];
    for i in members {
        for k in 0..d {
            let v = points[i * d + k];
            min[k] = min[k].min(v);
            max[k] = max[k].max(v);
        }
    }
    (min, max)
}

/// Builds the `hotspots` column: per row a list of structs `density`, `min_values`,
/// `max_values` (lists of floats, one per column); or Kinesis' `HOTSPOTS_RESULT`, JSON text
/// `{"hotspots":[{"density":64.1,"minValues":[6.0,2.0],"maxValues":[6.3,2.2]}]}`.
pub struct ResultBuilder {
    kinesis: Option<arrow_array::builder::StringBuilder>,
    density: Vec<f64>,
    mins: ListBuilder<Float64Builder>,
    maxs: ListBuilder<Float64Builder>,
    offsets: Vec<i32>,
    valid: Vec<bool>,
}

impl ResultBuilder {
    /// A builder for `rows` rows (Kinesis' JSON text when `kinesis`).
    pub fn new(kinesis: bool, rows: usize) -> Self {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        ResultBuilder {
            kinesis: kinesis.then(arrow_array::builder::StringBuilder::new),
            density: Vec::new(),
            mins: ListBuilder::new(Float64Builder::new()),
            maxs: ListBuilder::new(Float64Builder::new()),
            offsets,
            valid: Vec::with_capacity(rows),
        }
    }

    /// A row's hotspots.
    pub fn push(&mut self, spots: &[Hotspot]) {
        if let Some(text) = &mut self.kinesis {
            let list: Vec<serde_json::Value> = spots
                .iter()
                .map(|h| {
                    serde_json::json!({
                        "density": h.density,
                        "minValues": h.min,
                        "maxValues": h.max,
                    })
                })
                .collect();
            text.append_value(serde_json::json!({ "hotspots": list }).to_string());
            return;
        }
        for h in spots {
            self.density.push(h.density);
            self.mins.values().append_slice(&h.min);
            self.mins.append(true);
            self.maxs.values().append_slice(&h.max);
            self.maxs.append(true);
        }
        self.offsets.push(self.density.len() as i32);
        self.valid.push(true);
    }

    /// A row not looked at (a null or non-finite value).
    pub fn push_null(&mut self) {
        if let Some(text) = &mut self.kinesis {
            text.append_null();
            return;
        }
        self.offsets.push(self.density.len() as i32);
        self.valid.push(false);
    }

    /// The column.
    pub fn finish(mut self) -> Result<ArrayRef> {
        if let Some(mut text) = self.kinesis.take() {
            return Ok(Arc::new(text.finish()));
        }
        let item = Arc::new(Field::new("item", DataType::Float64, true));
        let fields = Fields::from(vec![
            Field::new("density", DataType::Float64, false),
            Field::new("min_values", DataType::List(item.clone()), false),
            Field::new("max_values", DataType::List(item), false),
        ]);
        let mins = self.mins.finish();
        let maxs = self.maxs.finish();
        let spots = StructArray::try_new(
            fields.clone(),
            vec![
                Arc::new(Float64Array::from(std::mem::take(&mut self.density))),
                Arc::new(mins),
                Arc::new(maxs),
            ],
            None,
        )?;
        let nulls = NullBuffer::from(std::mem::take(&mut self.valid));
        let nulls = (nulls.null_count() > 0).then_some(nulls);
        let list = ListArray::try_new(
            Arc::new(Field::new("item", DataType::Struct(fields), true)),
            OffsetBuffer::new(std::mem::take(&mut self.offsets).into()),
            Arc::new(spots),
            nulls,
        )?;
        Ok(Arc::new(list))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn a_planted_cluster_is_found_with_its_box_and_a_high_density() {
        let mut h = Hotspots::new(HotspotsParams {
            columns: 2,
            window_size: 1000,
            scan_radius: 0.2,
            min_points: 17,
        })
        .unwrap();
        let mut rng = Rng::new(4);
        for i in 0..1000 {
            if i % 25 == 0 {
                h.update(&[6.0 + rng.uniform() * 0.3, 2.0 + rng.uniform() * 0.2]);
            } else {
                h.update(&[rng.uniform() * 10.0, rng.uniform() * 10.0]);
            }
        }
        let spots = h.hotspots();
        assert!(!spots.is_empty());
        let top = &spots[0];
        assert!(top.points >= 40, "{top:?}");
        assert!(top.min[0] >= 5.7 && top.max[0] <= 6.6, "{top:?}");
        assert!(top.min[1] >= 1.7 && top.max[1] <= 2.5, "{top:?}");
        assert!(top.density > 20.0, "{top:?}");
        // Background alone: nothing of 17 points.
        assert!(spots.iter().skip(1).all(|s| s.density < top.density));
    }

    #[test]
    fn the_core_threshold_is_what_an_even_spread_rarely_reaches() {
        // Kinesis' example: 1000 points over 10 x 10, radius 0.2: 1.26 neighbours expected,
        // and 5 or more happen to fewer than 1% of points.
        assert_eq!(core_neighbours(1000, 100.0, 0.2, 2), 5);
        // One dimension: 1000 over 10, radius 0.2: 40 expected.
        let k = core_neighbours(1000, 10.0, 0.2, 1);
        assert!((50..=60).contains(&k), "{k}");
        // A sparse window still needs two neighbours.
        assert_eq!(core_neighbours(10, 1e6, 0.1, 3), 2);
    }
}
