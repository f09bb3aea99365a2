//! A query without a window: its rows pass through as they arrive (a Kinesis pump that
//! filters or reshapes rows, `SELECT STREAM a, b FROM s WHERE ...`).
//!
//! Rows with a null or unparseable time are rejected, as a window would reject them; every
//! other row is emitted at once, in arrival order, and is never late (a stateless step has
//! no window to be late for, as in Flink). The watermark is kept all the same, so a query
//! reading this one's rows can take it as its own: [`Operator::emitted_floor`] of the time
//! column is the watermark (a row behind it is late for that query, as it would be for a
//! window here).

use super::batch::{bind_schema, read_times, Bound};
use super::config::{BatchResult, Metrics, OperatorConfig};
use super::lifecycle::{FloorColumn, Header, Operator};
use crate::codec;
use crate::error::{Error, Result};
use crate::window::Watermark;
use arrow_array::{RecordBatch, RecordBatchOptions, UInt32Array};
use arrow_schema::{Schema, SchemaRef};
use std::sync::Arc;

/// The pass-through operator.
pub struct RowsOperator {
    config: OperatorConfig,
    bound: Option<Bound>,
    watermark: Watermark,
    metrics: Metrics,
    finished: bool,
}

impl RowsOperator {
    /// A pass-through operator; `config.window` must be [`super::Windowing::Rows`].
    pub fn new(config: OperatorConfig) -> Self {
        RowsOperator {
            watermark: Watermark::new(config.delay),
            config,
            bound: None,
            metrics: Metrics::default(),
            finished: false,
        }
    }

    fn empty(&self) -> Result<RecordBatch> {
        match &self.bound {
            Some(b) => Ok(RecordBatch::new_empty(b.output_schema.clone())),
            None => Ok(RecordBatch::try_new_with_options(
                Arc::new(Schema::empty()),
                vec![],
                &RecordBatchOptions::new().with_row_count(Some(0)),
            )?),
        }
    }

    fn gauges(&mut self) {
        let m = &mut self.metrics;
        m.max_event_time = self.watermark.max_seen();
        m.watermark = m.max_event_time.map(|_| self.watermark.current());
        if self.watermark.max_seen().is_none() && self.watermark.current() > i64::MIN {
            m.watermark = Some(self.watermark.current());
        }
        m.state_bytes = std::mem::size_of::<Self>() as u64;
    }
}

impl Operator for RowsOperator {
    fn process(&mut self, batch: &RecordBatch, _now_ms: Option<i64>) -> Result<BatchResult> {
        if self.finished {
            return Err(Error::Internal("process() after flush()".into()));
        }
        let schema = batch.schema();
        match &self.bound {
            Some(b) => b.check(&schema)?,
            None => {
                let (mut b, _, _) = bind_schema(&self.config, &schema)?;
                b.output_schema = schema.clone();
                self.bound = Some(b);
            }
        }
        let bound = self.bound.as_ref().expect("bound above");
        let n = batch.num_rows();
        let times = read_times(batch.column(bound.time_index), bound.time_kind)?;
        let mut result = BatchResult::empty(bound);
        let mut keep: Vec<u32> = Vec::with_capacity(n);
        for i in 0..n {
            match times.value(i) {
                Ok(t) => {
                    self.watermark.observe(t);
                    keep.push(i as u32);
                }
                Err(reason) => result.reject(&mut self.metrics, i, reason),
            }
        }
        self.metrics.rows_in += n as u64;
        self.metrics.rows_accepted += keep.len() as u64;
        self.metrics.rows_emitted += keep.len() as u64;
        result.output = if keep.len() == n {
            batch.clone()
        } else {
            let indices = UInt32Array::from(keep);
            let columns = batch
                .columns()
                .iter()
                .map(|c| arrow_select::take::take(c, &indices, None))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            RecordBatch::try_new_with_options(
                schema,
                columns,
                &RecordBatchOptions::new().with_row_count(Some(indices.len())),
            )?
        };
        self.gauges();
        Ok(result)
    }

    fn advance_watermark(&mut self, instant: i64) -> Result<RecordBatch> {
        self.watermark.advance_to(instant);
        self.gauges();
        self.empty()
    }

    fn tick(&mut self, _now_ms: i64) -> Result<RecordBatch> {
        self.empty()
    }

    fn flush(&mut self) -> Result<RecordBatch> {
        self.finished = true;
        self.empty()
    }

    fn metrics(&self) -> Metrics {
        self.metrics.clone()
    }

    fn output_schema(&self) -> Option<SchemaRef> {
        self.bound.as_ref().map(|b| b.output_schema.clone())
    }

    fn kind(&self) -> &'static str {
        "rows"
    }

    fn snapshot(&self) -> Result<Vec<u8>> {
        let mut out = codec::encode(&Header::of("rows", &self.config))?;
        out.extend(codec::encode(&(
            self.watermark,
            &self.metrics,
            self.finished,
        ))?);
        Ok(out)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<()> {
        let (header, rest): (Header, _) = codec::decode_prefix(bytes, "snapshot")?;
        header.check("rows", &self.config, "snapshot")?;
        let (watermark, metrics, finished): (Watermark, Metrics, bool) =
            codec::decode(rest, "snapshot")?;
        self.watermark = watermark;
        self.metrics = metrics;
        self.finished = finished;
        Ok(())
    }

    fn emitted_floor(&self, column: FloorColumn) -> Option<i64> {
        if column != FloorColumn::RowTime {
            return None;
        }
        if self.finished {
            return Some(i64::MAX);
        }
        self.bound.as_ref()?;
        Some(self.watermark.current())
    }
}
