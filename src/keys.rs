//! Grouping keys: zero or more columns of any flat Arrow type, interned into dense group ids.
//!
//! Key columns are converted once per batch into arrow-row's byte encoding, whose byte order
//! is the ascending order of the values (nulls first, all nulls equal), so one hash map from
//! bytes to id serves every combination of types, and sorting ids by their bytes gives the
//! emission order by key.

use crate::error::{Error, Result};
use arrow_array::ArrayRef;
use arrow_row::{RowConverter, Rows, SortField};
use arrow_schema::DataType;
use hashbrown::HashMap;
use std::cmp::Ordering;

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
            return Ok(KeyInterner { converter: None, ids: HashMap::new(), rows: None });
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
        Ok(KeyInterner { converter: Some(converter), ids: HashMap::new(), rows: Some(rows) })
    }

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
