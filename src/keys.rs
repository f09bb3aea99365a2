//! Grouping keys: zero or more columns of any flat Arrow type, interned into dense group ids.
//!
//! A batch is interned in two steps, so that the per-row work is one cheap hash per column:
//!
//! 1. each key column is dictionary-encoded *within the batch* by hashing its values in place
//!    (string bytes, or the fixed-width bytes of a primitive), and the per-column codes are
//!    combined into one code per distinct key tuple of the batch;
//! 2. only the distinct tuples (a few thousand rows, not the batch) are converted into
//!    arrow-row's byte encoding and looked up in the run-wide dictionary. That encoding's byte
//!    order is the ascending order of the values (nulls first, all nulls equal), so sorting ids
//!    by their bytes gives the emission order by key.

use crate::error::{Error, Result};
use crate::parallel;
use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, UInt32Array};
use arrow_row::{RowConverter, Rows, SortField};
use arrow_schema::DataType;
use hashbrown::HashMap;
use rayon::prelude::*;
use std::cmp::Ordering;
use std::hash::Hash;

/// Dense ids for the distinct key tuples seen so far.
pub struct KeyInterner {
    converter: Option<RowConverter>,
    ids: HashMap<Box<[u8]>, u32>,
    rows: Option<Rows>,
}

impl KeyInterner {
    /// An interner for key columns of these types (none: every row has id 0).
    pub fn new(types: &[DataType]) -> Result<Self> {
        if types.is_empty() {
            return Ok(KeyInterner {
                converter: None,
                ids: HashMap::new(),
                rows: None,
            });
        }
        let fields: Vec<SortField> = types.iter().map(|t| SortField::new(t.clone())).collect();
        if !RowConverter::supports_fields(&fields) {
            return Err(Error::Schema(format!(
                "cannot group by columns of types {types:?}; use string, integer, boolean, \
                 date or datetime keys"
            )));
        }
        let converter = RowConverter::new(fields)?;
        let rows = converter.empty_rows(0, 0);
        Ok(KeyInterner {
            converter: Some(converter),
            ids: HashMap::new(),
            rows: Some(rows),
        })
    }

    /// The key id of every row of a batch, given its key columns (in `by` order).
    ///
    /// A large batch is encoded in row ranges on the worker threads, each into codes of its
    /// own distinct key tuples; the ranges' distinct tuples are then encoded once more in row
    /// order (a tuple's code is where it first appears in the batch, as in one pass), only
    /// those are interned, and the threads map their rows' codes to ids.
    pub fn batch_ids(&mut self, columns: &[ArrayRef], num_rows: usize) -> Result<Vec<u32>> {
        if columns.is_empty() {
            return Ok(vec![0; num_rows]);
        }
        let ranges = parallel::ranges(num_rows);
        if ranges.len() == 1 {
            let (codes, reps) = tuple_codes(columns)?;
            let ids = self.intern_rows(columns, reps)?;
            return Ok(codes.into_iter().map(|c| ids[c as usize]).collect());
        }
        let pool = parallel::pool();
        let pieces: Vec<(Vec<u32>, Vec<u32>)> = pool.install(|| {
            ranges
                .par_iter()
                .map(|&(lo, len)| {
                    let slices: Vec<ArrayRef> = columns.iter().map(|c| c.slice(lo, len)).collect();
                    tuple_codes(&slices)
                })
                .collect::<Result<_>>()
        })?;
        let first_rows: Vec<u32> = ranges
            .iter()
            .zip(&pieces)
            .flat_map(|(&(lo, _), (_, reps))| reps.iter().map(move |&r| lo as u32 + r))
            .collect();
        let take = UInt32Array::from(first_rows.clone());
        let firsts: Vec<ArrayRef> = columns
            .iter()
            .map(|c| arrow_select::take::take(c.as_ref(), &take, None))
            .collect::<std::result::Result<_, _>>()?;
        let (merged, merged_reps) = tuple_codes(&firsts)?;
        let reps: Vec<u32> = merged_reps
            .iter()
            .map(|&k| first_rows[k as usize])
            .collect();
        let ids = self.intern_rows(columns, reps)?;
        // Each range's codes, through the merged codes, to ids.
        let mut out = vec![0u32; num_rows];
        let mut parts: Vec<&mut [u32]> = Vec::with_capacity(ranges.len());
        let mut rest = &mut out[..];
        for &(_, len) in &ranges {
            let (part, tail) = rest.split_at_mut(len);
            parts.push(part);
            rest = tail;
        }
        let mut offset = 0;
        let tables: Vec<Vec<u32>> = pieces
            .iter()
            .map(|(_, r)| {
                let t = merged[offset..offset + r.len()]
                    .iter()
                    .map(|&m| ids[m as usize])
                    .collect();
                offset += r.len();
                t
            })
            .collect();
        pool.install(|| {
            parts
                .into_par_iter()
                .zip(pieces.par_iter().zip(tables.par_iter()))
                .for_each(|(part, ((codes, _), table))| {
                    for (o, &c) in part.iter_mut().zip(codes) {
                        *o = table[c as usize];
                    }
                })
        });
        Ok(out)
    }

    /// Interns the key tuples at rows `reps` of a batch's key columns: their ids, in order.
    fn intern_rows(&mut self, columns: &[ArrayRef], reps: Vec<u32>) -> Result<Vec<u32>> {
        let take = UInt32Array::from(reps);
        let distinct: Vec<ArrayRef> = columns
            .iter()
            .map(|c| arrow_select::take::take(c.as_ref(), &take, None))
            .collect::<std::result::Result<_, _>>()?;
        let encoded = self.encode(&distinct)?;
        Ok((0..take.len())
            .map(|i| self.intern(encoded.as_ref(), i))
            .collect())
    }
}

/// Dictionary-encodes key tuples in one pass: (code per row, first row of each code).
pub(crate) fn tuple_codes(columns: &[ArrayRef]) -> Result<(Vec<u32>, Vec<u32>)> {
    let (mut codes, mut reps) = column_codes(&columns[0], 0)?;
    for (c, col) in columns.iter().enumerate().skip(1) {
        let (col_codes, col_reps) = column_codes(col, c)?;
        (codes, reps) = combine(&codes, reps.len(), &col_codes, col_reps.len());
    }
    Ok((codes, reps))
}

/// A batch's key tuples, each distinct one once: every row's code, each code's tuple in
/// `converter`'s row format, and whether a key of it is null (a null key matches nothing).
pub(crate) fn distinct_keys(
    keys: &[ArrayRef],
    converter: &RowConverter,
) -> Result<(Vec<u32>, Rows, Vec<bool>)> {
    let (codes, reps) = tuple_codes(keys)?;
    let take = UInt32Array::from(reps);
    let distinct: Vec<ArrayRef> = keys
        .iter()
        .map(|c| arrow_select::take::take(c.as_ref(), &take, None))
        .collect::<std::result::Result<_, _>>()?;
    let encoded = converter.convert_columns(&distinct)?;
    let null = (0..take.len())
        .map(|i| distinct.iter().any(|c| c.is_null(i)))
        .collect();
    Ok((codes, encoded, null))
}

/// Dictionary-encodes one column in one pass: (code per row, first row of each code).
fn column_codes(col: &ArrayRef, position: usize) -> Result<(Vec<u32>, Vec<u32>)> {
    Ok(match col.data_type() {
        DataType::Utf8 => codes_of(col.as_string::<i32>().iter().map(|v| v.map(str::as_bytes))),
        DataType::LargeUtf8 => {
            codes_of(col.as_string::<i64>().iter().map(|v| v.map(str::as_bytes)))
        }
        DataType::Utf8View => view_codes(col.as_string_view()),
        DataType::Binary => codes_of(col.as_binary::<i32>().iter()),
        DataType::LargeBinary => codes_of(col.as_binary::<i64>().iter()),
        DataType::BinaryView => codes_of(col.as_binary_view().iter()),
        DataType::Boolean => codes_of(col.as_boolean().iter()),
        t if t.primitive_width().is_some_and(|w| w <= 16) => {
            let width = t.primitive_width().expect("primitive");
            let data = col.to_data();
            let bytes = &data.buffers()[0].as_slice()[data.offset() * width..];
            let value = |i: usize| -> u128 {
                let mut b = [0u8; 16];
                b[..width].copy_from_slice(&bytes[i * width..(i + 1) * width]);
                u128::from_le_bytes(b)
            };
            codes_of((0..col.len()).map(|i| col.is_valid(i).then(|| value(i))))
        }
        _ => {
            // Any other type: its own arrow-row encoding, hashed as bytes.
            let field = SortField::new(col.data_type().clone());
            let converter = RowConverter::new(vec![field]).map_err(|e| {
                Error::Schema(format!("cannot group by key column {position}: {e}"))
            })?;
            let rows = converter.convert_columns(std::slice::from_ref(col))?;
            let (codes, reps) = codes_of(rows.iter().map(|r| Some(r.data())));
            (codes, reps)
        }
    })
}

impl KeyInterner {
    /// Encodes a batch's key columns; pass the result to [`KeyInterner::intern`].
    pub fn encode(&self, columns: &[ArrayRef]) -> Result<Option<Rows>> {
        match &self.converter {
            None => Ok(None),
            Some(c) => Ok(Some(c.convert_columns(columns)?)),
        }
    }

    /// The id of row `i` of an encoded batch, assigning a new one for a new key.
    #[inline]
    pub fn intern(&mut self, encoded: Option<&Rows>, i: usize) -> u32 {
        let (Some(encoded), Some(rows)) = (encoded, self.rows.as_mut()) else {
            return 0;
        };
        let row = encoded.row(i);
        let bytes = row.as_ref();
        if let Some(&id) = self.ids.get(bytes) {
            return id;
        }
        let id = rows.num_rows() as u32;
        rows.push(row);
        self.ids.insert(bytes.into(), id);
        id
    }

    /// Orders two ids by their key values, ascending.
    #[inline]
    pub fn compare(&self, a: u32, b: u32) -> Ordering {
        match &self.rows {
            None => Ordering::Equal,
            Some(rows) => rows.row(a as usize).cmp(&rows.row(b as usize)),
        }
    }

    /// The key columns for a list of ids.
    pub fn to_arrays(&self, ids: &[u32]) -> Result<Vec<ArrayRef>> {
        match (&self.converter, &self.rows) {
            (Some(c), Some(rows)) => Ok(c.convert_rows(ids.iter().map(|&i| rows.row(i as usize)))?),
            _ => Ok(Vec::new()),
        }
    }

    /// Number of distinct keys seen.
    pub fn len(&self) -> usize {
        self.rows.as_ref().map_or(1, |r| r.num_rows())
    }

    /// True before any key was seen (never for a query without keys).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Approximate bytes held.
    pub fn size(&self) -> usize {
        let rows = self.rows.as_ref().map_or(0, |r| r.size());
        rows * 2 + self.ids.capacity() * (std::mem::size_of::<(Box<[u8]>, u32)>() + 1)
    }
}

/// Codes for a sequence of optional values: equal values (and all nulls) share a code.
fn codes_of<T: Hash + Eq>(values: impl Iterator<Item = Option<T>>) -> (Vec<u32>, Vec<u32>) {
    let (lower, _) = values.size_hint();
    let mut codes = Vec::with_capacity(lower);
    let mut reps: Vec<u32> = Vec::new();
    let mut seen: HashMap<T, u32> = HashMap::new();
    let mut null_code: Option<u32> = None;
    for (i, v) in values.enumerate() {
        let code = match v {
            None => *null_code.get_or_insert_with(|| {
                reps.push(i as u32);
                (reps.len() - 1) as u32
            }),
            Some(v) => *seen.entry(v).or_insert_with(|| {
                reps.push(i as u32);
                (reps.len() - 1) as u32
            }),
        };
        codes.push(code);
    }
    (codes, reps)
}

/// Codes for the strings of a view column, in order of first appearance, through a
/// direct-mapped cache in front of a hash map of the strings. A cache entry is keyed by the
/// string itself up to 32 bytes (its view inline up to 12 bytes, else its first and last 16
/// bytes with its length), so a hit costs one multiply and one comparison, without hashing
/// or comparing the bytes; a longer string is keyed by its view (two equal views are the same
/// place in the same buffer, as readers of dictionary-encoded data produce). The cache grows
/// with the distinct strings, to twice their number, and is left out past `MAX_CACHED` of
/// them, where it would no longer fit in a core's cache.
pub(crate) struct ViewCoder<'a> {
    array: &'a arrow_array::StringViewArray,
    cache: Vec<CacheEntry>,
    bits: u32,
    seen: HashMap<&'a [u8], u32>,
    /// The first row of each code.
    pub reps: Vec<u32>,
}

/// `(key, tag, code)`: `tag` is the string's length, with the top bit set when the key is
/// the view of a string longer than 32 bytes; `code` is `u32::MAX` in an empty entry.
type CacheEntry = ((u128, u128), u32, u32);

impl<'a> ViewCoder<'a> {
    const MAX_CACHED: usize = 1 << 13;

    pub fn new(array: &'a arrow_array::StringViewArray) -> Self {
        let bits = 10;
        ViewCoder {
            array,
            cache: vec![((0, 0), 0, u32::MAX); 1 << bits],
            bits,
            seen: HashMap::new(),
            reps: Vec::new(),
        }
    }

    /// The cache key of a string: its bytes up to 32 of them, else its view.
    #[inline]
    fn key(&self, i: usize) -> ((u128, u128), u32) {
        let view = self.array.views()[i];
        let len = view as u32;
        if len <= 12 {
            return ((view, 0), len);
        }
        if len > 32 {
            return ((view, 0), len | 1 << 31);
        }
        let b = self.array.value(i).as_bytes();
        let word = |s: &[u8]| u128::from_le_bytes(s.try_into().expect("16 bytes"));
        let pair = if b.len() >= 16 {
            (word(&b[..16]), word(&b[b.len() - 16..]))
        } else {
            let mut first = [0u8; 16];
            first[..b.len()].copy_from_slice(b);
            (u128::from_le_bytes(first), 0)
        };
        (pair, len)
    }

    /// The code of row `i`, which must not be null.
    #[inline]
    pub fn code(&mut self, i: usize) -> u32 {
        let (key, tag) = self.key(i);
        let mixed = (key.0 as u64)
            ^ ((key.0 >> 64) as u64).rotate_left(29)
            ^ (key.1 as u64).rotate_left(17)
            ^ ((key.1 >> 64) as u64).rotate_left(43)
            ^ u64::from(tag);
        let at = (mixed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - self.bits)) as usize;
        if let Some(&(k, t, code)) = self.cache.get(at) {
            if k == key && t == tag && code != u32::MAX {
                return code;
            }
        }
        let reps = &mut self.reps;
        let code = *self
            .seen
            .entry(self.array.value(i).as_bytes())
            .or_insert_with(|| {
                reps.push(i as u32);
                (reps.len() - 1) as u32
            });
        if let Some(entry) = self.cache.get_mut(at) {
            *entry = (key, tag, code);
        }
        if self.reps.len() * 2 > self.cache.len() && !self.cache.is_empty() {
            self.grow();
        }
        code
    }

    #[cold]
    fn grow(&mut self) {
        if self.reps.len() > Self::MAX_CACHED {
            self.cache = Vec::new();
        } else {
            self.bits += 2;
            self.cache = vec![((0, 0), 0, u32::MAX); 1 << self.bits];
        }
    }
}

/// [`codes_of`] for a string view column (see [`ViewCoder`]).
fn view_codes(a: &arrow_array::StringViewArray) -> (Vec<u32>, Vec<u32>) {
    let mut coder = ViewCoder::new(a);
    let mut codes = Vec::with_capacity(a.len());
    let mut null_code: Option<u32> = None;
    for i in 0..a.len() {
        codes.push(if a.is_null(i) {
            *null_code.get_or_insert_with(|| {
                coder.reps.push(i as u32);
                (coder.reps.len() - 1) as u32
            })
        } else {
            coder.code(i)
        });
    }
    (codes, coder.reps)
}

/// Combines two code columns into one code per distinct pair.
fn combine(a: &[u32], a_card: usize, b: &[u32], b_card: usize) -> (Vec<u32>, Vec<u32>) {
    let mut codes = Vec::with_capacity(a.len());
    let mut reps: Vec<u32> = Vec::new();
    let space = a_card.saturating_mul(b_card);
    if space <= 1 << 22 {
        // Small product: a direct table instead of a hash map.
        let mut table = vec![u32::MAX; space];
        for (i, (&x, &y)) in a.iter().zip(b).enumerate() {
            let slot = &mut table[x as usize * b_card + y as usize];
            if *slot == u32::MAX {
                *slot = reps.len() as u32;
                reps.push(i as u32);
            }
            codes.push(*slot);
        }
    } else {
        let mut seen: HashMap<u64, u32> = HashMap::new();
        for (i, (&x, &y)) in a.iter().zip(b).enumerate() {
            let code = *seen
                .entry(((x as u64) << 32) | y as u64)
                .or_insert_with(|| {
                    reps.push(i as u32);
                    (reps.len() - 1) as u32
                });
            codes.push(code);
        }
    }
    (codes, reps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{BooleanArray, Int32Array, StringArray, StringViewArray};
    use std::sync::Arc;

    #[test]
    fn equal_keys_share_ids_across_batches_and_types() {
        let types = [DataType::Utf8View, DataType::Int32, DataType::Boolean];
        let mut k = KeyInterner::new(&types).unwrap();
        let batch =
            |s: Vec<Option<&str>>, i: Vec<Option<i32>>, b: Vec<Option<bool>>| -> Vec<ArrayRef> {
                vec![
                    Arc::new(StringViewArray::from(s)),
                    Arc::new(Int32Array::from(i)),
                    Arc::new(BooleanArray::from(b)),
                ]
            };
        let a = k
            .batch_ids(
                &batch(
                    vec![Some("x"), Some("y"), None, Some("x"), None],
                    vec![Some(1), Some(1), None, Some(1), None],
                    vec![Some(true), Some(true), None, Some(true), None],
                ),
                5,
            )
            .unwrap();
        assert_eq!(a[0], a[3]);
        assert_eq!(a[2], a[4]);
        assert_ne!(a[0], a[1]);
        let b = k
            .batch_ids(
                &batch(
                    vec![
                        None,
                        Some("x"),
                        Some("a very long string beyond twelve bytes"),
                    ],
                    vec![None, Some(1), Some(2)],
                    vec![None, Some(true), Some(false)],
                ),
                3,
            )
            .unwrap();
        assert_eq!(b[0], a[2]);
        assert_eq!(b[1], a[0]);
        assert_eq!(k.len(), 4);
        // Ids order by value with nulls first.
        assert_eq!(k.compare(a[2], a[0]), Ordering::Less);
        assert_eq!(k.compare(a[0], a[1]), Ordering::Less);
    }

    #[test]
    fn large_key_products_use_the_hash_path() {
        let n = 5000;
        let a: Vec<u32> = (0..n).collect();
        let b: Vec<u32> = (0..n).rev().collect();
        let (codes, reps) = combine(&a, n as usize, &b, n as usize);
        assert_eq!(reps.len(), n as usize);
        assert_eq!(codes[10], 10);
        let strings: Vec<String> = (0..n).map(|i| format!("k{}", i % 7)).collect();
        let col: ArrayRef = Arc::new(StringArray::from(strings));
        let mut k = KeyInterner::new(&[DataType::Utf8]).unwrap();
        let ids = k.batch_ids(&[col], n as usize).unwrap();
        assert_eq!(k.len(), 7);
        assert_eq!(ids[0], ids[7]);
    }

    #[test]
    fn string_views_encode_like_strings() {
        // Short and long strings, more distinct values than the view cache has entries, as
        // views of their own and as views shared through a dictionary.
        let values: Vec<Option<String>> = (0..60_000)
            .map(|i| {
                (i % 101 != 0).then(|| match i % 4 {
                    0 => format!("s{}", (i * 31) % 3000),
                    // 13 to 16 bytes, and about 32: the cache keys change at 12, 16 and 32.
                    1 => format!("{:0>w$}", (i * 7) % 900, w = 13 + i % 4),
                    2 => format!("{:x>w$}", (i * 13) % 900, w = 30 + i % 5),
                    _ => format!("a string beyond twelve bytes {}", (i * 17) % 2000),
                })
            })
            .collect();
        let plain: ArrayRef = Arc::new(StringArray::from(values.clone()));
        let own: ArrayRef = Arc::new(StringViewArray::from(values.clone()));
        let dict: arrow_array::DictionaryArray<arrow_array::types::UInt32Type> =
            values.iter().map(|v| v.as_deref()).collect();
        let shared = arrow_cast::cast(&dict, &DataType::Utf8View).unwrap();
        let want = column_codes(&plain, 0).unwrap();
        assert!(want.1.len() > 1024, "{} distinct", want.1.len());
        assert_eq!(column_codes(&own, 0).unwrap(), want);
        assert_eq!(column_codes(&shared, 0).unwrap(), want);
        // More distinct strings than the cache takes: it is left out, the codes stay.
        let many: Vec<String> = (0..40_000)
            .map(|i| format!("u{}", (i * 7) % 20_000))
            .collect();
        let plain: ArrayRef = Arc::new(StringArray::from(many.clone()));
        let own: ArrayRef = Arc::new(StringViewArray::from(many));
        let want = column_codes(&plain, 0).unwrap();
        assert_eq!(want.1.len(), 20_000);
        assert_eq!(column_codes(&own, 0).unwrap(), want);
    }

    #[test]
    fn long_strings_alike_at_both_ends_keep_their_own_codes() {
        // Same length, same first and last 16 bytes, different middles: one cache key,
        // three strings.
        let middle = |c: char| format!("arn:aws:iam::123-{c}{c}{c}-role/team/alice");
        assert!(middle('a').len() > 32 && middle('a')[..16] == middle('b')[..16]);
        assert_eq!(
            middle('a')[middle('a').len() - 16..],
            middle('b')[middle('b').len() - 16..]
        );
        let values = [
            middle('a'),
            middle('b'),
            middle('a'),
            middle('c'),
            middle('b'),
        ];
        let array = arrow_array::StringViewArray::from_iter_values(values.iter());
        let (codes, reps) = view_codes(&array);
        assert_eq!(codes, [0, 1, 0, 2, 1]);
        assert_eq!(reps, [0, 1, 3]);
    }

    #[test]
    fn ranges_encode_like_one_pass() {
        let n = crate::parallel::MIN_ROWS * 3 + 11;
        let values: Vec<Option<String>> = (0..n)
            .map(|i| (i % 97 != 0).then(|| format!("k{}", (i * 7919) % 1013)))
            .collect();
        let other: Vec<Option<i32>> = (0..n)
            .map(|i| (i % 89 != 0).then_some((i % 5) as i32))
            .collect();
        let cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(values)),
            Arc::new(Int32Array::from(other)),
        ];
        let types = [DataType::Utf8, DataType::Int32];
        let mut runs = Vec::new();
        for threads in [1, 2, 3] {
            crate::parallel::set_threads(threads).unwrap();
            let mut k = KeyInterner::new(&types).unwrap();
            let first = k.batch_ids(&cols, n).unwrap();
            let again = k.batch_ids(&[cols[0].slice(5, 1000), cols[1].slice(5, 1000)], 1000);
            runs.push((first, again.unwrap(), k.len()));
        }
        crate::parallel::set_threads(1).unwrap();
        // Ids are numbered in order of first appearance, as in one pass.
        let (ids, _, len) = &runs[0];
        let mut next = 0;
        for &id in ids {
            assert!(id <= next);
            next = next.max(id + 1);
        }
        assert_eq!(next as usize, *len);
        assert_eq!(runs[1], runs[0]);
        assert_eq!(runs[2], runs[0]);
    }
}
