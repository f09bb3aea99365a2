//! A random cut forest over a stream: trees sharing one point store, each keeping a
//! time-decayed sample of the points it has seen, fed one row at a time.
//!
//! Per row (the AWS library's design, which Kinesis Data Analytics ran):
//!
//! 1. the row's values join the shingle, the last `shingle_size` rows side by side, which is
//!    the point (a shingle of 1 is the row itself);
//! 2. the point is scored against the forest as it stands (the mean of the trees' scores),
//!    and explained (the score split by column and direction) when asked;
//! 3. each tree's sampler then decides whether to keep it. A point drawn at row `n` gets the
//!    weight `ln(-ln u) - n / time_decay` (u uniform); a tree keeps the `sample_size` points
//!    of smallest weight, so a new point replaces the largest when it is smaller. With no
//!    decay that is a uniform sample of everything seen; the decay favours recent rows, a
//!    point `time_decay` rows old having `1/e` the odds of a new one.
//!
//! Scores are 0 until the forest has taken `1 + sample_size / 4` points (and the shingle is
//! full), as Kinesis' warm-up rows were.

use super::tree::{DiVector, PointStore, Tree};
use crate::error::{Error, Result};
use crate::rng::Rng;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};

/// A forest's parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ForestParams {
    /// Values per row (the columns scored).
    pub columns: usize,
    /// Trees in the forest.
    pub trees: usize,
    /// Points each tree keeps.
    pub sample_size: usize,
    /// Rows after which a point's odds of staying have fallen by `e` (0: no decay).
    pub time_decay: u64,
    /// Rows side by side in one point.
    pub shingle_size: usize,
    /// Seeds every tree's generator.
    pub seed: u64,
}

impl ForestParams {
    /// Checks the numbers, naming what is wrong and what would be right.
    pub fn check(&self) -> Result<()> {
        let bad = |what: String| Err(Error::Config(what));
        if self.columns == 0 {
            return bad("a random cut forest scores at least one numeric column".into());
        }
        if !(1..=10_000).contains(&self.trees) {
            return bad(format!(
                "trees must be between 1 and 10000 (Kinesis used 100), got {}",
                self.trees
            ));
        }
        if !(4..=1_000_000).contains(&self.sample_size) {
            return bad(format!(
                "sample_size must be between 4 and 1000000 points per tree (Kinesis used \
                 256), got {}",
                self.sample_size
            ));
        }
        if !(1..=1000).contains(&self.shingle_size) {
            return bad(format!(
                "shingle_size must be between 1 and 1000 rows, got {}",
                self.shingle_size
            ));
        }
        if self.columns.saturating_mul(self.shingle_size) > 10_000 {
            return bad(format!(
                "{} columns times a shingle of {} is {} values per point; keep it at most \
                 10000",
                self.columns,
                self.shingle_size,
                self.columns * self.shingle_size
            ));
        }
        Ok(())
    }

    /// Points taken before scores are given.
    pub fn output_after(&self) -> u64 {
        1 + self.sample_size as u64 / 4
    }
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct Sampled {
    weight: f64,
    point: u32,
}

impl PartialEq for Sampled {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Sampled {}
impl PartialOrd for Sampled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Sampled {
    fn cmp(&self, other: &Self) -> Ordering {
        self.weight
            .total_cmp(&other.weight)
            .then(self.point.cmp(&other.point))
    }
}

/// A column's running mean and variance (the explanation's strength).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Moments {
    n: u64,
    mean: f64,
    var: f64,
}

impl Moments {
    fn strength(&self, x: f64) -> f64 {
        if self.n < 2 {
            return 0.0;
        }
        let sd = self.var.sqrt();
        let away = (x - self.mean).abs();
        if sd > 0.0 {
            away / sd
        } else if away == 0.0 {
            0.0
        } else {
            f64::INFINITY
        }
    }

    fn add(&mut self, x: f64, decay: u64) {
        self.n += 1;
        let mut a = 1.0 / self.n as f64;
        if decay > 0 {
            a = a.max(1.0 / decay as f64);
        }
        let d = x - self.mean;
        self.mean += a * d;
        self.var = (1.0 - a) * (self.var + a * d * d);
    }
}

/// Per column of a scored row: its share of the score, which side it is on, how far.
#[derive(Clone, Debug, PartialEq)]
pub struct ColumnExplanation {
    /// The column's part of the score (over every shingle position).
    pub attribution: f64,
    /// True when the row is high in this column rather than low.
    pub high: bool,
    /// How far the value is from the column's running mean, in standard deviations.
    pub strength: f64,
}

/// A row's explanation: a part per column, or None while the forest fills (no parts yet).
pub type Explanation = Option<Vec<ColumnExplanation>>;

/// A random cut forest.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Forest {
    params: ForestParams,
    store: PointStore,
    trees: Vec<Tree>,
    samples: Vec<BinaryHeap<Sampled>>,
    /// The last rows, oldest first, `columns` values each.
    shingle: VecDeque<f64>,
    /// Points the samplers have been offered.
    seen: u64,
    /// Weights are stored relative to this row (see [`Forest::sample`]).
    base: u64,
    /// Per tree, `exp` of its sample's largest weight (used once the sample is full).
    limits: Vec<f64>,
    /// Per tree, the exponential draw the next rows' hazards are spent from.
    remaining: Vec<f64>,
    moments: Vec<Moments>,
    #[serde(skip)]
    path: Vec<u32>,
}

impl Forest {
    /// An empty forest; `stream` varies the seed (one forest per key).
    pub fn new(params: ForestParams, stream: u64) -> Result<Self> {
        params.check()?;
        let dim = params.columns * params.shingle_size;
        let base = params.seed ^ stream.wrapping_mul(0xA24B_AED4_963E_E407);
        let trees = (0..params.trees)
            .map(|t| {
                Tree::new(
                    dim,
                    Rng::new(base.wrapping_add((t as u64).wrapping_mul(0x9E37_79B9))),
                )
            })
            .collect();
        Ok(Forest {
            store: PointStore::new(dim),
            samples: (0..params.trees)
                .map(|_| BinaryHeap::with_capacity(params.sample_size))
                .collect(),
            trees,
            shingle: VecDeque::with_capacity(dim),
            seen: 0,
            base: 0,
            limits: vec![0.0; params.trees],
            remaining: vec![0.0; params.trees],
            moments: vec![Moments::default(); params.columns],
            path: Vec::new(),
            params,
        })
    }

    /// The forest's parameters.
    pub fn params(&self) -> &ForestParams {
        &self.params
    }

    /// Points the samplers have been offered (rows once the shingle is full).
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// Bytes of memory the forest holds.
    pub fn bytes(&self) -> usize {
        self.store.bytes()
            + self.trees.iter().map(Tree::bytes).sum::<usize>()
            + self
                .samples
                .iter()
                .map(|s| s.capacity() * std::mem::size_of::<Sampled>())
                .sum::<usize>()
            + self.shingle.capacity() * 8
    }

    /// The trees (for tests and diagnostics).
    pub fn trees(&self) -> &[Tree] {
        &self.trees
    }

    /// The point store (for tests and diagnostics).
    pub fn store(&self) -> &PointStore {
        &self.store
    }

    /// Scores a row of finite `values` (one per column), explains the score when `explain`,
    /// then lets the trees sample it. The score is 0 while the forest fills.
    pub fn update(&mut self, values: &[f64], explain: bool) -> (f64, Option<Explanation>) {
        let (scores, parts) = self.update_rows(values, explain);
        (scores[0], parts.map(|mut p| p.remove(0)))
    }

    /// [`Forest::update`] for consecutive rows (`rows` holds `columns` values per row),
    /// with the same results as row after row.
    ///
    /// The work runs tree by tree: each tree scores and samples every row of a chunk in
    /// turn before the next tree starts, so a tree stays in the core's caches while it is
    /// used. That gives the same numbers as row by row because the trees never look at each
    /// other: a tree's answer for a row depends only on the rows before it and its own
    /// generator, and the forest's score is their mean.
    pub fn update_rows(
        &mut self,
        rows: &[f64],
        explain: bool,
    ) -> (Vec<f64>, Option<Vec<Explanation>>) {
        const CHUNK: usize = 2048;
        let cols = self.params.columns;
        let n = rows.len() / cols;
        let mut scores = Vec::with_capacity(n);
        let mut why = explain.then(|| Vec::with_capacity(n));
        for start in (0..n).step_by(CHUNK) {
            let end = (start + CHUNK).min(n);
            self.chunk(&rows[start * cols..end * cols], &mut scores, why.as_mut());
        }
        (scores, why)
    }

    fn chunk(
        &mut self,
        rows: &[f64],
        scores: &mut Vec<f64>,
        mut why: Option<&mut Vec<Explanation>>,
    ) {
        let cols = self.params.columns;
        let shingle = self.params.shingle_size;
        let dim = cols * shingle;
        let tau = self.params.time_decay;
        let first = scores.len();
        // Row by row: the shingle, the strengths, and the points the trees will see, each
        // pinned in the store while the trees work through the chunk.
        let mut points: Vec<(usize, u32, f64, bool)> = Vec::new(); // (row, point, rel, ready)
        let mut rebases: Vec<(usize, f64)> = Vec::new(); // (before point k, shift)
        let mut strengths: Vec<Vec<f64>> = Vec::new();
        let (mut seen, mut base) = (self.seen, self.base);
        for (r, values) in rows.chunks_exact(cols).enumerate() {
            if self.shingle.len() == dim {
                self.shingle.drain(..cols);
            }
            self.shingle.extend(values.iter().copied());
            if why.is_some() {
                strengths.push(
                    values
                        .iter()
                        .zip(&self.moments)
                        .map(|(&x, m)| m.strength(x))
                        .collect(),
                );
            }
            for (m, &x) in self.moments.iter_mut().zip(values) {
                m.add(x, tau);
            }
            scores.push(0.0);
            if self.shingle.len() < dim {
                continue;
            }
            let point: Vec<f64> = self.shingle.iter().copied().collect();
            let index = self.store.add(&point);
            self.store.hold(index);
            let mut rel = if tau == 0 {
                0.0
            } else {
                (seen - base) as f64 / tau as f64
            };
            if rel > 16.0 {
                rebases.push((points.len(), rel));
                base = seen;
                rel = 0.0;
            }
            points.push((r, index, rel, seen >= self.params.output_after()));
            seen += 1;
        }
        let mut parts: Vec<DiVector> = if why.is_some() {
            vec![DiVector::zeros(dim); points.len()]
        } else {
            Vec::new()
        };
        let explain = why.is_some();
        let cap = self.params.sample_size;
        let grows: Vec<f64> = points.iter().map(|p| p.2.exp()).collect();
        let mut path = std::mem::take(&mut self.path);
        let mut scale = (u32::MAX, 0.0);
        // Per tree, eight rows' descents run in step on the tree as it stands; a row whose
        // sample changes the tree sends the rest of its group down again.
        const GROUP: usize = 8;
        let mut found = [(0u32, 0usize); GROUP];
        for t in 0..self.trees.len() {
            let mut next_rebase = 0;
            for (g, group) in points.chunks(GROUP).enumerate() {
                let first_k = g * GROUP;
                {
                    let tree = &self.trees[t];
                    if tree.root().is_some() {
                        let mut xs: [&[f64]; GROUP] = [&[]; GROUP];
                        for (x, p) in xs.iter_mut().zip(group) {
                            *x = self.store.point(p.1);
                        }
                        tree.descend_all(&xs[..group.len()], &mut found[..group.len()]);
                    }
                }
                let mut current = self.trees[t].root().is_some();
                for (j, &(r, index, rel, ready)) in group.iter().enumerate() {
                    let k = first_k + j;
                    while next_rebase < rebases.len() && rebases[next_rebase].0 == k {
                        self.rebase_tree(t, rebases[next_rebase].1);
                        next_rebase += 1;
                    }
                    if ready {
                        let tree = &self.trees[t];
                        let x = self.store.point(index);
                        let (leaf, depth) = if current { found[j] } else { tree.descend(x) };
                        let m = tree.mass();
                        if m != scale.0 {
                            scale = (m, (1.0 + m as f64).log2());
                        }
                        scores[first + r] +=
                            tree.score_leaf(&self.store, x, leaf, depth, &mut |_| scale.1);
                        if explain {
                            parts[k].add_scaled(&tree.attribution(&self.store, x, &mut path), 1.0);
                        }
                    }
                    if self.offer(t, index, rel, grows[k], cap) {
                        current = false;
                    }
                }
            }
        }
        self.path = path;
        self.base = base;
        self.seen = seen;
        for &(_, index, _, _) in &points {
            self.store.release(index);
        }
        let trees = self.trees.len() as f64;
        for &(r, _, _, _) in &points {
            scores[first + r] /= trees;
        }
        if let Some(why) = why.as_mut() {
            let mut by_row: Vec<Option<usize>> = vec![None; rows.len() / cols];
            for (k, &(r, _, _, ready)) in points.iter().enumerate() {
                if ready {
                    by_row[r] = Some(k);
                }
            }
            for (r, k) in by_row.into_iter().enumerate() {
                let Some(k) = k else {
                    why.push(None);
                    continue;
                };
                let p = &parts[k];
                why.push(Some(
                    (0..cols)
                        .map(|c| {
                            let (mut low, mut high) = (0.0, 0.0);
                            for s in 0..shingle {
                                low += p.low[s * cols + c] / trees;
                                high += p.high[s * cols + c] / trees;
                            }
                            ColumnExplanation {
                                attribution: low + high,
                                high: high > low,
                                strength: strengths[r][c],
                            }
                        })
                        .collect(),
                ));
            }
        }
    }

    /// The mean of the trees' scores of `point`, without offering it to the samples (a
    /// query; [`Forest::update_rows`] scores and samples).
    pub fn score(&self, point: &[f64]) -> f64 {
        let total: f64 = self.trees.iter().map(|t| t.score(&self.store, point)).sum();
        total / self.trees.len() as f64
    }

    /// Offers the stored point `index` to tree `t`'s sampler; returns whether the tree
    /// changed.
    ///
    /// A point's weight is `ln(e) - (row - base) / time_decay`, with `e` drawn from an
    /// exponential distribution (`e = -ln u`), and the second term (`rel`) kept relative to a
    /// recent row `base` so it stays a small number however long the stream. A full sample
    /// takes a point when its weight is below the sample's largest, `top`: when
    /// `e < exp(top) * exp(rel)`, the row's "hazard". Rather than draw `e` for every row and
    /// tree, each tree draws one exponential number, `remaining`, and spends each row's
    /// hazard from it; the row where it runs out is taken, and what was left is that row's
    /// `e` (an exponential number conditioned on being below the hazard, which is exactly
    /// what a fresh draw would be given that the row is taken). Between takes the test is a
    /// multiplication and a comparison. A rebase leaves every hazard as it was (the sample's
    /// weights and the rows' `rel` shift by the same amount).
    fn offer(&mut self, t: usize, index: u32, rel: f64, grow: f64, cap: usize) -> bool {
        let tree = &mut self.trees[t];
        let sample = &mut self.samples[t];
        let e = if sample.len() >= cap {
            let hazard = self.limits[t] * grow;
            if self.remaining[t] >= hazard {
                self.remaining[t] -= hazard;
                return false;
            }
            let e = self.remaining[t].max(f64::MIN_POSITIVE);
            if let Some(out) = sample.pop() {
                tree.delete(&self.store, out.point);
                self.store.release(out.point);
            }
            e
        } else {
            -tree.rng().open01().ln()
        };
        let held = tree.insert(&self.store, index);
        self.store.hold(held);
        sample.push(Sampled {
            weight: e.ln() - rel,
            point: held,
        });
        if sample.len() >= cap {
            self.limits[t] = sample.peek().map_or(0.0, |top| top.weight.exp());
            self.remaining[t] = -tree.rng().open01().ln();
        }
        true
    }

    /// Makes a later row the base of tree `t`'s weights: each grows by `shift` (order
    /// kept).
    fn rebase_tree(&mut self, t: usize, shift: f64) {
        let moved: Vec<Sampled> = std::mem::take(&mut self.samples[t])
            .into_vec()
            .into_iter()
            .map(|s| Sampled {
                weight: s.weight + shift,
                point: s.point,
            })
            .collect();
        self.samples[t] = BinaryHeap::from(moved);
        self.limits[t] = self.samples[t].peek().map_or(0.0, |top| top.weight.exp());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(trees: usize, sample: usize, shingle: usize) -> ForestParams {
        ForestParams {
            columns: 1,
            trees,
            sample_size: sample,
            time_decay: 0,
            shingle_size: shingle,
            seed: 42,
        }
    }

    #[test]
    fn warm_up_gives_zeros_then_scores() {
        let mut f = Forest::new(params(10, 32, 1), 0).unwrap();
        let scores: Vec<f64> = (0..100)
            .map(|i| f.update(&[(i % 10) as f64], false).0)
            .collect();
        let after = params(10, 32, 1).output_after() as usize;
        assert!(scores[..after].iter().all(|&s| s == 0.0));
        assert!(scores[after..].iter().all(|&s| s > 0.0));
        for t in f.trees() {
            t.check(f.store()).unwrap();
            assert_eq!(t.mass(), 32);
        }
    }

    #[test]
    fn a_spike_stands_out_and_is_explained_high() {
        let mut f = Forest::new(params(50, 128, 1), 0).unwrap();
        let mut rng = Rng::new(1);
        let mut normal = Vec::new();
        for _ in 0..2000 {
            normal.push(f.update(&[10.0 + rng.uniform()], false).0);
        }
        let (spike, why) = f.update(&[30.0], true);
        let why = why.unwrap().expect("explained once the forest is full");
        let tail = &normal[1000..];
        let mean = tail.iter().sum::<f64>() / tail.len() as f64;
        assert!(spike > 3.0 * mean, "{spike} vs {mean}");
        assert!((why[0].attribution - spike).abs() < 1e-9);
        assert!(why[0].high);
        assert!(why[0].strength > 10.0);
    }

    #[test]
    fn the_same_seed_and_rows_give_the_same_scores_and_a_snapshot_continues_them() {
        let rows: Vec<f64> = (0..600).map(|i| ((i * 37) % 101) as f64).collect();
        let mut a = Forest::new(params(20, 64, 3), 0).unwrap();
        let mut b = Forest::new(params(20, 64, 3), 0).unwrap();
        let sa: Vec<f64> = rows.iter().map(|&v| a.update(&[v], false).0).collect();
        let sb: Vec<f64> = rows[..300]
            .iter()
            .map(|&v| b.update(&[v], false).0)
            .collect();
        let bytes = crate::codec::encode(&b).unwrap();
        let mut c: Forest = crate::codec::decode(&bytes, "a forest").unwrap();
        let sc: Vec<f64> = rows[300..]
            .iter()
            .map(|&v| c.update(&[v], false).0)
            .collect();
        assert_eq!(sa[..300], sb[..]);
        assert_eq!(sa[300..], sc[..]);
    }

    #[test]
    fn rows_in_one_call_score_as_rows_one_at_a_time() {
        let mut p = params(30, 64, 2);
        p.time_decay = 50; // rebases every 800 rows, inside the chunks
        p.columns = 2;
        let mut rng = Rng::new(2);
        let rows: Vec<f64> = (0..6000).map(|i| (i % 17) as f64 + rng.uniform()).collect();
        let mut one = Forest::new(p.clone(), 3).unwrap();
        let mut all = Forest::new(p, 3).unwrap();
        let (a, wa): (Vec<f64>, Vec<Explanation>) = rows
            .chunks(2)
            .map(|r| {
                let (s, w) = one.update(r, true);
                (s, w.unwrap())
            })
            .unzip();
        let (b, wb) = all.update_rows(&rows, true);
        assert_eq!(a, b);
        assert_eq!(wa, wb.unwrap());
        assert!(a[2000..].iter().all(|&s| s > 0.0));
    }

    #[test]
    fn time_decay_keeps_the_sample_recent() {
        let mut p = params(20, 64, 1);
        p.time_decay = 200;
        let mut f = Forest::new(p, 0).unwrap();
        for i in 0..5000 {
            f.update(&[i as f64], false);
        }
        // Every tree's sample is mostly from the last thousand rows.
        for s in &f.samples {
            let recent = s
                .iter()
                .filter(|x| f.store.point(x.point)[0] >= 4000.0)
                .count();
            assert!(recent * 10 >= s.len() * 9, "{recent} of {}", s.len());
        }
    }

    #[test]
    fn bad_parameters_say_what_would_be_right() {
        let mut p = params(0, 256, 1);
        assert!(Forest::new(p.clone(), 0)
            .unwrap_err()
            .to_string()
            .contains("trees must be between 1 and 10000"));
        p.trees = 10;
        p.sample_size = 2;
        assert!(Forest::new(p, 0)
            .unwrap_err()
            .to_string()
            .contains("sample_size"));
    }
}
