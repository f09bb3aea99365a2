//! Detectors over Arrow batches: each row of a batch in, the same rows' detector columns
//! out, with the detector's state carried from batch to batch (and through snapshots). The
//! rows are taken in the order they come, one at a time, so a result never depends on how
//! the stream is cut into batches.

use super::forest::{ColumnExplanation, Forest, ForestParams};
use super::hotspots::{Hotspots, HotspotsParams};
use crate::codec;
use crate::error::{Error, Result};
use arrow_array::builder::{Float64Builder, StringBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::{Array, ArrayRef, Float64Array, RecordBatch, StructArray};
use arrow_buffer::NullBuffer;
use arrow_row::{RowConverter, SortField};
use arrow_schema::{DataType, Field, Fields, Schema};
use hashbrown::HashMap;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// What to detect, as the Python layer describes it (JSON).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DetectorSpec {
    /// `rl.random_cut_forest(...)`.
    RandomCutForest {
        /// The numeric columns scored, in order.
        columns: Vec<String>,
        /// Trees per forest.
        trees: usize,
        /// Points per tree.
        sample_size: usize,
        /// Rows over which a point's odds of staying fall by `e` (0: none).
        time_decay: u64,
        /// Rows side by side in one point.
        shingle_size: usize,
        /// Add `anomaly_explanation`.
        with_explanation: bool,
        /// Give each column's direction and strength in the explanation.
        directionality: bool,
        /// Seeds the forests.
        seed: u64,
        /// Kinesis' columns: `ANOMALY_SCORE` and `ANOMALY_EXPLANATION` as JSON text.
        #[serde(default)]
        kinesis: bool,
    },
    /// `rl.hotspots(...)`.
    Hotspots {
        /// The numeric columns that place a row in space.
        columns: Vec<String>,
        /// Rows in the window searched.
        window_size: usize,
        /// How near rows of one hotspot are, in the columns' units.
        scan_radius: f64,
        /// Rows a hotspot holds at least.
        min_points: usize,
        /// Kinesis' column: `HOTSPOTS_RESULT` as JSON text.
        #[serde(default)]
        kinesis: bool,
    },
}

impl DetectorSpec {
    fn columns(&self) -> &[String] {
        match self {
            DetectorSpec::RandomCutForest { columns, .. }
            | DetectorSpec::Hotspots { columns, .. } => columns,
        }
    }

    /// The names of the columns the detector adds.
    pub fn output_names(&self) -> Vec<&'static str> {
        match self {
            DetectorSpec::RandomCutForest {
                with_explanation,
                kinesis,
                ..
            } => {
                let (score, why) = if *kinesis {
                    ("ANOMALY_SCORE", "ANOMALY_EXPLANATION")
                } else {
                    ("anomaly_score", "anomaly_explanation")
                };
                if *with_explanation {
                    vec![score, why]
                } else {
                    vec![score]
                }
            }
            DetectorSpec::Hotspots { kinesis: true, .. } => vec!["HOTSPOTS_RESULT"],
            DetectorSpec::Hotspots { .. } => vec!["hotspots"],
        }
    }

    fn new_state(&self, stream: u64) -> Result<State> {
        Ok(match self {
            DetectorSpec::RandomCutForest {
                columns,
                trees,
                sample_size,
                time_decay,
                shingle_size,
                seed,
                ..
            } => State::Forest(Box::new(Forest::new(
                ForestParams {
                    columns: columns.len(),
                    trees: *trees,
                    sample_size: *sample_size,
                    time_decay: *time_decay,
                    shingle_size: *shingle_size,
                    seed: *seed,
                },
                stream,
            )?)),
            DetectorSpec::Hotspots {
                columns,
                window_size,
                scan_radius,
                min_points,
                ..
            } => State::Hotspots(Box::new(Hotspots::new(HotspotsParams {
                columns: columns.len(),
                window_size: *window_size,
                scan_radius: *scan_radius,
                min_points: *min_points,
            })?)),
        })
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
enum State {
    Forest(Box<Forest>),
    Hotspots(Box<Hotspots>),
}

/// A detector's state: one model per key (one in all without keys).
#[derive(Serialize, Deserialize)]
struct Saved {
    version: u32,
    spec: DetectorSpec,
    by: Vec<String>,
    key_types: Option<Vec<String>>,
    keys: Vec<(Vec<u8>, u32)>,
    states: Vec<State>,
}

const SNAPSHOT_VERSION: u32 = 1;

/// A detector running over a stream.
pub struct Detector {
    spec: DetectorSpec,
    by: Vec<String>,
    converter: Option<RowConverter>,
    key_types: Option<Vec<String>>,
    keys: HashMap<Vec<u8>, u32>,
    states: Vec<State>,
}

impl Detector {
    /// A detector for `spec`, one model per distinct value of the `by` columns.
    pub fn new(spec: DetectorSpec, by: Vec<String>) -> Result<Self> {
        if spec.columns().is_empty() {
            return Err(Error::Config(
                "a detector needs at least one numeric column to look at".into(),
            ));
        }
        for c in spec.columns() {
            if by.contains(c) {
                return Err(Error::Config(format!(
                    "column '{c}' is both scored and a by= key; a key picks the model, so \
                     score other columns"
                )));
            }
        }
        // Check the parameters now, not at the first row.
        spec.new_state(0)?;
        Ok(Detector {
            spec,
            by,
            converter: None,
            key_types: None,
            keys: HashMap::new(),
            states: Vec::new(),
        })
    }

    /// Parses the JSON spec the Python layer writes.
    pub fn from_json(spec: &str, by: Vec<String>) -> Result<Self> {
        let spec: DetectorSpec = serde_json::from_str(spec)
            .map_err(|e| Error::Config(format!("not a valid detector spec: {e}")))?;
        Detector::new(spec, by)
    }

    /// Keys (models) so far.
    pub fn models(&self) -> usize {
        self.states.len()
    }

    /// The depth of every point in each tree of the first key's forest (diagnostics and
    /// tests: the shape of the trees); empty for hotspots or before the first row.
    pub fn leaf_depths(&self) -> Vec<Vec<usize>> {
        match self.states.first() {
            Some(State::Forest(f)) => f.trees().iter().map(|t| t.leaf_depths()).collect(),
            _ => Vec::new(),
        }
    }

    /// Bytes of memory the models hold.
    pub fn bytes(&self) -> usize {
        self.states
            .iter()
            .map(|s| match s {
                State::Forest(f) => f.bytes(),
                State::Hotspots(h) => h.bytes(),
            })
            .sum::<usize>()
            + self.keys.keys().map(|k| k.len() + 16).sum::<usize>()
    }

    /// The detector's columns for every row of `batch`, in order.
    pub fn process(&mut self, batch: &RecordBatch) -> Result<RecordBatch> {
        let n = batch.num_rows();
        let values = self.values(batch)?;
        let key_ids = self.key_ids(batch)?;
        match self.spec.clone() {
            DetectorSpec::RandomCutForest {
                columns,
                with_explanation,
                directionality,
                kinesis,
                ..
            } => {
                // Each key's rows go to its forest in one call, in order; the results go
                // back to the rows they came from.
                let mut per_key: Vec<Vec<f64>> = vec![Vec::new(); self.states.len()];
                let mut slot: Vec<Option<(u32, usize)>> = Vec::with_capacity(n);
                let mut row = vec![0.0; columns.len()];
                for (i, &key) in key_ids.iter().enumerate() {
                    if read_row(&values, i, &mut row) {
                        let k = key as usize;
                        slot.push(Some((key, per_key[k].len() / columns.len())));
                        per_key[k].extend_from_slice(&row);
                    } else {
                        slot.push(None);
                    }
                }
                let mut results = Vec::with_capacity(per_key.len());
                for (k, rows) in per_key.iter().enumerate() {
                    let State::Forest(f) = &mut self.states[k] else {
                        return Err(Error::Internal("a forest detector without a forest".into()));
                    };
                    results.push(f.update_rows(rows, with_explanation));
                }
                let mut scores = Float64Builder::with_capacity(n);
                let mut why = with_explanation.then(|| Explanations::new(&columns, n, kinesis));
                for s in &slot {
                    match *s {
                        None => {
                            scores.append_null();
                            if let Some(w) = &mut why {
                                w.push(None, directionality);
                            }
                        }
                        Some((k, j)) => {
                            let (sc, parts) = &results[k as usize];
                            scores.append_value(sc[j]);
                            if let (Some(w), Some(parts)) = (&mut why, parts) {
                                w.push(Some(parts[j].as_deref()), directionality);
                            }
                        }
                    }
                }
                let names = self.spec.output_names();
                let mut fields = vec![Field::new(names[0], DataType::Float64, true)];
                let mut arrays: Vec<ArrayRef> = vec![Arc::new(scores.finish())];
                if let Some(w) = why {
                    let array = w.finish()?;
                    fields.push(Field::new(names[1], array.data_type().clone(), true));
                    arrays.push(array);
                }
                Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)?)
            }
            DetectorSpec::Hotspots {
                columns, kinesis, ..
            } => {
                let mut out = super::hotspots::ResultBuilder::new(kinesis, n);
                let mut row = vec![0.0; columns.len()];
                for (i, &key) in key_ids.iter().enumerate() {
                    if !read_row(&values, i, &mut row) {
                        out.push_null();
                        continue;
                    }
                    let State::Hotspots(h) = &mut self.states[key as usize] else {
                        return Err(Error::Internal(
                            "a hotspots detector without its window".into(),
                        ));
                    };
                    h.update(&row);
                    out.push(&h.hotspots());
                }
                let array = out.finish()?;
                let field =
                    Field::new(self.spec.output_names()[0], array.data_type().clone(), true);
                Ok(RecordBatch::try_new(
                    Arc::new(Schema::new(vec![field])),
                    vec![array],
                )?)
            }
        }
    }

    /// The scored columns of `batch` as floats.
    fn values(&self, batch: &RecordBatch) -> Result<Vec<Float64Array>> {
        let schema = batch.schema();
        self.spec
            .columns()
            .iter()
            .map(|c| {
                let Ok(i) = schema.index_of(c) else {
                    let names: Vec<&str> =
                        schema.fields().iter().map(|f| f.name().as_str()).collect();
                    return Err(Error::Schema(format!(
                        "column '{c}' not found; the stream has columns {names:?}"
                    )));
                };
                let col = batch.column(i);
                if !(col.data_type().is_numeric() || col.data_type() == &DataType::Null) {
                    return Err(Error::Schema(format!(
                        "a detector looks at numeric columns; '{c}' is {}. Turn it into \
                         numbers first, e.g. .with_columns(pl.col('{c}').cast(pl.Float64))",
                        col.data_type()
                    )));
                }
                let cast = arrow_cast::cast(col, &DataType::Float64)?;
                Ok(cast.as_primitive::<Float64Type>().clone())
            })
            .collect()
    }

    /// The model of every row, made for keys seen the first time.
    fn key_ids(&mut self, batch: &RecordBatch) -> Result<Vec<u32>> {
        let n = batch.num_rows();
        if self.by.is_empty() {
            if self.states.is_empty() {
                self.states.push(self.spec.new_state(0)?);
            }
            return Ok(vec![0; n]);
        }
        let schema = batch.schema();
        let mut columns = Vec::with_capacity(self.by.len());
        for k in &self.by {
            let i = schema.index_of(k).map_err(|_| {
                Error::Schema(format!(
                    "by= column '{k}' not found; the stream has columns {:?}",
                    schema.fields().iter().map(|f| f.name()).collect::<Vec<_>>()
                ))
            })?;
            columns.push(batch.column(i).clone());
        }
        let types: Vec<String> = columns.iter().map(|c| c.data_type().to_string()).collect();
        match &self.key_types {
            Some(t) if *t != types => {
                return Err(Error::Schema(format!(
                    "the by= columns changed type from {t:?} to {types:?} between batches"
                )))
            }
            _ => {}
        }
        if self.converter.is_none() {
            let fields: Vec<SortField> = columns
                .iter()
                .map(|c| SortField::new(c.data_type().clone()))
                .collect();
            self.converter = Some(RowConverter::new(fields).map_err(|e| {
                Error::Schema(format!(
                    "cannot keep a model per key of types {types:?}: {e}"
                ))
            })?);
            self.key_types = Some(types);
        }
        let rows = self
            .converter
            .as_ref()
            .expect("made above")
            .convert_columns(&columns)?;
        let mut ids = Vec::with_capacity(n);
        for i in 0..n {
            let row = rows.row(i);
            let bytes = row.as_ref();
            let id = match self.keys.get(bytes) {
                Some(&id) => id,
                None => {
                    // Every key's model starts from the same seed: a key's results are
                    // those of its rows run alone, whatever keys came before it and however
                    // the stream is split by key.
                    let id = self.states.len() as u32;
                    self.states.push(self.spec.new_state(0)?);
                    self.keys.insert(bytes.to_vec(), id);
                    id
                }
            };
            ids.push(id);
        }
        Ok(ids)
    }

    /// The detector's state as bytes (see [`Detector::restore`]).
    pub fn snapshot(&self) -> Result<Vec<u8>> {
        let mut keys: Vec<(Vec<u8>, u32)> =
            self.keys.iter().map(|(k, &v)| (k.clone(), v)).collect();
        keys.sort_by_key(|k| k.1);
        codec::encode(&Saved {
            version: SNAPSHOT_VERSION,
            spec: self.spec.clone(),
            by: self.by.clone(),
            key_types: self.key_types.clone(),
            keys,
            states: self.states.clone(),
        })
    }

    /// Continues from a snapshot of a detector with the same spec and keys.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<()> {
        let saved: Saved = codec::decode(bytes, "a detector snapshot")?;
        if saved.version != SNAPSHOT_VERSION {
            return Err(Error::Config(format!(
                "this detector snapshot has format version {}, but this rillet reads \
                 version {SNAPSHOT_VERSION}",
                saved.version
            )));
        }
        if saved.spec != self.spec || saved.by != self.by {
            return Err(Error::Config(format!(
                "the snapshot is of another detector ({:?} by {:?}), not {:?} by {:?}",
                saved.spec, saved.by, self.spec, self.by
            )));
        }
        if saved.keys.len() != saved.states.len() && !self.by.is_empty() {
            return Err(Error::Config(
                "the detector snapshot is damaged: keys and models differ in number".into(),
            ));
        }
        self.keys = saved.keys.into_iter().collect();
        self.states = saved.states;
        self.key_types = saved.key_types;
        self.converter = None;
        Ok(())
    }
}

/// Row `i`'s values into `row`; false when one is null or not finite.
fn read_row(values: &[Float64Array], i: usize, row: &mut [f64]) -> bool {
    for (slot, col) in row.iter_mut().zip(values) {
        if col.is_null(i) {
            return false;
        }
        let v = col.value(i);
        if !v.is_finite() {
            return false;
        }
        *slot = v;
    }
    true
}

/// Builds `anomaly_explanation`: a struct with a field per column, each a struct of
/// `direction`, `strength` and `attribution_score`; or Kinesis' `ANOMALY_EXPLANATION`, the
/// same as JSON text with the numbers as strings of four decimals:
/// `{"x":{"DIRECTION":"HIGH","STRENGTH":"0.8567","ATTRIBUTION_SCORE":"1.7447"}}`.
struct Explanations {
    columns: Vec<String>,
    kinesis: Option<StringBuilder>,
    direction: Vec<StringBuilder>,
    strength: Vec<Float64Builder>,
    attribution: Vec<Float64Builder>,
    valid: Vec<bool>,
}

impl Explanations {
    fn new(columns: &[String], n: usize, kinesis: bool) -> Self {
        Explanations {
            columns: columns.to_vec(),
            kinesis: kinesis.then(StringBuilder::new),
            direction: columns.iter().map(|_| StringBuilder::new()).collect(),
            strength: columns
                .iter()
                .map(|_| Float64Builder::with_capacity(n))
                .collect(),
            attribution: columns
                .iter()
                .map(|_| Float64Builder::with_capacity(n))
                .collect(),
            valid: Vec::with_capacity(n),
        }
    }

    /// One row: None for a row not read (a null value); `Some(None)` for a row scored
    /// while the forest fills: parts of 0 and no direction.
    fn push(&mut self, row: Option<Option<&[ColumnExplanation]>>, directionality: bool) {
        let Some(parts) = row else {
            self.push_null();
            return;
        };
        let part = |c: usize| parts.map(|p| &p[c]);
        if let Some(text) = &mut self.kinesis {
            let mut json = String::from("{");
            for (c, name) in self.columns.iter().enumerate() {
                if c > 0 {
                    json.push(',');
                }
                json.push_str(&serde_json::Value::from(name.as_str()).to_string());
                json.push_str(":{");
                if let (true, Some(p)) = (directionality, part(c)) {
                    let dir = if p.high { "HIGH" } else { "LOW" };
                    json.push_str(&format!(
                        "\"DIRECTION\":\"{dir}\",\"STRENGTH\":\"{:.4}\",",
                        p.strength
                    ));
                }
                json.push_str(&format!(
                    "\"ATTRIBUTION_SCORE\":\"{:.4}\"}}",
                    part(c).map_or(0.0, |p| p.attribution)
                ));
            }
            json.push('}');
            text.append_value(json);
            return;
        }
        self.valid.push(true);
        for c in 0..self.columns.len() {
            self.attribution[c].append_value(part(c).map_or(0.0, |p| p.attribution));
            match part(c).filter(|_| directionality) {
                Some(p) => {
                    self.direction[c].append_value(if p.high { "HIGH" } else { "LOW" });
                    self.strength[c].append_value(p.strength);
                }
                None => {
                    self.direction[c].append_null();
                    self.strength[c].append_null();
                }
            }
        }
    }

    /// A row not read: a null explanation.
    fn push_null(&mut self) {
        if let Some(text) = &mut self.kinesis {
            text.append_null();
            return;
        }
        self.valid.push(false);
        for c in 0..self.columns.len() {
            self.attribution[c].append_null();
            self.direction[c].append_null();
            self.strength[c].append_null();
        }
    }

    fn finish(mut self) -> Result<ArrayRef> {
        if let Some(mut text) = self.kinesis.take() {
            return Ok(Arc::new(text.finish()));
        }
        let inner = Fields::from(vec![
            Field::new("direction", DataType::Utf8, true),
            Field::new("strength", DataType::Float64, true),
            Field::new("attribution_score", DataType::Float64, true),
        ]);
        let mut fields = Vec::new();
        let mut arrays: Vec<ArrayRef> = Vec::new();
        for c in 0..self.columns.len() {
            let parts: Vec<ArrayRef> = vec![
                Arc::new(self.direction[c].finish()),
                Arc::new(self.strength[c].finish()),
                Arc::new(self.attribution[c].finish()),
            ];
            let s = StructArray::try_new(inner.clone(), parts, None)?;
            fields.push(Field::new(
                &self.columns[c],
                DataType::Struct(inner.clone()),
                true,
            ));
            arrays.push(Arc::new(s));
        }
        let nulls = NullBuffer::from(std::mem::take(&mut self.valid));
        let nulls = (nulls.null_count() > 0).then_some(nulls);
        Ok(Arc::new(StructArray::try_new(
            Fields::from(fields),
            arrays,
            nulls,
        )?))
    }
}
