//! Joins: a stream with a table ([`table`]: an equi-join, or as of each row's event time), and
//! two streams ([`stream`]: an interval join, or as of each row's time, with the watermarks).
//!
//! Join keys follow SQL and polars: a null key never matches; the table's key columns are
//! cast to the stream's key types when both are strings or both integers, and any other
//! difference is an error naming the column and both types.

pub mod stream;
pub mod table;

use crate::error::{Error, Result};
use crate::plan::{type_name, Span};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type};
use arrow_array::{ArrayRef, PrimitiveArray};
use arrow_schema::DataType;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub use stream::{Side, StreamJoin, StreamJoinKind, StreamJoinSpec};
pub use table::{TableJoin, TableJoinSpec};

/// Which stream rows a join keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum How {
    /// Only the rows with a match.
    Inner,
    /// Every row; nulls where nothing matches.
    Left,
}

/// The kind of values a key column holds, for deciding whether two key types can meet.
#[derive(PartialEq, Eq)]
enum Family {
    Text,
    Integer,
    Other,
}

fn family(t: &DataType) -> Family {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Family::Text,
        DataType::Dictionary(_, v) if family(v) == Family::Text => Family::Text,
        t if t.is_integer() => Family::Integer,
        _ => Family::Other,
    }
}

/// `column` (a key of the `right` side, named `name` there) cast to `target`, the type of the
/// matching key on the left; `left_name` names that one in the error.
pub(crate) fn cast_key(
    column: &ArrayRef,
    target: &DataType,
    name: &str,
    left_name: &str,
    right: &str,
) -> Result<ArrayRef> {
    let from = column.data_type();
    if from == target {
        return Ok(column.clone());
    }
    if family(from) != family(target) || family(from) == Family::Other {
        return Err(Error::Schema(format!(
            "join key {left_name:?} is {} in the stream but {name:?} is {} in the {right}; \
             keys must both be strings, both integers, or the same type: cast one first, e.g. \
             pl.col({name:?}).cast(...)",
            type_name(target),
            type_name(from)
        )));
    }
    // An integer the stream's type cannot hold becomes null, which matches nothing (as no
    // stream value could equal it).
    Ok(arrow_cast::cast(column, target)?)
}

/// A float key column with every zero as `0.0` and every NaN as one NaN, so keys compare as
/// polars and DuckDB compare them (`-0.0 = 0.0`, `NaN = NaN`); other columns as they are.
pub(crate) fn normalize_key(column: ArrayRef) -> ArrayRef {
    match column.data_type() {
        DataType::Float64 => Arc::new(PrimitiveArray::<Float64Type>::from_unary(
            column.as_primitive::<Float64Type>(),
            |v| {
                if v == 0.0 {
                    0.0
                } else if v.is_nan() {
                    f64::NAN
                } else {
                    v
                }
            },
        )),
        DataType::Float32 => Arc::new(PrimitiveArray::<Float32Type>::from_unary(
            column.as_primitive::<Float32Type>(),
            |v| {
                if v == 0.0 {
                    0.0
                } else if v.is_nan() {
                    f32::NAN
                } else {
                    v
                }
            },
        )),
        _ => column,
    }
}

/// The version of the joins' snapshot format.
pub const JOIN_SNAPSHOT_FORMAT: u32 = 1;

/// The first item of a join's snapshot: enough to refuse one that does not fit.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SnapshotHeader {
    magic: String,
    format: u32,
    /// "stream_join" or "table_join".
    kind: String,
    /// The join's spec, as JSON.
    spec: String,
}

impl SnapshotHeader {
    pub(crate) fn of(kind: &str, spec: &impl Serialize) -> Result<SnapshotHeader> {
        Ok(SnapshotHeader {
            magic: "rillet-join".into(),
            format: JOIN_SNAPSHOT_FORMAT,
            kind: kind.into(),
            spec: serde_json::to_string(spec)
                .map_err(|e| Error::Internal(format!("cannot write a join spec: {e}")))?,
        })
    }

    /// Reads the header at the front of `bytes`, refusing one of another kind, format or
    /// spec (naming the fields that differ); the bytes after it.
    pub(crate) fn read<'a>(bytes: &'a [u8], kind: &str, spec: &impl Serialize) -> Result<&'a [u8]> {
        let what = format!("{} snapshot", kind.replace('_', " "));
        let (header, rest): (SnapshotHeader, _) = crate::codec::decode_prefix(bytes, &what)?;
        if header.magic != "rillet-join" {
            return Err(Error::Config(format!(
                "these bytes are not a join snapshot (they start with {:?})",
                header.magic
            )));
        }
        if header.format != JOIN_SNAPSHOT_FORMAT {
            return Err(Error::Config(format!(
                "the {what} has format version {}, this engine reads version \
                 {JOIN_SNAPSHOT_FORMAT}; restore it with the version of rillet that wrote it",
                header.format
            )));
        }
        if header.kind != kind {
            return Err(Error::Config(format!(
                "the snapshot is of a {}, not a {}; restore it into the join it was taken of",
                header.kind.replace('_', " "),
                kind.replace('_', " ")
            )));
        }
        let mine = SnapshotHeader::of(kind, spec)?;
        if header.spec != mine.spec {
            let parse = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap_or_default();
            let (then, now) = (parse(&header.spec), parse(&mine.spec));
            let mut fields: Vec<String> = Vec::new();
            if let (Some(a), Some(b)) = (then.as_object(), now.as_object()) {
                for (k, v) in b {
                    let old = a.get(k).cloned().unwrap_or_default();
                    if &old != v {
                        fields.push(format!("{k} was {old}, is {v}"));
                    }
                }
            }
            if fields.is_empty() {
                fields.push(format!("{} then, {} now", header.spec, mine.spec));
            }
            return Err(Error::Config(format!(
                "the {what} was taken of another join ({}); restore it into a join built from \
                 the same query",
                fields.join("; ")
            )));
        }
        Ok(rest)
    }
}

/// A span as the user wrote it, for messages.
pub(crate) fn span_text(span: &Span) -> String {
    match span {
        Span::Text(t) => format!("{t:?}"),
        Span::Count(c) => c.to_string(),
        Span::Micros(us) => format!("a timedelta of {us} microseconds"),
    }
}
