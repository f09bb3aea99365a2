//! Distinct counts: exact (a set of values) and approximate (HyperLogLog with a sparse, exact
//! mode for small windows and Ertl's improved estimator beyond).

use super::contract::RowContext;
use super::rows::{Column, OutBuilder, RowState};
use hashbrown::{DefaultHashBuilder, HashSet, HashTable};
use serde::{Deserialize, Serialize};
use std::hash::BuildHasher;

/// A 64-bit hash of a value's identifying bytes; the same on every machine and run, so sketches
/// built apart merge (wyhash-style multiply-mix, then a splitmix64 finaliser).
#[inline]
pub fn hash64(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h: u64 = 0x243F_6A88_85A3_08D3 ^ (bytes.len() as u64).wrapping_mul(K);
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        h = (h ^ w).wrapping_mul(K);
        h ^= h >> 29;
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut b = [0u8; 8];
        b[..rest.len()].copy_from_slice(rest);
        h = (h ^ u64::from_le_bytes(b)).wrapping_mul(K);
    }
    splitmix64(h)
}

#[inline]
fn splitmix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Exact distinct count: the set of values' identifying bytes. Nulls are not counted.
///
/// The values live end to end in one byte arena, indexed by a hash table of their positions,
/// so adding a value allocates nothing per value and a closed window's set is freed in a
/// few deallocations (a set of boxed values cost one allocation and one free per value).
///
/// ```
/// use _core::aggregate::ExactDistinct;
/// let mut d = ExactDistinct::default();
/// for v in ["a", "bb", "a", "", "bb"] { d.insert(v.as_bytes()); }
/// assert_eq!(d.len(), 3);
/// ```
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(from = "DistinctValues", into = "DistinctValues")]
pub struct ExactDistinct {
    /// The values' bytes, end to end.
    bytes: Vec<u8>,
    /// Where each value ends in `bytes`.
    ends: Vec<u32>,
    /// Each value's hash, so growing the table never rehashes the bytes.
    hashes: Vec<u64>,
    /// Value indices, by hash.
    index: HashTable<u32>,
    /// The hash of the index (any hash will do: the index is rebuilt when a set is read back).
    hasher: DefaultHashBuilder,
}

/// The stored form of [`ExactDistinct`]: the arena without its index.
#[derive(Clone, Serialize, Deserialize)]
struct DistinctValues {
    bytes: Vec<u8>,
    ends: Vec<u32>,
}

impl From<ExactDistinct> for DistinctValues {
    fn from(d: ExactDistinct) -> Self {
        DistinctValues {
            bytes: d.bytes,
            ends: d.ends,
        }
    }
}

impl From<DistinctValues> for ExactDistinct {
    fn from(v: DistinctValues) -> Self {
        let mut d = ExactDistinct::default();
        let mut start = 0usize;
        for &end in &v.ends {
            d.insert(&v.bytes[start..end as usize]);
            start = end as usize;
        }
        d
    }
}

impl PartialEq for ExactDistinct {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && (0..self.len()).all(|i| other.contains(self.value(i)))
    }
}

impl ExactDistinct {
    /// How many distinct values.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// True when no value was added.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    #[inline]
    fn value(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.bytes[start..self.ends[i] as usize]
    }

    #[inline]
    fn find(&self, h: u64, v: &[u8]) -> Option<&u32> {
        self.index.find(h, |&i| self.value(i as usize) == v)
    }

    /// True when `v` was added.
    pub fn contains(&self, v: &[u8]) -> bool {
        self.find(self.hasher.hash_one(v), v).is_some()
    }

    /// Adds a value (its identifying bytes); true when it was new.
    #[inline]
    pub fn insert(&mut self, v: &[u8]) -> bool {
        let h = self.hasher.hash_one(v);
        if self.find(h, v).is_some() {
            return false;
        }
        let i = self.ends.len() as u32;
        self.bytes.extend_from_slice(v);
        self.ends.push(self.bytes.len() as u32);
        self.hashes.push(h);
        let hashes = &self.hashes;
        self.index.insert_unique(h, i, |&j| hashes[j as usize]);
        true
    }
}

impl RowState for ExactDistinct {
    type Config = ();
    fn new(_: &()) -> Self {
        ExactDistinct::default()
    }
    #[inline]
    fn update(
        &mut self,
        _: &(),
        col: &Column<'_>,
        _: Option<&Column<'_>>,
        row: usize,
        _: &RowContext<'_>,
    ) {
        let mut buf = [0u8; 8];
        if let Some(k) = col.key(row, &mut buf) {
            self.insert(k);
        }
    }
    fn merge(&mut self, _: &(), other: &Self) {
        for i in 0..other.len() {
            self.insert(other.value(i));
        }
    }
    fn evaluate(&self, _: &(), out: &mut OutBuilder) {
        out.push_i64(Some(self.len() as i64));
    }
    fn size(&self) -> usize {
        self.bytes.capacity()
            + self.ends.capacity() * 4
            + self.hashes.capacity() * 8
            + self.index.capacity() * 5
            + std::mem::size_of::<Self>()
    }
}

/// Settings of [`HyperLogLog`].
pub struct HllConfig {
    /// Register index bits: 2^p registers, relative error about 1.04 / sqrt(2^p).
    pub precision: u8,
}

impl HllConfig {
    fn registers(&self) -> usize {
        1 << self.precision
    }

    /// The sparse (exact) mode holds at most this many hashes: half the dense size in bytes.
    pub fn sparse_limit(&self) -> usize {
        self.registers() / 2
    }
}

/// HyperLogLog: exact (a set of 64-bit hashes) while small, registers beyond. Merging two
/// dense sketches is the register-wise maximum, so a merged sketch equals the sketch of the
/// union bit for bit.
///
/// ```
/// use _core::aggregate::{HllConfig, HyperLogLog};
/// let cfg = HllConfig { precision: 12 };
/// let mut h = HyperLogLog::empty();
/// for i in 0..100u64 { h.add_hash(&cfg, _core::aggregate::hash64(&i.to_le_bytes())); }
/// assert_eq!(h.estimate(&cfg), 100);              // exact while sparse
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum HyperLogLog {
    /// Exact mode: the distinct hashes seen.
    Sparse(HashSet<u64>),
    /// Estimation mode: one register per 2^p buckets.
    Dense(Vec<u8>),
}

impl HyperLogLog {
    /// An empty sketch.
    pub fn empty() -> Self {
        HyperLogLog::Sparse(HashSet::new())
    }

    /// Adds a hashed value.
    #[inline]
    pub fn add_hash(&mut self, cfg: &HllConfig, h: u64) {
        match self {
            HyperLogLog::Sparse(set) => {
                set.insert(h);
                if set.len() > cfg.sparse_limit() {
                    self.densify(cfg);
                }
            }
            HyperLogLog::Dense(regs) => add_register(regs, cfg.precision, h),
        }
    }

    fn densify(&mut self, cfg: &HllConfig) {
        if let HyperLogLog::Sparse(set) = self {
            let mut regs = vec![0u8; cfg.registers()];
            for &h in set.iter() {
                add_register(&mut regs, cfg.precision, h);
            }
            *self = HyperLogLog::Dense(regs);
        }
    }

    /// Adds another sketch (of the same precision).
    pub fn merge(&mut self, cfg: &HllConfig, other: &HyperLogLog) {
        match other {
            HyperLogLog::Sparse(set) => {
                for &h in set {
                    self.add_hash(cfg, h);
                }
            }
            HyperLogLog::Dense(o) => {
                self.densify(cfg);
                if let HyperLogLog::Dense(regs) = self {
                    for (r, &x) in regs.iter_mut().zip(o) {
                        *r = (*r).max(x);
                    }
                }
            }
        }
    }

    /// The registers, when dense (for tests of merge exactness).
    pub fn registers(&self) -> Option<&[u8]> {
        match self {
            HyperLogLog::Dense(r) => Some(r),
            HyperLogLog::Sparse(_) => None,
        }
    }

    /// The distinct count: exact while sparse, Ertl's improved estimator beyond.
    pub fn estimate(&self, cfg: &HllConfig) -> i64 {
        match self {
            HyperLogLog::Sparse(set) => set.len() as i64,
            HyperLogLog::Dense(regs) => ertl_estimate(regs, cfg.precision).round() as i64,
        }
    }
}

#[inline]
fn add_register(regs: &mut [u8], p: u8, h: u64) {
    let idx = (h >> (64 - p)) as usize;
    let w = h << p;
    let q = 64 - p as u32;
    let rho = (w.leading_zeros() + 1).min(q + 1) as u8;
    if regs[idx] < rho {
        regs[idx] = rho;
    }
}

/// Ertl, "New cardinality estimation algorithms for HyperLogLog sketches" (2017), the
/// improved raw estimator: no bias tables, accurate from small to huge cardinalities.
fn ertl_estimate(regs: &[u8], p: u8) -> f64 {
    let m = regs.len() as f64;
    let q = 64 - p as usize;
    let mut c = vec![0u32; q + 2];
    for &r in regs {
        c[r as usize] += 1;
    }
    let mut z = m * tau(1.0 - c[q + 1] as f64 / m);
    for k in (1..=q).rev() {
        z = 0.5 * (z + c[k] as f64);
    }
    z += m * sigma(c[0] as f64 / m);
    let alpha_inf = 0.5 / std::f64::consts::LN_2;
    alpha_inf * m * m / z
}

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let z_old = z;
        z += x * y;
        y += y;
        if z == z_old {
            return z;
        }
    }
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let z_old = z;
        y *= 0.5;
        z -= (1.0 - x).powi(2) * y;
        if z == z_old {
            return z / 3.0;
        }
    }
}

impl RowState for HyperLogLog {
    type Config = HllConfig;
    fn new(_: &HllConfig) -> Self {
        HyperLogLog::empty()
    }
    #[inline]
    fn update(
        &mut self,
        cfg: &HllConfig,
        col: &Column<'_>,
        _: Option<&Column<'_>>,
        row: usize,
        _: &RowContext<'_>,
    ) {
        let mut buf = [0u8; 8];
        if let Some(k) = col.key(row, &mut buf) {
            self.add_hash(cfg, hash64(k));
        }
    }
    fn merge(&mut self, cfg: &HllConfig, other: &Self) {
        HyperLogLog::merge(self, cfg, other)
    }
    fn evaluate(&self, cfg: &HllConfig, out: &mut OutBuilder) {
        out.push_i64(Some(self.estimate(cfg)));
    }
    fn size(&self) -> usize {
        match self {
            HyperLogLog::Sparse(s) => s.capacity() * 9 + 48,
            HyperLogLog::Dense(r) => r.len() + 24,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sketch(cfg: &HllConfig, range: std::ops::Range<u64>) -> HyperLogLog {
        let mut h = HyperLogLog::empty();
        for i in range {
            h.add_hash(cfg, hash64(&i.to_le_bytes()));
        }
        h
    }

    #[test]
    fn exact_while_sparse_then_within_the_error_bound() {
        let cfg = HllConfig { precision: 14 };
        assert_eq!(sketch(&cfg, 0..8000).estimate(&cfg), 8000);
        for n in [20_000u64, 100_000, 1_000_000] {
            let est = sketch(&cfg, 0..n).estimate(&cfg) as f64;
            let rel = (est - n as f64).abs() / n as f64;
            assert!(rel < 3.0 * 1.04 / 128.0, "n = {n}: {est}");
        }
    }

    #[test]
    fn merge_equals_the_sketch_of_the_union_bit_for_bit() {
        let cfg = HllConfig { precision: 10 };
        let mut a = sketch(&cfg, 0..30_000);
        let b = sketch(&cfg, 20_000..60_000);
        a.merge(&cfg, &b);
        let union = sketch(&cfg, 0..60_000);
        assert_eq!(a.registers(), union.registers());
        // Sparse into dense, too.
        let mut c = sketch(&cfg, 0..10_000);
        c.merge(&cfg, &sketch(&cfg, 59_990..60_000));
        let mut d = sketch(&cfg, 0..10_000);
        for i in 59_990..60_000u64 {
            d.add_hash(&cfg, hash64(&i.to_le_bytes()));
        }
        assert_eq!(c.registers(), d.registers());
    }
}
